"""The host runtime's serial path (pyserial): a GEMM through a pseudo-terminal into the
simulated board top, and the ways a serial link fails (a port that cannot be opened, a board
that never answers, a port that goes away), as exceptions and as the CLI's exit status 3.

How the pty test works: the simulator process (tb/cocotb_serial.py) opens a pty pair, writes
the slave's name to a file and bridges the master to the board's UART pins. This process waits
for the name, runs :func:`run_on_board` on it (the code path of ``zeroskip gemm --port``), then
drops a stop file so the simulation ends.

Pacing: the host's timeouts are wall-clock seconds, from the baud rate it is given and the
clock the board reports. The board is built for a 2400 Hz clock and 300 baud (8 cycles a bit,
as in the other board tests); Verilator simulates it at 30k cycles a second at the very least
(the bridge waiting for the host a millisecond per 32 cycles), over 200k while bytes move, so
every host budget holds with a wide margin on a loaded machine. The slow clock also makes the
host's quiet time before a retry long (3 × 800 cycles at 2400 Hz: 1 s), so a retry survives the
simulator being descheduled for about a second. Tried: stopping the simulator (SIGSTOP) for
0.4, 0.8 and 1.5 s every 0.5 s more passes, with at most one more retry; at 1200 baud, stops of
0.8 s made the host give up (it cannot tell a stalled board from a dead one).
"""

import asyncio
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.link.protocol import REQUEST_SYNC, Command, byte_count, info_layout
from zeroskip.platforms.runtime import (BoardLink, LinkError, SerialTransport, frame,
                                        run_on_board)
from zeroskip.platforms.top import BoardTop
from zeroskip.sim import golden, model
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import build_component
from .weights import random_weights

# Not Icarus: cocotb builds with -g2012, under which the `always @*` blocks of Amaranth's Verilog
# are not evaluated at time 0, and the link's word-size decoder stays X until the first WRITE
# header differs from zero (this test's first WRITE is target 0, address 0: BAD_FRAME forever).
SIM = "verilator"
BAUD = 300
DIVISOR = 8
CLOCK_HZ = BAUD * DIVISOR    # what the board tells the host (INFO), not the simulator's speed
IDLE_TIMEOUT = 10 * 10 * DIVISOR  # cycles: ten bytes of silence end a broken frame
MAX_PAYLOAD = 128
WALL_LIMIT = 240             # seconds: the simulation gives up (fails) after this
# The build cache knows a design by its name, configuration and the gateware's sources, not by
# these parameters: name them.
BUILD_NAME = f"board-serial-{CLOCK_HZ}hz-{BAUD}-{IDLE_TIMEOUT}-{MAX_PAYLOAD}"

# Small memories: the GEMM below needs several runs, so loads, runs and reads repeat.
CONFIG = ArrayConfig(rows=2, cols=2, max_k=64, act_depth=128, weight_depth=96, pointer_depth=9,
                     out_depth=4)


def board_top(config):
    return BoardTop(config, clock_hz=CLOCK_HZ, baud=BAUD, max_payload=MAX_PAYLOAD,
                    idle_timeout=IDLE_TIMEOUT)


class SimulatedBoard:
    """The board top in a cocotb simulation on another thread, at the far end of a pty
    (``make_top(config)`` builds it, ``name`` names its build)."""

    def __init__(self, tmp_path, config, drop=(), damage=(), make_top=board_top,
                 name=BUILD_NAME):
        # built here, not on the thread: a (cached) build may take a while, the pty must not
        build_dir = build_component(SIM, name, config, make_top, "board_top")
        self.port_file = tmp_path / "port"
        self.stop_file = tmp_path / "stop"
        self.out, self.error = None, None
        job = {"port_file": str(self.port_file), "stop_file": str(self.stop_file),
               "divisor": DIVISOR, "wall_limit": WALL_LIMIT, "drop": drop, "damage": damage}
        self.thread = threading.Thread(target=self._simulate, args=(build_dir, job), daemon=True)
        self.thread.start()

    def _simulate(self, build_dir, job):
        try:
            self.out = run_cocotb(SIM, build_dir, "board_top",
                                  "zeroskip.tb.cocotb_serial", job)
        except BaseException as exc:  # handed to the test's thread
            self.error = exc

    def port(self, timeout=120):
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if not self.thread.is_alive():
                raise RuntimeError(f"the simulation ended before opening its pty: {self.error}")
            assert time.monotonic() < deadline, "the simulation did not open its pty"
            time.sleep(0.05)
        return self.port_file.read_text()

    def stop(self):
        self.stop_file.write_text("done\n")
        self.thread.join(WALL_LIMIT + 60)
        assert not self.thread.is_alive(), "the simulation did not stop"
        if self.error is not None:
            raise self.error
        return self.out


