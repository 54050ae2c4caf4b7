"""cocotb testbench of the PE array alone: activations loaded, every column driven with its own
token stream and its own random idle cycles, result memories read back."""

import os
import pickle
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from zeroskip.sim.rtl.harness import read_column, write_beats


async def drive_column(dut, column, tokens, idle_probability, seed):
    """Drive one column's token stream, idling at random (the array is always ready)."""
    rand = random.Random(seed)
    valid = getattr(dut, f"columns__{column}__valid")
    payload = getattr(dut, f"columns__{column}__payload")
    for token in tokens:
        while rand.random() < idle_probability:
            valid.value = 0
            await FallingEdge(dut.clk)
        valid.value, payload.value = 1, token
        await FallingEdge(dut.clk)
    valid.value = 0


@cocotb.test()
async def array_results(dut):
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    columns = len(job["columns"])
    for c in range(columns):
        getattr(dut, f"columns__{c}__valid").value = 0
    dut.act_write__en.value = 0
    dut.mode.value = job["mode"]
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)

    await write_beats(dut, "act_write", job["act_beats"])

    drivers = [cocotb.start_soon(drive_column(dut, c, tokens, job["idle_probability"], c))
               for c, tokens in enumerate(job["columns"])]
    for driver in drivers:
        await driver
    for _ in range(job["latency"]):
        await FallingEdge(dut.clk)

    results = [await read_column(dut, c, depth) for c, depth in enumerate(job["depths"])]
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump(results, f)
