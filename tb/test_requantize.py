"""TFLite's fixed-point requantization (zeroskip.sim.requantize) against a literal transcription
of the reference kernels' C++ in Python integers (which rule each LiteRT kernel uses is pinned
in tb/test_tflite_host_ops.py)."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from zeroskip.sim.requantize import (INT32_MAX, INT32_MIN, activation_range,
                                     effective_multipliers, multiply_by_quantized_multiplier,
                                     quantize_multiplier, requantize, requantize_float)

int32s = st.integers(INT32_MIN, INT32_MAX)


def _c_div(a, b):
    """C++'s integer division: toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def literal_double(x, multiplier, shift):
    """common.h's MultiplyByQuantizedMultiplier without TFLITE_SINGLE_ROUNDING, line by line."""
    left, right = max(shift, 0), max(-shift, 0)
    a = ((x * (1 << left)) + 2**31) % 2**32 - 2**31          # int32 wraps
    if a == multiplier == INT32_MIN:
        high = INT32_MAX
    else:
        ab = a * multiplier
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        high = _c_div(ab + nudge, 1 << 31)
    mask = (1 << right) - 1
    remainder, threshold = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


def literal_single(x, multiplier, shift):
    total = 31 - shift
    return (x * multiplier + (1 << (total - 1))) >> total


def literal_quantize_multiplier(real, single=True):
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = int(math.floor(q * 2**31 + 0.5))
    if fixed == 2**31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single and shift > 30:
        return 2**31 - 1, 30
    return fixed, shift


@given(x=int32s, multiplier=st.integers(1 << 30, INT32_MAX), shift=st.integers(-31, 30))
def test_single_rounding_is_the_reference_kernels_arithmetic(x, multiplier, shift):
    assert multiply_by_quantized_multiplier(x, multiplier, shift) == \
        literal_single(x, multiplier, shift)


@given(x=int32s, multiplier=st.one_of(int32s, st.just(INT32_MIN)), shift=st.integers(-31, 7))
def test_double_rounding_is_gemmlowps_arithmetic(x, multiplier, shift):
    assert multiply_by_quantized_multiplier(x, multiplier, shift, "double") == \
        literal_double(x, multiplier, shift)


@pytest.mark.parametrize("x, multiplier, shift", [
    (INT32_MIN, INT32_MIN, 0), (INT32_MIN, INT32_MAX, 0), (INT32_MAX, INT32_MAX, -31),
    (3, 1 << 30, -1), (-3, 1 << 30, -1), (5, 1 << 30, -2), (-5, 1 << 30, -2),   # ties
    (1 << 20, 1 << 30, 12),                                                     # wraps
])
def test_nasty_cases_both_roundings(x, multiplier, shift):
    assert multiply_by_quantized_multiplier(x, multiplier, shift, "double") == \
        literal_double(x, multiplier, shift)
    if multiplier >= 0 and shift <= 30:
        assert multiply_by_quantized_multiplier(x, multiplier, shift) == \
            literal_single(x, multiplier, shift)


def test_the_roundings_differ_on_ties():
    # -3 · 2**30 / 2**32 = -0.75 → both -1; a tie on a negative value tells them apart
    assert multiply_by_quantized_multiplier(-2, 1 << 30, -1, "single") == 0      # half up
    assert multiply_by_quantized_multiplier(-2, 1 << 30, -1, "double") == -1     # away from 0


@given(real=st.one_of(st.floats(0, 1e12), st.sampled_from([0.0, 2**-32, 2**-31, 0.5, 1.0,
                                                           1 - 2**-33, 2**31, 2**40])))
def test_quantize_multiplier_is_tflites(real):
    for single in (True, False):
        m, s = quantize_multiplier(real, "single" if single else "double")
        assert (int(m), int(s)) == literal_quantize_multiplier(real, single)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        quantize_multiplier(-1.0)
    with pytest.raises(ValueError, match="single or double"):
        requantize(np.zeros(3), 1 << 30, 0, 0, rounding="even")
    with pytest.raises(ValueError, match="relu6"):
        activation_range("gelu", 0.1, 0)


def test_activation_ranges():
    assert activation_range("none", 0.1, 3) == (-128, 127)
    assert activation_range("relu", 0.1, 3) == (3, 127)
    assert activation_range("relu6", 0.05, -128) == (-128, -8)
    assert activation_range("relu6", 0.01, 0) == (0, 127)
    assert activation_range("relu_n1_to_1", 0.25, 0) == (-4, 4)


def test_float_requantization_rounds_half_away_from_zero():
    acc = np.array([-12, -4, -3, 3, 4, 12, 1 << 30])
    assert requantize_float(acc, 0.125, 0).tolist() == [-2, -1, 0, 0, 1, 2, 127]
    assert requantize_float(acc[:2], [0.125, 0.25], 5, -3, 3).tolist() == [3, 3]
