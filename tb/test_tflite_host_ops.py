"""The host kernels of TFLite models (zeroskip.frontend.tflite.host_ops) against LiteRT's
reference kernels (BUILTIN_REF): each operator and its options on models the test writes, on
random int8 batches that include -128 and 127, compared bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tflite")

from zeroskip.frontend.tflite.host_ops import HOST_KERNELS, pool_geometry  # noqa: E402
from zeroskip.frontend.tflite.model import parse  # noqa: E402
from zeroskip.tb.tflite_builder import Op, Tensor, model_bytes, run_reference  # noqa: E402

BATCH = 6
_FUSED = {"none": 0, "relu": 1, "relu6": 3}


def ours(content: bytes, x: np.ndarray) -> list[np.ndarray]:
    """The model run op by op through HOST_KERNELS, with the executor's value convention."""
    model = parse(content)
    values: dict[int, np.ndarray] = {model.inputs[0]: x}
    for op in model.ops:
        inputs = [None if i < 0 else values[i] if i in values else model.tensors[i].data
                  for i in op.inputs]
        for index, value in zip(op.outputs, HOST_KERNELS[op.code](op, model, inputs)):
            assert value.dtype == np.dtype(model.tensors[index].dtype)
            assert value.shape == (x.shape[0], *model.tensors[index].shape[1:])
            values[index] = value
    return [values[i] for i in model.outputs]


def check(tensors, ops, outputs, x) -> None:
    content = model_bytes(tensors, ops, [0], outputs)
    reference = run_reference(content, x)
    got = ours(content, x)
    for want, have in zip(reference, got):
        assert want.dtype == have.dtype and want.shape == have.shape
        assert np.array_equal(want, have), (np.argwhere(want != have)[:5],
                                            want[want != have][:5], have[want != have][:5])


def int8s(rng, shape, batch=BATCH) -> np.ndarray:
    x = rng.integers(-128, 128, (batch, *shape[1:])).astype(np.int8)
    x.reshape(batch, -1)[:, 0] = -128
    x.reshape(batch, -1)[:, -1] = 127
    x[0] = 127 if batch > 1 else x[0]
    return x


def qparams(rng) -> tuple[float, int]:
    return float(rng.uniform(0.002, 0.2)), int(rng.integers(-128, 128))


def test_pool_geometry_is_tflites():
    assert pool_geometry(7, 3, 2, "same") == (4, 1)
    assert pool_geometry(8, 2, 2, "same") == (4, 0)
    assert pool_geometry(6, 3, 1, "same") == (6, 1)
    assert pool_geometry(7, 3, 2, "valid") == (3, 0)
    with pytest.raises(ValueError, match="same or valid"):
        pool_geometry(7, 3, 2, "full")


