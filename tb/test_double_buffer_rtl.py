"""cocotb (Verilator and Icarus): double buffering (``ArrayConfig.double_buffer``). The host
loads run i+1 into one bank and reads run i-1's results from it while run i computes in the
other; results bit-exact, every run's cycles as the model says, and the end-to-end
``total_cycles`` counter close to the longer of compute and loading."""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.rtl.runner import run_programs

from .rtl import simulators
from .weights import fit_n_of_m, random_weights

pytestmark = pytest.mark.rtl

# small memories: every GEMM below takes several runs
SMALL = ArrayConfig(rows=2, cols=2, max_k=64, act_depth=128, weight_depth=96, pointer_depth=9,
                    out_depth=8, double_buffer=True)


def _check(programs, cases, results):
    for program, (acts, weights), result in zip(programs, cases, results):
        result.check(program)
        np.testing.assert_array_equal(assemble(program, result.results),
                                      golden.gemm(acts, weights))


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("fmt", ["csc", "bitmap", "rle", "nm"])
def test_double_buffered_runs_are_bit_exact(sim, fmt, rng):
    config = SMALL.with_(fmt=fmt)
    programs, cases = [], []
    for m, k, n, mode in [(9, 24, 7, Mode.SKIP), (3, 64, 3, Mode.DENSE), (12, 40, 5, Mode.GATE),
                          (7, 64, 9, Mode.SKIP)]:
        acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
        weights = random_weights(rng, k, n, density=0.4)
        if fmt == "nm":
            weights = fit_n_of_m(weights, config.nm_n, config.nm_m)
        if (m, k) == (7, 64):
            # -128 × -128 everywhere, K at the limit, every nonzero in one column
            acts[:] = -128
            weights = np.zeros((k, n), np.int8)
            weights[:, 2] = -128
            if fmt == "nm":
                weights = fit_n_of_m(weights, config.nm_n, config.nm_m)
        programs.append(compile_gemm(acts, weights, config, mode))
        cases.append((acts, weights))
    results = run_programs(programs, sim)
    _check(programs, cases, results)
    for program, result in zip(programs, results):
        compute, load = result.total("cycles"), result.total("load_cycles")
        readback = sum(r.m_tiles * len(cols) for r in program.runs for cols in r.lane_columns)
        assert result.readback_cycles == readback
        # never longer than doing it all in sequence, never shorter than the longer part
        # (result.check compared it with the schedule's model, cycle for cycle)
        assert max(compute, load) < result.total_cycles <= compute + load + readback + \
            len(program.runs)
        if len(program.runs) > 1:
            assert result.total_cycles < compute + load + readback


@pytest.mark.slow
@pytest.mark.parametrize("shape, sparsity", [((2048, 256, 64), 0.9), ((1024, 200, 96), 0.7)])
def test_end_to_end_within_15_percent_of_the_longer_part(shape, sparsity):
    """The issue's acceptance: on the default 8×8 array, multi-run GEMMs take at most 1.15 ×
    max(compute, load) from the first load beat to the last result read."""
    m, k, n = shape
    rng = np.random.default_rng(0)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    weights = random_weights(rng, k, n, density=1 - sparsity)
    program = compile_gemm(acts, weights, ArrayConfig(double_buffer=True), Mode.SKIP)
    (result,) = run_programs([program], "verilator")
    _check([program], [(acts, weights)], [result])
    compute, load = result.total("cycles"), result.total("load_cycles")
    assert len(program.runs) > 1
    assert result.total_cycles <= 1.15 * max(compute, load), (result.total_cycles, compute, load)


def test_gemm_reports_end_to_end(rng):
    """`zeroskip.gemm(..., double_buffer=True)`: the report's end-to-end figures and sources."""
    import zeroskip
    acts = rng.integers(-128, 128, (20, 24)).astype(np.int8)
    weights = random_weights(rng, 24, 9, density=0.2)
    result, report = zeroskip.gemm(acts, weights, rows=2, cols=2, double_buffer=True)
    np.testing.assert_array_equal(result, golden.gemm(acts, weights))
    assert report["total_cycles"] > max(report["cycles"], report["load_cycles"])
    # every result word read once: M-tiles × N words of the two PE columns' memories
    assert report["readback_cycles"] == -(-20 // 2) * 9
    assert report["dense_total_cycles"] > report["total_cycles"]
    assert report["speedup_end_to_end"] == round(report["dense_total_cycles"] /
                                                 report["total_cycles"], 3)
    assert {report["provenance"][name] for name in ("total_cycles", "readback_cycles",
                                                     "dense_total_cycles")} == \
        {"rtl", "host", "model"}


@pytest.mark.parametrize("argv, message", [
    (["gemm", "--board", "icebreaker", "--double-buffer"], "--double-buffer"),
    (["verilog", "--bus", "axi", "--double-buffer"], "--double-buffer is not supported"),
])
def test_double_buffer_bad_combinations(tmp_path, capsys, argv, message):
    from zeroskip.cli import main
    acts, weights = tmp_path / "a.npy", tmp_path / "w.npy"
    np.save(acts, np.ones((2, 2), np.int8))
    np.save(weights, np.ones((2, 2), np.int8))
    if argv[0] == "gemm":
        argv = argv + ["--acts", str(acts), "--weights", str(weights), "--out",
                       str(tmp_path / "c.npy")]
    else:
        argv = argv + ["-o", str(tmp_path / "x.v")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
