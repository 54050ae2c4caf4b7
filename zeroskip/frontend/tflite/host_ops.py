"""The operators zeroskip runs on the host for a TFLite model, bit-exact with TFLite's
reference kernels (LiteRT's ``BUILTIN_REF``) on int8 tensors: the registry :data:`HOST_KERNELS`,
and the pooling and data-movement kernels (AVERAGE_POOL_2D, MAX_POOL_2D, RESHAPE, PAD,
CONCATENATION). The arithmetic kernels are in :mod:`.host_arith`, the activations in
:mod:`.host_activations`.

Every kernel is ``kernel(op, model, inputs) -> outputs``: a tensor computed at run time comes
batched, ``(N, *declared_shape[1:])``; a constant comes as its declared data (batch dims of 1,
so it broadcasts); an optional input left out is None. One array per output, batched, in the
output tensor's dtype.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from zeroskip.frontend.tflite.host_activations import logistic, softmax, tanh
from zeroskip.frontend.tflite.host_arith import add, dequantize, mean, mul, quantize
from zeroskip.frontend.tflite.host_common import ROUNDING, fused_range, quant
from zeroskip.frontend.tflite.model import OpInfo, TfliteModel
from zeroskip.sim.requantize import multiply_by_quantized_multiplier, quantize_multiplier

__all__ = ["HOST_KERNELS", "Kernel", "pool_geometry"]

Kernel = Callable[[OpInfo, TfliteModel, list], list]


def pool_geometry(size: int, filter_size: int, stride: int, padding: str) -> tuple[int, int]:
    """``(out_size, pad_before)`` along one axis, as TFLite's ``ComputeOutSize`` and
    ``ComputePaddingWithOffset`` (dilation 1): SAME pads ``total // 2`` before, the odd one
    after."""
    if padding == "same":
        out = (size + stride - 1) // stride
    elif padding == "valid":
        out = (size + stride - filter_size) // stride
    else:
        raise ValueError(f"padding must be same or valid, not {padding!r}")
    total = max((out - 1) * stride + filter_size - size, 0)
    return out, total // 2


def _windows(x: np.ndarray, options: dict, fill: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pooling window of NHWC ``x``: ``(values, inside)`` of shape
    ``(N, OH, OW, C, FH·FW)``, ``inside`` False where the window hangs over the edge (those
    places hold ``fill`` and TFLite leaves them out)."""
    n, h, w, c = x.shape
    fh, fw = options["filter_height"], options["filter_width"]
    sh, sw = options["stride_h"], options["stride_w"]
    oh, top = pool_geometry(h, fh, sh, options["padding"])
    ow, left = pool_geometry(w, fw, sw, options["padding"])
    bottom = max((oh - 1) * sh + fh - h - top, 0)
    right = max((ow - 1) * sw + fw - w - left, 0)
    padded = np.pad(x.astype(np.int32), ((0, 0), (top, bottom), (left, right), (0, 0)),
                    constant_values=fill)
    inside = np.pad(np.ones((h, w), bool), ((top, bottom), (left, right)))
    values, masks = [], []
    for dy in range(fh):
        for dx in range(fw):
            rows = slice(dy, dy + (oh - 1) * sh + 1, sh)
            cols = slice(dx, dx + (ow - 1) * sw + 1, sw)
            values.append(padded[:, rows, cols, :])
            masks.append(inside[rows, cols])
    return np.stack(values, axis=-1), np.stack(masks, axis=-1)[None, :, :, None, :]


def _int8_only(op: OpInfo, model: TfliteModel) -> None:
    for index in (*op.inputs[:1], *op.outputs):
        if np.dtype(model.tensors[index].dtype) != np.int8:
            raise ValueError(f"{op.code} (operator {op.index}) runs on int8 tensors; tensor "
                             f"{index} is {np.dtype(model.tensors[index].dtype)}")


