"""``zeroskip run`` refuses bad input before any simulation: exit 2, one line naming the
problem, nothing written."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from .test_cli import zeroskip

MODELS = Path(__file__).resolve().parent.parent / "models"
CNN = MODELS / "digits_cnn.onnx"


def _refused(tmp_path, *args, match):
    out = tmp_path / "out"
    proc = zeroskip("run", *args, "--out", out)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroskip"), proc.stderr
    assert match in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def _images(tmp_path, array, name="x.npy"):
    np.save(tmp_path / name, array)
    return tmp_path / name


def test_a_file_that_is_not_onnx(tmp_path):
    x = _images(tmp_path, np.zeros((2, 64), np.float32))
    _refused(tmp_path, x, "--input", x, match="is not an ONNX model")
    (tmp_path / "empty.onnx").write_bytes(b"")
    _refused(tmp_path, tmp_path / "empty.onnx", "--input", x, match="is not an ONNX model")
    _refused(tmp_path, tmp_path / "none.onnx", "--input", x, match="no such file")


@pytest.mark.parametrize("array,match", [
    (np.zeros((2, 63), np.float32), "shape [2, 63], the model wants [N, 64]"),
    (np.zeros((2, 8, 8), np.float32), "the model wants 2 dimensions"),
    (np.zeros((2, 64), np.float64), "dtype float64, the model wants float32"),
])
def test_input_of_the_wrong_shape_or_dtype(tmp_path, array, match):
    _refused(tmp_path, CNN, "--input", _images(tmp_path, array), match=match)


def test_inputs_archive_missing_a_graph_input(tmp_path):
    np.savez(tmp_path / "in.npz", y=np.zeros((2, 64), np.float32))
    _refused(tmp_path, CNN, "--inputs", tmp_path / "in.npz", match="missing graph input 'x'")


def test_float_weights_need_calibrate(tmp_path):
    x = _images(tmp_path, np.zeros((2, 64), np.float32))
    _refused(tmp_path, MODELS / "digits_cnn_float.onnx", "--input", x,
             match="node 'conv1' (Conv): weight 'conv1.W' is float; run a quantized model or "
                   "quantize this one with --calibrate")


def test_unsupported_attribute_on_an_accelerated_node(tmp_path):
    inputs = [helper.make_tensor_value_info("a", TensorProto.UINT8, (2, 4))]
    node = helper.make_node("ConvInteger", ["a4", "w"], ["y"], name="odd", auto_pad="WRAP")
    nodes = [helper.make_node("Reshape", ["a", "shape"], ["a4"]), node]
    inits = [helper.make_tensor("shape", TensorProto.INT64, (4,), [1, 2, 2, 2]),
             helper.make_tensor("w", TensorProto.UINT8, (1, 2, 1, 1), [1, 2])]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.INT32,
                                                             (1, 1, 2, 2))], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "odd.onnx")
    x = _images(tmp_path, np.zeros((2, 4), np.uint8))
    _refused(tmp_path, tmp_path / "odd.onnx", "--input", x,
             match="node 'odd' (ConvInteger): auto_pad")


def test_labels_and_options(tmp_path):
    x = _images(tmp_path, np.zeros((3, 64), np.float32))
    y = _images(tmp_path, np.zeros(4, np.int64), "y.npy")
    _refused(tmp_path, CNN, "--input", x, "--labels", y, match="--labels: expected 3 integer")
    _refused(tmp_path, CNN, "--input", x, "--prune", "1.5", match="--prune must be in [0, 1)")
    _refused(tmp_path, CNN, "--input", x, "--rows", "40", match="--rows")


def test_run_from_python_refuses_the_same_input():
    import zeroskip
    from zeroskip.sim.loaders import BadInput
    with pytest.raises(BadInput, match="dtype float64, the model wants float32"):
        zeroskip.run(CNN, np.zeros((2, 64)))
    with pytest.raises(BadInput, match="missing graph input 'x'"):
        zeroskip.run(CNN, {"y": np.zeros((2, 64), np.float32)})
    with pytest.raises(BadInput, match=r"prune must be in \[0, 1\)"):
        zeroskip.run(CNN, np.zeros((2, 64), np.float32), prune=-0.5)
    with pytest.raises(BadInput, match="weight 'conv1.W' is float"):
        zeroskip.run(onnx.load(MODELS / "digits_cnn_float.onnx"), np.zeros((2, 64), np.float32))
