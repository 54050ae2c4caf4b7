"""Amaranth-simulator unit tests of the processing element."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.config import Mode
from zeroskip.hw.layouts import token_layout
from zeroskip.hw.pe import ProcessingElement

from .conftest import small_config


def run_pe(config, row, mode, acts, tokens):
    """Feed ``tokens`` (dicts) to a PE with ``acts`` in its buffer; returns its result memory
    and the per-token (executed, gated) flags."""
    dut = ProcessingElement(config, row)
    layout = token_layout(config)
    flags = []
    results = {}

    async def testbench(ctx):
        ctx.set(dut.mode, int(mode))
        for addr, value in enumerate(acts):
            ctx.set(dut.act_write.en, 1)
            ctx.set(dut.act_write.addr, addr)
            ctx.set(dut.act_write.data, int(value))
            await ctx.tick()
        ctx.set(dut.act_write.en, 0)
        for token in tokens + [None] * 4:
            if token is None:
                ctx.set(dut.i.valid, 0)
            else:
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, layout.const(token))
            await ctx.tick()
            flags.append((ctx.get(dut.executed), ctx.get(dut.gated)))
        for addr in range(config.out_depth):
            ctx.set(dut.result_read.addr, addr)
            await ctx.tick()
            results[addr] = ctx.get(dut.result_read.data)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    # the flags are registered: a token's come out one cycle after it reached stage 1
    return results, flags[1:len(tokens) + 1]


def column_tokens(k_rows, weights, out_addr, rows=2, base=0):
    nz = [(k, w) for k, w in zip(k_rows, weights)]
    return [{"act_addr": base + k, "weight": w, "first": int(i == 0),
             "last": int(i == len(nz) - 1), "bubble": 0, "out_addr": out_addr, "rows": rows}
            for i, (k, w) in enumerate(nz)]


@pytest.mark.parametrize("mode", list(Mode))
def test_dot_products_back_to_back(mode, rng):
    config = small_config()
    acts = rng.integers(-128, 128, 16)
    acts[3] = 0
    tokens, expected = [], {}
    for out_addr in range(5):
        k_rows = sorted(rng.choice(16, size=rng.integers(1, 8), replace=False))
        weights = [int(rng.integers(-128, 128)) for _ in k_rows]
        tokens += column_tokens(k_rows, weights, out_addr)
        expected[out_addr] = int(sum(int(acts[k]) * w for k, w in zip(k_rows, weights)))
    results, _ = run_pe(config, 0, mode, acts, tokens)
    assert {a: results[a] for a in expected} == expected


def test_extremes_do_not_overflow():
    config = small_config()
    acts = [-128] * 32
    tokens = column_tokens(range(32), [-128] * 32, 0)
    results, _ = run_pe(config, 0, Mode.DENSE, acts, tokens)
    assert results[0] == 32 * 128 * 128


def test_gating_and_idle_rows():
    config = small_config()
    acts = [0, 5, 7, 0]
    tokens = column_tokens([0, 1, 2, 3], [3, 0, 2, 4], 0)
    _, dense = run_pe(config, 0, Mode.DENSE, acts, tokens)
    _, gate = run_pe(config, 0, Mode.GATE, acts, tokens)
    assert [e for e, g in dense] == [1, 1, 1, 1]
    assert gate == [(0, 1), (0, 1), (1, 0), (0, 1)]
    # row 1 of a tile with only one valid row never fires
    idle = column_tokens([1, 2], [3, 3], 0, rows=1)
    results, flags = run_pe(config, 1, Mode.DENSE, acts, idle)
    assert all(e == 0 and g == 0 for e, g in flags)


def test_bubble_writes_zero():
    config = small_config()
    tokens = column_tokens([1], [9], 0) + [
        {"act_addr": 0, "weight": 0, "first": 1, "last": 1, "bubble": 1, "out_addr": 1,
         "rows": 2}]
    results, flags = run_pe(config, 0, Mode.SKIP, [1, 2, 3, 4], tokens)
    assert results[0] == 18 and results[1] == 0


def test_logic_multiplier_is_exact_for_every_int8_pair():
    """The shift-and-add multiplier (PEs beyond an FPGA's DSP count) over all 65,536 pairs."""
    from amaranth.hdl import Module, Signal, signed

    from zeroskip.hw.pe import _shift_add_product

    a, b = Signal(signed(8)), Signal(signed(8))
    m = Module()
    product = Signal(signed(16))
    m.d.comb += product.eq(_shift_add_product(a, b))
    values = np.arange(-128, 128)
    got = np.zeros((256, 256), np.int64)

    async def testbench(ctx):
        for i, x in enumerate(values):
            ctx.set(a, int(x))
            for j, y in enumerate(values):
                ctx.set(b, int(y))
                got[i, j] = ctx.get(product)

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    np.testing.assert_array_equal(got, np.outer(values, values))
