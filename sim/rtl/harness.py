"""cocotb harness: runs a compiled program on the accelerator's generated Verilog.

The runner (:mod:`zeroskip.sim.rtl.runner`) pickles the memory images as port beats into the file
named by ``ZEROSKIP_JOB``; this test drives them into the RTL, pulses start, waits for done
while the RTL runs on its own, reads the counters and result memories and pickles them into
``ZEROSKIP_RESULT``. Inputs change only on falling clock edges, so there is no race with the
rising edge on any simulator.
"""

import os
import pickle
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout

CLOCK_NS = 10


async def write_beats(dut, port, beats, *, masked=False):
    en = getattr(dut, f"{port}__en")
    addr = getattr(dut, f"{port}__addr")
    data = getattr(dut, f"{port}__data")
    mask = getattr(dut, f"{port}__mask") if masked else None
    for beat in beats:
        if masked:
            address, value, lanes = beat
            mask.value = lanes
        else:
            address, value = beat
        addr.value = address
        data.value = value
        en.value = 1
        await FallingEdge(dut.clk)
    en.value = 0


async def read_column(dut, column, depth, base=0, latency=1):
    """Read ``depth`` result words from PE column ``column`` (from address ``base``), one
    address per ``latency`` clocks (the word at an address set on a falling edge is on the
    port ``latency`` falling edges later: ``config.result_read_latency``)."""
    dut.result_column.value = column
    words = []
    for address in range(base, base + depth):
        dut.result_read__addr.value = address
        for _ in range(latency):
            await FallingEdge(dut.clk)
        words.append(dut.result_read__data.value.to_unsigned())
    return words


async def _load(dut, run):
    """A run's operands, every memory's port at once (they are independent)."""
    writes = [cocotb.start_soon(write_beats(dut, "act_write", run["act_beats"]))]
    writes += [cocotb.start_soon(write_beats(dut, f"{name}_write", beats, masked=True))
               for name, beats in run["memory_beats"].items()]
    for write in writes:
        await write


async def _read_results(dut, run):
    return [await read_column(dut, c, depth, run["read_base"], run["read_latency"])
            for c, depth in enumerate(run["jobs"])]


async def _start_and_wait(dut, run):
    """Pulse start with the run's job, wait for done; ``(counters, status, wall seconds)``."""
    dut.job.value = run["job"]
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    started = time.perf_counter()
    # The RTL runs on its own; Python only waits (a generous bound catches a hang).
    await with_timeout(RisingEdge(dut.done), run["timeout_cycles"] * CLOCK_NS, "ns")
    wall = time.perf_counter() - started
    await FallingEdge(dut.clk)
    return dut.counters.value.to_unsigned(), dut.status.value.to_unsigned(), wall


async def _run_double_buffered(dut, runs):
    """One program's runs, overlapped: while run i computes in one bank, run i+1's operands
    go into the other and run i-1's results come out of it. The accelerator is reset first,
    so its total_cycles counter times this program alone."""
    await reset(dut)
    outputs = []
    await _load(dut, runs[0])
    previous = None   # (output, run) whose results are still to be read
    for i, run in enumerate(runs):
        side = []
        if i + 1 < len(runs):
            side.append(cocotb.start_soon(_load(dut, runs[i + 1])))
        if previous is not None:
            side.append(cocotb.start_soon(_read_results(dut, previous[1])))
        counters, status, wall = await _start_and_wait(dut, run)
        for task in side:
            result = await task
            if result is not None:
                previous[0]["results"] = result
        output = {"counters": counters, "status": status, "results": [], "wall_s": wall}
        outputs.append(output)
        if status:
            # a lane stopped on malformed memory contents: its results are not read, and the
            # accelerator is reset (memories and the next run's operands are kept)
            await reset(dut)
            previous = None
        else:
            previous = (output, run)
    if previous is not None:
        previous[0]["results"] = await _read_results(dut, previous[1])
    outputs[-1]["final_counters"] = dut.counters.value.to_unsigned()
    return outputs


async def reset(dut):
    """Hold ``rst`` for two cycles and let one more pass: memories keep their contents."""
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)


@cocotb.test()
async def run_program(dut):
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.start.value = 0
    dut.act_write__en.value = 0
    for name in job["runs"][0]["memory_beats"] if job["runs"] else ():
        getattr(dut, f"{name}_write__en").value = 0
    await reset(dut)
    # a resident network's weights, loaded once: its runs load activations only
    for name, beats in job.get("preload", {}).items():
        await write_beats(dut, f"{name}_write", beats, masked=True)

    outputs = []
    if job.get("double_buffer"):
        programs = {}
        for run in job["runs"]:
            programs.setdefault(run["program"], []).append(run)
        for runs in programs.values():
            outputs += await _run_double_buffered(dut, runs)
        with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
            pickle.dump({"runs": outputs}, f)
        return
    for run in job["runs"]:
        await write_beats(dut, "act_write", run["act_beats"])
        for name, beats in run["memory_beats"].items():
            await write_beats(dut, f"{name}_write", beats, masked=True)

        dut.job.value = run["job"]
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        started = time.perf_counter()
        if run.get("abort_after") is not None:
            # reset in the middle of the job: nothing of it may survive into the next one
            await ClockCycles(dut.clk, run["abort_after"])
            await FallingEdge(dut.clk)
            await reset(dut)
            outputs.append({"aborted": True, "busy_before_reset": True})
            continue
        # The RTL runs on its own; Python only waits (a generous bound catches a hang).
        await with_timeout(RisingEdge(dut.done), run["timeout_cycles"] * CLOCK_NS, "ns")
        wall = time.perf_counter() - started
        await FallingEdge(dut.clk)

        counters = dut.counters.value.to_unsigned()
        status = dut.status.value.to_unsigned()
        # a faulted run's results are invalid (and partly never written): do not read them
        results = [[] if status else await read_column(dut, c, depth,
                                                       latency=run["read_latency"])
                   for c, depth in enumerate(run["jobs"])]
        outputs.append({"counters": counters, "status": status, "results": results,
                        "wall_s": wall})
        if status:
            # a lane stopped on malformed memory contents: reset before the next job
            await reset(dut)

    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump({"runs": outputs}, f)
