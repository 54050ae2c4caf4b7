"""cocotb (Verilator and Icarus): the whole accelerator's Verilog against the NumPy golden model,
its counters against their definitions and its cycle counter against the analytical model."""

import numpy as np
import pytest

from zeroskip.config import MAX_K, ArrayConfig, Mode
from zeroskip.sim import golden
from zeroskip.sim.compiler import GemmTooLarge, assemble, compile_gemm, lane_tokens
from zeroskip.sim.formats import csc
from zeroskip.sim.rtl.runner import run_programs

from .rtl import simulators
from .weights import fit_n_of_m, random_weights


def check(program, acts, weights, rtl):
    """Every property a run must have; returns the summed counters."""
    config = program.config
    assert not rtl.faults
    result = assemble(program, rtl.results)
    np.testing.assert_array_equal(result, golden.gemm(acts, weights),
                                  err_msg=f"{program.shape} {program.mode.name}")
    total = {name: sum(c[name] for c in rtl.counters) for name in rtl.counters[0]}
    m, k, n = program.shape
    effectual_pairs = int(((acts != 0).astype(np.int64) @ (weights != 0).astype(np.int64)).sum())
    if program.mode == Mode.DENSE:
        assert total["macs_executed"] == m * k * n
        assert total["macs_gated"] == 0
    elif program.mode == Mode.GATE:
        assert total["macs_executed"] == effectual_pairs
        assert total["macs_executed"] + total["macs_gated"] == m * k * n
    else:
        assert total["macs_executed"] == effectual_pairs
        assert total["macs_executed"] + total["macs_gated"] == m * stored_entries(config,
                                                                                weights)
    assert total["cycles"] == program.predicted_cycles, "the cycle model must match the RTL"
    assert total["lane_busy"] == sum(len(lane_tokens(program, run, lane))
                                     for run in program.runs for lane in range(config.cols))
    lane_cycles = config.cols * total["cycles"]
    assert total["lane_busy"] + total["stall_decoder"] + total["stall_imbalance"] <= lane_cycles
    return total


def stored_entries(config, weights):
    """Entries the lanes hold for ``weights`` (one K-chunk): its nonzeros, and the zeros that
    pad a short column with ``column_results``; all-zero columns are not scheduled."""
    if not config.column_results:
        return np.count_nonzero(weights)
    k = weights.shape[0]
    return sum(len(csc.lane_entries(column, k, config)) for column in weights.T if column.any())


def run_cases(config, sim, cases):
    """cases: list of (acts, weights, mode). All run in one simulation."""
    programs = [compile_gemm(a, w, config, mode) for a, w, mode in cases]
    rtls = run_programs(programs, sim)
    return [check(p, a, w, r) for p, (a, w, _), r in zip(programs, cases, rtls)]


#: the ULX3S board's PEs: pipelined, multiplying in registered ECP5 DSP blocks (simulated with
#: our model of MULT18X18D)
ECP5 = {"pipelined": True, "multipliers": "ecp5_registered"}
#: the iCEBreaker's results: one memory per PE column, columns padded to `rows` tokens
COLUMN_RESULTS = {"column_results": True}
#: the ULX3S's PEs: also the activations in DP16KD with their output registers (our model)
ULX3S = {**ECP5, **COLUMN_RESULTS, "act_memories": "ecp5_outreg", "m": 64, "max_k": 256}


def random_acts(rng, m, k, zeros=0.2):
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    acts[rng.random((m, k)) < zeros] = 0
    return acts


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("side,options", [(2, {}), (4, {}), (8, {}), (4, {"pipelined": True}),
                                          (4, COLUMN_RESULTS)],
                         ids=["2", "4", "8", "4-pipelined", "4-column-results"])
