"""TFLite's int8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D as the array's GEMMs.

Each layer is ``Σ (x - x_zero) · w + bias`` in exact int32, requantized by TFLite's fixed-point
rules (:mod:`zeroskip.sim.requantize`) with the per-channel multipliers TFLite derives from the
scales, then clamped to the fused activation's range. The products run on the array through
:mod:`zeroskip.frontend.lowering` (zero points handled exactly on the host, the PEs stay int8 ×
int8); convolutions go through im2col on the host (NHWC, TFLite's SAME and VALID padding, strides,
dilation, groups), a depthwise convolution as block-diagonal GEMMs of as many channels as the
array has lanes, every GEMM of a layer in one simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from zeroskip.frontend import lowering
from zeroskip.frontend.tflite.model import OpInfo, TfliteModel
from zeroskip.sim import requantize as rq
from zeroskip.sim.loaders import BadInput

__all__ = ["ArrayLayer", "lower", "finish", "same_padding", "ROUNDING"]

#: How each operator requantizes in LiteRT's reference kernels, as measured against
#: ``ai-edge-litert`` 2.3 on ties (tb/test_tflite_host_ops.py,
#: test_which_requantization_litert_reference_array_kernels_use): the convolutions by the
#: fixed-point multiply rounding twice (gemmlowp's rules), the fully connected kernel in double
#: precision (:func:`zeroskip.sim.requantize.requantize_float`).
ROUNDING = {"FULLY_CONNECTED": "float", "CONV_2D": "double", "DEPTHWISE_CONV_2D": "double"}


@dataclass
class ArrayLayer:
    """A layer's GEMM jobs, the (M, K, N) of one of them as reported, and how the jobs' int32
    results become the layer's int8 output."""
    jobs: list
    shape: tuple[int, int, int]
    assemble: Callable[[list], np.ndarray]      # the jobs' results -> int32 accumulators
    op: OpInfo


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding of one spatial axis (``ComputePaddingHeightWidth``): the output is
    ``ceil(size / stride)``, the extra padding row or column goes after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _label(op: OpInfo) -> str:
    return f"operator {op.index} ({op.code})"


def _conv_geometry(op: OpInfo, x: np.ndarray, kh: int, kw: int):
    strides = [op.options.get("stride_h", 1), op.options.get("stride_w", 1)]
    dilations = [op.options.get("dilation_h_factor", 1) or 1,
                 op.options.get("dilation_w_factor", 1) or 1]
    if op.options.get("padding", "same") == "same":
        (top, bottom), (left, right) = (same_padding(x.shape[1], kh, strides[0], dilations[0]),
                                        same_padding(x.shape[2], kw, strides[1], dilations[1]))
    else:
        top = bottom = left = right = 0
    return strides, dilations, [top, left, bottom, right]


def _im2col(x_nhwc: np.ndarray, kernel, strides, pads, dilations, zero: int):
    return lowering.im2col(np.moveaxis(x_nhwc, -1, 1), kernel, strides, pads, dilations,
                           np.int64(zero))


