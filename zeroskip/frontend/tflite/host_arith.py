"""TFLite's int8 arithmetic on the host, bit-exact with the reference kernels: ADD and MUL
(with broadcasting and a fused activation), MEAN, QUANTIZE and DEQUANTIZE. Every quantized
multiplier goes through :mod:`zeroskip.sim.requantize`, as TFLite's ``Prepare`` computes it
(``kernels/add.cc``, ``mul.cc``, ``reduce.cc``, ``quantize.cc``), with the rounding LiteRT's
reference kernels were measured to use (:data:`~.host_common.ROUNDING`)."""

from __future__ import annotations

import numpy as np

from zeroskip.frontend.tflite.host_common import ROUNDING, fused_range, quant, round_half_away
from zeroskip.frontend.tflite.model import OpInfo, TfliteModel
from zeroskip.sim.requantize import multiply_by_quantized_multiplier, quantize_multiplier

__all__ = ["add", "mul", "mean", "quantize", "dequantize", "ADD_LEFT_SHIFT"]

#: The headroom TFLite's 8-bit ADD gives its inputs before rescaling them (``add.cc``)
ADD_LEFT_SHIFT = 20


def _int8_operands(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    for index in (*op.inputs[:len(inputs)], *op.outputs):
        if np.dtype(model.tensors[index].dtype) != np.int8:
            raise ValueError(f"{op.code} (operator {op.index}) runs on int8 tensors; tensor "
                             f"{index} is {np.dtype(model.tensors[index].dtype)}")
    return [np.asarray(x, dtype=np.int64) for x in inputs]


def add(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_integer_ops::Add`` (and ``BroadcastAdd6DSlow``): both inputs shifted left
    by 20 and scaled to twice the larger input scale, summed, scaled to the output."""
    a, b = _int8_operands(op, model, inputs)
    (s1, z1), (s2, z2) = quant(model, op.inputs[0]), quant(model, op.inputs[1])
    s_out, z_out = quant(model, op.outputs[0])
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max, ROUNDING)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max, ROUNDING)
    m_out, sh_out = quantize_multiplier(
        twice_max / float(np.float32(1 << ADD_LEFT_SHIFT) * s_out), ROUNDING)
    scaled1 = multiply_by_quantized_multiplier((a - z1) << ADD_LEFT_SHIFT, m1, sh1, ROUNDING)
    scaled2 = multiply_by_quantized_multiplier((b - z2) << ADD_LEFT_SHIFT, m2, sh2, ROUNDING)
    out = multiply_by_quantized_multiplier(scaled1 + scaled2, m_out, sh_out, ROUNDING) + z_out
    low, high = fused_range(op, model)
    return [np.clip(out, low, high).astype(np.int8)]


def mul(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_integer_ops::Mul``: the product of the zero-point-free inputs times
    ``s1 · s2 / s_out`` (computed in float32, as ``mul.cc`` does)."""
    a, b = _int8_operands(op, model, inputs)
    (s1, z1), (s2, z2) = quant(model, op.inputs[0]), quant(model, op.inputs[1])
    s_out, z_out = quant(model, op.outputs[0])
    multiplier, shift = quantize_multiplier(float(s1 * s2 / s_out), ROUNDING)
    out = multiply_by_quantized_multiplier((a - z1) * (b - z2), multiplier, shift,
                                           ROUNDING) + z_out
    low, high = fused_range(op, model)
    return [np.clip(out, low, high).astype(np.int8)]


def mean(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_ops::QuantizedMeanOrSum`` (mean): the int32 sum over ``axis`` less the
    input zero point, times ``input_scale / output_scale`` with ``1 / count`` folded into the
    multiplier (``(m << shift) / count``, ``shift = floor(log2 count)`` capped at 32). The
    batch axis is not reduced."""
    (x,) = _int8_operands(op, model, inputs[:1])
    axes = sorted({int(a) % x.ndim for a in np.asarray(inputs[1]).reshape(-1)})
    if 0 in axes:
        raise ValueError(f"MEAN (operator {op.index}) over the batch axis is not supported")
    (s_in, z_in), (s_out, z_out) = quant(model, op.inputs[0]), quant(model, op.outputs[0])
    multiplier, shift = (int(v) for v in quantize_multiplier(float(s_in) / float(s_out),
                                                             ROUNDING))
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    bits = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << bits) // count
    total = x.sum(axis=tuple(axes), keepdims=True) - z_in * count
    out = multiply_by_quantized_multiplier(total, multiplier, shift - bits, ROUNDING) + z_out
    out = np.clip(out, -128, 127).astype(np.int8)
    if not op.options.get("keep_dims", False):
        out = out.reshape((x.shape[0], *model.tensors[op.outputs[0]].shape[1:]))
    return [out]


def quantize(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """QUANTIZE: float32 to int8 as ``reference_ops::AffineQuantize`` (``round(x / scale)`` in
    float32, ties away from zero, plus the zero point, clamped), or int8 to int8 as
    ``reference_ops::Requantize`` (an integer multiply by ``input_scale / output_scale``)."""
    x = np.asarray(inputs[0])
    source = model.tensors[op.inputs[0]]
    s_out, z_out = quant(model, op.outputs[0])
    if np.dtype(model.tensors[op.outputs[0]].dtype) != np.int8:
        raise ValueError(f"QUANTIZE (operator {op.index}) must write int8")
    if source.is_float:
        scaled = round_half_away(x.astype(np.float32) / s_out)
        out = np.clip(scaled, -(1 << 31), (1 << 31) - 1).astype(np.int64) + z_out
        return [np.clip(out, -128, 127).astype(np.int8)]
    if np.dtype(source.dtype) != np.int8:
        raise ValueError(f"QUANTIZE (operator {op.index}) reads float32 or int8, not "
                         f"{np.dtype(source.dtype)}")
    s_in, z_in = quant(model, op.inputs[0])
    multiplier, shift = quantize_multiplier(float(s_in) / float(s_out), ROUNDING)
    out = multiply_by_quantized_multiplier(x.astype(np.int64) - z_in, multiplier, shift,
                                           ROUNDING) + z_out
    return [np.clip(out, -128, 127).astype(np.int8)]


def dequantize(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_ops::Dequantize``: ``scale · (x - zero_point)`` in double precision, rounded
    once to float32."""
    if np.dtype(model.tensors[op.inputs[0]].dtype) != np.int8:
        raise ValueError(f"DEQUANTIZE (operator {op.index}) reads int8")
    scale, zero_point = quant(model, op.inputs[0])
    x = np.asarray(inputs[0], dtype=np.int64)
    return [(np.float64(scale) * (x - zero_point)).astype(np.float32)]
