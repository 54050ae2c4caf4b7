"""ONNX's own backend test cases for the four integer ops, through ``zeroskip run`` on the RTL:
every output equal to the one the ``onnx`` package's generator expects."""

import json
import warnings
from functools import lru_cache

import numpy as np
import onnx
import pytest

from .rtl import simulators
from .test_cli import zeroskip

OPS = ("MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv")


@lru_cache(maxsize=1)
def backend_cases():
    """{name: (model, inputs, expected outputs)} from onnx's node test generators."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # other ops' generators overflow casts on purpose
        cases = collect_testcases(None)
    return {case.name: (case.model, *case.data_sets[0]) for case in cases
            if case.model.graph.node[0].op_type in OPS}


# the list is fixed here so that a test id names its case before collection imports onnx's
# generators; test_every_backend_case_is_covered keeps it complete
CASES = ["test_convinteger_with_padding", "test_convinteger_without_padding",
         "test_matmulinteger", "test_qlinearconv",
         *(f"test_qlinearmatmul_{d}_{t}_{f}" for d in ("2D", "3D") for t in ("uint8", "int8")
           for f in ("float32", "float16"))]


def test_every_backend_case_is_covered():
    assert sorted(backend_cases()) == sorted(CASES)


def _write_case(tmp_path, name):
    model, inputs, outputs = backend_cases()[name]
    onnx.save(model, tmp_path / "model.onnx")
    np.savez(tmp_path / "in.npz", **{i.name: v for i, v in zip(model.graph.input, inputs)})
    return model, outputs


@pytest.mark.parametrize("name", CASES)
def test_backend_case_on_the_rtl(tmp_path, name):
    model, expected = _write_case(tmp_path, name)
    proc = zeroskip("run", tmp_path / "model.onnx", "--inputs", tmp_path / "in.npz",
                    "--out", tmp_path / "out", "--rows", 2, "--cols", 2)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out" / "outputs.npz")
    for info, value in zip(model.graph.output, expected):
        assert got[info.name].dtype == value.dtype
        np.testing.assert_array_equal(got[info.name], value)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["reference"]["bit_exact"]
    layer, = report["layers"]
    assert layer["on"] == "accelerator" and layer["cycles"] > 0
    assert layer["provenance"]["cycles"] == "rtl"


@pytest.mark.parametrize("sim", simulators())
def test_conv_with_zero_points_on_both_simulators(tmp_path, sim):
    """uint8 activations and weights with nonzero (per-channel) zero points and padding."""
    model, expected = _write_case(tmp_path, "test_convinteger_with_padding")
    proc = zeroskip("run", tmp_path / "model.onnx", "--inputs", tmp_path / "in.npz",
                    "--out", tmp_path / "out", "--sim", sim, "--format", "bitmap")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "outputs.npz")["y"], expected[0])
