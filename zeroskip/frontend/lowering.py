"""Integer ONNX arithmetic lowered to the array's int8 × int8 → int32 GEMMs.

Zero points are exact and handled on the host: the array's PEs stay int8 × int8 (see the README,
"Bring your own model": why not 9-bit operands). With ``A = a - za`` and ``W = w - zw``
(the real-valued integers):

* ``W`` (usually int8 already: symmetric weights, or uint8 weights with zero point 128) is split
  into int8 parts that sum to it; almost always one part, and pruned weights stay zeros the
  array skips.
* ``a`` is shifted into int8 by a constant ``c`` (``za`` itself when ``a - za`` fits, else 128
  for uint8 and 0 for int8): ``A·W = (a - c)·W - (za - c)·colsum(W)``, the second term one
  int32 per output column (per row for a per-row ``za``), exact on the host.

Convolutions go through im2col on the host: one GEMM per group (depthwise included), every
group of a node in one simulation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["GemmJob", "prepare_matmul", "finish_matmul", "im2col", "conv_output_shape",
           "requantize", "dequantize_scale"]


@dataclass
class GemmJob:
    """One logical integer matmul ``(a - za) @ (w - zw)`` as array GEMMs: ``(a - c) @ part``
    for each int8 part of ``w - zw``, plus the host-side zero-point term."""
    acts: np.ndarray              # int8, M × K
    parts: list                   # int8 K × N matrices summing to w - zw
    correction: np.ndarray        # int64, broadcastable to M × N: -(za - c) · colsum(w - zw)
    weight_zeros: int = 0         # zeros of w - zw (the model's sparsity, not the parts')
    weight_size: int = 0


def _fits_int8(values):
    return values.size == 0 or (values.min() >= -128 and values.max() <= 127)


def _int8_parts(real):
    """int8 matrices summing to ``real`` (int32): the clipped matrix, then what is left."""
    parts = []
    rest = real
    while True:
        part = np.clip(rest, -128, 127)
        parts.append(part.astype(np.int8))
        rest = rest - part
        if not rest.any():
            return parts


def prepare_matmul(a, za, w, zw):
    """The job for ``(a - za) @ (w - zw)``.

    ``a``: M × K integers (int8 or uint8), ``za`` a scalar or one per row (M,);
    ``w``: K × N integers, ``zw`` a scalar or one per column (N,).
    """
    real_w = w.astype(np.int32) - np.asarray(zw, dtype=np.int32).reshape(1, -1)
    za = np.asarray(za, dtype=np.int64).reshape(-1, 1)  # scalar or one per row
    shifted = a.astype(np.int64) - za
    if _fits_int8(shifted):
        acts, c = shifted, za
    else:
        c = np.int64(128 if a.dtype == np.uint8 else 0)
        acts = a.astype(np.int64) - c
        if not _fits_int8(acts):
            raise ValueError(f"activations of type {a.dtype} do not fit 8 bits")
    correction = -(za - c) * real_w.sum(axis=0, dtype=np.int64).reshape(1, -1)
    return GemmJob(acts.astype(np.int8), _int8_parts(real_w), correction,
                   weight_zeros=int(real_w.size - np.count_nonzero(real_w)),
                   weight_size=int(real_w.size))


def finish_matmul(job, results):
    """``(a - za) @ (w - zw)`` as int32 from the parts' array results and the correction."""
    total = np.zeros(results[0].shape, dtype=np.int64)
    for result in results:
        total += result
    total = total + job.correction
    if total.size and (total.min() < -2 ** 31 or total.max() >= 2 ** 31):
        raise ValueError("the int32 accumulator overflows")
    return total.astype(np.int32)


def conv_output_shape(spatial, kernel, strides, pads, dilations):
    return [(size + pads[i] + pads[i + len(spatial)] - dilations[i] * (kernel[i] - 1) - 1)
            // strides[i] + 1 for i, size in enumerate(spatial)]


def resolve_pads(auto_pad, spatial, kernel, strides, dilations, pads):
    """Explicit begin/end pads for ONNX's ``auto_pad`` (NOTSET, VALID, SAME_UPPER/LOWER)."""
    dims = len(spatial)
    if auto_pad in ("", "NOTSET"):
        return list(pads) if pads else [0] * (2 * dims)
    if auto_pad == "VALID":
        return [0] * (2 * dims)
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin + end


def im2col(x, kernel, strides, pads, dilations, pad_value):
    """``x`` (N, C, *spatial) as the GEMM operand (N·prod(out), C·prod(kernel)): row = one
    output position, column = (channel, kernel offset) in the order of ONNX's weight layout
    (M, C, *kernel) flattened. Padding holds ``pad_value`` (the zero point: real zero)."""
    n, c, *spatial = x.shape
    dims = len(spatial)
    out = conv_output_shape(spatial, kernel, strides, pads, dilations)
    widths = [(0, 0), (0, 0)] + [(pads[i], pads[i + dims]) for i in range(dims)]
    padded = np.pad(x, widths, constant_values=pad_value)
    patches = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(o * d, o * d + (size - 1) * s + 1, s)
                      for o, d, s, size in zip(offset, dilations, strides, out))
        patches.append(padded[(slice(None), slice(None)) + index])
    cols = np.stack(patches, axis=2)                          # N, C, K, *out
    cols = np.moveaxis(cols, (1, 2), (-2, -1))                # N, *out, C, K
    return cols.reshape(n * int(np.prod(out, dtype=np.int64)), c * len(patches)), out


def dequantize_scale(*scales):
    """The float32 product/quotient ONNX's requantization uses: ``a · b / c`` in float32."""
    a, b, c = (np.asarray(s, dtype=np.float32) for s in scales)
    return (a * b / c).astype(np.float32)


def requantize(acc, scale, zero_point, dtype):
    """ONNX's QLinear output: ``saturate(round_half_even(acc · scale) + zero_point)`` with
    the float32 ``scale`` (as onnxruntime computes it: float32 product, then rounding)."""
    info = np.iinfo(dtype)
    scaled = np.rint(acc.astype(np.float32) * scale).astype(np.float64)
    return np.clip(scaled + np.asarray(zero_point, dtype=np.float64), info.min,
                   info.max).astype(dtype)