def lower(op: OpInfo, model: TfliteModel, x: np.ndarray, lanes: int = 1) -> ArrayLayer:
    """The GEMM jobs of array operator ``op`` on the batched int8 input ``x`` for an array of
    ``lanes`` PE columns (a depthwise convolution packs that many channels per GEMM)."""
    weights = model.tensors[op.inputs[1]]
    w = weights.data
    assert w is not None                                # model.check: constant int8 weights
    zx = int(model.tensors[op.inputs[0]].zero_point[0]) if \
        model.tensors[op.inputs[0]].zero_point.size else 0
    zw = weights.zero_point if weights.zero_point.size else np.zeros(1, np.int64)
    n = x.shape[0]
    if op.code == "FULLY_CONNECTED":
        k = w.shape[1]
        if x.size % (n * k):
            raise BadInput(f"{_label(op)}: input of shape {list(x.shape)} does not flatten to "
                           f"rows of {k}")
        rows = x.reshape(-1, k)
        job = lowering.prepare_matmul(rows, zx, w.T, np.broadcast_to(zw, (w.shape[0],)))
        keep = op.options.get("keep_num_dims", False)
        out_shape = (*x.shape[:-1], w.shape[0]) if keep else (-1, w.shape[0])
        return ArrayLayer([job], (rows.shape[0], k, w.shape[0]),
                          lambda r: r[0].reshape(out_shape), op)
    if x.ndim != 4:
        raise BadInput(f"{_label(op)}: input of shape {list(x.shape)}; expected NHWC")
    if op.code == "CONV_2D":
        out_channels, kh, kw, per_in = w.shape
        channels = x.shape[3]
        if channels % per_in or out_channels % (channels // per_in):
            raise BadInput(f"{_label(op)}: {channels} input channels and weights "
                           f"{list(w.shape)} do not make whole groups")
        groups = channels // per_in
        per_out = out_channels // groups
        strides, dilations, pads = _conv_geometry(op, x, kh, kw)
        zw_full = np.broadcast_to(zw, (out_channels,))
        jobs, out = [], None
        for g in range(groups):
            cols, out = _im2col(x[..., g * per_in:(g + 1) * per_in], [kh, kw], strides, pads,
                                dilations, zx)
            part = w[g * per_out:(g + 1) * per_out]                  # per_out, kh, kw, per_in
            matrix = np.moveaxis(part, 3, 1).reshape(per_out, -1).T  # (per_in, kh, kw) x out
            jobs.append(lowering.prepare_matmul(cols, zx, matrix,
                                                zw_full[g * per_out:(g + 1) * per_out]))
        shape = (jobs[0].acts.shape[0], per_in * kh * kw, per_out)
    elif op.code == "DEPTHWISE_CONV_2D":
        _, kh, kw, out_channels = w.shape
        channels = x.shape[3]
        multiplier = op.options.get("depth_multiplier", 1) or out_channels // channels
        if channels * multiplier != out_channels:
            raise BadInput(f"{_label(op)}: {channels} input channels × depth multiplier "
                           f"{multiplier} is not the weights' {out_channels} channels")
        strides, dilations, pads = _conv_geometry(op, x, kh, kw)
        zw_full = np.broadcast_to(zw, (out_channels,))
        # One input channel alone is a GEMM of N = multiplier columns: one lane of the array.
        # Channels side by side make a block-diagonal weight matrix whose structural zeros
        # skip mode never spends a cycle on, with the same activations to load (each
        # channel's patches once) and the same dense-mode cycles: every lane gets a channel.
        pack = max(1, lanes // multiplier)
        jobs, out = [], None
        size = kh * kw
        for first in range(0, channels, pack):
            group = range(first, min(first + pack, channels))
            patches = []
            for c in group:
                cols, out = _im2col(x[..., c:c + 1], [kh, kw], strides, pads, dilations, zx)
                patches.append(cols)
            matrix = np.zeros((size * len(group), multiplier * len(group)), np.int8)
            for i, c in enumerate(group):
                matrix[i * size:(i + 1) * size, i * multiplier:(i + 1) * multiplier] = \
                    w[0, :, :, c * multiplier:(c + 1) * multiplier].reshape(size, multiplier)
            job = lowering.prepare_matmul(
                np.concatenate(patches, axis=1), zx, matrix,
                zw_full[first * multiplier:(first + len(group)) * multiplier])
            # the layer's sparsity is its weights', not the packing's structural zeros
            real = w[0, :, :, first * multiplier:(first + len(group)) * multiplier]
            job.weight_zeros = int(real.size - np.count_nonzero(real))
            job.weight_size = int(real.size)
            jobs.append(job)
        shape = (jobs[0].acts.shape[0], size * min(pack, channels),
                 multiplier * min(pack, channels))
    else:
        raise ValueError(f"{op.code} is not an array operator")
    assert out is not None                              # at least one channel
    spatial = tuple(out)

    def assemble(results):
        joined = np.concatenate(results, axis=1)              # N·H·W × C_out, groups in order
        return joined.reshape(n, *spatial, out_channels)
    return ArrayLayer(jobs, shape, assemble, op)


def finish(layer: ArrayLayer, model: TfliteModel, results: list) -> np.ndarray:
    """The layer's int8 output from its jobs' array results (per job, one int32 result per
    int8 part of its weights): bias, TFLite's requantization, the fused activation's clamp."""
    op = layer.op
    acc = layer.assemble([lowering.finish_matmul(job, parts) for job, parts in
                          zip(layer.jobs, results)]).astype(np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = model.tensors[op.inputs[2]].data
        if bias is None:
            raise BadInput(f"{_label(op)}: its bias must be a constant")
        acc = acc + bias.astype(np.int64).reshape(-1)
    x_t, w_t, y_t = (model.tensors[op.inputs[0]], model.tensors[op.inputs[1]],
                     model.tensors[op.outputs[0]])
    for tensor in (x_t, w_t, y_t):
        if not tensor.scale.size:
            raise BadInput(f"{_label(op)}: tensor {tensor.index} ({tensor.name!r}) is not "
                           f"quantized")
    rounding = ROUNDING[op.code]
    zero = int(y_t.zero_point[0]) if y_t.zero_point.size else 0
    activation = op.options.get("fused_activation_function", "none")
    try:
        low, high = rq.activation_range(activation, float(y_t.scale[0]), zero)
    except ValueError:
        raise BadInput(f"{_label(op)}: fused activation {activation} is not supported (none, "
                       f"relu, relu6, relu_n1_to_1)") from None
    if acc.min(initial=0) < rq.INT32_MIN or acc.max(initial=0) > rq.INT32_MAX:
        raise ValueError(f"{_label(op)}: the int32 accumulator overflows")
    if rounding == "float":
        real = (np.float64(x_t.scale[0]) * w_t.scale.astype(np.float64)
                / np.float64(y_t.scale[0]))
        return rq.requantize_float(acc, real, zero, low, high)
    multiplier, shift = rq.quantize_multiplier(
        rq.effective_multipliers(float(x_t.scale[0]), w_t.scale, float(y_t.scale[0])), rounding)
    return rq.requantize(acc, multiplier, shift, zero, low, high, rounding)
