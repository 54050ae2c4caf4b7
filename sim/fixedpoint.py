"""gemmlowp's fixed-point transcendental functions, bit for bit, in NumPy: the exponential and
reciprocal that TFLite's reference int8 SOFTMAX computes with.

A gemmlowp ``FixedPoint<int32_t, k>`` is an int32 ``raw`` value meaning ``raw / 2**(31 - k)``
(``k`` integer bits). Here a raw value is an int64 array holding the int32; products go through
:func:`~zeroskip.sim.requantize.saturating_rounding_doubling_high_mul` and right shifts through
:func:`~zeroskip.sim.requantize.rounding_divide_by_pot`, the one implementation of those rules.
The functions follow gemmlowp's ``fixedpoint/fixedpoint.h`` (``exp_on_negative_values``,
``one_over_one_plus_x_for_x_in_0_1``) and TFLite's ``GetReciprocal``,
``PreprocessSoftmaxScaling`` and ``CalculateInputRadius`` (``kernels/internal/common.h``,
``quantization_util.cc``), line by line.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from zeroskip.sim.requantize import (INT32_MAX, INT32_MIN, quantize_multiplier,
                                     rounding_divide_by_pot,
                                     saturating_rounding_doubling_high_mul)

__all__ = ["ONE", "saturating_left_shift", "rescale", "rounding_half_sum",
           "exp_on_negative_values", "one_over_one_plus_x_for_x_in_0_1", "get_reciprocal",
           "calculate_input_radius", "preprocess_softmax_scaling"]

#: ``FixedPoint<int32_t, 0>::One()``: 1.0 is not representable with no integer bits
ONE = INT32_MAX

_mul = saturating_rounding_doubling_high_mul


def saturating_left_shift(x: ArrayLike, exponent: int) -> NDArray[np.int64]:
    """gemmlowp's ``SaturatingRoundingMultiplyByPOT<exponent>`` for ``exponent > 0``:
    ``x · 2**exponent`` saturated to int32."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent))


def rescale(x: ArrayLike, integer_bits: int, dst_integer_bits: int) -> NDArray[np.int64]:
    """gemmlowp's ``Rescale<dst>``: the same real value with another number of integer bits
    (a saturating left shift or a rounding right shift of the raw value)."""
    exponent = integer_bits - dst_integer_bits
    if exponent > 0:
        return saturating_left_shift(x, exponent)
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    return np.asarray(x, dtype=np.int64)


def rounding_half_sum(a: ArrayLike, b: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp's ``RoundingHalfSum`` of int32: ``(a + b ± 1) / 2`` in 64 bits, truncated."""
    total = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    total = total + np.where(total >= 0, 1, -1)
    return np.where(total >= 0, total // 2, -((-total) // 2))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: NDArray[np.int64]
                                                             ) -> NDArray[np.int64]:
    constant_term = 1895147668               # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = a + (1 << 28)                        # a + 1/8: a Taylor expansion around -1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_mul(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + _mul(constant_term, x + poly)


#: ``exp(-2**e)`` in Q0.31 for the barrel shifter's bits e = -2..4
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: ArrayLike, integer_bits: int) -> NDArray[np.int64]:
    """gemmlowp's ``exp_on_negative_values``: ``exp(a)`` in Q0.31 for raw ``a <= 0`` with
    ``integer_bits`` integer bits."""
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (fractional_bits + exponent)
            result = np.where(remainder & bit, _mul(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, ONE, result)


def one_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp's ``one_over_one_plus_x_for_x_in_0_1``: ``1 / (1 + a)`` in Q0.31 for a Q0.31
    ``a`` in [0, 1), by three Newton-Raphson steps in Q2.29."""
    half_denominator = rounding_half_sum(a, ONE)
    x = 1515870810 + _mul(half_denominator, -1010580540)     # 48/17 - 32/17 · d
    for _ in range(3):
        one_minus_half_denominator_times_x = (1 << 29) - _mul(half_denominator, x)
        x = x + saturating_left_shift(_mul(x, one_minus_half_denominator_times_x), 2)
    return saturating_left_shift(x, 1)


def get_reciprocal(x: ArrayLike, x_integer_digits: int
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """TFLite's ``GetReciprocal`` of positive raw ``x`` with ``x_integer_digits`` integer bits:
    ``(shifted_scale, num_bits_over_unit)``, ``1/x = shifted_scale / 2**(31 + bits)``."""
    x = np.asarray(x, dtype=np.int64)
    bit_length = np.frexp(x.astype(np.float64))[1].astype(np.int64)   # exact below 2**53
    headroom_plus_one = 32 - bit_length
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = (x << headroom_plus_one) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """TFLite's ``CalculateInputRadius``: the largest input difference whose rescaled value
    still fits the fixed-point format."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int,
                               rounding: str = "single") -> tuple[int, int]:
    """TFLite's ``PreprocessSoftmaxScaling``: the quantized multiplier and left shift taking an
    input difference to a Q(input_integer_bits) value of ``beta · scale · diff``, the real
    multiplier capped at ``2**30 - 1`` (single-rounding build) or ``2**31 - 1`` (double)."""
    cap = (1 << 30) - 1.0 if rounding == "single" else (1 << 31) - 1.0
    real = min(float(beta) * float(input_scale) * (1 << (31 - input_integer_bits)), cap)
    multiplier, shift = quantize_multiplier(real, rounding)
    if int(shift) < 0:
        raise ValueError(f"softmax's beta · input scale ({real:g} in Q{input_integer_bits}) "
                         "is too small for TFLite's fixed-point softmax")
    return int(multiplier), int(shift)
