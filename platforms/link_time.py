"""How long a GEMM takes on a board end to end through its UART, measured in simulation: the
board top (link, accelerator, UART) of a board's configuration at the board's clock and a baud
rate, driven by the host runtime over the simulated UART pins (no damage, no retries).

``python -m zeroskip.platforms.link_time --board icebreaker --baud 3000000`` prints the cycles
from the first request to the last reply, the same in seconds at the board's clock, the bytes
sent, and the GEMM's compute cycles for comparison.
"""

import argparse

import numpy as np

from zeroskip.config import Mode
from zeroskip.hw.link.protocol import byte_count, write_targets
from zeroskip.platforms.boards import BOARDS
from zeroskip.platforms.top import DEFAULT_BAUD, BoardTop, default_idle_timeout, uart_divisor
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.rtl.build import build
from zeroskip.sim.rtl.runner import run_cocotb

__all__ = ["board_timing", "measure", "main"]


def board_timing(board, programs, baud=DEFAULT_BAUD, sim="verilator"):
    """Run compiled ``programs`` through the simulated board top of ``board`` (its
    configuration and clock) at ``baud``, driven by the host runtime over the UART pins: the
    cocotb bench's ``cycles`` (first request to last reply), ``bytes_sent``, ``requests`` and
    ``results`` (each checked against its program)."""
    config = BOARDS[board].config
    clock_hz = round(BOARDS[board].clock_mhz * 1e6)
    from zeroskip.hw.verilog import convert, primitive_models

    def verilog():
        top = BoardTop(config, clock_hz=clock_hz, baud=baud)
        return convert(top, "board_top") + primitive_models(config)
    build_dir = build(sim, f"board-{board}-{baud}-{config.name()}", verilog, "board_top")
    _, act_bits, _, act_depth = write_targets(config)[0]
    out = run_cocotb(sim, build_dir, "board_top", "zeroskip.tb.cocotb_board", {
        "config": config, "programs": programs, "faults": {}, "seed": 0,
        "divisor": uart_divisor(clock_hz, baud), "idle_timeout": default_idle_timeout(clock_hz),
        "act_depth": act_depth, "act_word_bytes": byte_count(act_bits)}, testcase="board_timing")
    for program, result in zip(programs, out["results"]):
        result.check(program)
    return out


def measure(board, baud, shape=(64, 256, 64), sparsity=0.9, sim="verilator"):
    config = BOARDS[board].config
    clock_hz = round(BOARDS[board].clock_mhz * 1e6)
    rng = np.random.default_rng(0)
    m, k, n = shape
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    weights = rng.integers(-128, 128, (k, n)).astype(np.int8)
    weights[rng.random(weights.shape) < sparsity] = 0
    program = compile_gemm(acts, weights, config, Mode.SKIP)
    out = board_timing(board, [program], baud, sim)
    (result,) = out["results"]
    np.testing.assert_array_equal(assemble(program, result.results), golden.gemm(acts, weights))
    return {"board": board, "baud": baud, "clock_hz": clock_hz, "shape": shape,
            "sparsity": sparsity, "runs": len(program.runs), "cycles": out["cycles"],
            "seconds": out["cycles"] / clock_hz, "bytes_sent": out["bytes_sent"],
            "requests": out["requests"], "compute_cycles": result.total("cycles")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker", choices=sorted(BOARDS))
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    parser.add_argument("--shape", default="64x256x64", help="MxKxN")
    parser.add_argument("--sparsity", type=float, default=0.9)
    args = parser.parse_args(argv)
    shape = tuple(int(x) for x in args.shape.split("x"))
    r = measure(args.board, args.baud, shape, args.sparsity)
    print(f"{r['board']} at {r['baud']} baud: {'x'.join(map(str, shape))} at "
          f"{100 * r['sparsity']:.0f}% sparsity, {r['runs']} runs, {r['requests']} requests, "
          f"{r['bytes_sent']:,} bytes sent: {r['cycles']:,} cycles = {r['seconds']:.3f} s at "
          f"{r['clock_hz'] / 1e6:g} MHz end to end, of which {r['compute_cycles']:,} compute")


if __name__ == "__main__":
    main()
