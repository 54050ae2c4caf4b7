"""TFLite's array operators lowered to GEMMs (zeroskip.frontend.tflite.array_ops): the lowering
and TFLite's requantization against LiteRT's reference kernels, the GEMMs computed by the golden
model here (the RTL runs them in tb/test_tflite_rtl.py)."""

import numpy as np
import pytest

from zeroskip.frontend.tflite import array_ops
from zeroskip.frontend.tflite.model import load
from zeroskip.frontend.tflite.reference import reference_outputs
from zeroskip.sim import golden
from zeroskip.tb.tflite_builder import FUSED, conv_model, fc_model

def run_golden(content, x, lanes=8):
    """The one layer of ``content`` through the lowering for an array of ``lanes`` columns,
    its GEMMs by the golden model."""
    model = load(content)
    op = model.ops[0]
    layer = array_ops.lower(op, model, x, lanes)
    results = [[golden.gemm(job.acts, part) for part in job.parts] for job in layer.jobs]
    return array_ops.finish(layer, model, results)


def _check(content, x):
    (reference,) = reference_outputs(content, x).values()
    for lanes in (1, 3, 8):         # a depthwise layer packs channels per GEMM by the lanes
        ours = run_golden(content, x, lanes)
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


@pytest.mark.parametrize("activation", list(FUSED))
@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected_matches_the_reference_kernels(activation, per_channel):
    rng = np.random.default_rng([len(activation), per_channel])
    content = fc_model(rng, activation=activation, per_channel=per_channel)
    _check(content, _inputs(rng, content, batch=5))


def test_all_zero_weights_give_the_bias_alone():
    rng = np.random.default_rng(0)
    content = conv_model(rng, sparsity=1.0)
    _check(content, _inputs(rng, content))
