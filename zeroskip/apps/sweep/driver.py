"""A sweep run: :func:`run_sweep` runs the points not already done in a sweep's folder as Dask
tasks (board builds first), records every row in ``results.csv`` as it finishes, and writes the
summaries at the end."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

from zeroskip.apps.sweep.arrays import board_config, check_points
from zeroskip.apps.sweep.builds import build_figures, with_build
from zeroskip.apps.sweep.cluster import connect, worker_info
from zeroskip.apps.sweep.columns import UNFIT, key_of
from zeroskip.apps.sweep.errors import first_line
from zeroskip.apps.sweep.execute import failed_row, run_point
from zeroskip.apps.sweep.points import Point
from zeroskip.apps.sweep.results import is_done, read_results, write_results
from zeroskip.apps.sweep.summary import write_summaries
from zeroskip.apps.sweep.workloads import ModelWorkload

__all__ = ["run_sweep"]


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
    gateware = worker_info()[1]
    wanted = {point.key() for point in points}
    done = {key_of(row) for row in previous if is_done(row, gateware)}
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
                        builds[what] = {"error": f"build: {first_line(exc)}"}
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