@pytest.mark.rtl
def test_gemm_through_a_pty_with_pyserial(tmp_path, rng):
    acts = rng.integers(-128, 128, (5, 40)).astype(np.int8)
    acts[:, ::3] = 0
    weights = random_weights(rng, 40, 5, density=0.35)
    program = compile_gemm(acts, weights, CONFIG, Mode.SKIP)
    assert len(program.runs) > 1

    # The first requests are INFO, RESET, then writes. Damage the CRC of RESET's reply (the
    # host retries RESET), drop a byte in the middle of the first WRITE (the link times out the
    # frame and says so; the host drains the line and retries), then damage the length of the
    # reply after the retried WRITE's (the host must not wait for 4 KiB that never come).
    info_reply = 4 + byte_count(info_layout().size) + 2
    empty = len(frame(REQUEST_SYNC, Command.RESET))  # an empty request or reply: 6 bytes
    board = SimulatedBoard(tmp_path, CONFIG, damage=[info_reply + 4, info_reply + 4 * empty + 3],
                           drop=[3 * empty + 20])
    try:
        port = board.port()
        assert port.startswith("/dev/")
        started = time.monotonic()
        (result,), stats = run_on_board([program], port, CONFIG, baud=BAUD)
        seconds = time.monotonic() - started
    finally:
        out = board.stop()
    print(f"{port}: {stats} in {seconds:.1f} s; bridge {out}")

    result.check()
    np.testing.assert_array_equal(assemble(program, result.results), golden.gemm(acts, weights))
    assert [c["cycles"] for c in result.counters] == \
        [model.run_cycles(CONFIG, run.tokens) for run in program.runs]
    assert result.total("cycles") == program.predicted_cycles
    assert sorted(kind for kind, _ in out["injected"]) == ["damaged", "damaged", "dropped"]
    # Each fault was noticed and retried once. Should the machine stall the simulation for
    # longer than the host's budgets, there are more retries (the protocol at work, not a
    # failure; seen with the simulator stopped for 0.6 s every 1.1 s), and the faults may land
    # on other frames than planned.
    assert stats.retries >= 3, stats
    if stats.retries == 3:
        assert stats.causes == {"damaged reply": 1, "TIMEOUT": 1, "bad reply length": 1}, stats
        assert seconds < 30  # no wait for the damaged length's 4 KiB (135 s at 300 baud)


# The ULX3S's network engine behind the link, faster than the GEMM board above (its program
# is 3 KB): 9600 baud, 8 cycles a bit, 100 bytes of silence end a broken frame (0.1 s).
ENGINE_BAUD = 9600
ENGINE_CLOCK_HZ = ENGINE_BAUD * DIVISOR
ENGINE_IDLE_TIMEOUT = 100 * 10 * DIVISOR


def engine_board_top(config):
    from zeroskip.platforms.boards import BOARDS
    return BoardTop(config, clock_hz=ENGINE_CLOCK_HZ, baud=ENGINE_BAUD, max_payload=512,
                    idle_timeout=ENGINE_IDLE_TIMEOUT, engine=BOARDS["ulx3s-85f"].engine)