def test_random_gemms_every_mode_and_sparsity(sim, side, options, rng):
    config = ArrayConfig.for_capacity(side, side, **options)
    cases = []
    for density in (1.0, 0.5, 0.1, 0.0):
        # shapes that are not multiples of the array
        m = int(rng.integers(1, 3 * side + 1)) | 1
        k = int(rng.integers(1, 48))
        n = int(rng.integers(1, 3 * side + 2))
        acts = random_acts(rng, m, k)
        weights = random_weights(rng, k, n, density=density)
        cases += [(acts, weights, mode) for mode in Mode]
    totals = run_cases(config, sim, cases)
    for (_, _, mode), total in zip(cases, totals):
        assert total["cycles"] > 0


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("side,options", [(2, {}), (8, {}), (8, ECP5), (4, COLUMN_RESULTS),
                                          (8, ULX3S)],
                         ids=["2", "8", "8-ecp5", "4-column-results", "8-ulx3s"])
def test_nasty_cases(sim, side, options, rng):
    config = ArrayConfig.for_capacity(side, side, **options)
    m, k, n = 2 * side + 1, 33, 2 * side + 3
    extreme_acts = np.full((m, k), -128, np.int8)
    cases = []
    for mode in Mode:
        cases += [
            (extreme_acts, np.full((k, n), -128, np.int8), mode),      # -128 x -128 everywhere
            (random_acts(rng, m, k), random_weights(rng, k, n, pattern="single"), mode),
            (random_acts(rng, m, k), random_weights(rng, k, n, pattern="one_column"), mode),
            (random_acts(rng, m, k), np.zeros((k, n), np.int8), mode),  # all-zero weights
            (np.zeros((m, k), np.int8), random_weights(rng, k, n), mode),  # all-zero acts
            (random_acts(rng, 1, 1), random_weights(rng, 1, 1, density=1.0), mode),  # 1x1x1
        ]
    run_cases(config, sim, cases)


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("options", [{}, ECP5, COLUMN_RESULTS],
                         ids=["plain", "ecp5", "column-results"])
def test_k_at_the_accepted_limit(sim, options, rng):
    config = ArrayConfig.for_capacity(2, 2, **options)
    k = config.max_k
    acts = np.full((3, k), -128, np.int8)
    weights = np.full((k, 3), -128, np.int8)
    weights[::3, 1] = 0
    totals = run_cases(config, sim, [(acts, weights, Mode.SKIP), (acts, weights, Mode.DENSE)])
    assert golden.gemm(acts, weights).max() == k * 128 * 128  # no overflow at the limit


def test_k_beyond_the_int32_limit_is_rejected():
    config = ArrayConfig.for_capacity(2, 2)
    k = MAX_K + 1
    with pytest.raises(GemmTooLarge, match=f"K = {k} exceeds the accepted limit of {MAX_K}"):
        compile_gemm(np.ones((1, k), np.int8), np.ones((k, 1), np.int8), config)


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("fmt", ["csc", "nm"])
def test_k_beyond_the_accumulators_is_split_into_chunks(sim, fmt, rng):
    """K = 3.5 × max_k: four K-chunks whose partial sums the host adds. -128 × -128 down one
    column of W (every other row of it for 2:4) sums beyond what one 21-bit accumulator holds."""
    config = ArrayConfig(rows=2, cols=2, fmt=fmt, max_k=40, act_depth=160, weight_depth=256,
                         pointer_depth=9, out_depth=32, acc_width=21, nm_n=2, nm_m=4)
    k = 140
    acts = random_acts(rng, 5, k)
    acts[0] = -128
    weights = random_weights(rng, k, 6, density=0.4)
    weights[:, 2] = -128
    if fmt == "nm":
        weights = fit_n_of_m(weights, 2, 4)
    for mode in (Mode.SKIP, Mode.DENSE):
        program = compile_gemm(acts, weights, config, mode)
        assert program.k_chunks == 4
        assert max(run.k for run in program.runs) <= config.max_k
        assert sum({run.k_start: run.k for run in program.runs}.values()) == k
    run_cases(config, sim, [(acts, weights, mode) for mode in Mode])
    assert golden.gemm(acts, weights)[0, 2] > 2 ** 20


