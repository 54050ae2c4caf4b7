"""Design-space sweeps: the Cartesian product of array shapes, formats, weight sparsities and
patterns, each point one GEMM on the generated RTL, run as tasks on a Dask cluster.

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
against PE count, one panel per sparsity (and shape), the Pareto front marked.
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

__all__ = ["Point", "plan", "parse_list", "parse_shape", "nm_for_sparsity", "run_point",
           "read_results", "write_results", "pareto_flags", "plot", "connect", "run_sweep",
           "PARAMS", "COLUMNS"]

#: The columns that identify a point (a re-run skips a row whose values are all equal).
PARAMS = ["rows", "cols", "format", "nm", "pattern", "sparsity", "m", "k", "n", "seed", "sim"]
#: What a run adds.
FIGURES = ["pe_count", "sparsity_measured", "cycles", "dense_cycles", "dense_cycles_source",
           "ideal_cycles", "fraction_of_ideal", "speedup", "weight_bits", "dense_weight_bits",
           "bit_exact", "pareto", "worker",
           "seconds", "gateware", "error"]
COLUMNS = PARAMS + FIGURES

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
    m: int
    k: int
    n: int
    seed: int
    sim: str = "verilator"

    def params(self) -> dict[str, Any]:
        return {name: _canonical(name, value) for name, value in asdict(self).items()}

    def key(self) -> tuple[str, ...]:
        return key_of(self.params())

    def config_key(self) -> tuple[Any, ...]:
        return (self.rows, self.cols, self.format, self.nm, self.sim)


def _canonical(name: str, value: Any) -> Any:
    """A parameter as written to and read from results.csv: a float's repr round-trips."""
    if name == "sparsity":
        return repr(float(value))
    if name in ("rows", "cols", "m", "k", "n", "seed"):
        return int(value)
    return str(value)


def key_of(row: dict[str, Any]) -> tuple[str, ...]:
    """The point's identity in a row of results.csv (or of :meth:`Point.params`)."""
    return tuple(str(_canonical(name, row[name])) for name in PARAMS)


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
         sim: str = "verilator") -> list[Point]:
    """The sweep's points: the Cartesian product, without duplicates.

    A pattern of fixed density (2:4, 1:4, any N:M) takes its own sparsity, whatever the
    sparsity list says. The nm format decodes N:M-structured weights only: its array gets the
    N:M of the pattern, or (for an unstructured pattern) the N:M pattern of the point's
    sparsity (:func:`nm_for_sparsity`), which then is the point's pattern.

    The points come interleaved by configuration, so that the first tasks a cluster starts
    build different simulators instead of waiting for one build.
    """
    from zeroskip.sim.patterns import nm_pattern
    m, k, n = shape
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
        point = Point(r, c, fmt, nm, pattern, float(sparsity), m, k, n, seed, sim)
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


def _accelerator(point: Point):
    from zeroskip.api import GemmRunner
    return GemmRunner(rows=point.rows, cols=point.cols, format=point.format,
                      nm=point.nm or None, mode="skip", sim=point.sim)


def check_points(points: Sequence[Point]) -> None:
    """Compile one point of every configuration on the host (no simulation): a shape the
    array's memories cannot take is bad input before any work."""
    seen: set[tuple[Any, ...]] = set()
    for point in points:
        if point.config_key() in seen:
            continue
        seen.add(point.config_key())
        acts, weights = operands(point)
        _accelerator(point).compile(acts, weights)


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


def run_point(params: dict[str, Any], gateware: str | None = None) -> dict[str, Any]:
    """One point on the RTL (a Dask task; also callable directly): its row of results.csv.

    ``gateware``: the digest of the gateware sources the sweep runs (``gateware_digest()``);
    a worker whose sources differ (another zeroskip, or a checkout edited during the sweep)
    runs nothing and says so in ``error``. Never raises for a failure of the point itself:
    the row's ``error`` says what failed."""
    from zeroskip.sim.rtl.runner import gateware_digest
    started = time.perf_counter()
    row: dict[str, Any] = {name: "" for name in COLUMNS}
    row.update(params)
    point = Point(int(params["rows"]), int(params["cols"]), str(params["format"]),
                  str(params["nm"]), str(params["pattern"]), float(params["sparsity"]),
                  int(params["m"]), int(params["k"]), int(params["n"]), int(params["seed"]),
                  str(params["sim"]))
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
            "bit_exact": exact,
            "error": "" if exact else "the result differs from NumPy's",
        })
    except Exception as exc:  # recorded; the sweep goes on
        row["error"] = _first_line(exc)
        if "differs from the golden model" in str(exc):
            row["bit_exact"] = False
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


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
            missing = [name for name in PARAMS if name not in (reader.fieldnames or [])]
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
    """A row that needs no new run: no error, bit-exact, and from these gateware sources."""
    return not row.get("error") and str(row.get("bit_exact")) == "True" and \
        row.get("gateware") == gateware


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _workload(row: dict[str, Any]) -> tuple[str, ...]:
    """What a Pareto front compares designs on: the GEMM's shape and operands' seed and the
    weights' sparsity (of whatever pattern: the nm format runs N:M-pruned weights of that
    sparsity, the others the pattern asked for)."""
    return tuple(str(_canonical(name, row[name])) for name in ("sparsity", "m", "k", "n",
                                                                "seed", "sim"))


