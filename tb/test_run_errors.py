"""``zeroskip run`` and ``zeroskip.run`` on ordinary mistakes and on a wrong answer, without a
simulator: every refusal happens before anything runs (exit 2, one line saying what was found
and what is expected, nothing written; ValueError in Python terms from the API), and outputs
that differ from the model's definition never pass (exit 1 / :class:`zeroskip.OutputsDiffer`),
tested with the accelerator's GEMMs replaced by NumPy (``GemmRunner.run`` patched)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import zeroskip
from zeroskip import cli
from zeroskip.gemm_runner import GemmRunner
from zeroskip.markdown import table
from zeroskip.sim import golden
from zeroskip.sim.loaders import BadInput

MODELS = Path(__file__).resolve().parent.parent / "models"
CNN = MODELS / "digits_cnn.onnx"
MLP = MODELS / "digits_mlp.onnx"


def command(*args):
    """The installed ``zeroskip`` as a user runs it."""
    return subprocess.run([str(Path(sys.executable).parent / "zeroskip"), *map(str, args)],
                          capture_output=True, text=True)


def refused(tmp_path, *args, match):
    out = tmp_path / "out"
    proc = command("run", *args, "--out", out)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroskip: error: "), proc.stderr
    assert match in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def save(tmp_path, name, array):
    np.save(tmp_path / name, array)
    return tmp_path / name


def linear_classifier(path):
    """What skl2onnx writes for a LogisticRegression: ai.onnx.ml operators, no matrix product
    of the default domain."""
    rng = np.random.default_rng(0)
    node = helper.make_node("LinearClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
                            coefficients=rng.normal(size=3 * 64).astype(np.float32).tolist(),
                            intercepts=[0.0, 0.1, 0.2], classlabels_ints=[0, 1, 2])
    graph = helper.make_graph(
        [node], "lr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ("N", 64))],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ("N",)),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ("N", 3))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 1)])
    onnx.save(model, path)
    return path


def lstm(path):
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(1, 16, 64)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(size=(1, 16, 4)).astype(np.float32), "R")]
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "W", "R"], ["", "h"], hidden_size=4)], "lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, "N", 64))],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, (1, "N", 4))], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def float_relu(path):
    """A float model whose nodes are all host operators."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "r"], ["y"])],
        "float", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ("N", 64))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ("N", 64))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# ---- calibrate on a model it cannot quantize -----------------------------------------------

def test_calibrate_an_already_quantized_model(tmp_path):
    x = save(tmp_path, "x.npy", np.zeros((2, 64), np.float32))
    line = refused(tmp_path, CNN, "--input", x, "--calibrate", x,
                   match="is already quantized (has QuantizeLinear/DequantizeLinear nodes): "
                         "drop --calibrate")
    assert "DequantizeLinear' domain" not in line  # not onnxruntime's internal message
    with pytest.raises(ValueError, match=r"already quantized .*: drop calibrate=") as caught:
        zeroskip.run(CNN, np.zeros((2, 64), np.float32), calibrate=np.zeros((2, 64), np.float32))
    assert "--" not in str(caught.value)


def test_calibrate_a_linear_classifier(tmp_path):
    model = linear_classifier(tmp_path / "lr.onnx")
    x = save(tmp_path, "x.npy", np.zeros((2, 64), np.float32))
    refused(tmp_path, model, "--input", x, "--calibrate", x,
            match="no matrix product of a supported kind (found: LinearClassifier from "
                  "ai.onnx.ml)")
    with pytest.raises(ValueError, match=r"found: LinearClassifier from ai.onnx.ml\); calibrate "):
        zeroskip.run(model, np.zeros((2, 64), np.float32), calibrate=np.zeros((2, 64), np.float32))


def test_calibrate_an_lstm(tmp_path):
    model = lstm(tmp_path / "lstm.onnx")
    x = save(tmp_path, "x.npy", np.zeros((2, 3, 64), np.float32))
    refused(tmp_path, model, "--input", x, "--calibrate", x,
            match="no matrix product of a supported kind (found: LSTM)")