@pytest.mark.rtl
def test_network_through_a_pty_with_pyserial(tmp_path):
    """``zeroskip run --resident --board ulx3s-85f --port P``'s path: digits_cnn compiled for
    the ULX3S's engine, loaded once through pyserial into its simulated board top, then two
    images, bit-exact with the NumPy reference; a byte of the program dropped on the way is
    refused by the board (the frame times out) and sent again."""
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.platforms.engine_runtime import run_engine_on_board
    from zeroskip.sim.program import compile_network, reference
    from .test_engine import digits_model, engine_inputs
    engine = BOARDS["ulx3s-85f"].engine
    model, x, lowered = digits_model("digits_cnn")
    inputs = [case[0] for case in engine_inputs(model, lowered, x[:2])]
    program = compile_network(lowered.layers, engine)
    empty = len(frame(REQUEST_SYNC, Command.RESET))
    board = SimulatedBoard(tmp_path, engine.config, drop=[2 * empty + 40],
                           make_top=engine_board_top,
                           name=f"board-engine-serial-{ENGINE_CLOCK_HZ}hz-{ENGINE_BAUD}")
    try:
        port = board.port()
        started = time.monotonic()
        out = run_engine_on_board(program, inputs, port, baud=ENGINE_BAUD)
        seconds = time.monotonic() - started
    finally:
        bridge = board.stop()
    print(f"{port}: {out.retries} retries {out.causes} in {seconds:.1f} s; bridge {bridge}")
    for image, run in zip(inputs, out.runs):
        assert not run.fault
        np.testing.assert_array_equal(run.output, reference(lowered.layers, image).reshape(-1))
    assert [kind for kind, _ in bridge["injected"]] == ["dropped"]
    # the host hears the board's TIMEOUT rejection, or gives up waiting for a reply first
    assert out.retries >= 1 and set(out.causes) <= {"TIMEOUT", "no reply"}, out.causes


def test_cli_resident_link_that_gives_up_exits_3(tmp_path, silent_pty):
    """``run --resident --board ulx3s-85f --port P`` with a board that never answers: exit 3,
    one line naming the port, nothing written."""
    _, port = silent_pty
    from .test_engine import MODELS
    np.save(tmp_path / "x.npy", np.load(MODELS / "digits_test_x.npy")[:1])
    proc = zeroskip("run", MODELS / "digits_cnn.onnx", "--input", tmp_path / "x.npy",
                    "--resident", "--board", "ulx3s-85f", "--port", port,
                    "--out", tmp_path / "out")
    assert_device_error(proc, tmp_path, port, "INFO failed 9 times", "no reply")
    assert not (tmp_path / "out" / "report.json").exists()


# --- a serial link that fails ----------------------------------------------------------------

def zeroskip(*args):
    return subprocess.run([sys.executable, "-m", "zeroskip.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def operands(tmp_path, rng):
    """A GEMM for the iCEBreaker's configuration."""
    np.save(tmp_path / "A.npy", rng.integers(-128, 128, (3, 16)).astype(np.int8))
    np.save(tmp_path / "W.npy", random_weights(rng, 16, 2, density=0.5))
    return tmp_path


@pytest.fixture
def silent_pty():
    """A pty whose far end is held open but never reads or answers: a board that is off."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    yield master, name
    os.close(master)


def assert_device_error(proc, path, *words):
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroskip: error: "), proc.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in proc.stderr
    assert not (path / "C.npy").exists()


def test_cli_port_that_cannot_be_opened_exits_3(operands):
    proc = zeroskip("gemm", "--board", "icebreaker", "--port", "/dev/nonexistent",
                    "--acts", operands / "A.npy", "--weights", operands / "W.npy",
                    "--out", operands / "C.npy")
    assert_device_error(proc, operands, "/dev/nonexistent", "cannot open")


def test_cli_link_that_gives_up_exits_3(operands, silent_pty):
    _, port = silent_pty
    started = time.monotonic()
    proc = zeroskip("gemm", "--board", "icebreaker", "--port", port,
                    "--acts", operands / "A.npy", "--weights", operands / "W.npy",
                    "--out", operands / "C.npy")
    seconds = time.monotonic() - started
    # 9 attempts of INFO, each ~0.2 s of waiting for a reply and ~0.15 s of quiet line
    assert_device_error(proc, operands, port, "INFO failed 9 times", "no reply")
    assert seconds < 30


def test_run_on_board_gives_up_within_its_retry_budget(silent_pty):
    _, port = silent_pty
    acts = np.ones((2, 8), np.int8)
    program = compile_gemm(acts, np.eye(8, 2, dtype=np.int8), CONFIG, Mode.SKIP)
    started = time.monotonic()
    with pytest.raises(LinkError, match=r"INFO failed 2 times \(last: no reply\)"):
        run_on_board([program], port, CONFIG, baud=115200, retries=1)
    assert time.monotonic() - started < 5


def test_a_port_that_goes_away_is_a_link_error():
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    transport = SerialTransport(name, 115200)
    try:
        os.close(master)  # the adapter is unplugged
        with pytest.raises(LinkError, match="serial port .* failed"):
            asyncio.run(BoardLink(transport, CONFIG, retries=1).connect())
    finally:
        transport.close()