def average_pool_2d(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_integer_ops::AveragePool``: the window's int32 sum divided by the number of
    its elements inside the input, rounded half away from zero, clamped to the fused
    activation's range (input and output share their quantization)."""
    _int8_only(op, model)
    values, inside = _windows(inputs[0], op.options, 0)
    acc = values.sum(axis=-1, dtype=np.int64)
    count = np.broadcast_to(inside.sum(axis=-1), acc.shape).astype(np.int64)
    half = count // 2
    average = np.where(acc > 0, (acc + half) // count, -((half - acc) // count))
    low, high = fused_range(op, model)
    return [np.clip(average, low, high).astype(np.int8)]


def max_pool_2d(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_integer_ops::MaxPool``: the window's largest element inside the input,
    clamped to the fused activation's range."""
    _int8_only(op, model)
    values, _ = _windows(inputs[0], op.options, -(1 << 20))
    low, high = fused_range(op, model)
    return [np.clip(values.max(axis=-1), low, high).astype(np.int8)]


def reshape(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """The same elements in the output tensor's shape (its first axis the batch)."""
    x = inputs[0]
    shape = model.tensors[op.outputs[0]].shape
    if int(np.prod(shape[1:], dtype=np.int64)) * x.shape[0] != x.size:
        raise ValueError(f"RESHAPE (operator {op.index}) of {x.shape[1:]} samples to the output "
                         f"shape {shape} must keep the first axis as the batch")
    return [x.reshape((x.shape[0], *shape[1:])).astype(model.tensors[op.outputs[0]].dtype)]


def pad(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_ops::Pad`` for int8: constant padding with the output's zero point (the
    value of a real 0). The batch axis must not be padded."""
    _int8_only(op, model)
    x, paddings = inputs[0], np.asarray(inputs[1], dtype=np.int64).reshape(-1, 2)
    if paddings.shape[0] != x.ndim or np.any(paddings < 0) or np.any(paddings[0] != 0):
        raise ValueError(f"PAD (operator {op.index}) needs non-negative paddings for each of the "
                         f"{x.ndim} axes, none on the batch axis; got {paddings.tolist()}")
    _, zero_point = quant(model, op.outputs[0])
    return [np.pad(x, [tuple(p) for p in paddings], constant_values=zero_point)]


def concatenation(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_ops::Concatenation`` along ``axis``. TFLite's int8 kernel requires every
    input quantized as the output; an input quantized otherwise is requantized first by
    QUANTIZE's rule (the graph TFLite's converter writes for it), an integer multiply by
    ``input_scale / output_scale``."""
    out = op.outputs[0]
    out_scale, out_zero = quant(model, out)
    dtype = model.tensors[out].dtype
    batch = max((x.shape[0] for x, i in zip(inputs, op.inputs) if model.tensors[i].data is None),
                default=1)
    parts = []
    for x, index in zip(inputs, op.inputs):
        x = np.asarray(x)
        if model.tensors[index].data is not None:   # a constant: broadcast along the batch
            x = np.broadcast_to(x, (batch, *x.shape[1:]))
        if np.dtype(dtype) == np.int8:
            scale, zero = quant(model, index)
            if scale != out_scale or zero != out_zero:
                multiplier, shift = quantize_multiplier(float(scale) / float(out_scale),
                                                        ROUNDING)
                scaled = multiply_by_quantized_multiplier(
                    x.astype(np.int64) - zero, multiplier, shift, ROUNDING) + out_zero
                x = np.clip(scaled, -128, 127)
        parts.append(x.astype(dtype))
    axis = op.options.get("axis", 0)
    axis = axis + parts[0].ndim if axis < 0 else axis
    if axis == 0:
        raise ValueError(f"CONCATENATION (operator {op.index}) along the batch axis is not "
                         "supported: it would mix samples")
    if op.options.get("fused_activation_function", "none") != "none":
        raise ValueError(f"CONCATENATION (operator {op.index}) with a fused activation is not "
                         "supported (TFLite refuses it too)")
    return [np.concatenate(parts, axis=axis)]


#: Each host operator's kernel, by builtin name
HOST_KERNELS: dict[str, Kernel] = {
    "AVERAGE_POOL_2D": average_pool_2d,
    "MAX_POOL_2D": max_pool_2d,
    "RESHAPE": reshape,
    "PAD": pad,
    "CONCATENATION": concatenation,
    "ADD": add,
    "MUL": mul,
    "MEAN": mean,
    "QUANTIZE": quantize,
    "DEQUANTIZE": dequantize,
    "SOFTMAX": softmax,
    "LOGISTIC": logistic,
    "TANH": tanh,
}
