"""The array a point runs on: its configuration (a board's, with the point's shape and format),
its accelerator, the host-side check of every configuration before a sweep, and the simulator
builds the points use in this machine's cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from zeroskip.apps.sweep.errors import bad_input
from zeroskip.apps.sweep.points import Point
from zeroskip.apps.sweep.workloads import operands

__all__ = ["board_config", "accelerator", "check_points", "build_dirs"]


def board_config(point: Point):
    """The point's ArrayConfig for its board: the board's own (memories, pipelining,
    multipliers) with the point's rows, columns, format and N:M; bad input if that board's
    design cannot take them."""
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.sim.patterns import nm_pattern
    n, m = nm_pattern(point.nm) or (BOARDS[point.board].config.nm_n,
                                    BOARDS[point.board].config.nm_m)
    try:
        return BOARDS[point.board].config.with_(rows=point.rows, cols=point.cols,
                                                fmt=point.format, nm_n=n, nm_m=m)
    except ValueError as exc:
        raise bad_input(f"--builds {point.board}: a {point.rows}x{point.cols} {point.format} "
                        f"array: {exc}") from None


def accelerator(point: Point):
    """The point's :class:`zeroskip.api.GemmRunner` in skip mode: its board's configuration
    (:func:`board_config`) if it has a board, else the point's rows, columns and format."""
    from zeroskip.api import GemmRunner
    if point.board:
        return GemmRunner(config=board_config(point), mode="skip", sim=point.sim)
    return GemmRunner(rows=point.rows, cols=point.cols, format=point.format,
                      nm=point.nm or None, mode="skip", sim=point.sim)


def check_points(points: Sequence[Point]) -> None:
    """Compile one GEMM point of every configuration on the host (no simulation): a shape
    the array's memories cannot take, or a configuration a board cannot take, is bad input
    before any work."""
    seen: set[tuple[Any, ...]] = set()
    for point in points:
        if point.config_key() in seen:
            continue
        seen.add(point.config_key())
        runner = accelerator(point)
        if not point.model:
            runner.compile(*operands(point))


def build_dirs(points: Sequence[Point]) -> list[Path]:
    """The simulator builds of these points under this machine's ``$ZEROSKIP_CACHE`` that
    exist (those a local cluster made or reused: kept when the cache is trimmed)."""
    from zeroskip.sim.rtl.cache import cache_root, gateware_digest
    digest = gateware_digest()
    folders: dict[Path, None] = {}
    for point in points:
        config = accelerator(point).config
        folders[cache_root() / f"{point.sim}-{config.name()}-{digest}"] = None
    return [folder for folder in folders if folder.is_dir()]
