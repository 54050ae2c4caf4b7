"""``zeroskip run``: an ONNX or TFLite model on the generated RTL, checked against its
definition."""

import sys
from pathlib import Path

from zeroskip.cli.parser import config_from, depths_from

__all__ = ["run_command"]


def run_command(args):
    from zeroskip.apps.run import run_model
    from zeroskip.apps.run_report import format_report, format_resident_report
    from zeroskip.sim.loaders import BadInput
    if args.port and args.sim:
        raise BadInput("--sim needs a simulation, not --port (the board runs the model)")
    config_from(args)
    report = run_model(args.model, out=args.out, input=args.input, inputs=args.inputs,
                       labels=args.labels, calibrate_path=args.calibrate, prune=args.prune,
                       rows=args.rows, cols=args.cols, format=args.format, nm=args.nm,
                       mode=args.mode, sim=args.sim or "verilator", board=args.board,
                       port=args.port, progress=sys.stderr.isatty(),
                       energy_table=args.energy_table, depths=depths_from(args),
                       resident=args.resident)
    print(format_resident_report(report) if args.resident else format_report(report))
    extra = [Path(report[key]).name for key in ("quantized_model", "pruned_model")
             if report.get(key)]
    print(f"wrote {args.out}/outputs.npz, report.json, report.md"
          + ("" if args.resident else ", layers.png")
          + "".join(f", {name}" for name in extra))
