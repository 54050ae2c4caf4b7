"""Amaranth-simulator tests of the CSC decoder lane against its NumPy specification
(:func:`zeroskip.sim.compiler.lane_tokens`), under random backpressure."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.config import Mode
from zeroskip.hw.decoders import CSCDecoder
from zeroskip.sim.compiler import compile_gemm, lane_tokens

from .conftest import small_config
from .weights import random_weights

TOKEN_FIELDS = ("act_addr", "weight", "first", "last", "bubble", "out_addr", "rows")


def simulate_lane(config, run, lane, mode, k, ready_pattern):
    """Run one decoder lane; returns (tokens, cycles from start to the last token)."""
    dut = CSCDecoder(config)
    out = []
    cycles = []

    async def testbench(ctx):
        for addr, (row, value) in enumerate(zip(run.lane_rows[lane], run.lane_values[lane])):
            ctx.set(dut.entry_write.en, 1)
            ctx.set(dut.entry_write.addr, addr)
            ctx.set(dut.entry_write.data, {"row": int(row), "value": int(value)})
            await ctx.tick()
        ctx.set(dut.entry_write.en, 0)
        for addr, pointer in enumerate(run.lane_pointers[lane]):
            ctx.set(dut.pointer_write.en, 1)
            ctx.set(dut.pointer_write.addr, addr)
            ctx.set(dut.pointer_write.data, int(pointer))
            await ctx.tick()
        ctx.set(dut.pointer_write.en, 0)
        ctx.set(dut.mode, int(mode))
        ctx.set(dut.m_tiles, run.m_tiles)
        ctx.set(dut.k, k)
        ctx.set(dut.rows_last, run.rows_last)
        ctx.set(dut.columns, len(run.lane_columns[lane]))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
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


@pytest.mark.parametrize("mode", [Mode.SKIP, Mode.DENSE])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stall", ["none", "random"])
def test_lane_stream_matches_specification(case, mode, stall, rng):
    config = small_config(rows=2, cols=2)
    m, k, n = 5, 13, 7
    weights = random_weights(rng, k, n, **CASES[case])
    acts = np.zeros((m, k), np.int8)
    program = compile_gemm(acts, weights, config, mode, drop_empty_columns=False)
    (run,) = program.runs
    stalls = rng.random(100_000) < 0.3
    pattern = (lambda c: 1) if stall == "none" else (lambda c: int(not stalls[c]))
    for lane in range(config.cols):
        expected = lane_tokens(run, lane, mode, k, config.rows)
        got, cycles = simulate_lane(config, run, lane, mode, k, pattern)
        assert got == expected
        if stall == "none":
            # one token per cycle, sustained: the first token needs one cycle to be registered
            assert cycles == len(expected) + (1 if expected else 0)
