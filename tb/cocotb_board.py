"""cocotb testbench of the board top: the host runtime drives the simulated UART pins.

First raw frames check that the link rejects what it must (a bad CRC, an unknown command, a
write past a memory's end, a frame cut off in the middle). Then the runtime's
:class:`~zeroskip.platforms.runtime.BoardLink` runs whole GEMMs through the link while this
testbench damages the traffic on purpose: a corrupted request, a dropped byte, a stall in the
middle of a frame, a corrupted reply. The driver must notice each and retry.
"""

import os
import pickle
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from zeroskip.hw.link.protocol import REPLY_SYNC, REQUEST_SYNC, Command
from zeroskip.platforms.runtime import BoardLink, frame

CLOCK_NS = 10


class SimUart:
    """The host end of the board's UART, in simulated time (a runtime transport)."""

    def __init__(self, dut, divisor, bit_ns=None):
        self.dut = dut
        # the host's own bit time: a board's divisor only approximates the host's baud rate
        self.bit_ns = bit_ns or divisor * CLOCK_NS
        self.byte_seconds = 10 * self.bit_ns * 1e-9
        self.received = bytearray()
        dut.rx.value = 1
        cocotb.start_soon(self._listen())

    async def _listen(self):
        dut = self.dut
        while True:
            await FallingEdge(dut.tx)
            if not dut.tx.value.is_resolvable or int(dut.tx.value):
                continue  # X at power-up on some simulators, not a start bit
            await Timer(self.bit_ns * 3 // 2, unit="ns")  # middle of data bit 0
            value = 0
            for bit in range(8):
                value |= int(dut.tx.value) << bit
                await Timer(self.bit_ns, unit="ns")
            assert int(dut.tx.value) == 1, "board sent a byte without a stop bit"
            self.deliver(value)

    def deliver(self, value):
        """A byte from the board (a bridge overrides this to pass it on at once)."""
        self.received.append(value)

    async def send(self, data):
        for value in data:
            for bit in [0] + [(value >> i) & 1 for i in range(8)] + [1]:
                self.dut.rx.value = bit
                await Timer(self.bit_ns, unit="ns")

    async def receive(self, count, timeout):
        waited = 0.0
        step = self.byte_seconds
        while len(self.received) < count and waited < timeout:
            await Timer(round(step * 1e9), unit="ns")
            waited += step
        out = bytes(self.received[:count])
        del self.received[:count]
        return out

    async def sleep(self, seconds):
        await Timer(round(seconds * 1e9), unit="ns")

    def discard_input(self):
        self.received.clear()


class Saboteur:
    """A transport that damages chosen requests and replies (by request number)."""

    def __init__(self, inner, plan, seed):
        self.inner = inner
        self.plan = dict(plan)
        self.rand = random.Random(seed)
        self.byte_seconds = inner.byte_seconds
        self.requests = 0
        self.injected = []
        self._damage_reply = False

    async def send(self, data):
        fault = self.plan.pop(self.requests, None)
        self.requests += 1
        data = bytearray(data)
        where = self.rand.randrange(1, len(data))
        if fault == "corrupt":
            data[where] ^= 1 << self.rand.randrange(8)
        elif fault == "drop":
            del data[where]
        elif fault == "stall":
            # half a frame, then silence well past the board's idle timeout
            await self.inner.send(data[:where])
            await self.inner.sleep(self.stall_seconds)
            data = data[where:]
        elif fault == "reply":
            self._damage_reply = True
        if fault:
            self.injected.append(fault)
        await self.inner.send(bytes(data))

    async def receive(self, count, timeout):
        data = bytearray(await self.inner.receive(count, timeout))
        if self._damage_reply and data:
            self._damage_reply = False
            data[self.rand.randrange(len(data))] ^= 0x10
        return bytes(data)

    async def sleep(self, seconds):
        await self.inner.sleep(seconds)

    def discard_input(self):
        self.inner.discard_input()


async def exchange(uart, data, timeout):
    """Send raw bytes, return the reply's status (or None if there is none)."""
    uart.discard_input()
    await uart.send(data)
    head = await uart.receive(4, timeout)
    if len(head) < 4:
        return None
    assert head[0] == REPLY_SYNC
    await uart.receive(int.from_bytes(head[2:4], "little") + 2, timeout)  # and drop the rest
    return head[1]


async def start_board(dut):
    """Load the job the runner pickled, start the clock and reset the board top (its UART
    line idle); returns the job."""
    with open(os.environ["ZEROSKIP_JOB"], "rb") as f:
        job = pickle.load(f)
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await Timer(5 * CLOCK_NS, unit="ns")
    dut.rst.value = 0
    await Timer(5 * CLOCK_NS, unit="ns")
    return job


@cocotb.test()
async def board_link(dut):
    job = await start_board(dut)
    uart = SimUart(dut, job["divisor"], job.get("host_bit_ns"))

    idle = job["idle_timeout"] * CLOCK_NS * 1e-9
    timeout = 4 * idle + 64 * uart.byte_seconds
    checks = {}
    # raw frames the link must reject
    good = frame(REQUEST_SYNC, Command.INFO)
    checks["info"] = await exchange(uart, good, timeout)
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01
    checks["bad_crc"] = await exchange(uart, bytes(bad_crc), timeout)
    checks["unknown_command"] = await exchange(uart, frame(REQUEST_SYNC, 0x77), timeout)
    checks["write_past_end"] = await exchange(uart, frame(
        REQUEST_SYNC, Command.WRITE,
        bytes([0]) + (job["act_depth"]).to_bytes(2, "little") + bytes(job["act_word_bytes"])),
        timeout)
    checks["bad_target"] = await exchange(uart, frame(
        REQUEST_SYNC, Command.WRITE, bytes([99, 0, 0, 0])), timeout)
    checks["read_nothing"] = await exchange(uart, frame(
        REQUEST_SYNC, Command.READ, bytes(5)), timeout)
    checks["cut_short"] = await exchange(uart, good[:3], timeout)
    checks["noise_then_info"] = await exchange(uart, b"\x00\xff\x13" + good, timeout)

    saboteur = Saboteur(uart, job["faults"], job["seed"])
    saboteur.stall_seconds = 3 * idle
    link = BoardLink(saboteur, job["config"], retries=4, settle=idle, slack=timeout)
    results = await link.run_programs(job["programs"])
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump({"checks": checks, "results": results, "injected": saboteur.injected,
                     "retries": link.stats.retries, "causes": dict(link.stats.causes),
                     "requests": link.stats.requests}, f)


@cocotb.test()
async def board_timing(dut):
    """GEMMs through the UART with nothing damaged, timed: the cycles from the first request
    to the last reply (the board's end-to-end time through its link) and the bytes moved."""
    from cocotb.utils import get_sim_time
    job = await start_board(dut)
    uart = SimUart(dut, job["divisor"])
    sent = [0]
    send = uart.send

    async def counting_send(data):
        sent[0] += len(data)
        await send(data)
    uart.send = counting_send
    link = BoardLink(uart, job["config"], retries=0)
    await link.connect()
    started = get_sim_time("ns")
    sent[0] = 0
    results = await link.run_programs(job["programs"])
    cycles = round((get_sim_time("ns") - started) / CLOCK_NS)
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump({"results": results, "cycles": cycles, "bytes_sent": sent[0],
                     "requests": link.stats.requests}, f)
