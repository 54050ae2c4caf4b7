"""TFLite's array operators lowered to GEMMs (zeroskip.frontend.tflite.array_ops): the lowering
and TFLite's requantization against LiteRT's reference kernels, the GEMMs computed by the golden
model here (the RTL runs them in tb/test_tflite_rtl.py)."""

import numpy as np
import pytest

from zeroskip.frontend.tflite import array_ops
from zeroskip.frontend.tflite.model import load
from zeroskip.frontend.tflite.reference import reference_outputs
from zeroskip.sim import golden
from zeroskip.tb.tflite_builder import Op, Tensor, model_bytes

_FUSED = {"none": 0, "relu": 1, "relu6": 3}


def conv_model(rng, *, depthwise=False, shape=(9, 7, 4), out_channels=6, kernel=(3, 3),
               stride=(1, 1), dilation=(1, 1), padding="same", activation="none",
               multiplier=2, sparsity=0.5, per_channel=True):
    """One int8 CONV_2D or DEPTHWISE_CONV_2D layer with random quantization and weights of
    the given sparsity."""
    h, w, c = shape
    oc = c * multiplier if depthwise else out_channels
    wshape = (1, *kernel, oc) if depthwise else (oc, *kernel, c)
    weights = rng.integers(-127, 128, wshape).astype(np.int8)
    weights[rng.random(wshape) < sparsity] = 0
    scales = list(rng.uniform(1e-3, 0.05, oc if per_channel else 1))
    in_scale, in_zero = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    out_scale, out_zero = float(rng.uniform(0.05, 0.5)), int(rng.integers(-128, 128))
    options = {"Padding": 0 if padding == "same" else 1, "StrideH": stride[0],
               "StrideW": stride[1], "DilationHFactor": dilation[0],
               "DilationWFactor": dilation[1], "FusedActivationFunction": _FUSED[activation]}
    if depthwise:
        options["DepthMultiplier"] = multiplier
    tensors = [Tensor("x", (1, h, w, c), scale=[in_scale], zero_point=[in_zero]),
               Tensor("w", wshape, scale=scales, zero_point=[0] * len(scales), data=weights,
                      quantized_dimension=3 if depthwise else 0),
               Tensor("b", (oc,), np.int32, scale=[in_scale * s for s in scales],
                      zero_point=[0] * len(scales),
                      data=rng.integers(-3000, 3000, oc).astype(np.int32)),
               Tensor("y", (1, 1, 1, oc), scale=[out_scale], zero_point=[out_zero])]
    code = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    kind = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
    content = model_bytes(tensors, [Op(code, [0, 1, 2], [3], kind, options)], [0], [3])
    return content


def fc_model(rng, k=40, n=12, activation="relu", per_channel=True):
    weights = rng.integers(-127, 128, (n, k)).astype(np.int8)
    weights[:, ::3] = 0
    scales = list(rng.uniform(1e-3, 0.05, n if per_channel else 1))
    in_scale, in_zero = 0.05, -7
    tensors = [Tensor("x", (1, k), scale=[in_scale], zero_point=[in_zero]),
               Tensor("w", (n, k), scale=scales, zero_point=[0] * len(scales), data=weights),
               Tensor("b", (n,), np.int32, scale=[in_scale * s for s in scales],
                      zero_point=[0] * len(scales),
                      data=rng.integers(-3000, 3000, n).astype(np.int32)),
               Tensor("y", (1, n), scale=[0.2], zero_point=[5])]
    return model_bytes(tensors, [Op("FULLY_CONNECTED", [0, 1, 2], [3], "FullyConnectedOptions",
                                    {"FusedActivationFunction": _FUSED[activation]})], [0], [3])


def run_golden(content, x):
    """The one layer of ``content`` through the lowering, its GEMMs by the golden model."""
    model = load(content)
    op = model.ops[0]
    layer = array_ops.lower(op, model, x)
    results = [[golden.gemm(job.acts, part) for part in job.parts] for job in layer.jobs]
    return array_ops.finish(layer, model, results)


def _check(content, x):
    (reference,) = reference_outputs(content, x).values()
    ours = run_golden(content, x)
    assert ours.shape == reference.shape
    assert np.array_equal(ours, reference)


def _inputs(rng, content, batch=3):
    model = load(content)
    shape = model.tensors[model.inputs[0]].shape[1:]
    x = rng.integers(-128, 128, (batch, *shape)).astype(np.int8)
    x.reshape(batch, -1)[0, :2] = [-128, 127]
    return x


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("stride, dilation", [((1, 1), (1, 1)), ((2, 2), (1, 1)),
                                              ((2, 1), (1, 1)), ((1, 1), (2, 2))])
@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
def test_convolutions_match_the_reference_kernels(padding, stride, dilation, depthwise):
    rng = np.random.default_rng([len(padding), *stride, *dilation, depthwise])
    content = conv_model(rng, depthwise=depthwise, stride=stride, dilation=dilation,
                         padding=padding, activation="relu6" if stride[0] == 2 else "none")
    _check(content, _inputs(rng, content))


@pytest.mark.parametrize("kernel, multiplier", [((1, 1), 1), ((3, 1), 1), ((10, 4), 1),
                                                ((3, 3), 3)])
def test_kernel_shapes_and_depth_multipliers(kernel, multiplier):
    rng = np.random.default_rng([*kernel, multiplier])
    for depthwise in (False, True):
        content = conv_model(rng, depthwise=depthwise, shape=(12, 10, 3), kernel=kernel,
                             multiplier=multiplier, activation="relu", per_channel=False)
        _check(content, _inputs(rng, content))


@pytest.mark.parametrize("activation", list(_FUSED))
@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected_matches_the_reference_kernels(activation, per_channel):
    rng = np.random.default_rng([len(activation), per_channel])
    content = fc_model(rng, activation=activation, per_channel=per_channel)
    _check(content, _inputs(rng, content, batch=5))


def test_all_zero_weights_give_the_bias_alone():
    rng = np.random.default_rng(0)
    content = conv_model(rng, sparsity=1.0)
    _check(content, _inputs(rng, content))
