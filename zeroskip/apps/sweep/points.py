"""A sweep's points: :class:`Point` (an array configuration and a workload) and :func:`plan`,
the Cartesian product of the options, interleaved by configuration."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from zeroskip.apps.sweep.columns import PARAMS, canonical, key_of
from zeroskip.apps.sweep.errors import bad_input

__all__ = ["Point", "plan", "nm_for_sparsity"]


@dataclass(frozen=True)
class Point:
    """One point of a sweep: an array configuration and a workload."""
    rows: int
    cols: int
    format: str
    nm: str          # "N:M" for format nm, else ""
    pattern: str     # a name of zeroskip.sim.patterns.PATTERNS or "N:M"
    sparsity: float  # requested (an N:M pattern fixes it); the measured one is reported
    m: int           # 0 for a model point
    k: int
    n: int
    seed: int
    sim: str = "verilator"
    board: str = ""  # build for (and take the configuration of) this board
    model: str = ""  # a model point: the model's file name
    model_digest: str = ""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Point":
        """The point of a row of results.csv (or of :meth:`params`)."""
        values = {name: params.get(name, "") for name in PARAMS}
        return cls(int(values["rows"]), int(values["cols"]), str(values["format"]),
                   str(values["nm"]), str(values["pattern"]), float(values["sparsity"]),
                   int(values["m"] or 0), int(values["k"] or 0), int(values["n"] or 0),
                   int(values["seed"]), str(values["sim"]), str(values["board"]),
                   str(values["model"]), str(values["model_digest"]))

    def params(self) -> dict[str, Any]:
        """The point's parameters as results.csv holds them (:data:`PARAMS`)."""
        return {name: canonical(name, value) for name, value in asdict(self).items()}

    def key(self) -> tuple[str, ...]:
        """The point's identity (:func:`key_of`)."""
        return key_of(self.params())

    def config_key(self) -> tuple[Any, ...]:
        """The point's array configuration: the points that share a simulator and a build."""
        return (self.board, self.rows, self.cols, self.format, self.nm, self.sim)


def nm_for_sparsity(sparsity: float) -> tuple[int, int]:
    """The N:M pattern (1 <= N < M <= 16) whose density N/M is ``1 - sparsity``: exact if one
    is (M = 4, 8, 16 first: 0.5 -> 2:4, 0.75 -> 1:4, 0.9 -> 1:10), else the nearest."""
    density = 1 - sparsity
    order = [4, 8, 16] + [m for m in range(2, 17) if m not in (4, 8, 16)]
    for group in order:
        keep = round(density * group)
        if 1 <= keep < group and abs(keep / group - density) < 1e-9:
            return keep, group
    return min(((keep, group) for group in range(2, 17) for keep in range(1, group)),
               key=lambda p: (abs(p[0] / p[1] - density), p[1]))


def _fixed_density(pattern: str) -> float | None:
    from zeroskip.sim.patterns import PATTERNS, nm_pattern
    if pattern in PATTERNS:
        return PATTERNS[pattern][2]
    keep, group = nm_pattern(pattern)
    return keep / group


def plan(rows: Sequence[int], cols: Sequence[int], formats: Sequence[str],
         sparsities: Sequence[float], patterns: Sequence[str] = ("uniform",),
         shape: tuple[int, int, int] = (64, 64, 64), seed: int = 0,
         sim: str = "verilator", board: str = "",
         model: tuple[str, str] | None = None) -> list[Point]:
    """The sweep's points: the Cartesian product, without duplicates.

    ``model``: (file name, digest) of a model workload (:class:`ModelWorkload`) instead of
    the GEMM ``shape``; its weights are pruned by magnitude, so its patterns are ``uniform``
    and N:M only. ``board``: every array takes that board's configuration (its memories,
    pipelining, multipliers) with the point's rows, columns and format, to be built for it.

    A pattern of fixed density (2:4, 1:4, any N:M) takes its own sparsity, whatever the
    sparsity list says. The nm format decodes N:M-structured weights only: its array gets the
    N:M of the pattern, or (for an unstructured pattern) the N:M pattern of the point's
    sparsity (:func:`nm_for_sparsity`), which then is the point's pattern.

    The points come interleaved by configuration, so that the first tasks a cluster starts
    build different simulators instead of waiting for one build.
    """
    from zeroskip.sim.patterns import nm_pattern
    m, k, n = (0, 0, 0) if model else shape
    name, digest = model or ("", "")
    if model:
        unstructured = [p for p in patterns if p != "uniform" and not nm_pattern(p)]
        if unstructured:
            raise bad_input(f"--pattern {unstructured[0]} with --model: a model's weights are "
                            f"pruned by magnitude, uniform or N:M (such as 2:4)")
    points: dict[tuple[str, ...], Point] = {}
    for r, c, fmt, pattern, sparsity in itertools.product(rows, cols, formats, patterns,
                                                          sparsities):
        fixed = _fixed_density(pattern)
        nm = ""
        if fmt == "nm":
            structured = nm_pattern(pattern) if fixed is not None else None
            keep, group = structured or nm_for_sparsity(sparsity)
            nm = pattern = f"{keep}:{group}"
            fixed = keep / group
        if fixed is not None:
            sparsity = round(1 - fixed, 6)
        point = Point(r, c, fmt, nm, pattern, float(sparsity), m, k, n, seed, sim, board,
                      name, digest)
        points.setdefault(point.key(), point)
    groups: dict[tuple[Any, ...], list[Point]] = {}
    for point in points.values():
        groups.setdefault(point.config_key(), []).append(point)
    interleaved = itertools.zip_longest(*groups.values())
    return [point for layer in interleaved for point in layer if point is not None]
