"""``zeroskip demo``: a pruned MLP on the digits data set, end to end on the simulated
accelerator."""

import sys

__all__ = ["demo_command"]


def demo_command(args):
    import math

    from zeroskip.apps.demo import format_summary, run_demo
    from zeroskip.apps.outputs import check_folder
    from zeroskip.sim.loaders import BadInput
    if args.weights is not None and args.sparsity is not None:
        raise BadInput("--sparsity prunes the demo's own trained model; --weights brings its "
                       "own sparsity: drop one")
    sparsity = 0.9 if args.sparsity is None else args.sparsity
    if not (math.isfinite(sparsity) and 0 <= sparsity < 1):
        raise BadInput(f"--sparsity must be in [0, 1), got {sparsity}")
    check_folder(args.out, "--out")
    from zeroskip.sim.energy import EnergyTable
    table = EnergyTable.load(args.energy_table)
    summary = run_demo(args.out, sparsity=sparsity, weights=args.weights, rows=args.rows,
                       cols=args.cols, sim=args.sim, show_progress=sys.stderr.isatty(),
                       table=table)
    print(format_summary(summary))
    print(f"wrote {args.out}/summary.json and {args.out}/demo.png")
    if not summary["logits_match"]:
        raise RuntimeError("the accelerator's logits differ from the NumPy int8 reference")
