"""Per-board results, for both architectures: the build report (resources, Fmax) next to the
throughput each configuration reaches on pruned weights, with cycles counted by its RTL in
Verilator, and how the zero-skipping array compares with the dense baseline on the same board.

``python -m zeroskip.platforms.table --out docs --readme README.md`` (``make boards``) builds
what is not built yet and writes ``docs/boards.md``, ``docs/boards.json`` and the README's
results table (its ``results`` section, ``zeroskip.apps.readme.results_table``; a ``boards``
section, if the file has one, gets docs/boards.md's table). ``--arch dense`` (``make boards
ARCH=dense``) builds and measures only the dense baselines and keeps the zeroskip rows of the
existing ``docs/boards.json``.

Dense-equivalent GMAC/s = M·K·N / (cycles / clock) / 1e9: the dense multiply-accumulates the
GEMM stands for, per second of accelerator time at the board's clock. It counts compute cycles
(the RTL's ``cycles`` counter) and not the UART transfers, which even at 3 Mbaud take far
longer: the UART is a control link, not a data path. Per kLUT: over the whole board build's
LUTs (iCE40: logic cells), host link and UART included, as nextpnr reports them.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from zeroskip.config import Mode
from zeroskip.markdown import table
from zeroskip.apps.readme import results_table, rewrite_section
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim import golden
from zeroskip.sim.patterns import sparse_weights
from zeroskip.sim.rtl.runner import run_programs
from zeroskip.platforms.boards import BOARDS
from zeroskip.platforms.flow import build_board

SHAPE = (128, 256, 128)
SPARSITIES = (0.0, 0.5, 0.75, 0.9)


def architectures(board):
    """The architectures ``board`` has a configuration for."""
    return ["zeroskip"] + (["dense"] if board.dense_config is not None else [])


def measure(board, sparsities=SPARSITIES, shape=SHAPE, seed=0):
    """Per sparsity: cycles of a GEMM with uniformly random weight sparsity on ``board``'s
    configuration (Verilator; skip mode, or the dense architecture's only mode), checked
    against NumPy, and its dense-equivalent GMAC/s at the board's clock."""
    m, k, n = shape
    rng = np.random.default_rng(seed)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    mode = Mode.DENSE if board.config.arch == "dense" else Mode.SKIP
    cases = [(acts, sparse_weights(rng, k, n, "uniform", density=1 - s)) for s in sparsities]
    programs = [compile_gemm(a, w, board.config, mode) for a, w in cases]
    out = []
    for sparsity, (a, w), program, rtl in zip(sparsities, cases, programs,
                                              run_programs(programs)):
        rtl.check(program)
        golden.check_result(assemble(program, rtl.results), a, w,
                            f"{board.name} ({board.config.arch}): the RTL result")
        cycles = rtl.total("cycles")
        seconds = cycles / (board.clock_mhz * 1e6)
        out.append({"sparsity": sparsity, "shape": list(shape), "runs": len(program.runs),
                    "cycles": cycles,
                    "dense_equivalent_gmacs": round(m * k * n / seconds / 1e9, 3)})
    return out


def board_rows(build_root, names=tuple(BOARDS), archs=("zeroskip", "dense")):
    """Per board of ``names`` and architecture of ``archs`` it has: its build (made unless
    built already, :func:`~zeroskip.platforms.flow.build_board`) and measured throughput."""
    rows = []
    for name in names:
        for arch in [a for a in architectures(BOARDS[name]) if a in archs]:
            board = BOARDS[name].for_arch(arch)
            folder = name if arch == "zeroskip" else f"{name}-{arch}"
            report = build_board(board, Path(build_root) / folder)
            report["arch"] = arch
            report["throughput"] = measure(board)
            report["peak_dense_gmacs"] = round(board.config.pe_count * board.clock_mhz / 1e3, 3)
            rows.append(with_efficiency(report))
    return rows


#: The resources throughput is divided by: (key in a throughput entry, the report's count,
#: the scale of the figure)
RESOURCES = (("per_klut", "luts_used", 1e3), ("per_dsp", "dsps_used", 1.0),
             ("per_bram", "brams_used", 1.0))


def with_efficiency(report):
    """``report`` with its LUTs per PE (``luts_per_pe``) and each throughput entry's
    dense-equivalent GMAC/s per kLUT, per DSP and per BRAM of the build (derived from the
    RTL's cycles and nextpnr's counts)."""
    report["luts_per_pe"] = round(report["luts_used"] / report["pe_count"], 1)
    for t in report["throughput"]:
        for key, used, scale in RESOURCES:
            t[key] = round(t["dense_equivalent_gmacs"] / report[used] * scale, 4)
    return report


def merged_rows(fresh, previous):
    """The rows of ``previous`` (a boards.json's ``boards``) with each (board, arch) that
    ``fresh`` has replaced by the fresh one, in ``previous``'s order (fresh ones it lacks at
    the end)."""
    key = lambda r: (r["board"], r["arch"])                       # noqa: E731
    by_key = {key(r): r for r in fresh}
    rows = [by_key.pop(key(r), r) for r in previous]
    return rows + list(by_key.values())


def _crossover(ratios, key):
    """The sparsity from which the ratio ``key`` reaches 1, linear between the measured
    sparsities (None if it never crosses: ahead at every one, or behind at every one)."""
    for lo, hi in zip(ratios, ratios[1:]):
        if lo[key] < 1 <= hi[key]:
            return round(lo["sparsity"] + (1 - lo[key]) * (hi["sparsity"] - lo["sparsity"]) /
                         (hi[key] - lo[key]), 3)
    return None


def comparisons(rows):
    """Per board with both architectures: zeroskip / dense dense-equivalent GMAC/s per kLUT,
    per DSP and per BRAM at each sparsity, and the crossovers: the sparsity from which the
    zeroskip array does more per LUT (``crossover_sparsity``; per resource in ``crossovers``),
    by linear interpolation between the measured sparsities (None if it is ahead at every one,
    or behind at every one)."""
    out = []
    for name in dict.fromkeys(r["board"] for r in rows):
        by_arch = {r["arch"]: r for r in rows if r["board"] == name}
        if set(by_arch) != {"zeroskip", "dense"}:
            continue
        skip, dense = by_arch["zeroskip"]["throughput"], by_arch["dense"]["throughput"]
        ratios = [{"sparsity": s["sparsity"],
                   **{key: round(s[key] / d[key], 3) for key, _, _ in RESOURCES}}
                  for s, d in zip(skip, dense)]
        crossovers = {key: _crossover(ratios, key) for key, _, _ in RESOURCES}
        out.append({"board": name, "ratios": ratios,
                    "crossover_sparsity": crossovers["per_klut"], "crossovers": crossovers})
    return out


def _crossover_text(ratios, crossover, key):
    if ratios[0][key] >= 1:
        return "below 0%"
    return "not reached" if crossover is None else f"{crossover * 100:.0f}%"


def markdown(rows, compared):
    m, k, n = SHAPE
    head = ["board", "arch", "PEs", "clock (Fmax)", "LUT/LC", "LUT/LC per PE", "FF", "DSP",
            "BRAM",
            "peak GMAC/s", *(f"{int(s * 100)}% sparse" for s in SPARSITIES)]
    body = []
    for r in rows:
        timing = "met" if r["timing_met"] else "**not met**"
        body.append([
            f"{r['board']} ({r['device']})", r["arch"], f"{r['pe_count']} ({r['rows']}×{r['cols']})",
            f"{r['clock_mhz']} MHz ({r['fmax_mhz']} MHz, {timing})",
            f"{r['luts_used']}/{r['luts_total']}", r["luts_per_pe"], r["ffs_used"],
            f"{r['dsps_used']}/{r['dsps_total']}", f"{r['brams_used']}/{r['brams_total']}",
            r["peak_dense_gmacs"],
            *(f"{t['dense_equivalent_gmacs']} ({t['per_klut']:.3f}/kLUT, "
              f"{t['per_dsp']:.3f}/DSP; {t['cycles']:,} cycles)" for t in r["throughput"])])
    lines = [table(head, body), ""]
    lines.append(f"Throughput: dense-equivalent GMAC/s of a {m}×{k}×{n} int8 GEMM with "
                 f"uniformly random weight sparsity (zeroskip: skip mode; dense: every MAC), "
                 f"cycles from the RTL's counters (Verilator) at the board's clock, per kLUT, "
                 f"per DSP and per BRAM of the whole board build; UART transfer time not "
                 f"included. "
                 f"Resources and Fmax: nextpnr's report of `zeroskip build --board B --arch A` "
                 f"(iCE40 LUT/LC counts logic cells).")
    if compared:
        body = []
        for c in compared:
            crossovers = c.get("crossovers", {"per_klut": c["crossover_sparsity"]})
            crossover = ", ".join(
                f"{label} {_crossover_text(c['ratios'], crossovers.get(key), key)}"
                for key, label in (("per_klut", "kLUT"), ("per_dsp", "DSP"),
                                   ("per_bram", "BRAM")) if key in c["ratios"][0])
            body.append([c["board"], *(", ".join(
                f"{r[key]}× per {label}" for key, label in (("per_klut", "kLUT"),
                                                          ("per_dsp", "DSP"),
                                                          ("per_bram", "BRAM")) if key in r)
                for r in c["ratios"]), crossover])
        lines += ["", table(["board", *(f"zeroskip / dense at {int(s * 100)}%"
                                        for s in SPARSITIES), "crossover sparsity"], body)]
        lines += ["", "Ratio: the zeroskip array's dense-equivalent GMAC/s per kLUT (per DSP, "
                      "per BRAM) over the dense baseline's on the same board; crossover: the "
                      "weight sparsity above which zero skipping does more per kLUT (per DSP, "
                      "per BRAM), linear between the measured sparsities."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zeroskip.platforms.table")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--build", default="build", help="board build folders go here")
    parser.add_argument("--readme", help="also rewrite this file's marked results section")
    parser.add_argument("--boards", nargs="+", choices=list(BOARDS), default=list(BOARDS))
    parser.add_argument("--arch", nargs="+", choices=["zeroskip", "dense"],
                        default=["zeroskip", "dense"],
                        help="build and measure only these architectures; the other rows "
                             "come from the --out folder's boards.json")
    parser.add_argument("--from-json", metavar="boards.json",
                        help="build and measure nothing: derive the efficiency figures and "
                             "comparisons again from this file's builds and cycles")
    args = parser.parse_args(argv)
    if args.from_json:
        rows = [with_efficiency(r)
                for r in json.loads(Path(args.from_json).read_text())["boards"]]
    else:
        rows = board_rows(args.build, args.boards, args.arch)
        previous = Path(args.out) / "boards.json"
        if set(args.arch) != {"zeroskip", "dense"} and previous.exists():
            rows = merged_rows(rows, [with_efficiency(r) for r in
                                      json.loads(previous.read_text())["boards"]])
    compared = comparisons(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    generated = {"boards": rows, "comparisons": compared}
    (out / "boards.json").write_text(json.dumps(generated, indent=2) + "\n")
    text = markdown(rows, compared)
    (out / "boards.md").write_text(text + "\n")
    if args.readme:
        rewrite_section(args.readme, "results", results_table(generated))
        rewrite_section(args.readme, "boards", text)
    print(text)


if __name__ == "__main__":
    main()
