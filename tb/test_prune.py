"""Magnitude pruning of quantized ONNX models (zeroskip.frontend.prune), on the host: the
fraction pruned, the N:M pattern down K as the lowering hands the weights to the array, zero
points, and the pruned model still computing what onnxruntime computes."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zeroskip.frontend.graph import Executor
from zeroskip.frontend.prune import array_weights, prune_quantized, weight_sparsity
from zeroskip.sim.formats.nm import violations
from zeroskip.sim.loaders import BadInput

from .test_frontend import NumpyGemms

MODELS = Path(__file__).resolve().parents[1] / "models"


class CheckingGemms(NumpyGemms):
    """Every GEMM's weights as the array receives them, kept for the checks."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def run(self, pairs):
        self.weights += [w for _, w in pairs]
        return super().run(pairs)


def _qlinear_conv(w, w_zero, group=1):
    """A QLinearConv whose weights have zero points (uint8, per output channel)."""
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4, 5, 5])
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "xs"),
             numpy_helper.from_array(np.array(7, np.uint8), "xz"),
             numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.full(w.shape[0], 0.02, np.float32), "ws"),
             numpy_helper.from_array(w_zero, "wz"),
             numpy_helper.from_array(np.array(0.3, np.float32), "ys"),
             numpy_helper.from_array(np.array(3, np.uint8), "yz")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                            pads=[1, 1, 1, 1], group=group)
    graph = helper.make_graph([node], "conv", [x],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _conv_weights(seed=0, out=6, per_in=4):
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 256, (out, per_in, 3, 3)).astype(np.uint8)
    zero = rng.integers(100, 156, out).astype(np.uint8)
    return w, zero


def _weights(model, name="w"):
    return next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == name)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75, 0.9])
def test_unstructured_prunes_that_fraction_to_the_zero_points(sparsity):
    w, zero = _conv_weights()
    pruned = prune_quantized(_qlinear_conv(w, zero), sparsity)
    real = _weights(pruned).astype(int) - zero.reshape(-1, 1, 1, 1)
    assert np.count_nonzero(real == 0) == round(w.size * sparsity) or sparsity == 0
    assert weight_sparsity(pruned) == pytest.approx(np.count_nonzero(real == 0) / w.size)
    # the kept weights are the largest |w - zero point|, and unchanged
    before = w.astype(int) - zero.reshape(-1, 1, 1, 1)
    kept = real != 0
    assert np.array_equal(real[kept], before[kept])
    if kept.any() and (~kept).any():
        assert np.abs(before[kept]).min() >= np.abs(before[~kept]).max()


def test_an_already_sparser_tensor_is_left_as_it_is():
    w, zero = _conv_weights()
    sparse = _qlinear_conv(np.where(np.arange(w.size).reshape(w.shape) % 10, zero.reshape(
        -1, 1, 1, 1), w).astype(np.uint8), zero)
    assert weight_sparsity(prune_quantized(sparse, 0.5)) == weight_sparsity(sparse)


@pytest.mark.parametrize("nm", [(2, 4), (1, 4), (3, 8)])
@pytest.mark.parametrize("group", [1, 2])
def test_nm_holds_down_k_as_the_array_sees_the_weights(nm, group):
    w, zero = _conv_weights(out=6, per_in=4 // group)
    pruned = prune_quantized(_qlinear_conv(w, zero, group), nm=nm)
    gemms = CheckingGemms()
    x = np.random.default_rng(1).integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)
    ours, _ = Executor(pruned, gemms).run({"x": x})
    assert gemms.weights and all(not violations(weights, *nm) for weights in gemms.weights)
    # the pruned model computes what ONNX's reference computes for it
    from onnx.reference import ReferenceEvaluator
    assert np.array_equal(ours["y"], ReferenceEvaluator(pruned).run(None, {"x": x})[0])


def test_bundled_models_matmul_and_transposed_gemm_layouts():
    """The MLP's MatMuls (K × N) and the CNN's Gemm with transB (N × K)."""
    for name, layouts in (("digits_mlp", {"kn"}), ("digits_cnn", {"conv", "nk"})):
        model = onnx.load(MODELS / f"{name}.onnx")
        assert {view.layout for view in array_weights(model)} == layouts
        pruned = prune_quantized(model, nm=(1, 4))
        gemms = CheckingGemms()
        x = np.load(MODELS / "digits_test_x.npy")[:3]
        Executor(pruned, gemms).run({model.graph.input[0].name: x})
        assert all(not violations(weights, 1, 4) for weights in gemms.weights)
        assert weight_sparsity(prune_quantized(model, 0.95)) == pytest.approx(0.95, abs=0.01)


def test_a_model_without_integer_array_weights_is_bad_input():
    with pytest.raises(BadInput, match="weight 'conv1.W' is float"):
        prune_quantized(onnx.load(MODELS / "digits_cnn_float.onnx"), 0.5)
    with pytest.raises(BadInput, match=r"must be in \[0, 1\)"):
        prune_quantized(onnx.load(MODELS / "digits_mlp.onnx"), 1.0)