@pytest.mark.parametrize("code", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_pooling(code, padding):
    rng = np.random.default_rng([len(code), len(padding)])
    combos = itertools.product([(1, 1), (2, 2), (3, 3), (3, 2), (7, 6)], [(1, 1), (2, 2), (2, 1)],
                               list(_FUSED))
    for (fh, fw), (sh, sw), activation in combos:
        shape = (1, 7, 6, 3)
        if padding == "valid" and (fh > 7 or fw > 6):
            continue
        scale, zero = qparams(rng)
        out_h, _ = pool_geometry(7, fh, sh, padding)
        out_w, _ = pool_geometry(6, fw, sw, padding)
        tensors = [Tensor("x", shape, scale=[scale], zero_point=[zero]),
                   Tensor("y", (1, out_h, out_w, 3), scale=[scale], zero_point=[zero])]
        options = {"Padding": 0 if padding == "same" else 1, "StrideW": sw, "StrideH": sh,
                   "FilterWidth": fw, "FilterHeight": fh,
                   "FusedActivationFunction": _FUSED[activation]}
        check(tensors, [Op(code, [0], [1], "Pool2DOptions", options)], [1],
              int8s(rng, shape))


def _binary_model(code, options_type, rng, activation, second, shape=(1, 5, 4, 3)):
    """x and a second operand: a constant of shape ``second`` (broadcast), or ``"requant"``
    (x requantized by QUANTIZE: two run-time inputs of different quantization), or ``"mean"``
    (x's spatial MEAN: a run-time input broadcast along H and W)."""
    (s1, z1), (s2, z2), (s3, z3) = qparams(rng), qparams(rng), qparams(rng)
    if code == "MUL":
        s3 = s3 * 5
    tensors = [Tensor("x", shape, scale=[s1], zero_point=[z1])]
    ops = []
    if second == "requant":
        tensors.append(Tensor("b", shape, scale=[s2], zero_point=[z2]))
        ops.append(Op("QUANTIZE", [0], [1]))
    elif second == "mean":
        tensors += [Tensor("axes", (2,), np.int32, data=np.array([1, 2], np.int32)),
                    Tensor("b", (1, 1, 1, shape[3]), scale=[s2], zero_point=[z2])]
        ops.append(Op("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": True}))
    else:
        tensors.append(Tensor("b", second, scale=[s2], zero_point=[z2],
                              data=rng.integers(-128, 128, second).astype(np.int8)))
    tensors.append(Tensor("y", shape, scale=[s3], zero_point=[z3]))
    ops.append(Op(code, [0, len(tensors) - 2], [len(tensors) - 1], options_type,
                  {"FusedActivationFunction": _FUSED[activation]}))
    return tensors, ops, [len(tensors) - 1]


@pytest.mark.parametrize("code, options_type", [("ADD", "AddOptions"), ("MUL", "MulOptions")])
@pytest.mark.parametrize("second", [(1, 5, 4, 3), (1, 1, 1, 3), (3,), (1, 5, 1, 1), "requant",
                                    "mean"], ids=str)
def test_add_and_mul(code, options_type, second):
    rng = np.random.default_rng([len(code), len(str(second))])
    for activation, _ in itertools.product(_FUSED, range(3)):
        tensors, ops, outputs = _binary_model(code, options_type, rng, activation, second)
        check(tensors, ops, outputs, int8s(rng, (1, 5, 4, 3)))


def test_add_saturates_and_equal_scales():
    rng = np.random.default_rng(7)
    for _ in range(4):
        tensors = [Tensor("x", (1, 16), scale=[0.1], zero_point=[0]),
                   Tensor("b", (16,), scale=[0.1], zero_point=[0],
                          data=np.full(16, 127, np.int8)),
                   Tensor("y", (1, 16), scale=[0.02], zero_point=[int(rng.integers(-20, 20))])]
        check(tensors, [Op("ADD", [0, 1], [2], "AddOptions", {})], [2], int8s(rng, (1, 16)))


def test_reshape():
    rng = np.random.default_rng(1)
    tensors = [Tensor("x", (1, 4, 3, 2), scale=[0.1], zero_point=[3]),
               Tensor("shape", (2,), np.int32, data=np.array([1, 24], np.int32)),
               Tensor("y", (1, 24), scale=[0.1], zero_point=[3])]
    check(tensors, [Op("RESHAPE", [0, 1], [2], "ReshapeOptions", {"NewShape": [1, 24]})], [2],
          int8s(rng, (1, 4, 3, 2)))


@pytest.mark.parametrize("shape", [(1, 10), (1, 3, 4, 7), (1, 1)], ids=str)
def test_softmax(shape):
    rng = np.random.default_rng(len(shape) + shape[-1])
    for scale, beta in [(0.1, 1.0), (0.02, 1.0), (0.5, 1.0), (1.0, 2.0), (0.004, 0.5),
                        (0.0625, 1.0), (3.0, 1.0)]:
        zero = int(rng.integers(-128, 128))
        tensors = [Tensor("x", shape, scale=[scale], zero_point=[zero]),
                   Tensor("y", shape, scale=[1 / 256], zero_point=[-128])]
        x = int8s(rng, shape, 12)
        x[1] = 5                                     # all equal
        x[2] = -128
        x[3].reshape(-1)[::2] = 127                  # several maxima
        check(tensors, [Op("SOFTMAX", [0], [1], "SoftmaxOptions", {"Beta": beta})], [1], x)


