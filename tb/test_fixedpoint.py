"""gemmlowp's fixed-point functions (zeroskip.sim.fixedpoint): their values against the real
functions they approximate, and the edge cases of their integer rules. Bit-exactness with
TFLite is checked through SOFTMAX in test_tflite_host_ops.py."""

import numpy as np

from zeroskip.sim.fixedpoint import (ONE, calculate_input_radius, exp_on_negative_values,
                                     get_reciprocal, one_over_one_plus_x_for_x_in_0_1,
                                     rescale, rounding_half_sum, saturating_left_shift)
from zeroskip.sim.requantize import INT32_MAX, INT32_MIN


def test_exp_on_negative_values_is_exp_in_q0_31():
    for bits in (4, 5, 6):
        a = -np.arange(0, 1 << 31, 1 << 18, dtype=np.int64)[: (1 << 13) - 1]
        got = exp_on_negative_values(a, bits) / 2**31
        assert np.max(np.abs(got - np.exp(a / 2**(31 - bits)))) < 5e-7
    assert exp_on_negative_values(0, 5) == ONE


def test_one_over_one_plus_x():
    x = np.arange(0, 1 << 31, 1 << 20, dtype=np.int64)
    got = one_over_one_plus_x_for_x_in_0_1(x) / 2**31
    assert np.max(np.abs(got - 1 / (1 + x / 2**31))) < 1e-8


def test_reciprocal_of_q12_values():
    x = np.array([1 << 19, 3 << 19, 100 << 19, 12345678], dtype=np.int64)
    scale, bits = get_reciprocal(x, 12)
    real = x / 2**19
    assert np.allclose(scale / 2**(31 + bits), 1 / real, rtol=1e-8)


def test_integer_rules():
    assert saturating_left_shift(1 << 29, 2) == INT32_MAX
    assert saturating_left_shift(-(1 << 29), 2) == INT32_MIN
    assert saturating_left_shift(5, 3) == 40
    assert rescale(40, 0, 3) == 5 and rescale(-44, 0, 3) == -6     # ties away from zero
    assert rounding_half_sum(3, 4) == 4 and rounding_half_sum(-3, -4) == -4
    assert rounding_half_sum(INT32_MAX, INT32_MAX) == INT32_MAX
    assert calculate_input_radius(5, 20) == 31 * 2**26 // 2**20