def test_calibrate_inputs_that_are_not_a_batch():
    float_cnn = MODELS / "digits_cnn_float.onnx"
    x = np.zeros((2, 64), np.float32)
    with pytest.raises(ValueError, match=r"^calibrate: expected an array of calibration inputs "
                                         r"\(a batch of at least one\), found shape \(0, 64\)"):
        zeroskip.run(float_cnn, x, calibrate=np.zeros((0, 64), np.float32))
    with pytest.raises(ValueError, match=r"^calibrate: input 'x': dtype float64, the model "
                                         r"wants float32"):
        zeroskip.run(float_cnn, x, calibrate=[[0.0] * 64])


# ---- models with nothing for the array -------------------------------------------------------

@pytest.mark.parametrize("make,shape,has", [
    (linear_classifier, (2, 64), "it has LinearClassifier from ai.onnx.ml"),
    (lstm, (2, 3, 64), "it has LSTM"),
    (float_relu, (2, 64), "it has Relu, Add"),
])
def test_no_layer_on_the_array_is_refused(tmp_path, make, shape, has):
    model = make(tmp_path / "model.onnx")
    x = save(tmp_path, "x.npy", np.zeros(shape, np.float32))
    line = refused(tmp_path, model, "--input", x,
                   match=f"no layer of {model} runs on the accelerator: {has}")
    assert "a float model is quantized by --calibrate CAL.npy" in line
    with pytest.raises(ValueError, match="runs on the accelerator") as caught:
        zeroskip.run(model, np.zeros(shape, np.float32))
    assert "calibrate=" in str(caught.value) and "--" not in str(caught.value)


# ---- inputs and labels say what was found -----------------------------------------------------

def test_labels_say_what_was_found(tmp_path):
    x = save(tmp_path, "x.npy", np.zeros((3, 64), np.float32))
    y = save(tmp_path, "y.npy", np.zeros((3, 1), np.int64))
    refused(tmp_path, CNN, "--input", x, "--labels", y,
            match="--labels: expected 3 integer class labels (1-D, one per input), found shape "
                  "(3, 1) int64")
    with pytest.raises(ValueError, match=r"^labels: expected 3 integer class labels .*found "
                                         r"shape \(2,\) float64"):
        zeroskip.run(CNN, np.zeros((3, 64), np.float32), labels=[1.0, 2.0])


def test_inputs_say_what_was_found(tmp_path):
    np.savez(tmp_path / "in.npz", y=np.zeros((2, 64), np.float32))
    refused(tmp_path, CNN, "--inputs", tmp_path / "in.npz",
            match="--inputs: missing graph input 'x' (the model takes x; found y)")
    refused(tmp_path, CNN, "--input", tmp_path / "in.npz",
            match="--input: " + str(tmp_path / "in.npz") + " is an .npz archive (keys: y)")
    x = save(tmp_path, "x.npy", np.zeros((2, 64), np.float32))
    refused(tmp_path, CNN, "--inputs", x,
            match="is a single array of shape (2, 64); expected an .npz keyed by input name (x)")
    with pytest.raises(ValueError, match=r"^inputs: input 'x': expected a NumPy array, found a "
                                         r"list"):
        zeroskip.run(CNN, {"x": [[0.0] * 64]})


def test_python_errors_speak_in_arguments():
    with pytest.raises(TypeError, match="model: expected a path or an onnx.ModelProto, got int"):
        zeroskip.run(5, np.zeros((2, 64), np.float32))
    with pytest.raises(ValueError, match=r"quantize this one with calibrate=\.\.\.$"):
        zeroskip.run(onnx.load(MODELS / "digits_cnn_float.onnx"), np.zeros((2, 64), np.float32))
    with pytest.raises(ValueError, match=r"^prune must be in \[0, 1\), not '0.5'"):
        zeroskip.run(CNN, np.zeros((2, 64), np.float32), prune="0.5")