@pytest.mark.parametrize("paddings", [[[0, 0], [1, 2], [0, 1], [0, 0]],
                                      [[0, 0], [0, 0], [3, 0], [1, 1]]], ids=["hw", "wc"])
def test_pad(paddings):
    rng = np.random.default_rng(len(str(paddings)))
    scale, zero = qparams(rng)
    p = np.array(paddings, np.int32)
    out = tuple(int(d) for d in np.array([1, 4, 3, 2]) + p.sum(axis=1))
    tensors = [Tensor("x", (1, 4, 3, 2), scale=[scale], zero_point=[zero]),
               Tensor("p", (4, 2), np.int32, data=p),
               Tensor("y", out, scale=[scale], zero_point=[zero])]
    check(tensors, [Op("PAD", [0, 1], [2])], [2], int8s(rng, (1, 4, 3, 2)))


@pytest.mark.parametrize("axis", [1, 3, -1])
def test_concatenation_of_same_quantization(axis):
    rng = np.random.default_rng(axis + 5)
    scale, zero = qparams(rng)
    constant_shape = (1, 2, 3, 4) if axis == 1 else (1, 4, 3, 1)
    out_shape = (1, 6, 3, 4) if axis == 1 else (1, 4, 3, 9)
    tensors = [Tensor("x", (1, 4, 3, 4), scale=[scale], zero_point=[zero]),
               Tensor("c", constant_shape, scale=[scale], zero_point=[zero],
                      data=rng.integers(-128, 128, constant_shape).astype(np.int8)),
               Tensor("y", out_shape, scale=[scale], zero_point=[zero])]
    inputs = [0, 1] if axis == 1 else [0, 1, 0]
    if axis != 1:
        tensors[2] = Tensor("y", out_shape, scale=[scale], zero_point=[zero])
    check(tensors, [Op("CONCATENATION", inputs, [2], "ConcatenationOptions", {"Axis": axis})],
          [2], int8s(rng, (1, 4, 3, 4)))


def test_concatenation_of_different_quantizations_is_quantize_then_concatenate():
    """LiteRT's int8 kernel refuses inputs quantized unlike the output; ours requantizes them
    as a QUANTIZE before the concatenation would, which LiteRT checks."""
    rng = np.random.default_rng(11)
    (s1, z1), (s2, z2) = qparams(rng), qparams(rng)
    x = int8s(rng, (1, 3, 5))
    direct = model_bytes([Tensor("x", (1, 3, 5), scale=[s1], zero_point=[z1]),
                          Tensor("y", (1, 3, 10), scale=[s2], zero_point=[z2])],
                         [Op("CONCATENATION", [0, 0], [1], "ConcatenationOptions",
                             {"Axis": 2})], [0], [1])
    with pytest.raises(Exception):
        run_reference(direct, x)
    requantized = model_bytes([Tensor("x", (1, 3, 5), scale=[s1], zero_point=[z1]),
                               Tensor("q", (1, 3, 5), scale=[s2], zero_point=[z2]),
                               Tensor("y", (1, 3, 10), scale=[s2], zero_point=[z2])],
                              [Op("QUANTIZE", [0], [1]),
                               Op("CONCATENATION", [1, 1], [2], "ConcatenationOptions",
                                  {"Axis": 2})], [0], [2])
    assert np.array_equal(ours(direct, x)[0], run_reference(requantized, x)[0])


@pytest.mark.parametrize("axes, keep", [([1, 2], True), ([2, 1], False), ([1], True),
                                        ([-1], True), ([1, 2, 3], False)], ids=str)
