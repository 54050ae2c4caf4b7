"""Design-space sweeps: the Cartesian product of array shapes, formats, weight sparsities and
patterns, each point one GEMM (or an ONNX model, pruned to the point's sparsity) on the
generated RTL, run as tasks on a Dask cluster; with a board, each configuration also built for
it (Yosys, nextpnr) for its resources and Fmax.

By default the cluster is a ``LocalCluster`` on this machine (one single-threaded worker process
per core); with ``scheduler`` an existing Dask cluster, whose workers have the same zeroskip
installed (checked before any point runs: the gateware sources' digest must match).

Every point is a task (:func:`run_point`): it builds (or reuses, from the worker's
``$ZEROSKIP_CACHE``) the simulator of its configuration, runs the GEMM in skip mode, and returns
one row of ``results.csv``: the point's parameters, the RTL's cycles, the dense-mode cycles and
speedup of the report (with their source), whether C is bit-exact, the worker that ran it, the
seconds it took, and an error (empty when fine). A point that fails is recorded with its error
and the sweep goes on; a worker that dies loses no point (Dask runs its tasks again elsewhere).
``results.csv`` is rewritten (atomically) after every point, so an interrupted sweep keeps what
it did: run again with the same ``out``, it skips the points already done (key: the point's
parameters) and runs again the failed ones and those done on other gateware sources (the
``gateware`` column: the digest that also names the simulator builds). ``pareto.png``: cycles
against PE count (built: GMAC/s against LUTs), one panel per workload, the Pareto front marked.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
import time
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

__all__ = ["Point", "ModelWorkload", "plan", "parse_list", "parse_shape", "nm_for_sparsity",
           "run_point", "board_config", "build_figures", "with_build", "read_results",
           "write_results", "pareto_flags", "plot", "markdown", "connect", "run_sweep",
           "PARAMS", "COLUMNS", "UNFIT"]

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

T = TypeVar("T")


def _bad_input(message: str) -> Exception:
    from zeroskip.sim.loaders import BadInput
    return BadInput(message)


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
        values = {name: params.get(name, "") for name in PARAMS}
        return cls(int(values["rows"]), int(values["cols"]), str(values["format"]),
                   str(values["nm"]), str(values["pattern"]), float(values["sparsity"]),
                   int(values["m"] or 0), int(values["k"] or 0), int(values["n"] or 0),
                   int(values["seed"]), str(values["sim"]), str(values["board"]),
                   str(values["model"]), str(values["model_digest"]))

    def params(self) -> dict[str, Any]:
        return {name: _canonical(name, value) for name, value in asdict(self).items()}

    def key(self) -> tuple[str, ...]:
        return key_of(self.params())

    def config_key(self) -> tuple[Any, ...]:
        return (self.board, self.rows, self.cols, self.format, self.nm, self.sim)


def _canonical(name: str, value: Any) -> Any:
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
    return tuple(str(_canonical(name, row.get(name, ""))) for name in PARAMS)


# --- parsing the command's lists ------------------------------------------------------------

def parse_list(text: str, option: str, convert: Callable[[str], T]) -> list[T]:
    """``"4,8"`` -> ``[4, 8]``: each item through ``convert`` (which raises ValueError naming
    what is wrong), duplicates dropped; an empty list or item is bad input."""
    items = [item.strip() for item in str(text).split(",")]
    if any(not item for item in items):
        raise _bad_input(f"{option}: empty item in {text!r} (a comma-separated list, e.g. 4,8)")
    values: list[T] = []
    for item in items:
        try:
            value = convert(item)
        except ValueError as exc:
            raise _bad_input(f"{option}: {exc}") from None
        if value not in values:
            values.append(value)
    return values


def format_name(text: str) -> str:
    from zeroskip.config import FORMATS
    if text not in FORMATS:
        raise ValueError(f"unknown format {text!r} (one of {', '.join(FORMATS)})")
    return text


def sparsity_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"must be in [0, 1), got {text}")
    return value


def pattern_name(text: str) -> str:
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
        raise _bad_input(f"--shape must look like MxKxN (e.g. 64x64x64), not {text!r}") from None
    if not all(1 <= side <= 4096 for side in (m, k, n)):
        raise _bad_input(f"--shape: each of M, K, N must be between 1 and 4096, got {text}")
    return m, k, n


# --- the points ----------------------------------------------------------------------------

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
            raise _bad_input(f"--pattern {unstructured[0]} with --model: a model's weights are "
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


def operands(point: Point) -> tuple[np.ndarray, np.ndarray]:
    """The point's A (M×K) and W (K×N): the same workload (pattern, sparsity, shape, seed) on
    every array and format, so that points compare."""
    from zeroskip.sim.patterns import sparse_weights
    acts_rng = np.random.default_rng([point.seed, point.m, point.k])
    acts = acts_rng.integers(-128, 128, (point.m, point.k)).astype(np.int8)
    weights_rng = np.random.default_rng([point.seed, point.k, point.n,
                                         zlib.crc32(point.pattern.encode()),
                                         round(point.sparsity * 1_000_000)])
    weights = sparse_weights(weights_rng, point.k, point.n, point.pattern, 1 - point.sparsity)
    return acts, weights


@dataclass
class ModelWorkload:
    """An ONNX model as a sweep's workload: the model's bytes and its inputs (and labels,
    and calibration data for a float model), sent once to every worker."""
    name: str
    model: bytes
    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    calibration: np.ndarray | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, input: str | None = None,
             labels: str | None = None, calibrate: str | None = None,
             seed: int = 0) -> "ModelWorkload":
        """Everything checked as ``zeroskip run`` checks it; without ``input``, random inputs
        of the declared shapes (dynamic dimensions 1) from ``seed``."""
        from zeroskip.apps import run as runner
        from zeroskip.frontend.graph import plan as graph_plan
        model = runner.load_model(Path(path))
        feeds = runner.bind_inputs(model, input) if input is not None else \
            random_feeds(model, seed)
        label_values = None if labels is None else runner.load_labels(labels, feeds)
        calibration = None if calibrate is None else runner.load_calibration(calibrate)
        # it quantizes and it runs: a float weight without --calibrate is bad input, named
        graph_plan(runner.prepare_model(model, calibration, None))
        return cls(Path(path).name, model.SerializeToString(), feeds, label_values,
                   calibration)

    def digest(self) -> str:
        import hashlib
        digest = hashlib.sha256(self.model)
        arrays = [*(self.feeds[name] for name in sorted(self.feeds)), self.labels,
                  self.calibration]
        for name, value in zip([*sorted(self.feeds), "labels", "calibration"], arrays):
            if value is not None:
                digest.update(f"{name}{value.dtype}{value.shape}".encode())
                digest.update(np.ascontiguousarray(value).tobytes())
        return digest.hexdigest()[:12]


def random_feeds(model, seed: int) -> dict[str, np.ndarray]:
    """Inputs of the model's declared dtypes and shapes (dynamic dimensions 1): integers over
    their whole range, floats standard normal."""
    from zeroskip.apps.run import _DTYPES, graph_inputs
    rng = np.random.default_rng([seed, 0x5EED])
    feeds = {}
    for info in graph_inputs(model):
        tensor = info.type.tensor_type
        dtype = np.dtype(_DTYPES.get(tensor.elem_type, np.float32))
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim]
        if dtype.kind in "iu":
            limits = np.iinfo(dtype)  # type: ignore[type-var]
            feeds[info.name] = rng.integers(int(limits.min), int(limits.max) + 1, shape,
                                            dtype=dtype)
        else:
            feeds[info.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


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
        raise _bad_input(f"--builds {point.board}: a {point.rows}x{point.cols} {point.format} "
                         f"array: {exc}") from None


def _accelerator(point: Point):
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
        accelerator = _accelerator(point)
        if not point.model:
            accelerator.compile(*operands(point))


def build_dirs(points: Sequence[Point]) -> list[Path]:
    """The simulator builds of these points under this machine's ``$ZEROSKIP_CACHE`` that
    exist (those a local cluster made or reused: kept when the cache is trimmed)."""
    from zeroskip.sim.rtl.runner import cache_root, gateware_digest
    digest = gateware_digest()
    folders: dict[Path, None] = {}
    for point in points:
        config = _accelerator(point).config
        folders[cache_root() / f"{point.sim}-{config.name()}-{digest}"] = None
    return [folder for folder in folders if folder.is_dir()]


def _first_line(exc: BaseException) -> str:
    text = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_point(params: dict[str, Any], gateware: str | None = None,
              workload: ModelWorkload | None = None) -> dict[str, Any]:
    """One point on the RTL (a Dask task; also callable directly): its row of results.csv.

    ``gateware``: the digest of the gateware sources the sweep runs (``gateware_digest()``);
    a worker whose sources differ (another zeroskip, or a checkout edited during the sweep)
    runs nothing and says so in ``error``. Never raises for a failure of the point itself:
    the row's ``error`` says what failed."""
    from zeroskip.sim.rtl.runner import gateware_digest
    started = time.perf_counter()
    row: dict[str, Any] = {name: "" for name in COLUMNS}
    row.update(params)
    point = Point.from_params(params)
    row["pe_count"] = point.rows * point.cols
    try:
        from distributed import get_worker
        row["worker"] = get_worker().address
    except (ImportError, ValueError):
        row["worker"] = "local"
    try:
        row["gateware"] = gateware_digest()
        if gateware is not None and row["gateware"] != gateware:
            raise RuntimeError(f"this worker's gateware sources (digest {row['gateware']}) "
                               f"are not the sweep's ({gateware}): the same zeroskip on every "
                               f"worker, unchanged during the sweep")
        if point.model:
            if workload is None:
                raise RuntimeError("a model point needs its workload (the model and inputs)")
            row.update(_run_model(point, workload))
            row["seconds"] = round(time.perf_counter() - started, 2)
            return row
        acts, weights = operands(point)
        (result, report), = _accelerator(point).run([(acts, weights)])
        exact = bool(np.array_equal(result, acts.astype(np.int64) @ weights.astype(np.int64)))
        row.update({
            "sparsity_measured": round(1 - report["weight_density"], 4),
            "cycles": report["cycles"],
            "dense_cycles": report["dense_cycles"],
            "dense_cycles_source": report["provenance"]["dense_cycles"],
            "ideal_cycles": report["ideal_cycles"],
            "fraction_of_ideal": report["fraction_of_ideal"],
            "speedup": report["speedup"],
            # the format's cost: bits of the compressed weights (int8 dense: 8 per weight)
            "weight_bits": report["weight_bits"],
            "dense_weight_bits": report["dense_weight_bits"],
            "dense_macs": point.m * point.k * point.n,
            "energy_pj": _blank(report["energy_pj"]),
            "onchip_edp_ratio_vs_dense": _blank(report["onchip_edp_ratio_vs_dense"]),
            "bit_exact": exact,
            "error": "" if exact else "the result differs from NumPy's",
        })
    except Exception as exc:  # recorded; the sweep goes on
        row["error"] = _first_line(exc)
        if "differs from the golden model" in str(exc):
            row["bit_exact"] = False
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def _run_model(point: Point, workload: ModelWorkload) -> dict[str, Any]:
    """A model point's figures: the model pruned to the point's sparsity or N:M pattern (a
    float model pruned before its quantization on the calibration data, as ``zeroskip run
    --calibrate --prune`` does), run on the array and compared with onnxruntime."""
    import onnx

    from zeroskip.apps.run import infer, prepare_model
    from zeroskip.frontend.prune import prune_quantized, weight_sparsity
    from zeroskip.sim.patterns import nm_pattern
    nm = nm_pattern(point.pattern)
    model = prepare_model(onnx.ModelProto.FromString(workload.model), workload.calibration,
                          None if nm else point.sparsity)
    if nm:  # after quantization: the pattern holds on the integers the array gets
        model = prune_quantized(model, nm=nm)
    _, report = infer(model, workload.feeds, _accelerator(point), labels=workload.labels,
                      name=workload.name)
    total, reference = report["total"], report["reference"]
    # bit-exact against the graph's own arithmetic: onnxruntime's default fuses some QDQ
    # patterns into kernels that round differently (the report keeps both comparisons)
    exact = bool(reference["bit_exact"] or reference.get("unoptimized", {}).get("bit_exact"))
    accel = [layer for layer in report["layers"] if layer["on"] == "accelerator"]
    return {
        "sparsity_measured": round(weight_sparsity(model), 4),
        "cycles": total["cycles"], "dense_cycles": total["dense_cycles"],
        "dense_cycles_source": total.get("provenance", {}).get("dense_cycles", ""),
        "ideal_cycles": total["ideal_cycles"], "fraction_of_ideal": total["fraction_of_ideal"],
        "speedup": total["speedup"],
        "dense_macs": sum(layer["m"] * layer["k"] * layer["n"] * layer["gemms"]
                          for layer in accel),
        "bit_exact": exact,
        "energy_pj": _blank(total.get("energy_pj")),
        "onchip_edp_ratio_vs_dense": _blank(total.get("onchip_edp_ratio_vs_dense")),
        "accuracy": reference.get("accuracy", ""),
        "reference_accuracy": reference.get("reference_accuracy", ""),
        "error": "" if exact else f"outputs differ from {reference['runtime']}'s "
                                  f"(max |diff| {reference['max_abs_diff']:g})",
    }