@pytest.mark.parametrize("sim", simulators())
def test_gemm_split_over_several_runs(sim, rng):
    # memories far too small for the GEMM: the host splits columns and M-tiles into runs
    config = ArrayConfig(rows=2, cols=2, max_k=64, act_depth=128, weight_depth=64,
                         pointer_depth=5, out_depth=16)
    acts = random_acts(rng, 21, 50)
    weights = random_weights(rng, 50, 13, density=0.5)
    cases = [(acts, weights, mode) for mode in Mode]
    programs = [compile_gemm(a, w, config, mode) for a, w, mode in cases]
    assert all(len(p.runs) > 2 for p in programs)
    rtls = run_programs(programs, sim)
    for p, (a, w, _), r in zip(programs, cases, rtls):
        check(p, a, w, r)


def test_acceptance_speedup_at_90_percent_sparsity(rng, capsys):
    """64×256×64 on 8×8 at 90% random weight sparsity: skip < 0.25 × dense cycles; gate within
    1% of dense while its multiplier activations drop with the zeros."""
    config = ArrayConfig.for_capacity(8, 8)
    acts = random_acts(rng, 64, 256, zeros=0.0)
    weights = random_weights(rng, 256, 64, density=0.1)
    totals = dict(zip(Mode, run_cases(config, "verilator",
                                      [(acts, weights, mode) for mode in Mode])))
    dense, gate, skip = totals[Mode.DENSE], totals[Mode.GATE], totals[Mode.SKIP]
    with capsys.disabled():
        print("\n64x256x64, 8x8, 90% sparse: cycles dense {} gate {} skip {} -> speedup {:.2f}; "
              "MACs executed dense {} gate {} skip {}".format(
                  dense["cycles"], gate["cycles"], skip["cycles"],
                  dense["cycles"] / skip["cycles"], dense["macs_executed"],
                  gate["macs_executed"], skip["macs_executed"]))
    assert skip["cycles"] < 0.25 * dense["cycles"]
    assert abs(gate["cycles"] - dense["cycles"]) <= 0.01 * dense["cycles"]
    assert gate["macs_executed"] < 0.2 * dense["macs_executed"]


FORMAT_PARAMS = [("bitmap", {}), ("rle", {}), ("nm", dict(nm_n=2, nm_m=4)),
                 ("nm", dict(nm_n=1, nm_m=3)), ("bitmap", dict(bitmap_width=16)),
                 ("rle", dict(rle_run_bits=2))]


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("fmt,params", FORMAT_PARAMS,
                         ids=[f"{f}-{'-'.join(map(str, p.values()))}" for f, p in FORMAT_PARAMS])
def test_every_format_is_bit_exact(sim, fmt, params, rng):
    config = ArrayConfig.for_capacity(4, 4, fmt=fmt, **params)  # the CLI's 4x4 configuration

    def fit(weights):
        return fit_n_of_m(weights, config.nm_n, config.nm_m) if fmt == "nm" else weights

    cases = []
    for density in (1.0, 0.5, 0.1, 0.0):
        m, k, n = int(rng.integers(1, 14)), int(rng.integers(1, 96)), int(rng.integers(1, 14))
        acts = random_acts(rng, m, k)
        cases += [(acts, fit(random_weights(rng, k, n, density=density)), mode) for mode in Mode]
    m, k, n = 9, 70, 7
    for pattern in ("single", "one_column", "long_runs"):
        cases.append((random_acts(rng, m, k), fit(random_weights(rng, k, n, pattern=pattern)),
                      Mode.SKIP))
    cases.append((np.full((m, k), -128, np.int8),
                  fit(np.full((k, n), -128, np.int8)), Mode.SKIP))
    run_cases(config, sim, cases)