def test_mean(axes, keep):
    rng = np.random.default_rng(len(axes) * 2 + keep)
    shape = (1, 5, 7, 6)
    for same in (True, False, False):
        s1, z1 = qparams(rng)
        s2, z2 = (s1, z1) if same else qparams(rng)
        out = [1 if (a % 4) in [b % 4 for b in axes] else d for a, d in enumerate(shape)]
        if not keep:
            out = [d for a, d in enumerate(shape) if a not in [b % 4 for b in axes]]
        tensors = [Tensor("x", shape, scale=[s1], zero_point=[z1]),
                   Tensor("axes", (len(axes),), np.int32, data=np.array(axes, np.int32)),
                   Tensor("y", tuple(out), scale=[s2], zero_point=[z2])]
        check(tensors, [Op("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": keep})], [2],
              int8s(rng, shape))


def test_quantize_float_to_int8():
    rng = np.random.default_rng(3)
    for _ in range(6):
        scale, zero = qparams(rng)
        x = rng.normal(0, 200 * scale, (BATCH, 40)).astype(np.float32)
        x[:, :10] = (rng.integers(-200, 200, (BATCH, 10)) + 0.5) * np.float32(scale)  # ties
        x[:, 10] = 0
        tensors = [Tensor("x", (1, 40), np.float32),
                   Tensor("y", (1, 40), scale=[scale], zero_point=[zero])]
        check(tensors, [Op("QUANTIZE", [0], [1])], [1], x)


def test_requantize_int8_to_int8():
    rng = np.random.default_rng(4)
    for _ in range(8):
        (s1, z1), (s2, z2) = qparams(rng), qparams(rng)
        tensors = [Tensor("x", (1, 256), scale=[s1], zero_point=[z1]),
                   Tensor("y", (1, 256), scale=[s2], zero_point=[z2])]
        x = np.tile(np.arange(-128, 128, dtype=np.int8), (2, 1))
        check(tensors, [Op("QUANTIZE", [0], [1])], [1], x)


def test_dequantize():
    rng = np.random.default_rng(5)
    for _ in range(4):
        scale, zero = qparams(rng)
        tensors = [Tensor("x", (1, 256), scale=[scale], zero_point=[zero]),
                   Tensor("y", (1, 256), np.float32)]
        check(tensors, [Op("DEQUANTIZE", [0], [1])], [1],
              np.arange(-128, 128, dtype=np.int8)[None])


@pytest.mark.parametrize("code, out_scale, out_zero", [("LOGISTIC", 1 / 256, -128),
                                                       ("TANH", 1 / 128, 0)])
def test_logistic_and_tanh_on_every_int8(code, out_scale, out_zero):
    rng = np.random.default_rng(len(code))
    scales = [0.01, 0.03125, 0.05, 0.1, 0.5, 2.0] + list(rng.uniform(0.001, 0.3, 24))
    for scale in scales:
        zero = int(rng.integers(-128, 128))
        tensors = [Tensor("x", (1, 256), scale=[float(scale)], zero_point=[zero]),
                   Tensor("y", (1, 256), scale=[out_scale], zero_point=[out_zero])]
        check(tensors, [Op(code, [0], [1])], [1], np.arange(-128, 128, dtype=np.int8)[None])


def test_add_rounds_ties_away_from_zero_as_litert():
    """Equal input scales and an output scale twice theirs make ADD's output a half sum: odd
    sums are ties, and LiteRT's reference rounds negative ones away from zero (double
    rounding), not up."""
    for scale in (0.1, 0.125):
        tensors = [Tensor("x", (1, 256), scale=[scale], zero_point=[0]),
                   Tensor("b", (256,), scale=[scale], zero_point=[0],
                          data=np.arange(127, -129, -1).astype(np.int8)),
                   Tensor("y", (1, 256), scale=[2 * scale], zero_point=[0])]
        x = np.stack([np.roll(np.arange(-128, 128), k) for k in (0, 7, 100)]).astype(np.int8)
        check(tensors, [Op("ADD", [0, 1], [2], "AddOptions", {})], [2], x)


