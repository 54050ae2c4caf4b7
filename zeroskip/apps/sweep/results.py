"""A sweep's ``results.csv``: read (bad input if it is not a sweep's), which rows are done (a
re-run skips them), and written atomically, sorted, with the ``pareto`` column."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

from zeroskip.apps.sweep.columns import COLUMNS, REQUIRED, UNFIT, key_of, sort_key
from zeroskip.apps.sweep.errors import bad_input, first_line
from zeroskip.apps.sweep.pareto import pareto_flags

__all__ = ["read_results", "is_done", "write_results"]


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of an existing results.csv (none if there is none); bad input if it is not a
    sweep's."""
    from zeroskip.sim.loaders import BadInput
    path = Path(path)
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
            if missing:
                raise bad_input(f"--out: {path} is not a sweep's results.csv (no "
                                f"{', '.join(missing)} column); choose another --out")
            rows = [{name: row.get(name) or "" for name in COLUMNS} for row in reader]
            for row in rows:
                key_of(row)
    except BadInput:
        raise
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise bad_input(f"--out: cannot read {path} ({first_line(exc)}); choose another "
                        f"--out") from None
    return rows


def is_done(row: dict[str, Any], gateware: str) -> bool:
    """A row that needs no new run: from these gateware sources, bit-exact, and with its
    build's figures if it has a board (or built, and too large for the board)."""
    if row.get("gateware") != gateware or str(row.get("bit_exact")) != "True":
        return False
    if str(row.get("error") or "").startswith(UNFIT):
        return True
    return not row.get("error") and not (row.get("board") and row.get("luts") in ("", None))


def write_results(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> list[dict]:
    """Write ``rows`` (sorted by parameters, the ``pareto`` column set) to ``path`` at once:
    a temporary file moved into place, so that a reader or a crash never sees half a file."""
    path = Path(path)
    ordered = sorted(rows, key=sort_key)
    for row, flag in zip(ordered, pareto_flags(ordered)):
        row["pareto"] = "" if flag is None else flag
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(ordered)
    os.replace(tmp, path)
    return ordered