def build_figures(board: str, config: dict[str, Any], gateware: str) -> dict[str, Any]:
    """A board build of one configuration (a Dask task): its board top (accelerator, host
    link, UART at the board's clock) through Yosys and nextpnr, one placement seed; the
    resources and the achieved Fmax, or ``error``. Kept under the worker's
    ``$ZEROSKIP_CACHE/builds``, so a configuration is built once per worker and sources."""
    import json
    from dataclasses import replace

    from zeroskip.config import ArrayConfig
    from zeroskip.platforms.boards import BOARDS, BuildFailed, build, design_digest
    from zeroskip.platforms.top import BoardTop
    from zeroskip.sim.rtl.runner import cache_root, gateware_digest
    figures: dict[str, Any] = {"error": ""}
    try:
        if gateware_digest() != gateware:
            raise RuntimeError(f"this worker's gateware sources (digest {gateware_digest()}) "
                               f"are not the sweep's ({gateware})")
        array = ArrayConfig.from_dict(config)
        target = replace(BOARDS[board], config=array)
        core = BoardTop(array, clock_hz=int(target.clock_mhz * 1e6))
        folder = cache_root() / "builds" / \
            f"{board}-{array.name()}-{design_digest(target, core, seeds=(1,))}"
        saved = folder / "report.json"
        if saved.exists():
            report = json.loads(saved.read_text())
        else:
            report = build(target, core, folder, seeds=(1,))
        figures.update({"luts": report["luts_used"], "ffs": report["ffs_used"],
                        "dsps": report["dsps_used"], "brams": report["brams_used"],
                        "fmax_mhz": report["fmax_mhz"], "timing_met": report["timing_met"]})
    except BuildFailed as exc:  # a design too large for the device is a result, not a fault
        # the tool's own line: the log it names is on the worker
        figures["error"] = (f"{UNFIT if exc.does_not_fit else f'build for {board}:'} "
                            f"{exc.tool_error}")
    except Exception as exc:  # recorded in the rows of this configuration
        figures["error"] = f"build for {board}: {_first_line(exc)}"
    return figures


