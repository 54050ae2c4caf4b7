"""cocotb testbench of the gather unit (:mod:`zeroskip.hw.engine.gather`): per case, the
feature map written through ``fm_write``, the descriptor set and ``start`` pulsed (and pulsed
again mid-gather with another descriptor, which must be ignored), every ``act_write`` beat
recorded with the cycles from start to ``done``. Inputs change on falling edges only."""

import os
import pickle

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from zeroskip.sim.rtl.harness import write_beats


async def gather(dut, case):
    """One case: its beats ``[(address, data word)]`` and cycles from start to done."""
    await write_beats(dut, "fm_write", case["fm_beats"])
    dut.layer.value = case["layer"]
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    beats, cycles = [], 1
    while not dut.done.value:
        if not dut.busy.value:
            raise AssertionError(f"busy fell before done, {cycles} cycles after start")
        if cycles == case.get("restart_at"):
            # a start while busy, with another layer: ignored
            dut.layer.value, dut.start.value = case["other_layer"], 1
        else:
            dut.start.value = 0
        if dut.act_write__en.value:
            beats.append((int(dut.act_write__addr.value), dut.act_write__data.value.to_unsigned()))
        await FallingEdge(dut.clk)
        cycles += 1
        if cycles > case["timeout"]:
            raise AssertionError(f"no done after {cycles} cycles")
    dut.start.value = 0
    if dut.busy.value:
        raise AssertionError("busy with done")
    return beats, cycles


@cocotb.test()
async def gather_cases(dut):
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.fm_write__en.value = 0
    dut.start.value = 0
    dut.layer.value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    results = [await gather(dut, case) for case in job["cases"]]
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump(results, f)
