"""``zeroskip sweep``: a design-space sweep on a Dask cluster."""

import sys

from zeroskip.api import array_side
from zeroskip.cli.cache import limit_cache

__all__ = ["sweep_command"]


def sweep_command(args):
    from zeroskip.apps import sweep
    from zeroskip.apps.outputs import check_folder
    from zeroskip.sim.loaders import BadInput
    if args.scheduler is not None and args.workers is not None:
        raise BadInput("--workers sizes the local cluster; --scheduler's cluster has its own "
                       "workers: drop one")
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise BadInput(f"--workers must be between 1 and 256, got {args.workers}")
    given = [name for name in ("input", "labels", "calibrate") if getattr(args, name)]
    if args.model is None and given:
        raise BadInput(f"--{given[0]} goes with --model MODEL.onnx")
    if args.model is not None and args.shape is not None:
        raise BadInput("--shape or --model: a point runs a GEMM or a model, not both")
    workload = None if args.model is None else sweep.ModelWorkload.load(
        args.model, args.input, args.labels, args.calibrate, args.seed)
    points = sweep.plan(
        rows=sweep.parse_list(args.rows, "--rows", array_side),
        cols=sweep.parse_list(args.cols, "--cols", array_side),
        formats=sweep.parse_list(args.format, "--format", sweep.format_name),
        sparsities=sweep.parse_list(args.sparsity, "--sparsity", sweep.sparsity_value),
        patterns=sweep.parse_list(args.pattern, "--pattern", sweep.pattern_name),
        shape=sweep.parse_shape(args.shape or "64x64x64"), seed=args.seed, sim=args.sim,
        board=args.builds or "", model=None if workload is None else
        (workload.name, workload.digest()))
    try:
        import distributed  # noqa: F401
    except ImportError:
        from zeroskip.sim.rtl.build import SimulatorMissing
        raise SimulatorMissing("zeroskip sweep runs on Dask, which is not installed: "
                               "pip install 'zeroskip[sweep]' (or dask[distributed])") from None
    check_folder(args.out, "--out")
    cached = sweep.build_dirs(points) if args.scheduler is None else []
    summary = sweep.run_sweep(points, args.out, scheduler=args.scheduler, workers=args.workers,
                              progress=sys.stderr.isatty(), workload=workload)
    workers = f"{summary['workers']} Dask worker{'s' * (summary['workers'] != 1)}"
    print(f"{summary['points']} points: {summary['ran']} run on {workers} in "
          f"{summary['seconds']} s ({summary['failed']} failed"
          f"{', %d too large for the board' % summary['unfit'] if summary['unfit'] else ''}), "
          f"{summary['skipped']} already "
          f"done -> {args.out}/results.csv, pareto.png")
    if args.scheduler is None:  # the local workers built: the cache's limit, as after any build
        used = sweep.build_dirs(points)
        if set(used) - set(cached):
            limit_cache([str(folder) for folder in used])
    if summary["failed"]:
        raise RuntimeError(f"{summary['failed']} of {summary['ran']} points failed (their "
                           f"error is in results.csv); first: {summary['errors'][0]}")
