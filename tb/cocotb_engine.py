"""cocotb testbench of the network engine (:mod:`zeroskip.hw.engine.engine`): per network, the
host's loads (lane memories, parameter memory, column map, program) once, then per input the
input map written, ``start`` pulsed, ``done`` awaited, the counters and the output map read.
A case may reset the engine in the middle of an inference first (the next one must still be
exact: nothing but the memories survives a reset). Inputs change on falling edges only."""

import os
import pickle

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time

from zeroskip.sim.rtl.harness import reset, write_beats

CLOCK_NS = 10
LOAD_PORTS = ("program_write", "params_write", "colmap_write", "fm_write")


async def _infer(dut, network, beats):
    """One inference: ``(output words, counters, fault, cycles seen from start to done)``."""
    await write_beats(dut, "fm_write", beats)
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    started = get_sim_time("ns")
    # the RTL runs on its own; Python only waits (a generous bound catches a hang)
    if not dut.done.value:
        try:
            await with_timeout(RisingEdge(dut.done), network["timeout"] * CLOCK_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(f"no done after {network['timeout']} cycles") from None
        await FallingEdge(dut.clk)
    cycles = round((get_sim_time("ns") - started) / CLOCK_NS) + 1
    if dut.busy.value:
        raise AssertionError("busy with done")
    counters = dut.counters.value.to_unsigned()
    fault = int(dut.fault.value)
    words = []
    for addr in range(network["output_size"]):
        dut.out_read__addr.value = addr
        await FallingEdge(dut.clk)
        words.append(dut.out_read__data.value.to_unsigned())
    return words, counters, fault, cycles


@cocotb.test()
async def engine_networks(dut):
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.start.value = 0
    for port in LOAD_PORTS + (("lut_write",) if job["lut"] else ()):
        getattr(dut, f"{port}__en").value = 0
    for name in job["networks"][0]["beats"]["lanes"]:
        getattr(dut, f"{name}_write__en").value = 0
    dut.out_read__addr.value = 0
    await reset(dut)
    results = []
    for network in job["networks"]:
        beats = network["beats"]
        for name, lane_beats in beats["lanes"].items():
            await write_beats(dut, f"{name}_write", lane_beats, masked=True)
        await write_beats(dut, "program_write", beats["program"])
        await write_beats(dut, "params_write", beats["params"])
        await write_beats(dut, "colmap_write", beats["colmap"])
        if beats["lut"]:
            await write_beats(dut, "lut_write", beats["lut"])
        outputs = []
        for index, inputs in enumerate(network["inputs"]):
            if index == network.get("reset_before", -1):
                # an inference abandoned half-way by a reset
                await write_beats(dut, "fm_write", inputs)
                dut.start.value = 1
                await FallingEdge(dut.clk)
                dut.start.value = 0
                await ClockCycles(dut.clk, network["reset_after"])
                await FallingEdge(dut.clk)
                if not dut.busy.value:
                    raise AssertionError("the engine was not busy when reset")
                await reset(dut)
            outputs.append(await _infer(dut, network, inputs))
        results.append(outputs)
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump(results, f)
