"""The bundled networks (models/: a pruned CNN, the scikit-learn MLP through skl2onnx, a
transformer encoder block) end to end through ``zeroskip run`` on the RTL, against
onnxruntime on the same 450 test images."""

import json
from pathlib import Path

import numpy as np
import pytest

from .test_cli import zeroskip

MODELS = Path(__file__).resolve().parent.parent / "models"


def _run(tmp_path, model, *extra):
    out = tmp_path / "out"
    proc = zeroskip("run", MODELS / model, "--input", MODELS / "digits_test_x.npy",
                    "--labels", MODELS / "digits_test_y.npy", "--out", out, *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "report.json").read_text()), out


def test_cnn_accuracy_equals_onnxruntime_int8(tmp_path):
    report, out = _run(tmp_path, "digits_cnn.onnx")
    ref = report["reference"]
    assert ref["bit_exact"] and ref["top1_agreement"] == 1.0
    assert ref["accuracy"] == ref["reference_accuracy"] >= 0.95
    convs = [layer for layer in report["layers"] if layer["op"] == "Conv"]
    assert len(convs) == 2 and all(layer["on"] == "accelerator" for layer in convs)
    fc, = [layer for layer in report["layers"] if layer["op"] == "Gemm"]
    assert fc["on"] == "accelerator"
    # the pruned layers really skip: RTL cycles below the dense mode's
    assert all(layer["cycles"] < layer["dense_cycles"] for layer in convs + [fc])
    assert report["total"]["speedup"] > 2
    # energy: the layers' estimates add up; skipping saves on chip, DRAM traffic is its own line
    total = report["total"]
    assert total["energy_pj"] == pytest.approx(sum(layer["energy_pj"] for layer in convs + [fc]))
    assert total["energy_pj"] == pytest.approx(sum(total["energy_breakdown_pj"].values()))
    assert total["energy_per_inference_pj"] == pytest.approx(total["energy_pj"] / 450)
    assert total["onchip_edp_ratio_vs_dense"] > 2 and total["dense_energy_pj"] > total["energy_pj"]
    assert total["provenance"]["energy_pj"].startswith("estimate")
    assert (out / "layers.png").stat().st_size > 0
    logits = np.load(out / "outputs.npz")["logits"]
    assert logits.shape == (450, 10) and logits.dtype == np.float32


def test_sklearn_mlp_through_skl2onnx(tmp_path):
    report, out = _run(tmp_path, "digits_mlp.onnx")
    ref = report["reference"]
    assert ref["bit_exact"] and ref["accuracy"] == ref["reference_accuracy"]
    assert [layer["on"] for layer in report["layers"] if layer["op"] == "MatMul"] == \
        ["accelerator"] * 3
    outputs = np.load(out / "outputs.npz")
    assert outputs["label"].dtype == np.int64  # the graph's declared dtypes
    assert outputs["probabilities"].dtype == np.float32


def test_transformer_encoder_block(tmp_path):
    report, _ = _run(tmp_path, "encoder.onnx", "--format", "bitmap")
    layers = report["layers"]
    projections = [layer for layer in layers if layer["op"] == "MatMul" and
                   layer["on"] == "accelerator"]
    assert len(projections) >= 6 and all(layer["m"] == 450 * 8 for layer in projections)
    attention = [layer for layer in layers if layer["op"] == "MatMul" and layer["on"] == "host"]
    assert len(attention) == 2 and all("attention" in layer["reason"] for layer in attention)
    ref = report["reference"]
    # onnxruntime's default replaces Add/Softmax by its own fused integer kernels; the graph
    # as written is reproduced exactly
    literal = ref.get("unoptimized", ref)
    assert literal["bit_exact"]
    assert ref["top1_agreement"] >= 0.9


def test_float_model_quantized_with_calibrate(tmp_path):
    """A float model quantized by --calibrate (QDQ) and pruned. Its matrix products run on the
    array in exact integers and are requantized as onnxruntime's fused QLinearConv does; the
    graph as written (the definition) requantizes float32 convolutions whose summation order is
    onnxruntime's own, so a value on a rounding tie can land one step apart. Then the run is a
    wrong answer by the definition: exit 1, the files written, as for any difference."""
    out = tmp_path / "out"
    proc = zeroskip("run", MODELS / "digits_cnn_float.onnx", "--input",
                    MODELS / "digits_test_x.npy", "--labels", MODELS / "digits_test_y.npy",
                    "--out", out, "--calibrate", MODELS / "digits_calib_x.npy", "--prune",
                    "0.5", "--rows", 4, "--cols", 4)
    report = json.loads((out / "report.json").read_text())
    ref = report["reference"]
    definition = ref["unoptimized"]
    if definition["bit_exact"]:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 1
        assert proc.stderr.startswith("zeroskip: error: outputs differ from the model's "
                                      "definition"), proc.stderr
    assert definition["top1_agreement"] == 1.0
    assert ref["bit_exact"] and ref["accuracy"] == ref["reference_accuracy"] > 0.9
    assert all(layer["weight_sparsity"] >= 0.5 for layer in report["layers"]
               if layer["on"] == "accelerator")
    assert (out / "quantized.onnx").exists()


@pytest.mark.slow
def test_cnn_on_icarus(tmp_path):
    """The same network on the second simulator, on a slice of the images."""
    x = np.load(MODELS / "digits_test_x.npy")[:24]
    np.save(tmp_path / "x.npy", x)
    proc = zeroskip("run", MODELS / "digits_cnn.onnx", "--input", tmp_path / "x.npy",
                    "--out", tmp_path / "out", "--sim", "icarus")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["reference"]["bit_exact"]


def test_run_from_python_matches_the_command(tmp_path):
    import zeroskip as package
    x = np.load(MODELS / "digits_test_x.npy")[:32]
    y = np.load(MODELS / "digits_test_y.npy")[:32]
    outputs, report = package.run(MODELS / "digits_cnn.onnx", x, labels=y, rows=4, cols=4)
    assert report["reference"]["bit_exact"]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    proc = zeroskip("run", MODELS / "digits_cnn.onnx", "--input", tmp_path / "x.npy",
                    "--labels", tmp_path / "y.npy", "--out", tmp_path / "out", "--rows", 4,
                    "--cols", 4)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "outputs.npz")["logits"],
                                  outputs["logits"])
    from_command = json.loads((tmp_path / "out" / "report.json").read_text())
    assert from_command["layers"] == json.loads(json.dumps(report["layers"]))
