"""A sweep's summaries of its rows: ``results.md`` (:func:`markdown`, one line per array
configuration and workload, one column per sparsity) and, with the plot, both written into
the sweep's folder (:func:`write_summaries`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from zeroskip.apps.sweep.columns import UNFIT, format_label, sort_key
from zeroskip.apps.sweep.plot import plot
from zeroskip.markdown import table

__all__ = ["markdown", "write_summaries"]

#: What the cells of results.md say (its first paragraph).
LEGEND = ("Cells: RTL cycles (fraction of ideal); built, dense-equivalent GMAC/s at the achieved "
          "Fmax; with labels, the accuracy of the RTL's outputs. Columns: weight sparsity.")


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """``results.md``: one line per array configuration and workload, one column per
    sparsity: RTL cycles and fraction of ideal (built: dense-equivalent GMAC/s at Fmax;
    with labels: accuracy), and the build's resources."""
    sparsities = sorted({float(row["sparsity"]) for row in rows})
    built = any(row.get("board") for row in rows)
    labelled = any(row.get("accuracy") not in ("", None) for row in rows)
    head = ["workload", "array", "format"]
    if built:
        head += ["LUT", "FF", "DSP", "BRAM", "Fmax MHz"]
    head += [f"{s:g}" for s in sparsities]
    groups: dict[tuple[Any, ...], dict[float, dict[str, Any]]] = {}
    for row in sorted(rows, key=sort_key):
        workload = row.get("model") or f"{row['m']}×{row['k']}×{row['n']}"
        fmt = "nm" if row["format"] == "nm" else format_label(row).replace(" (uniform)", "")
        config = (workload, f"{row['rows']}×{row['cols']}", fmt)
        groups.setdefault(config, {})[float(row["sparsity"])] = row
    body = []
    for (workload, array, fmt), by_sparsity in groups.items():
        first = next(iter(by_sparsity.values()))
        cells = [workload, array, fmt]
        if built:
            unfit = str(first.get("error") or "").startswith(UNFIT)
            cells += ["does not fit", "", "", "", ""] if unfit else \
                [str(first.get(name, "")) for name in ("luts", "ffs", "dsps", "brams",
                                                        "fmax_mhz")]
        cells += [_cell(by_sparsity.get(sparsity), labelled) for sparsity in sparsities]
        body.append(cells)
    return table(head, body, "lll" + "r" * (len(head) - 3)) + "\n"


def _cell(row: dict[str, Any] | None, labelled: bool) -> str:
    """One point's cell of results.md: empty if the sweep has no such point, ``failed`` if it
    has no cycles."""
    if row is None:
        return ""
    if row.get("cycles") in ("", None):
        return "failed"
    cell = f"{int(row['cycles']):,} ({row['fraction_of_ideal']})"
    if row["format"] == "nm":
        cell = f"{row['nm']}: {cell}"
    if row.get("gmacs") not in ("", None):
        cell += f", {float(row['gmacs']):.2f} GMAC/s"
    if labelled and row.get("accuracy") not in ("", None):
        cell += f", acc {float(row['accuracy']):.3f}"
    if row.get("error") and not str(row["error"]).startswith(UNFIT):
        cell += " (error)"
    return cell


def write_summaries(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``pareto.png`` and ``results.md`` of a sweep's rows."""
    tmp = out / f".pareto.{os.getpid()}.png"
    plot(rows, tmp)
    os.replace(tmp, out / "pareto.png")
    (out / "results.md").write_text(LEGEND + "\n\n" + markdown(rows))
