"""The columns of a sweep's ``results.csv``: which identify a point, which a run and a build
add, and how their cells are written and read back (a point's key, a cell as a number, the
order of rows)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PARAMS", "REQUIRED", "FIGURES", "COLUMNS", "UNFIT", "BUILD_FIGURES", "canonical",
           "key_of", "number", "sort_key", "format_label"]

#: The columns that identify a point (a re-run skips a row whose values are all equal). A
#: GEMM point has ``m``, ``k``, ``n``; a model point ``model`` (its file name) and
#: ``model_digest`` (of the model, its inputs, labels and calibration data) instead. ``board``:
#: the board whose configuration the array takes (``--builds``), empty for none.
PARAMS = ["board", "rows", "cols", "format", "nm", "pattern", "sparsity", "m", "k", "n",
          "model", "model_digest", "seed", "sim"]
#: The columns a results.csv must have (older sweeps lack ``board`` and the model's).
REQUIRED = ["rows", "cols", "format", "nm", "pattern", "sparsity", "m", "k", "n", "seed", "sim"]
#: What a run adds. ``dense_macs``: the multiply-accumulates of the workload's GEMMs counted
#: densely (M·K·N summed); ``gmacs``: dense-equivalent GMAC/s at the build's achieved Fmax;
#: ``energy_pj`` and ``onchip_edp_ratio_vs_dense``: the report's energy estimate (empty for a
#: board's configuration, built without energy counters).
FIGURES = ["pe_count", "sparsity_measured", "cycles", "dense_cycles", "dense_cycles_source",
           "ideal_cycles", "fraction_of_ideal", "speedup", "weight_bits", "dense_weight_bits",
           "dense_macs", "bit_exact", "accuracy", "reference_accuracy", "energy_pj",
           "onchip_edp_ratio_vs_dense",
           "luts", "ffs", "dsps", "brams", "fmax_mhz", "timing_met", "gmacs",
           "pareto", "worker", "seconds", "gateware", "error"]
COLUMNS = PARAMS + FIGURES
#: How ``error`` begins for a configuration too large for the board: a result (such a row
#: is done, and does not fail the sweep), not a failure.
UNFIT = "does not fit the board:"
#: What a board build adds to the rows of its configuration.
BUILD_FIGURES = ["luts", "ffs", "dsps", "brams", "fmax_mhz", "timing_met"]


def canonical(name: str, value: Any) -> Any:
    """A parameter as written to and read from results.csv: a float's repr round-trips; a
    model point's m, k, n are empty."""
    if name == "sparsity":
        return repr(float(value))
    if name in ("m", "k", "n") and value in ("", None, 0, "0"):
        return ""
    if name in ("rows", "cols", "m", "k", "n", "seed"):
        return int(value)
    return "" if value is None else str(value)


def key_of(row: dict[str, Any]) -> tuple[str, ...]:
    """The point's identity in a row of results.csv (or of :meth:`Point.params`)."""
    return tuple(str(canonical(name, row.get(name, ""))) for name in PARAMS)


def number(value: Any) -> float:
    """A cell as a float; NaN for an empty or non-numeric cell."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """The order of rows in results.csv and results.md: by parameters, numbers as numbers
    (before text)."""
    def part(value: Any) -> tuple[int, float, str]:
        figure = number(value)
        return (1, 0.0, str(value)) if math.isnan(figure) else (0, figure, "")
    return tuple(part(row.get(name, "")) for name in PARAMS)


def format_label(row: dict[str, Any]) -> str:
    """A row's format as the plot's legend and results.md name it: ``nm 2:4``,
    ``csc (uniform)``."""
    return f"nm {row['nm']}" if row["format"] == "nm" else f"{row['format']} ({row['pattern']})"
