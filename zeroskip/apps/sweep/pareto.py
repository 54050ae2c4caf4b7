"""The Pareto front of a sweep: per workload, the designs no other is both as cheap and as
fast as, and better in one (PEs and cycles, or built for a board LUTs and time at Fmax)."""

from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

from zeroskip.apps.sweep.columns import canonical, number

__all__ = ["workload_of", "tradeoff", "pareto_flags"]


#: The columns that make a row's workload (:func:`workload_of`).
_WORKLOAD = ("board", "sparsity", "m", "k", "n", "model", "model_digest", "seed", "sim")


def workload_of(row: dict[str, Any]) -> tuple[str, ...]:
    """What a Pareto front compares designs on: the board built for, the GEMM's shape (or the
    model) and operands' seed and the weights' sparsity (of whatever pattern: the nm format
    runs N:M-pruned weights of that sparsity, the others the pattern asked for)."""
    return tuple(str(canonical(name, row.get(name, ""))) for name in _WORKLOAD)


def tradeoff(row: dict[str, Any]) -> tuple[float, float] | None:
    """What a Pareto front minimises: (LUTs, microseconds at the achieved Fmax) for a point
    built for a board, (PEs, cycles) otherwise; None for a row without those figures."""
    if row.get("error"):
        return None
    cycles = number(row.get("cycles"))
    if row.get("board"):
        pair = (number(row.get("luts")), cycles / number(row.get("fmax_mhz")))
    else:
        pair = (number(row.get("pe_count")), cycles)
    return None if any(math.isnan(value) for value in pair) else pair


def pareto_flags(rows: Sequence[dict[str, Any]]) -> list[bool | None]:
    """For every row: on the Pareto front of its workload (:func:`workload_of`: no other point
    of that workload is as cheap and as fast, and better in one of them (:func:`tradeoff`),
    or None for a row without the figures."""
    flags: list[bool | None] = [None] * len(rows)
    groups: dict[tuple[str, ...], list[tuple[float, float, int]]] = {}
    for index, row in enumerate(rows):
        pair = tradeoff(row)
        if pair is not None:
            groups.setdefault(workload_of(row), []).append((*pair, index))
    for points in groups.values():
        points.sort()
        best = math.inf  # the least time of any cheaper point
        for _, same_cost in itertools.groupby(points, key=lambda p: p[0]):
            members = list(same_cost)
            fewest = members[0][1]
            for _, time_, index in members:
                flags[index] = time_ == fewest and fewest < best
            best = min(best, fewest)
    return flags

