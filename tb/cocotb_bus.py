"""cocotb testbenches of the bus tops (:mod:`zeroskip.hw.bus.tops`), driven by verification
IP, with random idle cycles and backpressure on every channel.

``axi_top``: cocotbext-axi's ``AxiLiteMaster`` on ``s_axil_*`` and ``AxiStreamSource`` /
``AxiStreamSink`` on ``s_axis_*`` / ``m_axis_*``. The host runtime's
:class:`~zeroskip.platforms.runtime.BoardLink` runs GEMMs through the streams as it does through a
board's UART; then the same GEMMs run with their jobs started through the registers; a bad frame
and a misplaced TLAST are flagged in STATUS; a reset in the middle of a frame leaves a core that
works.

``wishbone_top``: a small Wishbone B4 pipelined master (cocotbext-wishbone is not on PyPI) and
:class:`~zeroskip.platforms.runtime.RegisterDriver`: operands, runs and results with loads and
stores alone; a reset in the middle of a run.
"""

import os
import pickle
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from zeroskip.hw.bus.regmap import ID_VALUE, version_word
from zeroskip.hw.layouts import SINCE_RESET, job_layout, pack
from zeroskip.hw.link.protocol import REPLY_SYNC, REQUEST_SYNC, Command
from zeroskip.platforms.runtime import BoardLink, BusRegisters, RegisterDriver, frame

CLOCK_NS = 10


def _pauses(rng, probability):
    """A cocotbext-axi pause generator: idle on a fraction ``probability`` of cycles."""
    while True:
        yield rng.random() < probability


async def _start(dut, job):
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)


def _save(result):
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump(result, f)


def _load():
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        return pickle.load(f)


class AxisTransport:
    """A :class:`BoardLink` transport over an AXI4-Stream source and sink. Every frame the sink
    receives (one per TLAST) must be one whole reply frame: ``bad_frames`` counts those that
    are not."""

    def __init__(self, source, sink):
        self.source, self.sink = source, sink
        # the link takes about 4 cycles per byte: it stores a frame, then executes it at 3
        self.byte_seconds = 4 * CLOCK_NS * 1e-9
        self.received = bytearray()
        self.frames = 0
        self.bad_frames = 0
        cocotb.start_soon(self._listen())

    async def _listen(self):
        while True:
            data = bytes((await self.sink.recv()).tdata)
            self.frames += 1
            if not (len(data) >= 6 and data[0] == REPLY_SYNC and
                    len(data) == 6 + int.from_bytes(data[2:4], "little")):
                self.bad_frames += 1
            self.received += data

    async def send(self, data):
        from cocotbext.axi import AxiStreamFrame
        await self.source.send(AxiStreamFrame(bytes(data)))
        await self.source.wait()

    async def receive(self, count, timeout):
        waited, step = 0.0, 20 * CLOCK_NS * 1e-9
        while len(self.received) < count and waited < timeout:
            await Timer(20 * CLOCK_NS, unit="ns")
            waited += step
        out = bytes(self.received[:count])
        del self.received[:count]
        return out

    async def sleep(self, seconds):
        await Timer(max(1, round(seconds * 1e9)), unit="ns")

    def discard_input(self):
        self.received.clear()


class RegisterRuns(BoardLink):
    """Operands and results through the streams, runs started and reported through the AXI4-Lite
    registers."""

    def __init__(self, transport, config, registers, **kwargs):
        super().__init__(transport, config, **kwargs)
        self.registers = registers

    async def run(self, job, cycles_bound):
        return await self.registers.run(job, cycles_bound // 10 + 100)


@cocotb.test()
async def axi_top(dut):
    from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame,
                               AxiStreamSink, AxiStreamSource)
    job = _load()
    config = job["config"]
    rng = random.Random(job["seed"])
    await _start(dut, job)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    source.set_pause_generator(_pauses(rng, 0.3))
    sink.set_pause_generator(_pauses(rng, 0.3))
    for channel in ("aw", "w", "b", "ar", "r"):
        getattr(axil.write_if if channel in "awb" else axil.read_if,
                f"{channel}_channel").set_pause_generator(_pauses(rng, 0.3))

    async def read32(offset):
        return int.from_bytes((await axil.read(offset, 4)).data, "little")

    async def write32(offset, value):
        await axil.write(offset, value.to_bytes(4, "little"))

    from zeroskip.hw.bus.regmap import RegisterMap
    regs = BusRegisters(RegisterMap(config, "axi", clock_hz=job["clock_hz"]), read32, write32)
    out = {"ident": [await regs.read("ID"), await regs.read("VERSION"), await regs.read("ROWS"),
                     await regs.read("COLS"), await regs.read("CLOCK_HZ")]}
    await regs.check_identity(config)

    transport = AxisTransport(source, sink)
    idle = job["idle_timeout"] * CLOCK_NS * 1e-9
    link = BoardLink(transport, config, settle=idle, slack=2e-5)
    out["frames"] = await link.run_programs(job["programs"])
    # the last run's counters, as the RUN reply gave them and as the registers hold them
    last = dict(out["frames"][-1].counters[-1])
    held = await regs.counters()
    out["counters_match"] = all(held[name] == last[name] for name in last
                                if name not in SINCE_RESET)

    registered = RegisterRuns(transport, config, regs, settle=idle, slack=2e-5)
    out["registers"] = await registered.run_programs(job["programs"])

    # a damaged frame: rejected, and flagged in STATUS, REJECTS and LAST_REPLY
    bad = bytearray(frame(REQUEST_SYNC, Command.INFO))
    bad[-1] ^= 1
    transport.discard_input()
    await transport.send(bytes(bad))
    reply = await transport.receive(6, 4 * idle + 1e-5)
    status = await regs.status()
    out["bad_frame"] = {"reply": reply[1] if reply else None,
                        "frame_error": status["FRAME_ERROR"],
                        "rejects": await regs.read("REJECTS"),
                        "last_reply": await regs.read("LAST_REPLY")}
    # a frame whose TLAST comes two bytes early, then the rest of it in a frame of its own
    good = frame(REQUEST_SYNC, Command.INFO)
    await source.send(AxiStreamFrame(good[:-2]))
    await source.send(AxiStreamFrame(good[-2:]))
    await source.wait()
    await transport.receive(6 + job["info_bytes"], 4 * idle + 1e-5)
    out["tlast_error"] = (await regs.status())["TLAST_ERROR"]
    await regs.control("CLEAR")
    status = await regs.status()
    out["cleared"] = (status["FRAME_ERROR"], status["TLAST_ERROR"], await regs.read("REJECTS"))

    # reset in the middle of a request frame: the core and the verification IP start over
    long_write = frame(REQUEST_SYNC, Command.WRITE, bytes([0, 0, 0]) +
                       bytes(job["act_word_bytes"] * 8))
    await source.send(AxiStreamFrame(long_write))
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    transport.discard_input()
    after = BoardLink(transport, config, settle=idle, slack=2e-5)
    out["after_reset"] = await after.run_programs(job["programs"][:1])
    out["after_reset_retries"] = after.stats.retries
    out["bad_reply_frames"] = transport.bad_frames
    out["reply_frames"] = transport.frames
    _save(out)


