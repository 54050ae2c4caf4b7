"""cocotb: the simulated board top at the far end of a pseudo-terminal, so that the host
runtime's real serial path (pyserial, :class:`~zeroskip.platforms.runtime.SerialTransport`,
:func:`~zeroskip.platforms.runtime.run_on_board`) talks to it from another process.

The testbench opens a pty pair and keeps both ends open (so the master never reads EIO while
the host has the slave closed), writes the slave's name (``/dev/pts/N``) to ``port_file`` and
bridges: what the host writes to the slave comes out of the master and is shifted into the
board's UART rx pin; each byte the board's tx pin sends goes into the master as soon as its
stop bit is sampled. It runs until ``stop_file`` exists (the host is done), and fails after
``wall_limit`` seconds. On request it drops a byte of the host's and damages a byte of the
board's (by position), so that the host's retries, with their wall-clock timeouts and quiet
times, run through the real port too.

Pacing. The host's budgets are wall-clock seconds: per byte from the baud rate it is given, for
a run and for the link's idle timeout from the clock the board reports (INFO). The board is
built with a clock far below what the simulation reaches (see tb/test_serial.py), so to the
host it is a real board that is never late. When nothing is on the line and the accelerator is
idle, the bridge waits for the host in ``select()`` (a millisecond at a time) instead of
spinning simulated time; even then the simulation advances faster than that clock.
"""

import os
import pickle
import select
import time
import tty

import cocotb
from cocotb.triggers import Timer

from .cocotb_board import CLOCK_NS, SimUart, start_board

POLL_CYCLES = 32      # between looks at the master: well under a byte on the line
QUIET_CYCLES = 1024   # this long without line activity or a run: wait for the host in select()
WAIT_SECONDS = 0.001  # the longest such wait


class PtyBridge(SimUart):
    """The board's UART joined to a pty master (non-blocking). ``drop``: indices of bytes from
    the host that never reach the board; ``damage``: indices of bytes from the board that reach
    the host with a bit flipped (counted from the start)."""

    def __init__(self, dut, divisor, master, drop=(), damage=()):
        self.master = master
        self.outgoing = bytearray()
        self.to_board = 0
        self.from_board = 0
        self.drop, self.damage = set(drop), set(damage)
        self.injected = []
        super().__init__(dut, divisor)

    def deliver(self, value):
        if self.from_board in self.damage:
            value ^= 0x10
            self.injected.append(("damaged", self.from_board))
        self.from_board += 1
        self.outgoing.append(value)
        self.flush()

    def flush(self):
        while self.outgoing:
            try:
                written = os.write(self.master, self.outgoing)
            except BlockingIOError:
                return  # the host is not reading: try again at the next poll
            del self.outgoing[:written]

    def take(self):
        """Whatever the host has written, without blocking."""
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        first = self.to_board
        self.to_board += len(data)
        for index in sorted(self.drop & set(range(first, self.to_board)), reverse=True):
            self.injected.append(("dropped", index))
            data = data[:index - first] + data[index - first + 1:]
        return data


@cocotb.test()
async def serial_bridge(dut):
    job = await start_board(dut)

    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no CR/LF or XON/XOFF processing (pyserial sets this too)
    os.set_blocking(master, False)
    bridge = PtyBridge(dut, job["divisor"], master, job["drop"], job["damage"])
    port_file = job["port_file"]
    with open(port_file + ".tmp", "w") as f:
        f.write(os.ttyname(slave))
    os.replace(port_file + ".tmp", port_file)

    started = time.monotonic()
    quiet, seen, polls, waits = 0, 0, 0, 0
    try:
        while True:
            if quiet >= QUIET_CYCLES:
                select.select([master], [], [], WAIT_SECONDS)
                waits += 1
            data = bridge.take()
            if data:
                await bridge.send(data)
                quiet = 0
                continue
            bridge.flush()
            polls += 1
            if (quiet >= QUIET_CYCLES or polls % 64 == 0) and os.path.exists(job["stop_file"]):
                break
            assert time.monotonic() - started < job["wall_limit"], \
                f"the host did not finish within {job['wall_limit']} s"
            await Timer(POLL_CYCLES * CLOCK_NS, unit="ns")
            busy = int(dut.leds.value) & 1
            if busy or bridge.from_board != seen or bridge.outgoing or not int(dut.tx.value):
                seen = bridge.from_board
                quiet = 0
            else:
                quiet += POLL_CYCLES
    finally:
        os.close(master)
        os.close(slave)
    with open(os.environ["ZEROSKIP_RESULT"], "wb") as f:
        pickle.dump({"to_board": bridge.to_board, "from_board": bridge.from_board,
                     "injected": bridge.injected, "waits": waits, "polls": polls,
                     "wall_seconds": time.monotonic() - started}, f)
