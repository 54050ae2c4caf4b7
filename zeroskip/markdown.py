"""The one writer of Markdown tables: every table zeroskip prints or writes (reports, bench,
sweep, boards, area) goes through :func:`table`, so they share one layout."""

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["table"]

_RULE = {"l": "---", "r": "---:", "c": ":---:"}


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    """A Markdown table, its lines joined by newlines (no trailing newline).

    Parameters
    ----------
    head : sequence of str
        The column titles.
    rows : iterable of sequences
        One sequence of cells per row, as many as ``head``; each cell is written with
        ``str``.
    align : str
        One letter per column, ``l`` (left), ``r`` (right) or ``c`` (centre); columns past its
        end are left-aligned.

    Raises
    ------
    ValueError
        If a row has another number of cells than ``head``, or ``align`` another letter.
    """
    if set(align) - set(_RULE):
        raise ValueError(f"align must be made of l, r and c, not {align!r}")
    rules = [_RULE[a] for a in align[:len(head)]] + ["---"] * (len(head) - len(align))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(rules) + "|"]
    for row in rows:
        cells = [str(cell) for cell in row]
        if len(cells) != len(head):
            raise ValueError(f"a row of {len(cells)} cells in a table of {len(head)} columns")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
