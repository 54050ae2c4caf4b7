"""``zeroskip run MODEL.tflite`` as a user meets it: bad input is exit 2 with one line and
nothing written, a wrong answer exit 1 with the files written, --prune writes the pruned
model. The array's GEMMs are NumPy here (the RTL runs them in tb/test_tflite_rtl.py)."""

import json

import numpy as np
import pytest

from zeroskip import cli
from zeroskip.frontend.tflite.model import load
from zeroskip.gemm_runner import GemmRunner
from zeroskip.tb.tflite_builder import Op, Tensor, conv_model, every_op_model, model_bytes

from .test_run_errors import _numpy_gemms


def _files(tmp_path, content, x, name="model.tflite"):
    model = tmp_path / name
    model.write_bytes(content)
    np.save(tmp_path / "x.npy", x)
    return model, tmp_path / "x.npy"


def _run(tmp_path, capsys, model, x, *extra):
    status = cli.main(["run", str(model), "--input", str(x), "--out", str(tmp_path / "out"),
                       *extra])
    return status, capsys.readouterr()


def _one_error_line(captured, *fragments):
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroskip: error: "), captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def every_op(tmp_path):
    rng = np.random.default_rng(3)
    return _files(tmp_path, every_op_model(rng),
                  rng.normal(0, 2, (4, 8, 8, 2)).astype(np.float32))


def test_a_run_writes_outputs_keyed_by_output_name(tmp_path, capsys, monkeypatch, every_op):
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms())
    status, captured = _run(tmp_path, capsys, *every_op)
    assert status == 0, captured.err
    out = tmp_path / "out"
    outputs = np.load(out / "outputs.npz")
    assert sorted(outputs.files) == ["logistic", "probabilities", "tanh"]
    assert outputs["probabilities"].shape == (4, 5)
    assert outputs["probabilities"].dtype == np.float32 and outputs["tanh"].dtype == np.int8
    report = json.loads((out / "report.json").read_text())
    assert report["reference"]["definition"]["bit_exact"]
    assert report["reference"]["definition"]["runtime"].startswith("LiteRT reference kernels")
    assert "Against the model's definition (LiteRT reference kernels" in captured.out


def test_a_wrong_answer_exits_1_with_the_files_written(tmp_path, capsys, monkeypatch,
                                                       every_op):
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms(wrong=True))
    status, captured = _run(tmp_path, capsys, *every_op)
    assert status == 1
    _one_error_line(captured, "outputs differ from the model's definition (LiteRT reference "
                              "kernels")
    assert (tmp_path / "out" / "report.json").exists()


def test_prune_writes_the_model_that_ran(tmp_path, capsys, monkeypatch, every_op):
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms())
    status, captured = _run(tmp_path, capsys, *every_op, "--prune", "0.75")
    assert status == 0, captured.err
    pruned = load(tmp_path / "out" / "pruned.tflite")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["pruned_sparsity"] == {"w1": 0.75, "w2": 0.7407, "w3": 0.75, "w4": 0.75}
    weights = [t for t in pruned.tensors if t.name == "w1"][0].data
    assert 1 - np.count_nonzero(weights) / weights.size == 0.75
    assert "pruned.tflite" in captured.out


def test_calibrate_is_refused_on_a_tflite(tmp_path, capsys, every_op):
    np.save(tmp_path / "cal.npy", np.zeros((2, 8, 8, 2), np.float32))
    status, captured = _run(tmp_path, capsys, *every_op, "--calibrate",
                            str(tmp_path / "cal.npy"))
    assert status == 2
    _one_error_line(captured, "--calibrate: a .tflite model is quantized already")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case, fragments", [
    ("truncated", ["not a readable TFLite model"]),
    ("float", ["float or hybrid model: tensor 0 ('x', float32)"]),
    ("unsupported", ["operator 1 is EXP"]),
    ("shape", ["--input: shape [3, 9, 7, 5]; expected N samples of [9, 7, 4]"]),
    ("dtype", ["--input: dtype float64; the model's input is int8"]),
    ("nothing on the array", ["no layer of", "runs on the accelerator: it has RESHAPE"]),
])
def test_bad_models_and_inputs_are_exit_2_with_nothing_written(tmp_path, capsys, case,
                                                               fragments):
    rng = np.random.default_rng(0)
    content, x = conv_model(rng), np.zeros((3, 9, 7, 4), np.int8)
    if case == "truncated":
        content = content[:len(content) // 2]
    elif case == "float":
        content = model_bytes([Tensor("x", (1, 4), np.float32),
                               Tensor("w", (2, 4), np.float32, data=np.ones((2, 4), np.float32)),
                               Tensor("y", (1, 2), np.float32)],
                              [Op("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions",
                                  {})], [0], [2])
    elif case in ("unsupported", "nothing on the array"):
        q = {"scale": [0.1], "zero_point": [0]}
        ops = [Op("RESHAPE", [0], [1])] + ([Op("EXP", [1], [2])] if case == "unsupported"
                                            else [Op("RESHAPE", [1], [2])])
        content = model_bytes([Tensor("x", (1, 9, 7, 4), **q), Tensor("y", (1, 252), **q),
                               Tensor("z", (1, 252), **q)], ops, [0], [2])
    elif case == "shape":
        x = np.zeros((3, 9, 7, 5), np.int8)
    elif case == "dtype":
        x = np.zeros((3, 9, 7, 4))
    model, x_path = _files(tmp_path, content, x)
    status, captured = _run(tmp_path, capsys, model, x_path)
    assert status == 2
    _one_error_line(captured, *fragments)
    assert not (tmp_path / "out").exists()


def test_the_python_api_takes_the_files_bytes(monkeypatch):
    import zeroskip
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms())
    rng = np.random.default_rng(4)
    content = conv_model(rng, depthwise=True)
    x = rng.integers(-128, 128, (2, 9, 7, 4)).astype(np.int8)
    outputs, report = zeroskip.run(content, x)
    assert outputs["y"].shape == (2, 9, 7, 8) and report["layers"][0]["on"] == "accelerator"
    with pytest.raises(ValueError, match="calibrate: a TFLite model is quantized already"):
        zeroskip.run(content, x, calibrate=x)
    with pytest.raises(ValueError, match=r"inputs: keys a; the model's input is 'x'"):
        zeroskip.run(content, {"a": x})
