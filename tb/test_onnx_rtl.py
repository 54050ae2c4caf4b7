"""ONNX's own backend test cases for the four integer ops, through ``zeroskip run`` on the RTL:
every output equal to the one the ``onnx`` package's generator expects."""

import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import pytest

from .rtl import simulators
from .test_cli import zeroskip

MODELS = Path(__file__).resolve().parent.parent / "models"

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


def _conv_integer(tmp_path, x, w, **attrs):
    from onnx import TensorProto, helper
    types = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8}
    zero = np.array(3, dtype=x.dtype)
    node = helper.make_node("ConvInteger", ["x", "w", "x_zero_point"], ["y"], name="conv",
                            **attrs)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", types[x.dtype.type], x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(zero,
                                                                           "x_zero_point")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    from onnx.reference import ReferenceEvaluator
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.INT32,
                                                                 expected.shape))
    onnx.save(model, tmp_path / "conv.onnx")
    np.save(tmp_path / "x.npy", x)
    return expected


@pytest.mark.parametrize("shape,kernel,attrs", [
    # depthwise 2-D with padding
    ((2, 3, 6, 6), (3, 1, 3, 3), {"group": 3, "pads": [1, 1, 1, 1]}),
    # 1-D, stride and dilation, two groups of two channels
    ((2, 4, 11), (6, 2, 3), {"group": 2, "strides": [2], "dilations": [2], "pads": [1, 0]}),
])
def test_grouped_and_1d_convolutions_on_the_rtl(tmp_path, rng, shape, kernel, attrs):
    x = rng.integers(0, 256, shape).astype(np.uint8)
    w = rng.integers(-128, 128, kernel)
    w = np.where(rng.random(kernel) < 0.5, 0, w).astype(np.int8)  # half pruned
    expected = _conv_integer(tmp_path, x, w, **attrs)
    proc = zeroskip("run", tmp_path / "conv.onnx", "--input", tmp_path / "x.npy",
                    "--out", tmp_path / "out", "--rows", 4, "--cols", 4, "--format", "rle")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "outputs.npz")["y"], expected)
    layer, = json.loads((tmp_path / "out" / "report.json").read_text())["layers"]
    assert layer["gemms"] == attrs["group"]


def test_run_on_a_boards_configuration(tmp_path):
    """``--board`` alone: that board's exact array, simulated."""
    x = np.load(MODELS / "digits_test_x.npy")[:16]
    np.save(tmp_path / "x.npy", x)
    proc = zeroskip("run", MODELS / "digits_mlp.onnx", "--input", tmp_path / "x.npy",
                    "--out", tmp_path / "out", "--board", "icebreaker")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["reference"]["bit_exact"]
    from zeroskip.platforms.boards import BOARDS
    config = BOARDS["icebreaker"].config
    assert (report["array"]["rows"], report["array"]["cols"]) == (config.rows, config.cols)
