"""The ``zeroskip sweep`` command's lists read into values: ``"4,8"`` into sides, formats,
sparsities and patterns, ``"64x64x64"`` into a GEMM shape; bad input names the option."""

from __future__ import annotations

import math
from typing import Callable, TypeVar

from zeroskip.apps.sweep.errors import bad_input

__all__ = ["parse_list", "format_name", "sparsity_value", "pattern_name", "parse_shape"]

T = TypeVar("T")


def parse_list(text: str, option: str, convert: Callable[[str], T]) -> list[T]:
    """``"4,8"`` -> ``[4, 8]``: each item through ``convert`` (which raises ValueError naming
    what is wrong), duplicates dropped; an empty list or item is bad input."""
    items = [item.strip() for item in str(text).split(",")]
    if any(not item for item in items):
        raise bad_input(f"{option}: empty item in {text!r} (a comma-separated list, e.g. 4,8)")
    values: list[T] = []
    for item in items:
        try:
            value = convert(item)
        except ValueError as exc:
            raise bad_input(f"{option}: {exc}") from None
        if value not in values:
            values.append(value)
    return values


def format_name(text: str) -> str:
    """``text`` if it names a weight format of :data:`zeroskip.config.FORMATS`; else
    ValueError."""
    from zeroskip.config import FORMATS
    if text not in FORMATS:
        raise ValueError(f"unknown format {text!r} (one of {', '.join(FORMATS)})")
    return text


def sparsity_value(text: str) -> float:
    """``text`` as a weight sparsity in [0, 1); else ValueError."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"must be in [0, 1), got {text}")
    return value


def pattern_name(text: str) -> str:
    """``text`` if it names a pattern of :data:`zeroskip.sim.patterns.PATTERNS`, or an N:M
    pattern written ``N:M``; else ValueError."""
    from zeroskip.sim.patterns import PATTERNS, nm_pattern
    if text in PATTERNS:
        return text
    if nm_pattern(text):
        n, m = nm_pattern(text)
        return f"{n}:{m}"
    raise ValueError(f"unknown pattern {text!r} (one of {', '.join(PATTERNS)}, or N:M with "
                     f"1 <= N < M <= 16)")


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"64x64x64"`` -> (64, 64, 64): M×K×N, each 1 to 4096."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        m, k, n = (int(part) for part in parts)
    except ValueError:
        raise bad_input(f"--shape must look like MxKxN (e.g. 64x64x64), not {text!r}") from None
    if not all(1 <= side <= 4096 for side in (m, k, n)):
        raise bad_input(f"--shape: each of M, K, N must be between 1 and 4096, got {text}")
    return m, k, n