# ---- a wrong answer never passes ---------------------------------------------------------------

def _numpy_gemms(wrong=False):
    """``GemmRunner.run`` in NumPy (the accelerator's contract, figures of 1 cycle), its first
    result far off with ``wrong``."""
    def run(self, pairs):
        out = []
        for index, (acts, weights) in enumerate(pairs):
            result = golden.gemm(acts, weights)
            if wrong and index == 0:
                result = result + 4096  # far past a rounding step
            report = {name: 1 for name in ("cycles", "dense_cycles", "ideal_cycles",
                                           "macs_executed", "load_cycles",
                                           "mapped_ideal_cycles")}
            report["provenance"] = {"dense_cycles": "model", "speedup": "model"}
            out.append((result, report))
        return out
    return run


def _run_command(tmp_path, capsys, *extra, model=MLP):
    x = np.load(MODELS / "digits_test_x.npy")[:16]
    y = np.load(MODELS / "digits_test_y.npy")[:16]
    status = cli.main(["run", model, "--input", save(tmp_path, "x.npy", x), "--labels",
                       save(tmp_path, "y.npy", y), "--out", tmp_path / "out", *extra])
    return status, capsys.readouterr()


def test_wrong_outputs_exit_1_with_the_files_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms(wrong=True))
    status, captured = _run_command(tmp_path, capsys)
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroskip: error: outputs differ"), \
        captured.err
    assert "outputs differ from the model's definition (onnxruntime, optimizations off): " \
           "max |diff| " in lines[0] and " on probabilities" in lines[0], lines[0]
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert not report["reference"]["unoptimized"]["bit_exact"]
    assert {p.name for p in out.iterdir()} >= {"outputs.npz", "report.md", "layers.png"}


def test_wrong_outputs_raise_from_python(monkeypatch):
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms(wrong=True))
    x = np.load(MODELS / "digits_test_x.npy")[:16]
    with pytest.raises(zeroskip.OutputsDiffer, match="outputs differ from the model's "
                                                     "definition") as caught:
        zeroskip.run(MLP, x)
    error = caught.value
    assert isinstance(error, RuntimeError) and error.max_abs_diff > 0
    assert error.output in error.outputs and error.report["layers"]
    assert not error.report["reference"]["unoptimized"]["bit_exact"]


def test_summary_leads_with_the_models_definition(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms())
    status, captured = _run_command(tmp_path, capsys)
    assert status == 0, captured.err
    summary = captured.out
    definition = summary.index("Against the model's definition (onnxruntime ")
    fused = summary.index("Against onnxruntime's default session (fused int8 kernels)")
    assert definition < fused
    assert "optimizations off): max |diff| 0, bit-exact" in summary
    assert "Fused int8 kernels round differently from the graph as written" in summary
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert list(report["reference"])[0] == "unoptimized"
    assert report["reference"]["unoptimized"]["graph_optimization"] == "ORT_DISABLE_ALL"
    # the layer table is the project's one Markdown table writer's
    head = ["node", "op", "M×K×N", "weight sparsity", "cycles (RTL)", "dense cycles",
            "speedup", "ideal", "fraction of ideal", "mapped ideal"]
    assert table(head, [], "lllrrrrrrr") in (tmp_path / "out" / "report.md").read_text()


def test_calibrate_says_where_the_quantized_model_went(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(GemmRunner, "run", _numpy_gemms())
    status, captured = _run_command(tmp_path, capsys, "--calibrate",
                                    MODELS / "digits_calib_x.npy",
                                    model=MODELS / "digits_cnn_float.onnx")
    assert status == 0, captured.err
    quantized = tmp_path / "out" / "quantized.onnx"
    assert quantized.is_file()
    said = [line for line in captured.out.splitlines() if str(quantized) in line]
    assert len(said) == 1 and "quantized" in said[0]


def test_bad_input_is_a_value_error():
    assert issubclass(BadInput, ValueError)
