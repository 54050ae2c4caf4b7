"""Reading a .tflite (zeroskip.frontend.tflite.model): what is accepted, what is bad input and
how it is named; the batch of inputs; pruning a copy of the file."""

import numpy as np
import pytest

from zeroskip.frontend.tflite.executor import check_input
from zeroskip.frontend.tflite.model import load
from zeroskip.frontend.tflite.prune import prune
from zeroskip.frontend.tflite.reference import reference_outputs
from zeroskip.sim.loaders import BadInput
from zeroskip.tb.tflite_builder import Op, Tensor, conv_model, fc_model, model_bytes


def test_a_conv_model_reads_back_as_written():
    rng = np.random.default_rng(0)
    model = load(conv_model(rng, depthwise=True, stride=(2, 1), activation="relu6"))
    (op,) = model.ops
    assert op.code == "DEPTHWISE_CONV_2D"
    assert op.options["fused_activation_function"] == "relu6"
    assert op.options["stride_h"] == 2 and op.options["depth_multiplier"] == 2
    weights = model.tensors[op.inputs[1]]
    assert weights.dtype == np.int8 and weights.data.shape == (1, 3, 3, 8)
    assert weights.scale.size == 8 and weights.quantized_dimension == 3


@pytest.mark.parametrize("content, message", [
    (b"", "not a TFLite model"),
    (b"\x1c\x00\x00\x00ONNX" + bytes(40), "not a TFLite model"),
])
def test_foreign_files_are_bad_input(content, message):
    with pytest.raises(BadInput, match=message):
        load(content)


def test_a_truncated_model_is_bad_input():
    content = fc_model(np.random.default_rng(0))
    for cut in (16, len(content) // 2, len(content) - 40):
        with pytest.raises(BadInput):
            load(content[:cut])


def test_missing_files_and_folders_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load(tmp_path / "model.tflite")
    with pytest.raises(BadInput, match="folder"):
        load(tmp_path)


def test_a_float_model_names_its_first_float_tensor():
    content = model_bytes(
        [Tensor("x", (1, 4), np.float32), Tensor("w", (2, 4), np.float32,
                                                 data=np.ones((2, 4), np.float32)),
         Tensor("y", (1, 2), np.float32)],
        [Op("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions", {})], [0], [2])
    with pytest.raises(BadInput, match=r"float or hybrid model: tensor 0 \('x', float32\)"):
        load(content)


def test_a_hybrid_model_is_refused_too():
    content = model_bytes(
        [Tensor("x", (1, 4), np.float32),
         Tensor("w", (2, 4), scale=[0.1], zero_point=[0], data=np.ones((2, 4), np.int8)),
         Tensor("y", (1, 2), np.float32)],
        [Op("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions", {})], [0], [2])
    with pytest.raises(BadInput, match="float or hybrid"):
        load(content)


def test_an_unsupported_operator_is_named_with_its_index():
    content = model_bytes(
        [Tensor("x", (1, 4), scale=[0.1], zero_point=[0]),
         Tensor("y", (1, 4), scale=[0.1], zero_point=[0]),
         Tensor("z", (1, 4), scale=[0.1], zero_point=[0])],
        [Op("RESHAPE", [0], [1]), Op("EXP", [1], [2])], [0], [2])
    with pytest.raises(BadInput, match="operator 1 is EXP"):
        load(content)


def test_inputs_are_checked_against_the_declared_shape_and_type():
    model = load(conv_model(np.random.default_rng(0)))
    good = np.zeros((5, 9, 7, 4), np.int8)
    assert check_input(model, good).shape == (5, 9, 7, 4)
    assert check_input(model, good[:, None]).shape == (5, 9, 7, 4)   # with the leading 1
    with pytest.raises(BadInput, match=r"shape \[5, 9, 7, 3\]; expected N samples of "
                                       r"\[9, 7, 4\]"):
        check_input(model, good[..., :3])
    with pytest.raises(BadInput, match="dtype float64"):
        check_input(model, good.astype(np.float64))
    with pytest.raises(BadInput, match=r"values in \[0, 753\]"):
        check_input(model, np.arange(9 * 7 * 4).reshape(1, 9, 7, 4) * 3)


def test_pruning_rewrites_only_the_array_weights():
    rng = np.random.default_rng(1)
    content = conv_model(rng, sparsity=0.0)
    model = load(content)
    pruned, sparsity = prune(model, 0.75)
    assert sparsity == {"w": 0.75}
    assert len(pruned) == len(content)
    again = load(pruned)
    before, after = model.tensors[1].data, again.tensors[1].data
    kept = after != 0
    assert np.abs(before[kept]).min() >= np.abs(before[~kept]).max()   # by magnitude
    assert np.array_equal(after[kept], before[kept])
    for a, b in zip(model.tensors, again.tensors):                      # nothing else moved
        if a.index != 1:
            assert a.shape == b.shape and np.array_equal(a.scale, b.scale)
            assert (a.data is None) == (b.data is None)
    x = rng.integers(-128, 128, (2, 9, 7, 4)).astype(np.int8)
    assert reference_outputs(pruned, x)["y"].shape == (2, 9, 7, 6)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, "half"])
def test_bad_sparsities_are_bad_input(sparsity):
    with pytest.raises(BadInput, match="fraction in"):
        prune(load(fc_model(np.random.default_rng(0))), sparsity)
