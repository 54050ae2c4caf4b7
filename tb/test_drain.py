"""The engine's drain (:mod:`zeroskip.hw.engine.drain`) in the Amaranth simulator, against a
model of the accelerator's result port: every result of a real row streamed once, with its
parameter address and its HWC map address, lane by lane, words in address order; a stalled
stream loses nothing; the cycles (two for a lane's first word, one for every other, one per
element, and the result port's latency and a cycle to leave the queue at the end); the same
with column result memories (a result per word, read two cycles after its address)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.hw.engine.descriptor import EngineParams, Step
from zeroskip.hw.engine.drain import Drain

from .test_engine import CONFIG, PARAMS

#: the ULX3S's kind of array: column result memories, pipelined (a read latency of 2)
COLUMN_PARAMS = EngineParams(CONFIG.with_(column_results=True, pipelined=True, out_depth=64),
                             fm_depth=1024, aux_depth=1024, param_depth=256, colmap_depth=256,
                             program_depth=16)


def _step(lane_columns, m_tiles, rows_last, *, param_base=5, colmap_base=3, stride=3,
          channels=20, pixel_first=100):
    return {"kind": Step.GEMM, "job": {"mode": 2, "m_tiles": m_tiles, "k": 8,
                                      "rows_last": rows_last,
                                      "lane_columns": [len(c) for c in lane_columns]},
            "param_base": param_base, "colmap_base": colmap_base, "lane_stride": stride,
            "channels": channels, "tile_step": CONFIG.rows * channels,
            "pixel_first": pixel_first}


def simulate(lane_columns, m_tiles, rows_last, results, *, ready_p=1.0, seed=0,
             params=PARAMS, **fields):
    """Drain one run; ``results[c][w][r]`` is PE column ``c``'s result of row ``r`` for its
    ``w``-th output (at address ``w``, or ``w * rows + r`` with column result memories).
    Returns the elements ``(acc, channel, tag)`` and the cycles from start to done."""
    config = params.config
    latency = config.result_read_latency
    if config.column_results:
        results = [[[value] for word in words for value in word] for words in results]
    dut = Drain(params)
    step = _step(lane_columns, m_tiles, rows_last, **fields)
    stride, base = step["lane_stride"], step["colmap_base"]
    colmap = {base + c * stride + j: n for c, cols in enumerate(lane_columns)
              for j, n in enumerate(cols)}
    rng = np.random.default_rng(seed)
    out = {}

    async def bench(ctx):
        for addr, n in colmap.items():
            ctx.set(dut.colmap_write.en, 1)
            ctx.set(dut.colmap_write.addr, addr)
            ctx.set(dut.colmap_write.data, n)
            await ctx.tick()
        ctx.set(dut.colmap_write.en, 0)
        ctx.set(dut.step, dut.step.shape().const(step))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        elements, cycles = [], 1
        addresses = [0] * (latency - 1)
        while not ctx.get(dut.done):
            # the result port (hw/array.py): the word at the address of `latency` cycles
            # before, from the column selected in the previous cycle
            addresses.append(ctx.get(dut.result_read.addr))
            address, column = addresses.pop(0), ctx.get(dut.result_column)
            ready = rng.random() < ready_p
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                payload = ctx.get(dut.o.payload)
                elements.append((payload.acc, payload.channel, payload.tag))
            await ctx.tick()
            words = results[column] if column < len(results) else []
            word = words[address] if address < len(words) else [0] * config.result_rows
            ctx.set(dut.result_read.data, word)
            cycles += 1
            assert cycles < 10_000
        out["elements"], out["cycles"] = elements, cycles

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out["elements"], out["cycles"]


def expected(lane_columns, m_tiles, rows_last, results, param_base=5, channels=20,
             pixel_first=100):
    rows = CONFIG.rows
    want = []
    for c, cols in enumerate(lane_columns):
        for t in range(m_tiles):
            for j, n in enumerate(cols):
                for r in range(rows_last if t == m_tiles - 1 else rows):
                    acc = results[c][t * len(cols) + j][r]
                    want.append((acc, param_base + n,
                                 (pixel_first + (t * rows + r) * channels + n) |
                                 (n << PARAMS.map_addr_bits)))
    return want


def _case(rng, m_tiles=3):
    lanes = [[0, 9, 17], [3], [], [5, 6], [1, 2, 19], [4], [], [11, 12]]
    results = [[[int(v) for v in rng.integers(-2 ** 31, 2 ** 31, CONFIG.rows)]
                for _ in range(m_tiles * len(cols))] for cols in lanes]
    return lanes, results


@pytest.mark.parametrize("params", [PARAMS, COLUMN_PARAMS], ids=["words", "column_results"])
def test_every_real_result_once_with_its_channel_and_address(rng, params):
    lanes, results = _case(rng)
    elements, cycles = simulate(lanes, 3, 5, results, params=params)
    assert elements == expected(lanes, 3, 5, results)
    words = sum(3 * len(cols) for cols in lanes)
    lanes_used = sum(1 for cols in lanes if cols)
    # a lane a cycle (empty or not); its first word two more, every other word one; an
    # element a cycle; the end (a cycle to find no lane left, and start's), the last read's
    # latency and its cycle in the queue
    assert cycles == (8 + 2 * lanes_used + (words - lanes_used) + len(elements) + 2 +
                      params.config.result_read_latency + 1)


@pytest.mark.parametrize("params", [PARAMS, COLUMN_PARAMS], ids=["words", "column_results"])
@pytest.mark.parametrize("ready_p", [0.3, 0.7])
def test_a_stalled_stream_loses_nothing(rng, ready_p, params):
    lanes, results = _case(rng, m_tiles=2)
    elements, _ = simulate(lanes, 2, 8, results, ready_p=ready_p, seed=int(ready_p * 10),
                           params=params)
    assert elements == expected(lanes, 2, 8, results)
