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

One module per job: :mod:`~zeroskip.apps.sweep.options` (the command's lists),
:mod:`~zeroskip.apps.sweep.points` (:class:`Point`, :func:`plan`),
:mod:`~zeroskip.apps.sweep.workloads` (GEMM operands, ONNX models),
:mod:`~zeroskip.apps.sweep.arrays` (a point's configuration and accelerator),
:mod:`~zeroskip.apps.sweep.execute` (:func:`run_point`, a Dask task),
:mod:`~zeroskip.apps.sweep.builds` (:func:`build_figures`, a Dask task),
:mod:`~zeroskip.apps.sweep.columns` and :mod:`~zeroskip.apps.sweep.results` (results.csv),
:mod:`~zeroskip.apps.sweep.pareto`, :mod:`~zeroskip.apps.sweep.plot` and
:mod:`~zeroskip.apps.sweep.summary` (the front, pareto.png, results.md),
:mod:`~zeroskip.apps.sweep.cluster` (:func:`connect`) and
:mod:`~zeroskip.apps.sweep.driver` (:func:`run_sweep`). Every name below is importable from
this package.
"""

from zeroskip.apps.sweep.arrays import board_config, build_dirs, check_points
from zeroskip.apps.sweep.builds import build_figures, with_build
from zeroskip.apps.sweep.cluster import connect, default_workers
from zeroskip.apps.sweep.columns import (BUILD_FIGURES, COLUMNS, FIGURES, PARAMS, REQUIRED,
                                         UNFIT, key_of)
from zeroskip.apps.sweep.driver import run_sweep
from zeroskip.apps.sweep.execute import failed_row, run_point
from zeroskip.apps.sweep.options import (format_name, parse_list, parse_shape, pattern_name,
                                         sparsity_value)
from zeroskip.apps.sweep.pareto import pareto_flags
from zeroskip.apps.sweep.plot import plot
from zeroskip.apps.sweep.points import Point, nm_for_sparsity, plan
from zeroskip.apps.sweep.results import is_done, read_results, write_results
from zeroskip.apps.sweep.summary import markdown, write_summaries
from zeroskip.apps.sweep.workloads import ModelWorkload, operands, random_feeds


__all__ = ["Point", "ModelWorkload", "plan", "parse_list", "parse_shape", "format_name",
           "sparsity_value", "pattern_name", "nm_for_sparsity", "operands", "random_feeds",
           "run_point", "failed_row", "board_config", "check_points", "build_dirs",
           "build_figures", "with_build", "read_results", "write_results", "is_done", "key_of",
           "pareto_flags", "plot", "markdown", "write_summaries", "connect", "default_workers",
           "run_sweep", "PARAMS", "REQUIRED", "FIGURES", "COLUMNS", "UNFIT", "BUILD_FIGURES"]