def test_add_with_the_constant_first():
    rng = np.random.default_rng(12)
    (s1, z1), (s2, z2), (s3, z3) = qparams(rng), qparams(rng), qparams(rng)
    tensors = [Tensor("x", (1, 4, 4, 3), scale=[s1], zero_point=[z1]),
               Tensor("c", (1, 1, 4, 3), scale=[s2], zero_point=[z2],
                      data=rng.integers(-128, 128, (1, 1, 4, 3)).astype(np.int8)),
               Tensor("y", (1, 4, 4, 3), scale=[s3], zero_point=[z3])]
    check(tensors, [Op("ADD", [1, 0], [2], "AddOptions", {"FusedActivationFunction": 3})],
          [2], int8s(rng, (1, 4, 4, 3)))


def test_tanh_to_another_output_quantization():
    rng = np.random.default_rng(13)
    for _ in range(6):
        scale, zero = qparams(rng)
        out_scale, out_zero = float(rng.uniform(0.005, 0.02)), int(rng.integers(-10, 10))
        tensors = [Tensor("x", (1, 256), scale=[scale], zero_point=[zero]),
                   Tensor("y", (1, 256), scale=[out_scale], zero_point=[out_zero])]
        check(tensors, [Op("TANH", [0], [1])], [1], np.arange(-128, 128, dtype=np.int8)[None])


def _single(tensors, op):
    model = parse(model_bytes(tensors, [op], [0], [len(tensors) - 1]))
    return model.ops[0], model


def test_refusals_name_the_operator():
    x = Tensor("x", (1, 4, 4, 2), scale=[0.1], zero_point=[0])
    op, model = _single([x, Tensor("y", (1, 4, 4, 2), scale=[0.1], zero_point=[0])],
                        Op("SOFTMAX", [0], [1], "SoftmaxOptions", {"Beta": 1.0}))
    with pytest.raises(ValueError, match="SOFTMAX.*-128"):
        HOST_KERNELS["SOFTMAX"](op, model, [np.zeros((2, 4, 4, 2), np.int8)])
    op, model = _single([x, Tensor("y", (1, 4, 4, 2), scale=[0.1], zero_point=[-128])],
                        Op("LOGISTIC", [0], [1]))
    with pytest.raises(ValueError, match="LOGISTIC.*1/256"):
        HOST_KERNELS["LOGISTIC"](op, model, [np.zeros((2, 4, 4, 2), np.int8)])
    op, model = _single([x, Tensor("p", (4, 2), np.int32, data=np.ones((4, 2), np.int32)),
                         Tensor("y", (1, 6, 6, 4), scale=[0.1], zero_point=[0])],
                        Op("PAD", [0, 1], [2]))
    with pytest.raises(ValueError, match="batch"):
        HOST_KERNELS["PAD"](op, model, [np.zeros((2, 4, 4, 2), np.int8), np.ones((4, 2))])
    op, model = _single([x, Tensor("a", (1,), np.int32, data=np.zeros(1, np.int32)),
                         Tensor("y", (1, 4, 4, 2), scale=[0.1], zero_point=[0])],
                        Op("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": True}))
    with pytest.raises(ValueError, match="MEAN.*batch"):
        HOST_KERNELS["MEAN"](op, model, [np.zeros((2, 4, 4, 2), np.int8), np.zeros(1)])
    op, model = _single([x, Tensor("y", (1, 4, 4, 2), np.float32)], Op("MAX_POOL_2D", [0], [1],
                        "Pool2DOptions", {"FilterWidth": 1, "FilterHeight": 1, "StrideW": 1,
                                          "StrideH": 1}))
    with pytest.raises(ValueError, match="MAX_POOL_2D.*int8"):
        HOST_KERNELS["MAX_POOL_2D"](op, model, [np.zeros((2, 4, 4, 2), np.int8)])
    op, model = _single([x, Tensor("y", (2, 4, 4, 2), scale=[0.1], zero_point=[0])],
                        Op("CONCATENATION", [0, 0], [1], "ConcatenationOptions", {"Axis": 0}))
    with pytest.raises(ValueError, match="batch"):
        HOST_KERNELS["CONCATENATION"](op, model, [np.zeros((2, 4, 4, 2), np.int8)] * 2)


