"""The README's generated parts: the marked sections that make targets rewrite from the
generated files under ``docs/``, and the landing README's one results table.

A marked section is the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, each
marker on a line of its own. Only generators write between markers; ``tb/test_docs.py``
recomputes every marked section of README.md and docs/*.md from the generated files and fails
when one differs, so no figure in a table can go stale by hand.

``python -m zeroskip.apps.readme README.md`` (``make readme``) rewrites the sections from the
generated files already in ``docs/`` (nothing is measured: ``make boards`` and ``make bench``
regenerate those); ``--check`` only compares, exit 1 naming the first section that differs.
"""

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from zeroskip.markdown import table

__all__ = ["sections", "rewritten_section", "rewrite_section", "results_table",
           "bench_section", "expected_section", "main"]

_SECTION = re.compile(r"<!-- ([\w-]+):start -->\n(?:(.*?)\n)?<!-- \1:end -->", re.S)


def sections(content: str) -> dict[str, str]:
    """The marked sections of ``content``: name -> the text between its markers."""
    return {m.group(1): m.group(2) or "" for m in _SECTION.finditer(content)}


def rewritten_section(content: str, name: str, text: str) -> str:
    """``content`` with what lies between ``<!-- name:start -->`` and ``<!-- name:end -->``
    replaced by ``text`` (unchanged if the markers are missing)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in content and end in content:
        before, rest = content.split(start, 1)
        _, after = rest.split(end, 1)
        return f"{before}{start}\n{text}\n{end}{after}"
    return content


def rewrite_section(path: str | Path, name: str, text: str) -> None:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in the
    file ``path`` with ``text`` (nothing happens if the markers are missing)."""
    path = Path(path)
    path.write_text(rewritten_section(path.read_text(), name, text))


def bench_section(text: str, images: str) -> str:
    """The ``bench`` section: ``text`` (what ``make bench`` writes to bench.md, without its
    final newline) and the bench's three plots, found in the folder ``images`` (relative to
    the file the section is in)."""
    at = "" if images in ("", ".") else f"{images}/"
    return (f"{text}\n\n![bench]({at}bench.png)\n\n"
            f"![energy]({at}bench_energy.png)\n\n![roofline]({at}bench_roofline.png)")


def _times(value: float) -> str:
    return f"{value:.2f}×"


def results_table(boards: dict[str, Any]) -> str:
    """The landing README's results table, from ``docs/boards.json`` (``boards``: its parsed
    content): per board and architecture the build (PEs, clock, resources) and the
    dense-equivalent GMAC/s at each measured weight sparsity, and for the zero-skipping array
    its throughput per kLUT (per BRAM too, once the boards' file carries it) over the dense
    baseline's with the crossover sparsity. Followed by one line saying what was measured."""
    rows = boards["boards"]
    compared = {c["board"]: c for c in boards.get("comparisons", [])}
    sparsities = [t["sparsity"] for t in rows[0]["throughput"]]
    head = (["board", "arch", "PEs", "clock (Fmax)", "LUT", "DSP", "BRAM"]
            + [f"GMAC/s at {s * 100:.0f}%" for s in sparsities]
            + ["per kLUT vs dense", "crossover"])
    has_bram = any("per_bram" in r for c in compared.values() for r in c["ratios"])
    if has_bram:
        head.insert(-1, "per BRAM vs dense")
    body = []
    for r in rows:
        timing = "met" if r["timing_met"] else "**not met**"
        cells = [r["board"], r["arch"], f"{r['pe_count']} ({r['rows']}×{r['cols']})",
                 f"{r['clock_mhz']} MHz ({r['fmax_mhz']}, {timing})",
                 f"{r['luts_used']:,}", f"{r['dsps_used']}", f"{r['brams_used']}"]
        cells += [f"{t['dense_equivalent_gmacs']}" for t in r["throughput"]]
        c = compared.get(r["board"])
        if r["arch"] == "zeroskip" and c is not None:
            ratios = [" / ".join(_times(x["per_klut"]) for x in c["ratios"])]
            if has_bram:
                ratios.append(" / ".join(_times(x["per_bram"]) for x in c["ratios"]))
            crossings = c.get("crossovers", {"per_klut": c["crossover_sparsity"]})
            keys = ["per_klut"] + (["per_bram"] if has_bram else [])
            texts = []
            for key in keys:
                crossing = crossings.get(key)
                if crossing is not None:
                    text = f"{crossing * 100:.0f}%"
                else:
                    text = "ahead at 0%" if c["ratios"][0][key] >= 1 else "not reached"
                texts.append(text if len(keys) == 1 else
                             f"{'kLUT' if key == 'per_klut' else 'BRAM'} {text}")
            cells += ratios + ["; ".join(texts)]
        else:
            cells += ["", ""] + ([""] if has_bram else [])
        body.append(cells)
    shape = "×".join(str(d) for d in rows[0]["throughput"][0]["shape"])
    levels = "/".join(f"{s * 100:.0f}" for s in sparsities)
    note = (f"Dense-equivalent GMAC/s of a {shape} int8 GEMM with uniformly random weight "
            f"sparsity, cycles from the RTL's counters (Verilator) at the board's clock, "
            f"resources and Fmax from nextpnr (`make boards`, docs/boards.json); the ratios are "
            f"the zero-skipping array's throughput per kLUT (per BRAM) over the dense baseline's "
            f"on the same board at {levels}% sparsity, the crossover the sparsity above which it "
            f"does more per kLUT (per BRAM).")
    return table(head, body, "llrlrrr" + "r" * len(sparsities)) + "\n\n" + note


def expected_section(name: str, docs: str | Path, where: str | Path) -> str:
    """What the generators write into the section ``name`` of the file ``where``, from the
    generated files in the folder ``docs``. Raises ``ValueError`` for a name no generator
    writes."""
    docs = Path(docs)
    if name == "results":
        return results_table(json.loads((docs / "boards.json").read_text()))
    if name in ("boards", "tinyml", "resident"):
        return (docs / f"{name}.md").read_text().rstrip("\n")
    if name == "bench":
        images = Path(os.path.relpath(docs, Path(where).parent)).as_posix()
        return bench_section((docs / "bench.md").read_text().rstrip("\n"), images)
    raise ValueError(f"no generator writes a section named {name!r} "
                     f"(known: results, boards, tinyml, resident, bench)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zeroskip.apps.readme",
                                     description="rewrite (or --check) the marked sections "
                                                 "of Markdown files from docs/")
    parser.add_argument("files", nargs="+", metavar="FILE.md")
    parser.add_argument("--docs", default="docs", help="the generated files' folder")
    parser.add_argument("--check", action="store_true",
                        help="compare only: exit 1 naming the first section that differs")
    args = parser.parse_args(argv)
    for name in args.files:
        path = Path(name)
        content = path.read_text()
        updated = content
        for section in sections(content):
            try:
                updated = rewritten_section(updated, section,
                                            expected_section(section, args.docs, path))
            except (ValueError, OSError) as e:
                print(f"zeroskip: error: {path}: {e}", file=sys.stderr)
                return 2
        if args.check and updated != content:
            differing = [s for s, text in sections(content).items()
                         if sections(updated)[s] != text]
            print(f"zeroskip: error: {path}: section {differing[0]!r} differs from what the "
                  f"generated files in {args.docs} give (make readme rewrites it)",
                  file=sys.stderr)
            return 1
        if not args.check and updated != content:
            path.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