class WishboneMaster:
    """Wishbone B4 pipelined master, one access at a time, with random idle cycles between
    accesses. Inputs change on falling edges; a request is taken on the rising edge at which
    ``stall`` is low."""

    def __init__(self, dut, rng, idle=0.3):
        self.dut, self.rng, self.idle = dut, rng, idle
        for name in ("cyc", "stb", "we", "adr", "dat_w", "sel"):
            getattr(dut, f"wb_{name}").value = 0

    async def access(self, offset, value=None):
        dut = self.dut
        await FallingEdge(dut.clk)
        while self.rng.random() < self.idle:
            await FallingEdge(dut.clk)
        dut.wb_cyc.value = 1
        dut.wb_stb.value = 1
        dut.wb_adr.value = offset >> 2
        dut.wb_we.value = int(value is not None)
        dut.wb_dat_w.value = value or 0
        dut.wb_sel.value = 0xF
        while True:
            await Timer(1, unit="ns")    # the request settles before stall is looked at
            stalled = int(dut.wb_stall.value)
            await FallingEdge(dut.clk)
            if not stalled:
                break
        dut.wb_stb.value = 0
        for _ in range(64):
            if int(dut.wb_ack.value):
                break
            await FallingEdge(dut.clk)
        else:
            raise AssertionError(f"no ack for the access at 0x{offset:X}")
        data = int(dut.wb_dat_r.value)
        dut.wb_cyc.value = 0
        return data

    async def read32(self, offset):
        return await self.access(offset)

    async def write32(self, offset, value):
        await self.access(offset, value)


@cocotb.test()
async def wishbone_top(dut):
    job = _load()
    config = job["config"]
    rng = random.Random(job["seed"])
    master = WishboneMaster(dut, rng)
    await _start(dut, job)
    from zeroskip.hw.bus.regmap import RegisterMap
    regs = BusRegisters(RegisterMap(config, "wishbone"), master.read32, master.write32)
    out = {"ident": [await regs.read("ID"), await regs.read("VERSION"), await regs.read("ROWS"),
                     await regs.read("COLS"), await regs.read("CLOCK_HZ")]}
    driver = RegisterDriver(regs)
    out["registers"] = await driver.run_programs(job["programs"])

    # reset in the middle of a run: the run stops, and the next one is right
    program = job["programs"][0]
    run = program.runs[0]
    job_word = pack(job_layout(config), run.job(program.mode))
    for i in range(-(-regs.map.job_bits // 32)):
        await regs.write(f"JOB_{i}", job_word >> 32 * i & 0xFFFFFFFF)
    await regs.control("START")
    out["busy_before_reset"] = (await regs.status())["BUSY"]
    await regs.control("RESET")
    out["after_reset_status"] = await regs.status()
    again = RegisterDriver(regs)
    out["after_reset"] = await again.run_programs(job["programs"][:1])
    _save(out)


#: the AXI top's ports a job's timing diagram shows
TRACE_SIGNALS = ("s_axis_tvalid", "s_axis_tready", "s_axis_tlast", "s_axis_tdata",
                 "m_axis_tvalid", "m_axis_tready", "m_axis_tlast", "m_axis_tdata",
                 "s_axil_arvalid", "s_axil_rvalid", "s_axil_awvalid", "s_axil_bvalid", "irq")


@cocotb.test()
async def axi_job_trace(dut):
    """One GEMM run through the AXI top, its ports sampled every cycle: the loads and the RUN
    frame in, compute, the reply, the result READ, and a STATUS read through AXI4-Lite."""
    from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamSink,
                               AxiStreamSource)
    job = _load()
    config = job["config"]
    await _start(dut, job)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    transport = AxisTransport(source, sink)
    link = BoardLink(transport, config, slack=2e-5)
    await link.connect()
    samples, recording = [], [True]

    async def sample():
        while recording[0]:
            await FallingEdge(dut.clk)
            samples.append([int(getattr(dut, name).value) for name in TRACE_SIGNALS])

    cocotb.start_soon(sample())
    results = await link.run_programs(job["programs"])
    await axil.read(0x044, 4)
    await ClockCycles(dut.clk, 4)
    recording[0] = False
    _save({"signals": TRACE_SIGNALS, "samples": samples, "results": results})
