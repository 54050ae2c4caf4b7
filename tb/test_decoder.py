"""Amaranth-simulator tests of the CSC decoder lane against its NumPy specification
(:func:`zeroskip.sim.compiler.lane_tokens`), under random backpressure."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.config import Mode
from zeroskip.hw.decoders import decoder_for
from zeroskip.sim.compiler import compile_gemm, lane_tokens

from .conftest import small_config
from .weights import fit_n_of_m, random_weights

TOKEN_FIELDS = ("act_addr", "weight", "first", "last", "bubble", "out_addr", "rows")


def simulate_lane(program, run, lane, ready_pattern, after_start=None):
    """Run one decoder lane; returns (tokens, cycles from start to the last token).
    ``after_start``: job inputs (by port name) to change in the cycle after start."""
    config, mode = program.config, program.mode
    _, k, _ = program.shape
    dut = decoder_for(config)
    out = []
    cycles = []

    async def testbench(ctx):
        for name in dut.memories(config):
            port = getattr(dut, f"{name}_write")
            for addr, value in enumerate(run.lane_images[lane][name]):
                ctx.set(port.en, 1)
                ctx.set(port.addr, addr)
                ctx.set(port.data, value)
                await ctx.tick()
            ctx.set(port.en, 0)
        ctx.set(dut.mode, int(mode))
        ctx.set(dut.m_tiles, run.m_tiles)
        ctx.set(dut.k, k)
        ctx.set(dut.rows_last, run.rows_last)
        ctx.set(dut.columns, len(run.lane_columns[lane]))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for name, value in (after_start or {}).items():
            ctx.set(getattr(dut, name), value)
        cycle = 0
        while ctx.get(dut.busy):
            ready = ready_pattern(cycle)
            ctx.set(dut.tokens.ready, ready)
            if ready and ctx.get(dut.tokens.valid):
                token = ctx.get(dut.tokens.payload)
                out.append({name: int(getattr(token, name)) for name in TOKEN_FIELDS})
                cycles.append(cycle)
            await ctx.tick()
            cycle += 1
            assert cycle < 10_000, "decoder hung"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return out, (cycles[-1] + 1 if cycles else 0)


CASES = {
    "random50": dict(density=0.5),
    "random90": dict(density=0.1),
    "all_zero": dict(density=0.0),
    "dense": dict(density=1.0),
    "single_nonzero": dict(pattern="single"),
    "one_column": dict(pattern="one_column"),
    "long_runs": dict(pattern="long_runs"),
}
FORMAT_CONFIGS = {
    "csc": {}, "bitmap": dict(bitmap_width=8), "rle": dict(rle_run_bits=2),
    "nm": dict(nm_n=2, nm_m=4), "nm1:3": dict(nm_n=1, nm_m=3),
}


def format_weights(fmt, config, rng, k, n, case):
    """Weights for ``case`` that the format accepts (N:M keeps at most N per group)."""
    weights = random_weights(rng, k, n, **CASES[case])
    if config.fmt == "nm":
        weights = fit_n_of_m(weights, config.nm_n, config.nm_m)
    return weights


@pytest.mark.parametrize("fmt", FORMAT_CONFIGS)
@pytest.mark.parametrize("mode", [Mode.SKIP, Mode.DENSE])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stall", ["none", "random"])
def test_lane_stream_matches_specification(fmt, case, mode, stall, rng):
    params = FORMAT_CONFIGS[fmt]
    config = small_config(rows=2, cols=2, fmt=fmt.split("1:")[0], mask_depth=64, max_k=64,
                          **params)
    m, k, n = 5, 37, 7
    weights = format_weights(fmt, config, rng, k, n, case)
    acts = np.zeros((m, k), np.int8)
    program = compile_gemm(acts, weights, config, mode, drop_empty_columns=False)
    (run,) = program.runs
    stalls = rng.random(100_000) < 0.3
    pattern = (lambda c: 1) if stall == "none" else (lambda c: int(not stalls[c]))
    for lane in range(config.cols):
        expected = lane_tokens(program, run, lane)
        got, cycles = simulate_lane(program, run, lane, pattern)
        assert got == expected
        if stall == "none" and expected:
            # no slower than the lane model (exact cycle counts are checked on the whole
            # accelerator); the first token needs one cycle to be registered
            assert cycles <= run.tokens[lane] + 1


def _settings_scrambled_after_start(config):
    """Job inputs that differ from the run's as soon as it has started: the host holds them, but
    the lane must not depend on that (it latches them at start)."""
    return {"mode": int(Mode.GATE), "m_tiles": 1, "k": config.max_k, "rows_last": 1,
            "columns": 1}


@pytest.mark.parametrize("fmt", FORMAT_CONFIGS)
@pytest.mark.parametrize("mode", [Mode.SKIP, Mode.DENSE])
def test_lane_ignores_job_inputs_after_start(fmt, mode, rng):
    """The token stream depends only on the settings at start: changing the job inputs (K
    above all, which an N:M cursor once read unlatched) during the run changes nothing."""
    config = small_config(rows=2, cols=2, fmt=fmt.split("1:")[0], mask_depth=64, max_k=64,
                          **FORMAT_CONFIGS[fmt])
    m, k, n = 5, 37, 7
    weights = format_weights(fmt, config, rng, k, n, "random50")
    program = compile_gemm(np.zeros((m, k), np.int8), weights, config, mode,
                           drop_empty_columns=False)
    (run,) = program.runs
    for lane in range(config.cols):
        got, _ = simulate_lane(program, run, lane, lambda c: 1,
                               after_start=_settings_scrambled_after_start(config))
        assert got == lane_tokens(program, run, lane)


@pytest.mark.parametrize("nm", ["1:3", "2:3", "2:5", "3:6", "1:7"])
def test_nm_lane_has_no_divider(nm):
    """Entries per N:M column are ceil(K / M) * N: for M not a power of two that is a divider,
    which the lane must not build (it finds a column's end by walking its groups)."""
    from amaranth.back import rtlil

    n, group_size = (int(x) for x in nm.split(":"))
    config = small_config(rows=2, cols=1, fmt="nm", max_k=64, nm_n=n, nm_m=group_size)
    text = rtlil.convert(decoder_for(config), name="lane")
    cells = {line.split()[1] for line in text.splitlines() if line.strip().startswith("cell ")}
    assert not cells & {"$div", "$mod", "$divfloor", "$modfloor"}, sorted(cells)
