"""``zeroskip gemm``: one GEMM on the generated RTL, in a simulator or on a board."""

import json
import sys
from pathlib import Path

from zeroskip.api import DeviceFailure, GemmRunner
from zeroskip.cli.parser import config_from, depths_from

__all__ = ["gemm_command", "summary_line", "size_note", "energy_line", "LARGE_WORK_CYCLES",
           "SIM_CYCLES_PER_SECOND"]

#: Predicted cycles from which ``gemm`` says up front how large the work is and how long its
#: simulation should take (a smaller GEMM is done before anyone wonders).
LARGE_WORK_CYCLES = 1_000_000

#: Simulated cycles per second of wall-clock time on an 8×8 array (64 PEs): Verilator's as
#: measured by ``zeroskip bench`` (docs/bench.md: 83,953 on average); Icarus, an event-driven
#: interpreter, taken as a fifth of it (a rough figure, as the note says). A simulator's cost
#: per cycle grows with the PEs it evaluates: the rate is scaled by 64 / PEs, within 4× either
#: way.
SIM_CYCLES_PER_SECOND = {"verilator": 84_000, "icarus": 17_000}


def energy_line(report) -> str:
    """The energy figures of a report, in one line (an estimate: the table is named)."""
    if report.get("energy_pj") is None:
        return "energy: this configuration has no energy counters"
    parts = report["energy_breakdown_pj"]
    table = report["energy_table"]["name"]
    line = (f"energy {report['energy_pj'] / 1e6:.4g} µJ estimated ({table}: compute "
            f"{parts['compute'] / 1e6:.3g}, on-chip memory {parts['onchip_memory'] / 1e6:.3g}, "
            f"off-chip {parts['offchip'] / 1e6:.3g}, static {parts['static'] / 1e6:.3g} µJ)")
    if report.get("onchip_edp_ratio_vs_dense"):
        line += f"; on-chip EDP {report['onchip_edp_ratio_vs_dense']}× better than dense mode"
    return line


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def size_note(program, sim: str | None, threshold: int = LARGE_WORK_CYCLES) -> str | None:
    """The line ``gemm`` shows on stderr before a large simulation: the GEMM's size (MACs),
    its runs and M-tiles, the cycle model's predicted cycles and a rough simulation time at
    :data:`SIM_CYCLES_PER_SECOND` (``sim`` None: on a board, no time); None when the predicted
    cycles are below ``threshold``."""
    cycles = program.predicted_cycles
    if cycles < threshold:
        return None
    m, k, n = program.shape
    config = program.config
    tiles = sum(run.m_tiles for run in program.runs)
    runs = len(program.runs)
    line = (f"zeroskip: {m}x{k}x{n} GEMM, {m * k * n:,} MACs on {config.rows}x{config.cols} "
            f"PEs: {runs} run{'s' * (runs != 1)} of {tiles} M-tile{'s' * (tiles != 1)} in all, "
            f"{cycles:,} cycles predicted")
    if sim is not None:
        scale = min(4.0, max(0.25, 64 / config.pe_count))
        rate = SIM_CYCLES_PER_SECOND[sim] * scale
        line += (f"; about {_duration(cycles / rate)} of {sim} simulation "
                 f"(~{rate / 1000:.0f}k cycles/s, a rough figure)")
    return line


class _Runner(GemmRunner):
    """The API's runner, saying how large the work is between compiling and simulating."""

    def compile(self, acts, weights):
        compiled = super().compile(acts, weights)
        note = size_note(compiled[2], None if self.port is not None else self.sim,
                         threshold=LARGE_WORK_CYCLES)
        if note:
            print(note, file=sys.stderr, flush=True)
        return compiled


def summary_line(report: dict, out: str) -> str:
    """The one line ``gemm`` prints (a script reads it): cycles against dense mode and the
    ideal, the MACs, the energy estimate and where C went."""
    end_to_end = (f", {report['total_cycles']} end to end (loads and read-back overlapped; "
                  f"speedup vs dense {report['speedup_end_to_end']}x)"
                  if "total_cycles" in report else "")
    arch = "dense array, " if report.get("arch") == "dense" else ""
    return (f"{arch}{report['mode']}: {report['cycles']} cycles (dense mode "
            f"{report['dense_cycles']}, speedup {report['speedup']}x; ideal "
            f"{report['ideal_cycles']}, fraction of ideal {report['fraction_of_ideal']})"
            f"{end_to_end}, {report['macs_executed']} MACs executed, {report['macs_gated']} "
            f"gated; {energy_line(report)}; result matches NumPy -> {out}")


def gemm_command(args):
    import numpy as np

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
            # zeroskip.gemm's runner, with the up-front note on large work
            engine = _Runner(rows=args.rows, cols=args.cols, format=args.format, nm=args.nm,
                             board=args.board, mode=args.mode, sim=args.sim or "verilator",
                             port=args.port, waves=None if waves is None else str(waves),
                             energy_table=args.energy_table,
                             double_buffer=args.double_buffer, arch=args.arch,
                             depths=depths_from(args))
            (result, report), = engine.run([(acts, weights)])
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
    print(summary_line(report, args.out))