def with_build(row: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its configuration's build figures, and its throughput at that Fmax."""
    row = dict(row)
    for name in BUILD_FIGURES:
        row[name] = figures.get(name, "")
    if figures.get("error") and not row.get("error"):
        row["error"] = figures["error"]
    cycles, macs, fmax = (_number(row.get(name)) for name in ("cycles", "dense_macs",
                                                              "fmax_mhz"))
    if cycles > 0 and macs > 0 and fmax > 0:
        row["gmacs"] = round(macs / cycles * fmax / 1000, 4)
    return row


def _blank(value: Any) -> Any:
    return "" if value is None else value


def failed_row(point: Point, exc: BaseException) -> dict[str, Any]:
    """The row of a task that did not return (its worker died too often, a cluster failure)."""
    row: dict[str, Any] = {name: "" for name in COLUMNS}
    row.update(point.params())
    row["pe_count"] = point.rows * point.cols
    row["error"] = _first_line(exc)
    return row


# --- results.csv ---------------------------------------------------------------------------

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
                raise _bad_input(f"--out: {path} is not a sweep's results.csv (no "
                                 f"{', '.join(missing)} column); choose another --out")
            rows = [{name: row.get(name) or "" for name in COLUMNS} for row in reader]
            for row in rows:
                key_of(row)
    except BadInput:
        raise
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise _bad_input(f"--out: cannot read {path} ({_first_line(exc)}); choose another "
                         f"--out") from None
    return rows


def _done(row: dict[str, Any], gateware: str) -> bool:
    """A row that needs no new run: from these gateware sources, bit-exact, and with its
    build's figures if it has a board (or built, and too large for the board)."""
    if row.get("gateware") != gateware or str(row.get("bit_exact")) != "True":
        return False
    if str(row.get("error") or "").startswith(UNFIT):
        return True
    return not row.get("error") and not (row.get("board") and row.get("luts") in ("", None))


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


_WORKLOAD = ("board", "sparsity", "m", "k", "n", "model", "model_digest", "seed", "sim")


def _workload(row: dict[str, Any]) -> tuple[str, ...]:
    """What a Pareto front compares designs on: the board built for, the GEMM's shape (or the
    model) and operands' seed and the weights' sparsity (of whatever pattern: the nm format
    runs N:M-pruned weights of that sparsity, the others the pattern asked for)."""
    return tuple(str(_canonical(name, row.get(name, ""))) for name in _WORKLOAD)


def _tradeoff(row: dict[str, Any]) -> tuple[float, float] | None:
    """What a Pareto front minimises: (LUTs, microseconds at the achieved Fmax) for a point
    built for a board, (PEs, cycles) otherwise; None for a row without those figures."""
    if row.get("error"):
        return None
    cycles = _number(row.get("cycles"))
    if row.get("board"):
        pair = (_number(row.get("luts")), cycles / _number(row.get("fmax_mhz")))
    else:
        pair = (_number(row.get("pe_count")), cycles)
    return None if any(math.isnan(value) for value in pair) else pair


def pareto_flags(rows: Sequence[dict[str, Any]]) -> list[bool | None]:
    """For every row: on the Pareto front of its workload (:func:`_workload`: no other point
    of that workload is as cheap and as fast, and better in one of them (:func:`_tradeoff`),
    or None for a row without the figures."""
    flags: list[bool | None] = [None] * len(rows)
    groups: dict[tuple[str, ...], list[tuple[float, float, int]]] = {}
    for index, row in enumerate(rows):
        pair = _tradeoff(row)
        if pair is not None:
            groups.setdefault(_workload(row), []).append((*pair, index))
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


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    def part(value: Any) -> tuple[int, float, str]:
        number = _number(value)
        return (1, 0.0, str(value)) if math.isnan(number) else (0, number, "")
    return tuple(part(row.get(name, "")) for name in PARAMS)


def write_results(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> list[dict]:
    """Write ``rows`` (sorted by parameters, the ``pareto`` column set) to ``path`` at once:
    a temporary file moved into place, so that a reader or a crash never sees half a file."""
    path = Path(path)
    ordered = sorted(rows, key=_sort_key)
    for row, flag in zip(ordered, pareto_flags(ordered)):
        row["pareto"] = "" if flag is None else flag
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(ordered)
    os.replace(tmp, path)
    return ordered


# --- the plot ------------------------------------------------------------------------------

def plot(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """One panel per workload (sparsity and shape or model, board), a colour per format: cycles
    against PE count, or for points built for a board dense-equivalent GMAC/s at the achieved
    Fmax against LUTs; the Pareto front joined and ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [row for row in rows if _tradeoff(row) is not None]
    workloads = sorted({_workload(row) for row in good},
                       key=lambda w: tuple((_number(x), x) for x in w))
    panels = max(len(workloads), 1)
    across = min(panels, 3)
    down = -(-panels // across)
    fig, axes = plt.subplots(down, across, figsize=(4.6 * across, 3.8 * down), squeeze=False)
    labels = sorted({_format_label(row) for row in good})
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    flags = pareto_flags(good)
    # formats on one point (same PEs, same cycles) stay visible: each a marker and a size
    markers = {label: ("o", "s", "D", "^", "v", "P")[i % 6] for i, label in enumerate(labels)}
    sizes = {label: max(90 - 22 * i, 14) for i, label in enumerate(labels)}
    for ax, workload in zip(axes.flat, workloads):
        board, sparsity, m, k, n, model = workload[:6]
        if board:
            def xy(row):
                return _number(row["luts"]), _number(row["gmacs"])
            xlabel, ylabel = f"LUTs ({board})", "dense-equivalent GMAC/s at Fmax"
        else:
            def xy(row):
                return _number(row["pe_count"]), _number(row["cycles"])
            xlabel, ylabel = "PEs (rows × cols)", "cycles (RTL)"
        mine = [(row, flag) for row, flag in zip(good, flags) if _workload(row) == workload]
        for label in labels:
            pts = [xy(row) for row, _ in mine if _format_label(row) == label]
            if pts:
                ax.scatter(*zip(*pts), color=colours[label], marker=markers[label],
                           label=label, s=sizes[label], zorder=3)
        front = sorted(xy(row) for row, flag in mine if flag)
        if front:
            xs, ys = zip(*front)
            ax.step(xs, ys, where="post", color="k", linewidth=1, zorder=2,
                    label="Pareto front")
            ax.scatter(xs, ys, s=200, facecolors="none", edgecolors="k", linewidths=1.2,
                       zorder=4)
        ax.set(xlabel=xlabel, ylabel=ylabel,
               title=f"sparsity {float(sparsity):g}, {model or f'{m}×{k}×{n}'}")
        if board:  # which array each point is
            for row, _ in mine:
                ax.annotate(f"{row['rows']}×{row['cols']}", xy(row), fontsize=7,
                            xytext=(4, -10), textcoords="offset points")
        else:
            ax.set(xscale="log", yscale="log")
            ticks = sorted({xy(row)[0] for row, _ in mine})
            ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
            ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    if not workloads:
        axes.flat[0].text(0.5, 0.5, "no point ran", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]
    groups: dict[tuple[Any, ...], dict[float, dict[str, Any]]] = {}
    for row in sorted(rows, key=_sort_key):
        workload = row.get("model") or f"{row['m']}×{row['k']}×{row['n']}"
        fmt = "nm" if row["format"] == "nm" else _format_label(row).replace(" (uniform)", "")
        config = (workload, f"{row['rows']}×{row['cols']}", fmt)
        groups.setdefault(config, {})[float(row["sparsity"])] = row
    for (workload, array, fmt), by_sparsity in groups.items():
        first = next(iter(by_sparsity.values()))
        cells = [workload, array, fmt]
        if built:
            unfit = str(first.get("error") or "").startswith(UNFIT)
            cells += ["does not fit", "", "", "", ""] if unfit else \
                [str(first.get(name, "")) for name in ("luts", "ffs", "dsps", "brams",
                                                        "fmax_mhz")]
        for sparsity in sparsities:
            if sparsity not in by_sparsity:
                cells.append("")
                continue
            row = by_sparsity[sparsity]
            if row.get("cycles") in ("", None):
                cells.append("failed")
                continue
            cell = f"{int(row['cycles']):,} ({row['fraction_of_ideal']})"
            if row["format"] == "nm":
                cell = f"{row['nm']}: {cell}"
            if row.get("gmacs") not in ("", None):
                cell += f", {float(row['gmacs']):.2f} GMAC/s"
            if labelled and row.get("accuracy") not in ("", None):
                cell += f", acc {float(row['accuracy']):.3f}"
            if row.get("error") and not str(row["error"]).startswith(UNFIT):
                cell += " (error)"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summaries(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``pareto.png`` and ``results.md`` of a sweep's rows."""
    tmp = out / f".pareto.{os.getpid()}.png"
    plot(rows, tmp)
    os.replace(tmp, out / "pareto.png")
    (out / "results.md").write_text(
        "Cells: RTL cycles (fraction of ideal); built, dense-equivalent GMAC/s at the achieved "
        "Fmax; with labels, the accuracy of the RTL's outputs. Columns: weight sparsity.\n\n"
        + markdown(rows))


def _format_label(row: dict[str, Any]) -> str:
    return f"nm {row['nm']}" if row["format"] == "nm" else f"{row['format']} ({row['pattern']})"


# --- the cluster ---------------------------------------------------------------------------

def _worker_info() -> tuple[str, str]:
    """What a worker runs (checked against this machine's before a sweep)."""
    from zeroskip import __version__
    from zeroskip.sim.rtl.runner import gateware_digest
    return __version__, gateware_digest()


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None,
            timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to the scheduler at ``scheduler`` (a cluster failure,
    :class:`zeroskip.api.DeviceFailure`, if it cannot be reached in ``timeout`` seconds or has
    no worker with this zeroskip), or to a new ``LocalCluster`` of ``workers`` single-threaded
    worker processes (default one per core), closed on exit. ``timeout``: default Dask's
    ``distributed.comm.timeouts.connect`` (30 s; environment variable
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``)."""
    import dask
    from dask.utils import parse_timedelta
    from distributed import Client, LocalCluster

    from zeroskip.api import DeviceFailure
    if timeout is None:
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"),
                                  default="seconds")

    quiet = logging.ERROR
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(quiet)
    if scheduler is None:
        with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                          processes=True, dashboard_address=None, silence_logs=quiet) as cluster:
            with Client(cluster) as client:
                yield client
        return
    try:
        client = Client(scheduler, timeout=timeout)
    except ValueError as exc:  # a malformed address
        raise _bad_input(f"--scheduler: {_first_line(exc)}") from None
    except (OSError, TimeoutError) as exc:
        raise DeviceFailure(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                            f"({(str(exc).splitlines() or [''])[0] or type(exc).__name__})") \
            from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise DeviceFailure(f"--scheduler {scheduler}: the cluster has no worker (start "
                                f"some: dask worker {scheduler})") from None
        try:
            infos = client.run(_worker_info)
        except Exception as exc:
            raise DeviceFailure(f"--scheduler {scheduler}: a worker cannot run zeroskip "
                                f"({_first_line(exc)}); install the same zeroskip on every "
                                f"worker") from None
        mine = _worker_info()
        for address, info in infos.items():
            if tuple(info) != mine:
                raise DeviceFailure(
                    f"--scheduler {scheduler}: worker {address} runs zeroskip {info[0]} with "
                    f"gateware {info[1]}, this machine {mine[0]} with {mine[1]}: install the "
                    f"same zeroskip on every worker")
        yield client
    finally:
        client.close()


def run_sweep(points: Sequence[Point], out: str | os.PathLike, *, scheduler: str | None = None,
              workers: int | None = None, progress: bool = False,
              timeout: float | None = None,
              workload: ModelWorkload | None = None) -> dict[str, Any]:
    """Run the points not already done in ``out``/results.csv on the cluster; write
    results.csv (after every point) and pareto.png. Returns a summary.

    ``workload``: the model of model points, sent once to every worker. Points with a board
    also get a build of their configuration (one task per configuration, started first: a
    place-and-route takes minutes), whose figures join their rows as it finishes.

    Bad input (an unreadable results.csv, a shape the arrays cannot take) and an unreachable
    cluster are raised before anything is written."""
    from distributed import as_completed

    out = Path(out)
    csv_path = out / "results.csv"
    previous = read_results(csv_path)
    check_points(points)
    gateware = _worker_info()[1]
    wanted = {point.key() for point in points}
    done = {key_of(row) for row in previous if _done(row, gateware)}
    # rows of other points are kept; a failed row of a point that runs again is replaced
    kept = [row for row in previous if key_of(row) not in wanted or key_of(row) in done]
    todo = [point for point in points if point.key() not in done]
    started = time.perf_counter()
    summary: dict[str, Any] = {"points": len(points), "skipped": len(points) - len(todo),
                               "ran": 0, "failed": 0, "unfit": 0, "workers": 0, "errors": [],
                               "gateware": gateware}
    rows = list(kept)
    with connect(scheduler, workers, timeout) as client:
        summary["workers"] = len(client.scheduler_info().get("workers", {}))
        out.mkdir(parents=True, exist_ok=True)
        rows = write_results(csv_path, rows)
        shared = client.scatter(workload, broadcast=True) if workload is not None else None
        # builds first: the longest tasks, and the rows of their configuration wait for them
        configs = {point.config_key(): point for point in todo if point.board}
        futures: dict[Any, tuple[str, Any]] = {
            client.submit(build_figures, point.board, board_config(point).to_dict(), gateware,
                          pure=False, priority=1): ("build", key)
            for key, point in configs.items()}
        futures.update({client.submit(run_point, point.params(), gateware, shared,
                                      pure=False): ("point", point) for point in todo})
        builds: dict[tuple[Any, ...], dict[str, Any]] = {}
        waiting: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(futures), desc="sweep", unit="task")
        try:
            for future in as_completed(futures):
                kind, what = futures[future]
                if kind == "build":
                    try:
                        builds[what] = future.result()
                    except Exception as exc:  # its worker died too often
                        builds[what] = {"error": f"build: {_first_line(exc)}"}
                    final = [with_build(row, builds[what]) for row in waiting.pop(what, [])]
                    new = final
                else:
                    point = what
                    try:
                        row = future.result()
                    except Exception as exc:  # the task itself failed: its worker died too often
                        row = failed_row(point, exc)
                    summary["ran"] += 1
                    if point.board and point.config_key() not in builds:
                        # written now without resources (a re-run does it again), and
                        # completed when its build is done
                        waiting.setdefault(point.config_key(), []).append(row)
                        final, new = [], [row]
                    else:
                        if point.board:
                            row = with_build(row, builds[point.config_key()])
                        final = new = [row]
                for row in final:
                    if str(row["error"]).startswith(UNFIT):
                        summary["unfit"] += 1
                    elif row["error"]:
                        summary["failed"] += 1
                        summary["errors"].append(
                            f"{row['rows']}x{row['cols']} {row['format']} {row['pattern']} "
                            f"{float(row['sparsity']):g}: {row['error']}")
                replaced = {key_of(row) for row in new}
                rows = write_results(csv_path, [*(row for row in rows
                                                  if key_of(row) not in replaced), *new])
                if bar is not None:
                    bar.update()
                    bar.set_postfix_str(f"{summary['failed']} failed" if summary["failed"]
                                        else kind)
        finally:
            if bar is not None:
                bar.close()
            pending = [future for future in futures if not future.done()]
            if pending:  # interrupted: what ran is in results.csv already
                client.cancel(pending)
    write_summaries(out, rows)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["rows"] = rows
    return summary