def test_every_host_operator_has_a_kernel():
    from zeroskip.frontend.tflite.model import HOST_OPS
    assert set(HOST_KERNELS) == set(HOST_OPS)


def _half_away(v: np.ndarray) -> np.ndarray:
    return np.trunc(v) + np.where(np.abs(v - np.trunc(v)) >= 0.5, np.sign(v), 0)


@pytest.mark.parametrize("code", ["FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"])
def test_which_requantization_litert_reference_array_kernels_use(code):
    """A measurement for the array kernels (not host kernels): with an effective multiplier of
    exactly 1/8, accumulators ≡ 4 (mod 8) are ties, on which TFLite's three rules differ.
    LiteRT 2.3's reference CONV_2D and DEPTHWISE_CONV_2D use the fixed-point multiply with
    double rounding; its reference FULLY_CONNECTED requantizes in double-precision floating
    point, ``round(acc · (in_scale · w_scale / out_scale))`` (round half away from zero), as
    ``reference_integer_ops::FullyConnected(..., input_scale, output_scale, filter_scale)``."""
    from zeroskip.sim.requantize import effective_multipliers, quantize_multiplier, requantize
    rng = np.random.default_rng(21)
    c, o = 4, 8
    oc = c if code == "DEPTHWISE_CONV_2D" else o
    shapes = {"FULLY_CONNECTED": ((1, c), (o, c), (1, o)),
              "CONV_2D": ((1, 3, 3, c), (o, 1, 1, c), (1, 3, 3, o)),
              "DEPTHWISE_CONV_2D": ((1, 3, 3, c), (1, 1, 1, c), (1, 3, 3, c))}
    x_shape, w_shape, y_shape = shapes[code]
    options = {"FULLY_CONNECTED": ("FullyConnectedOptions", {}),
               "CONV_2D": ("Conv2DOptions", {"Padding": 1, "StrideW": 1, "StrideH": 1}),
               "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", {"Padding": 1, "StrideW": 1,
                                                               "StrideH": 1,
                                                               "DepthMultiplier": 1})}[code]
    w = rng.integers(-3, 4, w_shape).astype(np.int8)
    model = model_bytes(
        [Tensor("x", x_shape, scale=[0.25], zero_point=[0]),
         Tensor("w", w_shape, scale=[0.5] * oc, zero_point=[0] * oc,
                quantized_dimension=3 if code == "DEPTHWISE_CONV_2D" else 0, data=w),
         Tensor("b", (oc,), np.int32, scale=[0.125] * oc, zero_point=[0] * oc,
                data=np.zeros(oc, np.int32)),
         Tensor("y", y_shape, scale=[1.0], zero_point=[0])],
        [Op(code, [0, 1, 2], [3], *options)], [0], [3])
    x = rng.integers(-40, 40, (16, *x_shape[1:])).astype(np.int8)
    (reference,) = run_reference(model, x)
    weights = w.reshape(oc, c) if code != "DEPTHWISE_CONV_2D" else w.reshape(c)
    acc = (x.astype(np.int64) @ weights.T.astype(np.int64) if code != "DEPTHWISE_CONV_2D"
           else x.astype(np.int64) * weights)
    assert np.any(acc % 8 == 4)
    multiplier, shift = quantize_multiplier(effective_multipliers(0.25, [0.5] * oc, 1.0),
                                            "double")
    fixed = requantize(acc, multiplier, shift, 0, rounding="double")
    floating = np.clip(_half_away(acc * 0.125), -128, 127).astype(np.int8)
    if code == "FULLY_CONNECTED":
        assert np.array_equal(floating, reference) and not np.array_equal(fixed, reference)
    else:
        assert np.array_equal(fixed, reference) and not np.array_equal(floating, reference)
