"""cocotb (Verilator and Icarus): the accumulators at the very edge of what ArrayConfig accepts.

``max_k`` is the largest K whose worst case, K products of -128 × -128 = 2**14, fits the signed
``acc_width``-bit accumulator (``max_k * 2**14 <= 2**(acc_width - 1) - 1``). Here max_k sits
exactly at that bound, so the extreme results use the accumulator's top bit below the sign:
131071 × 16384 = 2**31 - 16384 for 32 bits, 511 × 16384 = 2**23 - 16384 for 24 bits. One bit
less of accumulator and every extreme result below wraps around.
"""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.sim import golden

from .rtl import simulators
from .test_accelerator_rtl import run_cases

#: (accumulator width, the largest max_k it accepts)
LIMITS = [(32, 131071), (24, 511)]


def limit_config(acc_width, max_k):
    """A 2×2 array whose memories hold one 2×K×2 GEMM at K = max_k in a single run."""
    return ArrayConfig(rows=2, cols=2, fmt="csc", max_k=max_k, act_depth=max_k,
                       weight_depth=max_k, pointer_depth=2, out_depth=1, acc_width=acc_width)


def extremes(k):
    """A (2×K) and W (K×2) whose product holds the four extremes of int8 × int8 sums:
    C = [[16384 K, -16256 K], [-16256 K, 16129 K]]."""
    acts = np.empty((2, k), np.int8)
    acts[0], acts[1] = -128, 127
    weights = np.empty((k, 2), np.int8)
    weights[:, 0], weights[:, 1] = -128, 127
    return acts, weights


def mixed(rng, k):
    """Signs mixed along K (-128 and +127 only); in C[0, 1] every product is positive (16384 or
    16129), so that result needs the accumulator's top bit below the sign."""
    acts = rng.choice(np.array([-128, 127], np.int8), (2, k))
    weights = np.empty((k, 2), np.int8)
    weights[:, 0] = rng.choice(np.array([-128, 127], np.int8), k)
    weights[:, 1] = np.where(acts[0] == -128, -128, 127)  # row 0: every product positive
    return acts, weights


@pytest.mark.parametrize("acc_width,max_k", LIMITS, ids=[f"acc{w}" for w, _ in LIMITS])
def test_max_k_is_the_accumulators_limit(acc_width, max_k):
    config = limit_config(acc_width, max_k)
    assert config.max_k * 2 ** 14 <= 2 ** (acc_width - 1) - 1
    with pytest.raises(ValueError, match="overflow"):
        limit_config(acc_width, max_k + 1)
    # the worst case needs every bit: it would not fit an accumulator one bit narrower
    assert max_k * 2 ** 14 > 2 ** (acc_width - 2) - 1
    assert -max_k * 16256 < -2 ** (acc_width - 2)


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("acc_width,max_k", LIMITS, ids=[f"acc{w}" for w, _ in LIMITS])
def test_extreme_products_at_the_accumulator_limit(sim, acc_width, max_k, rng):
    config = limit_config(acc_width, max_k)
    k = max_k
    acts, weights = extremes(k)
    expected = golden.gemm(acts, weights)
    assert expected.tolist() == [[16384 * k, -16256 * k], [-16256 * k, 16129 * k]]
    if acc_width < 32:
        cases = [(acts, weights, mode) for mode in Mode] + [(*mixed(rng, k), Mode.SKIP)]
    else:
        # K = 131071: each GEMM loads 2 × 131071 words beat by beat from Python (~10 s on
        # Icarus): the extremes in dense mode on both simulators, the mixed signs in skip
        # mode (dense weights, so every product is taken) on Verilator
        cases = [(acts, weights, Mode.DENSE)]
        if sim == "verilator":
            cases.append((*mixed(rng, k), Mode.SKIP))
    # run_cases checks every result bit for bit, the MAC counters and the cycle model
    totals = run_cases(config, sim, cases)
    assert totals[0]["cycles"] >= k
    for acts, weights, _ in cases:
        # each GEMM has a result that an accumulator one bit narrower could not hold
        assert np.abs(golden.gemm(acts, weights)).max() > 2 ** (acc_width - 2)
