"""The host runtime: runs compiled GEMMs on a board through the link protocol
(:mod:`zeroskip.hw.link.protocol`).

One driver, two transports. :class:`SerialTransport` talks to a real board with pyserial; the
cocotb board test gives the same :class:`BoardLink` a transport that toggles the simulated
board top's UART pins. The driver is written with ``async`` methods so it can await simulator
time; over a serial port nothing is really awaited (:func:`run_on_board` runs it with asyncio).

Every request is idempotent, so a request whose reply is a rejection, is damaged or does not
come in time is sent again, after the link has had time to give up on whatever it was
receiving. A request that still fails after ``retries`` attempts raises :class:`LinkError`:
nothing partial is ever returned as a result.
"""

import asyncio
import binascii
import errno
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from zeroskip.hw.layouts import job_layout, pack, unpack
from zeroskip.hw.link.protocol import (CRC_INIT, REPLY_SYNC, REQUEST_SYNC, Command, Reply,
                                       byte_count, info_layout, run_report_layout, write_targets)
from zeroskip.sim import model
from zeroskip.sim.rtl.packing import act_beats, result_words_to_array, weight_beats
from zeroskip.sim.rtl.runner import LoadCounter, RunResult

__all__ = ["LinkError", "LinkStats", "Driver", "BoardLink", "RegisterDriver", "BusRegisters",
           "SerialTransport", "run_on_board", "frame"]


class LinkError(RuntimeError):
    """The board did not complete a request, even after retries (or is not the expected
    configuration)."""


def crc16(data):
    return binascii.crc_hqx(bytes(data), CRC_INIT)


