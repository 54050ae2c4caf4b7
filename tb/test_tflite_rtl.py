"""TFLite models on the RTL: the array layers' GEMMs on Verilator and Icarus through the
accelerator (zeroskip.api.GemmRunner, the default 8×8 csc array the other RTL tests build),
every output bit-exact with LiteRT's reference kernels, skip mode faster than dense."""

import numpy as np
import pytest

from zeroskip.api import GemmRunner
from zeroskip.frontend.tflite.executor import Executor, check_input
from zeroskip.frontend.tflite.model import load
from zeroskip.frontend.tflite.reference import reference_outputs
from zeroskip.tb.tflite_builder import FUSED, Op, Tensor, model_bytes

from .rtl import simulators


def array_chain(rng):
    """CONV_2D (stride 2, SAME, relu6) → DEPTHWISE_CONV_2D (VALID, depth multiplier 2,
    dilation 2, relu) → FULLY_CONNECTED (flattening NHWC): every array operator, pruned
    weights, per-channel scales."""
    def quant(scale, zero):
        return {"scale": [scale], "zero_point": [zero]}

    def weights(shape, sparsity, axis):
        w = rng.integers(-127, 128, shape).astype(np.int8)
        w[rng.random(shape) < sparsity] = 0
        scales = list(rng.uniform(2e-3, 2e-2, shape[axis]))
        return w, scales

    w1, s1 = weights((8, 3, 3, 2), 0.6, 0)
    w2, s2 = weights((1, 3, 3, 16), 0.5, 3)
    w3, s3 = weights((5, 2 * 1 * 16), 0.9, 0)
    tensors = [
        Tensor("image", (1, 12, 9, 2), **quant(0.05, -3)),
        Tensor("w1", w1.shape, scale=s1, zero_point=[0] * 8, data=w1),
        Tensor("b1", (8,), np.int32, scale=[0.05 * s for s in s1], zero_point=[0] * 8,
               data=rng.integers(-500, 500, 8).astype(np.int32)),
        Tensor("conv", (1, 6, 5, 8), **quant(0.08, -128)),
        Tensor("w2", w2.shape, scale=s2, zero_point=[0] * 16, data=w2, quantized_dimension=3),
        Tensor("b2", (16,), np.int32, scale=[0.08 * s for s in s2], zero_point=[0] * 16,
               data=rng.integers(-500, 500, 16).astype(np.int32)),
        Tensor("depthwise", (1, 2, 1, 16), **quant(0.06, -128)),
        Tensor("w3", w3.shape, scale=s3, zero_point=[0] * 5, data=w3),
        Tensor("b3", (5,), np.int32, scale=[0.06 * s for s in s3], zero_point=[0] * 5,
               data=rng.integers(-500, 500, 5).astype(np.int32)),
        Tensor("logits", (1, 5), **quant(0.1, 4)),
    ]
    ops = [Op("CONV_2D", [0, 1, 2], [3], "Conv2DOptions",
              {"Padding": 0, "StrideH": 2, "StrideW": 2, "DilationHFactor": 1,
               "DilationWFactor": 1, "FusedActivationFunction": FUSED["relu6"]}),
           Op("DEPTHWISE_CONV_2D", [3, 4, 5], [6], "DepthwiseConv2DOptions",
              {"Padding": 1, "StrideH": 1, "StrideW": 1, "DepthMultiplier": 2,
               "DilationHFactor": 2, "DilationWFactor": 2,
               "FusedActivationFunction": FUSED["relu"]}),
           Op("FULLY_CONNECTED", [6, 7, 8], [9], "FullyConnectedOptions", {})]
    return model_bytes(tensors, ops, [0], [9])


@pytest.mark.parametrize("sim", simulators())
def test_every_array_operator_on_the_rtl_is_bit_exact(sim):
    rng = np.random.default_rng(32)
    content = array_chain(rng)
    model = load(content)
    x = check_input(model, rng.integers(-128, 128, (6, 12, 9, 2)))
    outputs, records = Executor(model, GemmRunner(sim=sim)).run(x)
    reference = reference_outputs(content, x)
    assert np.array_equal(outputs["logits"].reshape(reference["logits"].shape),
                          reference["logits"])
    assert [r["op"] for r in records] == ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]
    assert all(r["on"] == "accelerator" for r in records)
    # the depthwise layer: 8 channels × multiplier 2 on 8 lanes, 4 channels per block-diagonal
    # GEMM (K = 4 · 9, N = 4 · 2); its sparsity is the weights', not the packing's zeros
    assert records[1]["gemms"] == 2 and (records[1]["k"], records[1]["n"]) == (36, 8)
    assert 0.3 < records[1]["weight_sparsity"] < 0.7
    for record in records:
        assert record["cycles"] <= record["dense_cycles"]
        assert record["provenance"]["cycles"] == "rtl"
    assert records[2]["cycles"] < records[2]["dense_cycles"]       # 90% zeros skipped


@pytest.mark.parametrize("sim", simulators())
def test_a_model_with_every_operator_through_zeroskip_run(sim):
    """Float in, three outputs, every operator of the TFLite front end; zeroskip.run raises
    OutputsDiffer on any difference from LiteRT's reference kernels."""
    import zeroskip
    from zeroskip.frontend.tflite.model import ARRAY_OPS, HOST_OPS
    from zeroskip.tb.tflite_builder import every_op_model
    rng = np.random.default_rng(35)
    content = every_op_model(rng)
    x = rng.normal(0, 2.5, (5, 8, 8, 2)).astype(np.float32)
    outputs, report = zeroskip.run(content, x, sim=sim)
    reference = reference_outputs(content, x)
    assert list(outputs) == ["probabilities", "logistic", "tanh"]
    for name, value in reference.items():
        assert outputs[name].dtype == value.dtype and np.array_equal(outputs[name], value)
    assert report["reference"]["definition"]["bit_exact"]
    assert {layer["op"] for layer in report["layers"]} == set(ARRAY_OPS) | set(HOST_OPS)
    on = {layer["op"]: layer["on"] for layer in report["layers"]}
    assert all(on[op] == "accelerator" for op in ARRAY_OPS)
    assert all(on[op] == "host" for op in HOST_OPS)
    assert report["total"]["accelerator_layers"] == 4     # two CONV_2D, DEPTHWISE, FC
    assert report["total"]["cycles"] < report["total"]["dense_cycles"]
