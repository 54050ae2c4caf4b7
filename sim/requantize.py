"""TFLite's fixed-point requantization, bit for bit, in NumPy.

An int8 layer's int32 accumulators become int8 outputs through a real multiplier
``input_scale * weight_scale / output_scale`` that TFLite never applies in floating point: it is
split offline into a Q0.31 integer and a power-of-two shift (:func:`quantize_multiplier`), and
applied in integers (:func:`multiply_by_quantized_multiplier`), as in TFLite's reference kernels
(``tensorflow/lite/kernels/internal/common.h``, gemmlowp's ``fixedpoint.h``).

TFLite has two builds of that multiply. ``double`` rounding, gemmlowp's (the default build): a
rounding doubling high multiply, then a rounding right shift (both ties away from zero).
``single`` rounding (``TFLITE_SINGLE_ROUNDING``): one 64-bit product rounded once, half up. They
differ by one LSB on ties. LiteRT 2.3's reference kernels (``BUILTIN_REF``), measured here on
ties of exact multipliers (tb/test_tflite_host_ops.py): CONV_2D, DEPTHWISE_CONV_2D and the host
operators round twice; FULLY_CONNECTED uses neither, it requantizes in double precision,
``round(acc · (input · weight / output))`` half away from zero (:func:`requantize_float`). The
callers choose per operator (:data:`zeroskip.frontend.tflite.array_ops.ROUNDING`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["INT32_MIN", "INT32_MAX", "ROUNDINGS", "quantize_multiplier", "effective_multipliers",
           "requantize_float",
           "saturating_rounding_doubling_high_mul", "rounding_divide_by_pot", "multiply_by_quantized_multiplier", "requantize",
           "activation_range"]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: TFLite's two builds of the requantizing multiply
ROUNDINGS = ("single", "double")


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be single or double, not {rounding!r}")


def quantize_multiplier(real: ArrayLike, rounding: str = "single"
                        ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Split real multipliers into TFLite's ``(quantized_multiplier, shift)`` pairs.

    ``real ≈ quantized_multiplier · 2**(shift - 31)`` with the multiplier in [2**30, 2**31) (or 0),
    as TFLite's ``QuantizeMultiplier``: ``frexp``, the significand times 2**31 rounded half away
    from zero, a significand that rounds up to 2**31 halved (and the shift raised), a shift
    below -31 flushed to a zero multiplier, and with single rounding a shift above 30 saturated
    (multiplier 2**31 - 1, shift 30).

    Parameters
    ----------
    real : float or array of float
        Non-negative real multipliers (double precision).
    rounding : str
        ``single`` or ``double``: the build of TFLite whose rules to follow.

    Returns
    -------
    (multiplier, shift) : arrays of int64, of ``real``'s shape

    Raises
    ------
    ValueError
        If a multiplier is negative or not finite.
    """
    _check_rounding(rounding)
    real = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(real)) or np.any(real < 0):
        raise ValueError("real multipliers must be finite and non-negative")
    significand, shift = np.frexp(real)
    scaled = significand * float(1 << 31)         # exact: a power-of-two scaling
    q = np.floor(scaled + 0.5).astype(np.int64)   # std::round: half away from zero (q >= 0)
    shift = shift.astype(np.int64)
    carry = q == (1 << 31)
    q = np.where(carry, q // 2, q)
    shift = np.where(carry, shift + 1, shift)
    flush = shift < -31
    q = np.where(flush | (real == 0), 0, q)
    shift = np.where(flush | (real == 0), 0, shift)
    if rounding == "single":
        saturate = shift > 30
        q = np.where(saturate, INT32_MAX, q)
        shift = np.where(saturate, 30, shift)
    return q, shift


def effective_multipliers(input_scale: float, weight_scales: ArrayLike,
                          output_scale: float) -> NDArray[np.float64]:
    """The real multipliers of an int8 convolution or fully connected layer, computed as TFLite
    computes them: per channel (several weight scales) ``input · weight / output`` in double
    precision from the float32 scales (``PopulateConvolutionQuantizationParams``); per tensor
    (one weight scale) the product of the two float32 scales rounded to float32 first
    (``GetQuantizedConvolutionMultipler``)."""
    f32 = np.float32
    weights = np.atleast_1d(np.asarray(weight_scales, dtype=f32))
    if weights.size == 1:
        product = np.float64(f32(input_scale) * weights[0])
        return np.array([product / np.float64(f32(output_scale))])
    return (np.float64(f32(input_scale)) * weights.astype(np.float64)
            / np.float64(f32(output_scale)))


def _truncating_shift(value: NDArray[np.int64], bits: int) -> NDArray[np.int64]:
    """``value / 2**bits`` rounded toward zero, as C++'s integer division."""
    return np.where(value >= 0, value >> bits, -((-value) >> bits))


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` of int32 operands: the high 32 bits of
    ``2·a·b``, rounded to nearest (ties away from zero), with ``INT32_MIN · INT32_MIN``
    saturated to ``INT32_MAX``."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    product = a * b
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = _truncating_shift(product + nudge, 31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded to nearest, ties away
    from zero (``exponent`` in 0..31, per element or broadcast)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _wrap_int32(value: NDArray[np.int64]) -> NDArray[np.int64]:
    return ((value - INT32_MIN) & 0xFFFF_FFFF) + INT32_MIN


def multiply_by_quantized_multiplier(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike,
                                     rounding: str = "single") -> NDArray[np.int64]:
    """TFLite's ``MultiplyByQuantizedMultiplier`` of int32 accumulators.

    Single rounding: ``(x · multiplier + 2**(30 - shift)) >> (31 - shift)`` in 64 bits. Double
    rounding: a left shift for a positive ``shift`` (wrapping at 32 bits as the reference
    kernels' int32 arithmetic does), the rounding doubling high multiply, then a rounding right
    shift for a negative one.
    """
    _check_rounding(rounding)
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if rounding == "single":
        total = 31 - shift
        product = x * np.asarray(multiplier, dtype=np.int64)
        return (product + (np.int64(1) << (total - 1))) >> total
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = _wrap_int32(x << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier),
                                  right)


def activation_range(activation: str, scale: float, zero_point: int,
                     dtype: type = np.int8) -> tuple[int, int]:
    """The output clamp of a fused activation on a quantized output, as TFLite's
    ``CalculateActivationRangeQuantized``: ``none``, ``relu``, ``relu6`` or ``relu_n1_to_1``,
    each bound quantized with round half away from zero and clipped to the type's range."""
    info = np.iinfo(dtype)
    low, high = int(info.min), int(info.max)

    def quantize(value: float) -> int:
        scaled = np.float32(value) / np.float32(scale)
        return zero_point + int(np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5)))

    if activation == "none":
        return low, high
    if activation == "relu":
        return max(low, quantize(0.0)), high
    if activation == "relu6":
        return max(low, quantize(0.0)), min(high, quantize(6.0))
    if activation == "relu_n1_to_1":
        return max(low, quantize(-1.0)), min(high, quantize(1.0))
    raise ValueError(f"activation must be none, relu, relu6 or relu_n1_to_1, not {activation!r}")


def requantize(acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, zero_point: int,
               low: int = -128, high: int = 127, rounding: str = "single") -> NDArray[np.int8]:
    """int32 accumulators to int8 outputs as TFLite's int8 kernels do: the quantized multiplier,
    the output zero point added, clamped to ``[low, high]`` (the fused activation's range).

    ``multiplier`` and ``shift`` broadcast against ``acc``: per output channel, they are the last
    axis.
    """
    out = multiply_by_quantized_multiplier(acc, multiplier, shift, rounding) + zero_point
    return np.clip(out, low, high).astype(np.int8)


def requantize_float(acc: ArrayLike, real: ArrayLike, zero_point: int, low: int = -128,
                     high: int = 127) -> NDArray[np.int8]:
    """int32 accumulators to int8 outputs in double precision, as LiteRT's reference
    FULLY_CONNECTED does: ``acc · real`` rounded half away from zero, the zero point added,
    clamped to ``[low, high]``. ``real`` (one per output channel, the last axis, or one) is
    ``input_scale · weight_scale / output_scale`` computed in double precision from the float32
    scales."""
    value = np.asarray(acc, dtype=np.int64).astype(np.float64) * np.asarray(real, np.float64)
    rounded = np.trunc(value) + np.where(np.abs(value - np.trunc(value)) >= 0.5,
                                         np.sign(value), 0)
    return np.clip(rounded + zero_point, low, high).astype(np.int8)
