"""cocotb (Verilator and Icarus): the dense baseline architecture (``arch="dense"``, an
output-stationary systolic array) against the NumPy golden model, its counters and its cycle
counter against the analytical model, like the zeroskip array's tests."""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.sim import golden
from zeroskip.sim.compiler import compile_gemm, assemble
from zeroskip.sim.rtl.runner import run_programs

from .rtl import simulators
from .test_accelerator_rtl import random_acts

#: small memories, so that the cases below take several runs and several K-chunks
DENSE = dict(arch="dense", max_k=64, act_depth=192, weight_depth=320, pointer_depth=9,
             out_depth=12)


def nasty_cases(rng, config):
    """(A, W): random shapes that are not multiples of the array, and the corner cases."""
    rows, cols, max_k = config.rows, config.cols, config.max_k
    cases = []
    for m, k, n in [(rows * 3 + 1, 37, cols * 2 + 1), (1, 1, 1), (rows - 1 or 1, max_k, 3),
                    (2 * rows, max_k + 5, cols + 2), (5, 2, cols * 4)]:
        weights = rng.integers(-128, 128, (k, n)).astype(np.int8)
        weights[rng.random((k, n)) < 0.6] = 0
        cases.append((random_acts(rng, m, k), weights))
    k, n = 40, cols + 1
    cases += [
        (random_acts(rng, 9, k), np.zeros((k, n), np.int8)),                 # all-zero W
        (np.full((rows + 2, max_k), -128, np.int8), np.full((max_k, n), -128, np.int8)),
    ]
    single = np.zeros((k, n), np.int8)
    single[k // 2, n - 1] = -7                                                # one nonzero
    one_column = np.zeros((k, n), np.int8)
    one_column[:, 0] = rng.integers(-128, 128, k)                             # one column
    cases += [(random_acts(rng, 6, k), single), (random_acts(rng, 6, k), one_column)]
    return cases


def check(program, acts, weights, rtl):
    config = program.config
    rtl.check(program)    # the cycle counter against the model, no lane fault
    np.testing.assert_array_equal(assemble(program, rtl.results), golden.gemm(acts, weights),
                                  err_msg=str(program.shape))
    # every beat crosses every PE: (M-tiles × slots × K) beats of R × C MACs, summed over runs
    executed = sum(run.m_tiles * max(len(c) for c in run.lane_columns) * run.k
                   for run in program.runs) * config.pe_count
    assert rtl.total("macs_executed") == executed
    assert rtl.total("macs_gated") == 0
    assert rtl.total("stall_decoder") == rtl.total("stall_imbalance") == 0


CONFIGS = {
    "4x3": dict(rows=4, cols=3),
    # the ULX3S' PEs: pipelined, registered ECP5 multipliers (our MULT18X18D model)
    "3x4-ecp5": dict(rows=3, cols=4, pipelined=True, multipliers="ecp5_registered"),
    # the ULX3S' timing measures: the rows' activations in DP16KD with their output
    # register (our model), a result memory of one result per word per column, registered
    # load ports; rows not a power of two (the result address is a multiply)
    "3x4-ecp5-columns": dict(rows=3, cols=4, pipelined=True, multipliers="ecp5_registered",
                             act_memories="ecp5_outreg", column_results=True, acc_width=24,
                             max_k=64),
    # the iCE40's: two PEs per SB_MAC16 (Yosys' model), 24-bit accumulators, a result
    # memory per column (not pipelined: read latency 1)
    "4x2-ice40": dict(rows=4, cols=2, multipliers="ice40_pairs", acc_width=24, max_k=64,
                      column_results=True),
    # some PEs multiplying in logic; a single row
    "1x5-logic": dict(rows=1, cols=5, logic_multipliers=2),
}


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("name", list(CONFIGS))
def test_dense_array_is_bit_exact(sim, name, rng):
    config = ArrayConfig(**{**DENSE, **CONFIGS[name]})
    cases = nasty_cases(rng, config)
    programs = [compile_gemm(a, w, config, Mode.DENSE) for a, w in cases]
    assert any(len(p.runs) > 1 for p in programs) and any(p.k_chunks > 1 for p in programs)
    for program, (acts, weights), rtl in zip(programs, cases, run_programs(programs, sim)):
        check(program, acts, weights, rtl)


@pytest.mark.parametrize("sim", simulators())
def test_dense_board_configuration(sim, rng):
    """The ULX3S' dense baseline configuration itself (as `gemm --board ulx3s-85f
    --arch dense` simulates it) on a GEMM of several runs."""
    from zeroskip.platforms.boards import BOARDS
    config = BOARDS["ulx3s-85f"].for_arch("dense").config
    acts = random_acts(rng, 30, 256)
    weights = rng.integers(-128, 128, (256, 40)).astype(np.int8)
    weights[rng.random(weights.shape) < 0.75] = 0
    program = compile_gemm(acts, weights, config, Mode.DENSE)
    rtl, = run_programs([program], sim)
    check(program, acts, weights, rtl)


def test_dense_refuses_skip_mode():
    config = ArrayConfig(**{**DENSE, "rows": 2, "cols": 2})
    with pytest.raises(ValueError, match="no skip mode"):
        compile_gemm(np.ones((2, 2), np.int8), np.ones((2, 2), np.int8), config, Mode.SKIP)
