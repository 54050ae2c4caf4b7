"""``zeroskip gemm``: one GEMM on the generated RTL, in a simulator or on a board."""

import json
from pathlib import Path

from zeroskip.api import DeviceFailure
from zeroskip.cli.parser import config_from

__all__ = ["gemm_command"]


def energy_line(report) -> str:
    """The energy figures of a report, in one line (an estimate: the table is named)."""
    if report.get("energy_pj") is None:
        return "energy: this configuration has no energy counters"
    parts = report["energy_breakdown_pj"]
    table = report["energy_table"]["name"]
    line = (f"energy {report['energy_pj'] / 1e6:.4g} µJ estimated ({table}: compute {parts['compute'] / 1e6:.3g}, on-chip memory "
            f"{parts['onchip_memory'] / 1e6:.3g}, off-chip {parts['offchip'] / 1e6:.3g}, static "
            f"{parts['static'] / 1e6:.3g} µJ)")
    if report.get("onchip_edp_ratio_vs_dense"):
        line += f"; on-chip EDP {report['onchip_edp_ratio_vs_dense']}× better than dense mode"
    return line


def gemm_command(args):
    import numpy as np

    from zeroskip.api import gemm
    from zeroskip.apps.outputs import Outputs, check_file
    from zeroskip.sim.loaders import BadInput, load_int8_matrix

    paths = [(args.out, "--out"), (args.report, "--report"), (args.waves, "--waves")]
    paths = [(Path(path), what) for path, what in paths if path is not None]
    for path, what in paths:
        check_file(path, what)
    for i, (path, what) in enumerate(paths):
        for other, other_what in paths[:i]:
            if path.resolve() == other.resolve():
                raise BadInput(f"{other_what} and {what} name the same file {path}")
    # the options are checked with the command's spelling before the API checks them again
    if args.port is not None and args.board is None:
        raise BadInput("--port needs --board (the board programmed at that port)")
    if args.port and args.waves:
        raise BadInput("--waves needs a simulation, not --port")
    if args.port and args.sim:
        raise BadInput("--sim needs a simulation, not --port (the board runs the GEMM)")
    acts = load_int8_matrix(args.acts, "--acts")
    weights = load_int8_matrix(args.weights, "--weights")
    config_from(args)
    with Outputs() as outputs:
        waves = outputs.path(args.waves) if args.waves else None
        try:
            result, report = gemm(acts, weights, rows=args.rows, cols=args.cols,
                                  format=args.format, nm=args.nm, board=args.board,
                                  mode=args.mode, sim=args.sim or "verilator", port=args.port,
                                  waves=None if waves is None else str(waves),
                                  energy_table=args.energy_table,
                                  double_buffer=args.double_buffer, arch=args.arch)
        except (BadInput, DeviceFailure, KeyboardInterrupt):
            raise
        except Exception:
            if waves is not None and waves.stat().st_size:
                outputs.commit(only=args.waves)  # the trace of a failed run is what debugs it
            raise

        def save(tmp):
            with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
                np.save(f, result)
        outputs.write(args.out, save)
        if args.report:
            outputs.write_text(args.report, json.dumps(report, indent=2) + "\n")
        outputs.commit()
    # one line (a script reads it): the figures, the energy estimate, where C went
    end_to_end = (f", {report['total_cycles']} end to end (loads and read-back overlapped; "
                  f"speedup vs dense {report['speedup_end_to_end']}x)"
                  if "total_cycles" in report else "")
    arch = "dense array, " if args.arch == "dense" else ""
    print(f"{arch}{report['mode']}: {report['cycles']} cycles (ideal {report['ideal_cycles']}, "
          f"fraction of ideal {report['fraction_of_ideal']}){end_to_end}, "
          f"{report['macs_executed']} MACs executed, {report['macs_gated']} gated; "
          f"{energy_line(report)}; result matches NumPy -> {args.out}")