def pareto_flags(rows: Sequence[dict[str, Any]]) -> list[bool | None]:
    """For every row: on the Pareto front of its workload (:func:`_workload`: no other point
    of that shape and sparsity has as few PEs and as few cycles, and fewer of one), or None
    for a row without cycles."""
    flags: list[bool | None] = [None] * len(rows)
    groups: dict[tuple[str, ...], list[tuple[float, float, int]]] = {}
    for index, row in enumerate(rows):
        pes, cycles = _number(row["pe_count"]), _number(row["cycles"])
        if not (row.get("error") or math.isnan(cycles) or math.isnan(pes)):
            groups.setdefault(_workload(row), []).append((pes, cycles, index))
    for points in groups.values():
        points.sort()
        best = math.inf  # fewest cycles of any point with fewer PEs
        for _, same_pes in itertools.groupby(points, key=lambda p: p[0]):
            members = list(same_pes)
            fewest = members[0][1]
            for _, cycles, index in members:
                flags[index] = cycles == fewest and fewest < best
            best = min(best, fewest)
    return flags


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    def part(value: Any) -> tuple[int, float, str]:
        number = _number(value)
        return (1, 0.0, str(value)) if math.isnan(number) else (0, number, "")
    return tuple(part(row[name]) for name in PARAMS)


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
    """Cycles against PE count, one panel per sparsity (and shape), a colour per format; the
    Pareto front (fewest PEs for fewest cycles) joined and ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [row for row in rows if not row.get("error") and row.get("cycles") not in ("", None)]
    workloads = sorted({_workload(row) for row in good},
                       key=lambda w: tuple(_number(x) for x in w[:5]) + (w[5],))
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
        mine = [(row, flag) for row, flag in zip(good, flags) if _workload(row) == workload]
        for label in labels:
            pts = [row for row, _ in mine if _format_label(row) == label]
            if pts:
                ax.scatter([_number(r["pe_count"]) for r in pts],
                           [_number(r["cycles"]) for r in pts], color=colours[label],
                           marker=markers[label], label=label, s=sizes[label], zorder=3)
        front = sorted(((_number(r["pe_count"]), _number(r["cycles"])) for r, flag in mine
                        if flag), key=lambda p: p)
        if front:
            xs, ys = zip(*front)
            ax.step(xs, ys, where="post", color="k", linewidth=1, zorder=2,
                    label="Pareto front")
            ax.scatter(xs, ys, s=200, facecolors="none", edgecolors="k", linewidths=1.2,
                       zorder=4)
        sparsity, m, k, n, seed, sim = workload
        ax.set(xscale="log", yscale="log", xlabel="PEs (rows × cols)", ylabel="cycles (RTL)",
               title=f"sparsity {float(sparsity):g}, {m}×{k}×{n}")
        pes = sorted({_number(r["pe_count"]) for r, _ in mine})
        ax.set_xticks(pes, [f"{p:g}" for p in pes])
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
              timeout: float | None = None) -> dict[str, Any]:
    """Run the points not already done in ``out``/results.csv on the cluster; write
    results.csv (after every point) and pareto.png. Returns a summary.

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
                               "ran": 0, "failed": 0, "workers": 0, "errors": [],
                               "gateware": gateware}
    rows = list(kept)
    with connect(scheduler, workers, timeout) as client:
        summary["workers"] = len(client.scheduler_info().get("workers", {}))
        out.mkdir(parents=True, exist_ok=True)
        rows = write_results(csv_path, rows)
        futures = {client.submit(run_point, point.params(), gateware, pure=False): point
                   for point in todo}
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(todo), desc="sweep", unit="point")
        try:
            for future in as_completed(futures):
                point = futures[future]
                try:
                    row = future.result()
                except Exception as exc:  # the task itself failed: its worker died too often
                    row = failed_row(point, exc)
                summary["ran"] += 1
                if row["error"]:
                    summary["failed"] += 1
                    summary["errors"].append(
                        f"{point.rows}x{point.cols} {point.format} {point.pattern} "
                        f"{point.sparsity:g}: {row['error']}")
                rows = write_results(csv_path, [*rows, row])
                if bar is not None:
                    bar.update()
                    bar.set_postfix_str(f"{summary['failed']} failed" if summary["failed"]
                                        else f"{row['worker'] or ''}")
        finally:
            if bar is not None:
                bar.close()
            pending = [future for future in futures if not future.done()]
            if pending:  # interrupted: what ran is in results.csv already
                client.cancel(pending)
    tmp = out / f".pareto.{os.getpid()}.png"
    plot(rows, tmp)
    os.replace(tmp, out / "pareto.png")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["rows"] = rows
    return summary
