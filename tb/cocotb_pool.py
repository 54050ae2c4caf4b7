"""cocotb testbench of the pooling unit (tb/test_pool.py's ``PoolBench``): per case, the
source feature map written, the descriptor set and ``start`` pulsed, every destination write
recorded with the cycles from start to ``done``. Inputs change on falling edges only."""

import os
import pickle

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from zeroskip.sim.rtl.harness import write_beats


async def pool(dut, case):
    await write_beats(dut, "src_write", case["src_beats"])
    dut.layer.value = case["layer"]
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    writes, cycles = [], 1
    while not dut.done.value:
        if dut.dst__en.value:
            writes.append((int(dut.dst__addr.value), dut.dst__data.value.to_signed()))
        await FallingEdge(dut.clk)
        cycles += 1
        if cycles > case["timeout"]:
            raise AssertionError(f"no done after {cycles} cycles")
    return writes, cycles


@cocotb.test()
async def pool_cases(dut):
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.src_write__en.value = 0
    dut.start.value = 0
    dut.layer.value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    results = [await pool(dut, case) for case in job["cases"]]
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump(results, f)
