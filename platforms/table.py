"""Per-board results: the build report (resources, Fmax) next to the throughput the board's
configuration reaches on pruned weights, with cycles counted by its RTL in Verilator.

``python -m zeroskip.platforms.table --out docs --readme README.md`` (``make boards``) builds
what is not built yet and writes ``docs/boards.md``, ``docs/boards.json`` and the README table.

Dense-equivalent GMAC/s = M·K·N / (cycles / clock) / 1e9: the dense multiply-accumulates the
GEMM stands for, per second of accelerator time at the board's clock. It counts compute cycles
(the RTL's ``cycles`` counter) and not the UART transfers, which at 115,200 baud take far
longer: the UART is a control link, not a data path.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from zeroskip.config import Mode
from zeroskip.apps.bench import rewrite_section
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim import golden
from zeroskip.sim.patterns import sparse_weights
from zeroskip.sim.rtl.runner import run_program
from zeroskip.platforms.boards import BOARDS, build_board

SHAPE = (64, 256, 64)
SPARSITIES = (0.5, 0.9)


def measure(board, sparsity, shape=SHAPE, seed=0):
    """Cycles of a skip-mode GEMM with uniformly random ``sparsity`` on ``board``'s
    configuration (Verilator), checked against NumPy, and its dense-equivalent GMAC/s."""
    m, k, n = shape
    rng = np.random.default_rng(seed)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    weights = sparse_weights(rng, k, n, "uniform", density=1 - sparsity)
    program = compile_gemm(acts, weights, board.config, Mode.SKIP)
    rtl = run_program(program).check(program)
    golden.check_result(assemble(program, rtl.results), acts, weights,
                        f"{board.name}: the RTL result")
    cycles = rtl.total("cycles")
    seconds = cycles / (board.clock_mhz * 1e6)
    return {"sparsity": sparsity, "shape": list(shape), "runs": len(program.runs),
            "cycles": cycles, "dense_equivalent_gmacs": round(m * k * n / seconds / 1e9, 3)}


def board_rows(build_root, names=tuple(BOARDS)):
    rows = []
    for name in names:
        board = BOARDS[name]
        report = build_board(board, Path(build_root) / name)
        report["throughput"] = [measure(board, s) for s in SPARSITIES]
        report["peak_dense_gmacs"] = round(board.config.pe_count * board.clock_mhz / 1e3, 3)
        rows.append(report)
    return rows


def markdown(rows):
    m, k, n = SHAPE
    lines = [
        "| board | PEs | clock (Fmax) | LUT/LC | FF | DSP | BRAM | dense GMAC/s "
        + "".join(f"| {int(s * 100)}% sparse, dense-eq. GMAC/s " for s in SPARSITIES) + "|",
        "|---" * (8 + len(SPARSITIES)) + "|",
    ]
    for r in rows:
        timing = "met" if r["timing_met"] else "**not met**"
        lines.append(
            f"| {r['board']} ({r['device']}) | {r['pe_count']} ({r['rows']}×{r['cols']}) "
            f"| {r['clock_mhz']} MHz ({r['fmax_mhz']} MHz, {timing}) "
            f"| {r['luts_used']}/{r['luts_total']} | {r['ffs_used']} "
            f"| {r['dsps_used']}/{r['dsps_total']} | {r['brams_used']}/{r['brams_total']} "
            f"| {r['peak_dense_gmacs']} "
            + "".join(f"| {t['dense_equivalent_gmacs']} ({t['cycles']:,} cycles) "
                      for t in r["throughput"]) + "|")
    lines.append("")
    lines.append(f"Throughput: a {m}×{k}×{n} int8 GEMM with uniformly random weight sparsity in "
                 f"skip mode, cycles from the RTL's counters (Verilator), at the board's clock; "
                 f"UART transfer time not included. Resources and Fmax: nextpnr's report of "
                 f"`zeroskip build` (iCE40 LUT/LC counts logic cells).")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zeroskip.platforms.table")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--build", default="build", help="board build folders go here")
    parser.add_argument("--readme")
    parser.add_argument("--boards", nargs="+", choices=list(BOARDS), default=list(BOARDS))
    args = parser.parse_args(argv)
    rows = board_rows(args.build, args.boards)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "boards.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = markdown(rows)
    (out / "boards.md").write_text(text + "\n")
    if args.readme:
        rewrite_section(args.readme, "boards", text)
    print(text)


if __name__ == "__main__":
    main()
