"""``zeroskip bench``: the speedup / fraction-of-ideal sweep on the RTL (table, CSV, plots)."""

import sys
from pathlib import Path

__all__ = ["bench_command"]


def bench_command(args):
    import shlex

    from zeroskip.apps.bench import run_bench, write_outputs
    from zeroskip.apps.outputs import check_file, check_folder
    from zeroskip.sim.loaders import BadInput
    if not 1 <= args.size <= 4096:
        raise BadInput(f"--size must be between 1 and 4096, got {args.size}")
    if args.readme and not Path(args.readme).is_file():
        raise BadInput(f"--readme: no such file: {args.readme}")
    if args.readme:
        check_file(args.readme, "--readme")
    check_folder(args.out, "--out")
    shape = (args.size, args.size, args.size)
    from zeroskip.sim.energy import EnergyTable
    table = EnergyTable.load(args.energy_table)
    config, rows = run_bench(rows=args.rows, cols=args.cols, shape=shape,
                             progress=sys.stderr.isatty(), table=table)
    command = shlex.join(["zeroskip", *args.argv])
    print(write_outputs(config, rows, args.out, shape, readme=args.readme, command=command))
    print(f"wrote {args.out}/bench.md, bench.csv, bench.json, bench.png, bench_energy.png")