def frame(sync, code, payload=b""):
    """A complete frame: sync, command or status, length, payload, CRC (high byte first)."""
    body = bytes([code]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([sync]) + body + crc16(body).to_bytes(2, "big")


@dataclass
class LinkStats:
    """What happened on the link: requests completed, and every retry with its cause."""
    requests: int = 0
    retries: int = 0
    causes: Counter = field(default_factory=Counter)  # "BAD_CRC", "no reply", ...

    def __str__(self):
        causes = ", ".join(f"{n} {cause}" for cause, n in sorted(self.causes.items()))
        return f"{self.requests} requests, {self.retries} retries" + (f" ({causes})"
                                                                      if causes else "")


class SerialTransport:
    """A serial port (pyserial): the UART of a real board.

    A port that cannot be opened, or fails later (an adapter unplugged, the far end of a
    pseudo-terminal gone), raises :class:`LinkError`.
    """

    def __init__(self, port, baud):
        import serial
        self._errors = (serial.SerialException, OSError)
        self.port = port
        try:
            self._port = serial.Serial(port, baud, timeout=0.1)
        except self._errors as error:
            # pyserial's message names the port twice and the errno twice; the errno says it
            reason = os.strerror(error.errno) if getattr(error, "errno", None) else str(error)
            if getattr(error, "errno", None) == errno.EACCES:
                reason += " (on Linux, is the user in the dialout group?)"
            raise LinkError(f"cannot open {port}: {reason}") from None
        self.byte_seconds = 10 / baud

    def _failed(self, error):
        return LinkError(f"the serial port {self.port} failed: {error}")

    async def send(self, data):
        try:
            self._port.write(data)
            self._port.flush()
        except self._errors as error:
            raise self._failed(error) from None

    async def receive(self, count, timeout):
        try:
            self._port.timeout = timeout
            return self._port.read(count)
        except self._errors as error:
            raise self._failed(error) from None

    async def sleep(self, seconds):
        time.sleep(seconds)

    def discard_input(self):
        try:
            self._port.reset_input_buffer()
        except self._errors as error:
            raise self._failed(error) from None

    def close(self):
        try:
            self._port.close()
        except self._errors:
            pass  # already failed, and reported


class Driver:
    """Runs compiled programs on a device; a subclass moves the data (``connect``, ``reset``,
    ``write``, ``run``, ``read``, ``connected``) and sets ``config``."""

    def __init__(self):
        self._loads = LoadCounter()  # the device's load counter runs from its last reset

    async def run_programs(self, programs, *, timeout_factor=4):
        """Run compiled programs (:func:`zeroskip.sim.compiler.compile_gemm`) one after another;
        one :class:`zeroskip.sim.rtl.runner.RunResult` per program, as from the simulator."""
        config = self.config
        if not self.connected:
            await self.connect()
        results = []
        for program in programs:
            if program.config != config:
                raise ValueError("the program was compiled for another configuration")
            outs, counters, status, wall = [], [], [], 0.0
            for run in program.runs:
                await self.write(0, act_beats(run))
                for target, beats in enumerate(weight_beats(config, run).values(), start=1):
                    if beats:
                        await self.write(target, beats)
                started = time.perf_counter()
                run_counters, lanes = await self.run(
                    pack(job_layout(config), run.job(program.mode)),
                    timeout_factor * model.run_cycles(config, run.tokens) + 1000)
                wall += time.perf_counter() - started
                self._loads.per_run(run_counters)
                counters.append(run_counters)
                status.append(lanes)
                if any(lanes):
                    # a lane stopped on malformed memory: its results are not read
                    outs.append([])
                    await self.reset()
                    continue
                outs.append([result_words_to_array(config, await self.read(
                    c, config.result_words(run.m_tiles * len(cols))))
                    for c, cols in enumerate(run.lane_columns)])
            results.append(RunResult(results=outs, counters=counters, wall_seconds=wall,
                                     status=status))
        return results


class BoardLink(Driver):
    """The protocol driver for one board of configuration ``config``.

    Parameters
    ----------
    transport
        ``send(bytes)``, ``receive(count, timeout) -> bytes`` (short on timeout),
        ``sleep(seconds)``, ``discard_input()`` and ``byte_seconds`` (one byte on the line).
    retries : int
        Attempts per request beyond the first.
    settle : float
        Seconds of silence after which the board has dropped a broken frame; replaced by the
        board's own figure once INFO has answered.
    """

    def __init__(self, transport, config, *, retries=8, settle=0.05, slack=0.2):
        self.transport = transport
        self.config = config
        self.retries = retries
        self.settle = settle
        self.slack = slack
        self.stats = LinkStats()
        self.max_payload = None
        self.clock_hz = None
        self._targets = write_targets(config)
        self.digest = config.digest()   # what INFO must report
        super().__init__()

    @property
    def connected(self):
        return self.max_payload is not None

    # one request ------------------------------------------------------------------------

    async def request(self, command, payload=b"", *, work_seconds=0.0, reply_bytes=None):
        """Send ``command`` until the board answers OK; return the reply's payload.

        ``work_seconds``: how long the board may take before it answers (a run).
        ``reply_bytes``: the expected payload length, if known.
        """
        data = frame(REQUEST_SYNC, command, payload)
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                await self._drain()
            outcome, reply = await self._exchange(data, work_seconds, reply_bytes)
            if outcome == "OK" and reply_bytes is not None and len(reply) != reply_bytes:
                outcome = "short reply"
            if outcome == "OK":
                self.stats.requests += 1
                return reply
            self.stats.causes[outcome] += 1
        raise LinkError(f"{Command(command).name} failed {self.retries + 1} times "
                        f"(last: {outcome}); {self.stats}")

    async def _drain(self):
        """After a failed exchange: wait until the line has been quiet long enough for the
        board to have given up on (and rejected) anything it was receiving, and drop whatever
        it sent meanwhile, so the retry's reply is not confused with an old one."""
        self.transport.discard_input()
        while await self.transport.receive(1 << 16, 3 * self.settle):
            pass

    async def _exchange(self, data, work_seconds, reply_bytes):
        transport = self.transport
        await transport.send(data)
        # the frame is still on the line while we wait: count its bytes into the timeout
        timeout = self.slack + work_seconds + (len(data) + 8) * transport.byte_seconds
        head = await transport.receive(4, timeout)
        if len(head) < 4:
            return "no reply", None
        if head[0] != REPLY_SYNC:
            return "bad reply", None
        length = int.from_bytes(head[2:4], "little")
        if reply_bytes is not None and length not in (0, reply_bytes):
            # a damaged length: do not wait for up to 64 KiB that will never come (a rejection
            # has no payload, an answer exactly the expected one); the retry's drain drops the
            # rest of this reply
            return "bad reply length", None
        rest = await transport.receive(length + 2,
                                       self.slack + (length + 2) * transport.byte_seconds)
        if len(rest) < length + 2:
            return "reply cut short", None
        if crc16(head[1:] + rest[:length]) != int.from_bytes(rest[length:], "big"):
            return "damaged reply", None
        if head[1] != Reply.OK:
            return Reply(head[1]).name if head[1] in Reply._value2member_map_ else "bad reply", None
        return "OK", rest[:length]

    # commands ---------------------------------------------------------------------------

    async def connect(self):
        """Check that the board runs this configuration, learn its limits, reset it."""
        layout = info_layout()
        raw = await self.request(Command.INFO, reply_bytes=byte_count(layout.size))
        info = unpack(layout, int.from_bytes(raw, "little"))
        digest = info["digest"].to_bytes(6, "little").hex()
        if digest != self.digest[:12]:
            raise LinkError(f"the board runs configuration {digest}, not "
                            f"{self.digest[:12]} ({self.config.name()})")
        self.max_payload = info["max_payload"]
        self.clock_hz = info["clock_hz"]
        self.settle = info["idle_timeout"] / self.clock_hz
        await self.reset()
        return info

    async def reset(self):
        await self.request(Command.RESET, reply_bytes=0)
        self._loads.reset()

    async def write(self, target, beats):
        """Write beats ``(addr, value[, mask])`` (consecutive addresses) into ``target``."""
        _, bits, mask_bits, _ = self._targets[target]
        size = byte_count(bits + mask_bits)
        per_frame = (self.max_payload - 3) // size
        for start in range(0, len(beats), per_frame):
            chunk = beats[start:start + per_frame]
            addr = chunk[0][0]
            if [b[0] for b in chunk] != list(range(addr, addr + len(chunk))):
                raise ValueError("write beats must have consecutive addresses")
            words = b"".join(
                (b[1] | (b[2] << bits if mask_bits else 0)).to_bytes(size, "little")
                for b in chunk)
            await self.request(Command.WRITE, bytes([target]) + addr.to_bytes(2, "little") + words,
                               reply_bytes=0)

    async def run(self, job, cycles_bound):
        """Run ``job`` (packed); returns ``(counters, status)`` once the board is done."""
        config = self.config
        layout = run_report_layout(config)
        payload = job.to_bytes(byte_count(job_layout(config).size), "little")
        raw = await self.request(Command.RUN, payload, work_seconds=cycles_bound / self.clock_hz,
                                 reply_bytes=byte_count(layout.size))
        report = unpack(layout, int.from_bytes(raw, "little"))
        return report["counters"], report["status"]

    async def read(self, column, count):
        """``count`` result words of PE column ``column`` (ints of ``config.result_rows`` int32
        each)."""
        config = self.config
        size = byte_count(config.result_rows * config.acc_width)
        per_request = min(config.result_depth, 0xFFFF // size)
        words = []
        for addr in range(0, count, per_request):
            n = min(per_request, count - addr)
            raw = await self.request(Command.READ, bytes([column]) + addr.to_bytes(2, "little") +
                                     n.to_bytes(2, "little"), reply_bytes=n * size)
            words += [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]
        return words

def run_on_board(programs, port, config, *, baud, retries=8):
    """Run programs on the board at serial ``port``; returns their RunResults and the link
    statistics. ``retries``: attempts per request beyond the first (:class:`BoardLink`)."""
    transport = SerialTransport(port, baud)
    try:
        link = BoardLink(transport, config, retries=retries)
        results = asyncio.run(link.run_programs(programs))
        return results, link.stats
    finally:
        transport.close()


class BusRegisters:
    """The registers of a bus top (:class:`zeroskip.hw.bus.regmap.RegisterMap`) through a
    host's ``read32(offset)`` and ``write32(offset, value)`` coroutines (an SoC driver, or a
    testbench's bus master)."""

    def __init__(self, regmap, read32, write32):
        self.map, self.read32, self.write32 = regmap, read32, write32

    async def read(self, name):
        return await self.read32(self.map[name].offset)

    async def write(self, name, value):
        await self.write32(self.map[name].offset, value)

    async def status(self):
        """STATUS as ``{field: 0/1}``."""
        value = await self.read("STATUS")
        return {name: value >> bit & 1 for name, bit, _ in self.map["STATUS"].fields}

    async def control(self, *names):
        bits = {name: bit for name, bit, _ in self.map["CONTROL"].fields}
        await self.write("CONTROL", sum(1 << bits[name] for name in names))

    async def check_identity(self, config):
        """Raises :class:`LinkError` unless the core is a zeroskip of ``config``."""
        from zeroskip.hw.bus.regmap import ID_VALUE
        ident = await self.read("ID")
        digest = await self.read("DIGEST_LO") | await self.read("DIGEST_HI") << 32
        if ident != ID_VALUE:
            raise LinkError(f"no zeroskip core there (ID 0x{ident:08X})")
        if digest.to_bytes(6, "little").hex() != config.digest()[:12]:
            raise LinkError(f"the core runs configuration {digest.to_bytes(6, 'little').hex()}, "
                            f"not {config.digest()[:12]} ({config.name()})")

    async def wait_idle(self, polls):
        """Polls STATUS until nothing is pending or running; the last STATUS."""
        for _ in range(polls):
            status = await self.status()
            if not (status["BUSY"] or status["PENDING"]):
                return status
        raise LinkError(f"the core is still busy after {polls} polls of STATUS")

    async def reset(self, polls=100):
        await self.control("RESET")
        await self.wait_idle(polls)

    async def run(self, job, polls):
        """Runs ``job`` (packed): JOB_*, CONTROL.START, STATUS until done; returns
        ``(counters, lane status)`` read from the registers."""
        config = self.map.config
        for i in range(-(-self.map.job_bits // 32)):
            await self.write(f"JOB_{i}", job >> 32 * i & 0xFFFFFFFF)
        await self.control("START")
        status = await self.wait_idle(polls)
        if not status["DONE"]:
            raise LinkError("the run ended without DONE")
        return await self.counters(), await self.lanes()

    async def counters(self):
        counters = {}
        for reg, name, half in self.map.counter_regs:
            counters[name] = counters.get(name, 0) | await self.read32(reg.offset) << 32 * half
        return counters

    async def lanes(self):
        lanes = []
        for reg in self.map.lane_regs:
            value = await self.read32(reg.offset)
            lanes += [value >> 4 * i & 0xF for i in range(8)]
        return lanes[:self.map.config.cols]


class RegisterDriver(Driver):
    """Runs programs on a Wishbone top with loads and stores alone: operands into the
    memory windows, a run through the registers, results out of the RESULTS window."""

    def __init__(self, registers, *, polls_per_cycle=0.1):
        self.registers = registers
        self.map = registers.map
        self.config = self.map.config
        self.connected = False
        self._polls_per_cycle = polls_per_cycle
        super().__init__()

    async def connect(self):
        await self.registers.check_identity(self.config)
        await self.reset()
        self.connected = True

    async def reset(self):
        await self.registers.reset()
        self._loads.reset()

    async def write(self, target, beats):
        (window,) = [w for w in self.map.windows if w.target == target]
        _, bits, mask_bits, _ = write_targets(self.config)[target]
        for beat in beats:
            value = beat[1] | (beat[2] << bits if mask_bits else 0)
            for slot in range(window.slots):
                await self.registers.write32(window.base + beat[0] * window.stride + 4 * slot,
                                             value >> 32 * slot & 0xFFFFFFFF)

    async def run(self, job, cycles_bound):
        return await self.registers.run(job, int(cycles_bound * self._polls_per_cycle) + 100)

    async def read(self, column, count):
        window = self.map["RESULTS"]
        words = []
        for addr in range(count):
            word = 0
            for slot in range(window.slots):
                word |= await self.registers.read32(
                    window.base + column * window.column_stride + addr * window.stride +
                    4 * slot) << 32 * slot
            words.append(word)
        return words
