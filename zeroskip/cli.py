"""The ``zeroskip`` command.

Exit status: 0 done; 2 bad input (one line on stderr naming the problem, nothing written); 3 a
device or link failure (a serial port that cannot be opened, a link that gives up, a programmer
that fails or finds no board, a Dask scheduler that cannot be reached); 1 internal failure
(including RTL results or cycles disagreeing with the golden and cycle models, and sweep points
that failed).

Every output path is checked before any work (bad input), and a command's output files are
written together or not at all (``zeroskip.apps.outputs``); the one exception is ``gemm
--waves``, whose trace is kept when the run fails internally (exit 1), for debugging it.
On a terminal, slow steps (a simulator build, a long simulation) are shown on stderr as they
happen; through a pipe stderr carries only the error line.
"""

import argparse
import json
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from zeroskip import __version__
from zeroskip.api import MAX_ARRAY_SIDE, DeviceFailure, array_config, array_side
from zeroskip.config import ARCHS, FORMATS, Mode

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_DEVICE = 0, 1, 2, 3


class BadUsage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage before its error; our contract is one clear line.
    def error(self, message):
        raise BadUsage(f"{self.prog}: {message}")


def _array_side(text):
    try:
        return array_side(text)
    except ValueError as exc:  # argparse prints an ArgumentTypeError's message as it is
        raise argparse.ArgumentTypeError(str(exc)) from None


def _n_of_m(text):
    from zeroskip.sim.formats.nm import parse
    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_array_options(parser):
    # no defaults on the parser: an option that a board's fixed configuration would override
    # must be told apart from one left at its default (zeroskip.api.ARRAY_DEFAULTS)
    parser.add_argument("--rows", type=_array_side, metavar="R",
                        help=f"PE rows, 1 to {MAX_ARRAY_SIDE} (default 8)")
    parser.add_argument("--cols", type=_array_side, metavar="C",
                        help=f"PE columns (decoder lanes), 1 to {MAX_ARRAY_SIDE} (default 8)")
    parser.add_argument("--format", choices=FORMATS, help="compressed-weight format (default csc)")
    parser.add_argument("--nm", type=_n_of_m, metavar="N:M",
                        help="N:M pattern of --format nm, 1 <= N < M <= 16 (default 2:4)")


def _add_size_options(parser, what):
    parser.add_argument("--rows", type=_array_side, default=8, metavar="R",
                        help=f"PE rows of the {what}, 1 to {MAX_ARRAY_SIDE} (default 8)")
    parser.add_argument("--cols", type=_array_side, default=8, metavar="C",
                        help=f"PE columns of the {what}, 1 to {MAX_ARRAY_SIDE} (default 8)")


SIM_HELP = "Verilog simulator: verilator (default) or icarus"


def _config(args):
    return array_config(args.rows, args.cols, args.format, args.nm, getattr(args, "board", None),
                        double_buffer=getattr(args, "double_buffer", False),
                        arch=getattr(args, "arch", "zeroskip"),
                        spell=lambda name: f"--{name.replace('_', '-')}")


ARCH_HELP = ("zeroskip (default): the zero-skipping array; dense: the baseline, a conventional "
             "output-stationary systolic array (no decoders, every MAC)")


def _add_arch_option(parser):
    parser.add_argument("--arch", choices=ARCHS, default="zeroskip", help=ARCH_HELP)


DOUBLE_BUFFER_HELP = ("two banks of every memory: the next run's operands load and the last "
                      "run's results come back while a run computes (total_cycles: end to end)")


def _parser():
    parser = _Parser(prog="zeroskip", description="Zero-skipping sparse GEMM accelerator "
                     "generator: generate Verilog, simulate it, measure what sparsity buys.")
    parser.add_argument("--version", action="version", version=f"zeroskip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    gemm = sub.add_parser("gemm", help="run one GEMM on the generated RTL in simulation")
    gemm.add_argument("--acts", required=True, metavar="A.npy", help="int8 activations M×K")
    gemm.add_argument("--weights", required=True, metavar="W.npy", help="int8 weights K×N")
    gemm.add_argument("--out", required=True, metavar="C.npy", help="int32 result M×N")
    gemm.add_argument("--report", metavar="report.json", help="write the JSON report here")
    _add_array_options(gemm)
    _add_arch_option(gemm)
    gemm.add_argument("--double-buffer", action="store_true", help=DOUBLE_BUFFER_HELP)
    gemm.add_argument("--mode", choices=[m.name.lower() for m in Mode],
                      help="skip (default): zero weights cost no cycles; gate: every cycle of "
                           "dense, multipliers gated on a zero operand; dense: every MAC, the "
                           "baseline (the only mode of --arch dense, and its default)")
    gemm.add_argument("--sim", choices=("verilator", "icarus"), help=SIM_HELP)
    gemm.add_argument("--waves", metavar="trace.fst",
                      help="dump a waveform of the run (FST for .fst names, else VCD)")
    gemm.add_argument("--board", choices=_board_names(),
                      help="use that board's exact array configuration (instead of --rows/"
                           "--cols/--format/--nm): simulated, or on the board with --port")
    gemm.add_argument("--port", metavar="/dev/ttyUSB1",
                      help="run on a board programmed by `zeroskip build --program` through "
                           "this serial port, instead of in simulation (needs --board)")
    _add_energy_option(gemm)

    run = sub.add_parser("run", help="an ONNX model on the generated RTL: matrix products on "
                         "the array, other ops on the host, checked against onnxruntime")
    run.add_argument("model", metavar="MODEL.onnx")
    given = run.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", metavar="X.npy", help="the input of a model with one graph input")
    given.add_argument("--inputs", metavar="IN.npz", help="inputs keyed by graph input name")
    run.add_argument("--out", required=True, metavar="DIR",
                     help="writes outputs.npz, report.json, report.md and layers.png there")
    _add_array_options(run)
    run.add_argument("--mode", choices=[m.name.lower() for m in Mode], default="skip",
                     help="skip (default), gate or dense (as for gemm)")
    run.add_argument("--sim", choices=("verilator", "icarus"), help=SIM_HELP)
    run.add_argument("--labels", metavar="y.npy",
                     help="class labels: the report gives the accuracy of the RTL and of "
                          "onnxruntime")
    run.add_argument("--calibrate", metavar="CAL.npy",
                     help="quantize a float model first (onnxruntime's quantize_static, QDQ) on "
                          "these inputs")
    run.add_argument("--prune", type=float, metavar="S",
                     help="zero the fraction S of each weight matrix by magnitude "
                          "(exploration; no fine-tuning): with --calibrate the float weights "
                          "before quantization, else a quantized model's array weights (set "
                          "to their zero points)")
    run.add_argument("--board", choices=_board_names(),
                     help="use that board's array configuration (with --port: on the board)")
    run.add_argument("--port", metavar="/dev/ttyUSB1", help="run on the board at this port")
    _add_energy_option(run)

    bench = sub.add_parser("bench", help="speedup / fraction-of-ideal sweep over weight "
                           "sparsity and patterns on the RTL (table, CSV, PNG)")
    bench.add_argument("--out", default="bench", metavar="DIR",
                       help="output folder (default bench)")
    _add_size_options(bench, "array")
    bench.add_argument("--size", type=int, default=256, metavar="S",
                       help="GEMM size S×S×S (default 256)")
    bench.add_argument("--readme", metavar="README.md",
                       help="also rewrite the marked results section of this file")
    _add_energy_option(bench)

    sweep = sub.add_parser("sweep", help="design-space sweep on a Dask cluster: every "
                           "combination of array sides, formats, sparsities and patterns run "
                           "on the RTL (results.csv, pareto.png)")
    sweep.add_argument("--rows", default="8", metavar="R,...",
                       help=f"PE rows to sweep, each 1 to {MAX_ARRAY_SIDE} (default 8)")
    sweep.add_argument("--cols", default="8", metavar="C,...",
                       help=f"PE columns to sweep, each 1 to {MAX_ARRAY_SIDE} (default 8)")
    sweep.add_argument("--format", default="csc", metavar="F,...",
                       help=f"compressed-weight formats, of {', '.join(FORMATS)} (default csc); "
                            f"nm arrays get the N:M of the pattern or of the sparsity "
                            f"(0.5 -> 2:4, 0.75 -> 1:4, 0.9 -> 1:10)")
    sweep.add_argument("--sparsity", default="0.5", metavar="S,...",
                       help="weight sparsities, each in [0, 1) (default 0.5)")
    sweep.add_argument("--pattern", default="uniform", metavar="P,...",
                       help="weight patterns: uniform (default), block4x4, heavy_tailed or N:M "
                            "such as 2:4 (which fixes the sparsity)")
    sweep.add_argument("--shape", metavar="MxKxN",
                       help="the GEMM of every point (default 64x64x64)")
    sweep.add_argument("--model", metavar="MODEL.onnx",
                       help="an ONNX model instead of a GEMM: each point runs it with its "
                            "array weights pruned by magnitude to the point's sparsity (uniform) "
                            "or N:M pattern, checked against onnxruntime")
    sweep.add_argument("--input", metavar="X.npy",
                       help="--model's input (default: random inputs of the declared shapes, "
                            "from --seed)")
    sweep.add_argument("--labels", metavar="y.npy",
                       help="--model's class labels: an accuracy column")
    sweep.add_argument("--calibrate", metavar="CAL.npy",
                       help="a float --model: quantized on these inputs at every point, its "
                            "weights pruned before quantization")
    sweep.add_argument("--builds", metavar="BOARD", choices=_board_names(),
                       help="every array takes this board's design (memories, pipelining, "
                            "multipliers) and is built for it (Yosys, nextpnr, one placement "
                            "seed; minutes per configuration): LUT/FF/DSP/BRAM, Fmax and "
                            "GMAC/s columns")
    sweep.add_argument("--seed", type=int, default=0, metavar="S",
                       help="seed of the operands (default 0): a workload is the same on "
                            "every array")
    sweep.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                       help=SIM_HELP)
    sweep.add_argument("--out", required=True, metavar="DIR",
                       help="writes results.csv (after every point) and pareto.png there; "
                            "again with the same DIR, points already done are skipped")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="an existing Dask scheduler (its workers need this zeroskip "
                            "installed); default: a local cluster, one worker per core")
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="workers of the local cluster (default: one per core; not with "
                            "--scheduler)")

    demo = sub.add_parser("demo", help="a pruned MLP on the digits data set, end to end on "
                          "the simulated accelerator")
    demo.add_argument("--out", default="demo", metavar="DIR",
                      help="output folder (default demo)")
    demo.add_argument("--sparsity", type=float, metavar="S",
                      help="target weight sparsity of the trained model, 0 <= S < 1 (default "
                           "0.9; not with --weights)")
    demo.add_argument("--weights", metavar="model.npz",
                      help="your own int8 layers (w0, w1, ... in×out; optional int32 b0, ...) "
                           "instead of the trained and pruned model")
    _add_size_options(demo, "array")
    demo.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                      help=SIM_HELP)
    _add_energy_option(demo)

    table = sub.add_parser("formats", help="bits per weight of every format against weight "
                           "sparsity (Markdown table, measured by the encoders)")
    table.add_argument("--size", type=int, default=256, metavar="S",
                       help="S×S weights (default 256)")

    build = sub.add_parser("build", help="build a board's bitstream (Yosys, nextpnr) and its "
                           "resource/timing report; optionally program the board")
    build.add_argument("--board", required=True, choices=_board_names(),
                       help="target board")
    _add_arch_option(build)
    build.add_argument("--out", metavar="DIR",
                       help="build folder (default build/BOARD, build/BOARD-dense)")
    build.add_argument("--program", action="store_true",
                       help="program the board with openFPGALoader after building")

    verilog = sub.add_parser("verilog", help="write the accelerator's Verilog")
    _add_array_options(verilog)
    _add_arch_option(verilog)
    verilog.add_argument("--double-buffer", action="store_true", help=DOUBLE_BUFFER_HELP)
    verilog.add_argument("-o", "--output", required=True, metavar="accel.v",
                         help="the Verilog file to write")
    verilog.add_argument("--bus", choices=("native", "axi", "wishbone"), default="native",
                         help="native (default): the accelerator's own ports; axi: AXI4-Lite "
                              "registers (s_axil_*) and AXI4-Stream frames (s_axis_*, m_axis_*); "
                              "wishbone: a Wishbone B4 pipelined slave (wb_*) mapping registers "
                              "and memories")
    verilog.add_argument("--header", metavar="regs.h",
                         help="with --bus axi|wishbone: write the register map as a C header")
    verilog.add_argument("--regmap", metavar="regs.md",
                         help="with --bus axi|wishbone: write the register map as Markdown")
    verilog.add_argument("--clock-mhz", type=float, default=100.0, metavar="MHZ",
                         help="with --bus axi|wishbone: the clock the core reports (CLOCK_HZ "
                              "register, INFO), default 100")

    cache = sub.add_parser("cache", help="the simulator builds cached under $ZEROSKIP_CACHE "
                           "(default ~/.cache/zeroskip): list, limit, clear")
    cache.add_argument("action", nargs="?", choices=("list", "clear"), default="list",
                       help="list (default): every entry, least recently used first, and the "
                            "total; clear: remove them all")
    cache.add_argument("--limit", metavar="SIZE",
                       help="remove least recently used entries until the cache holds at most "
                            "SIZE (e.g. 2G, 500M). After a command that built a simulator the "
                            f"cache is kept to $ZEROSKIP_CACHE_LIMIT (default "
                            f"{_default_limit_text()}; 0 turns that off)")
    return parser


def _default_limit_text():
    from zeroskip.apps.cache import DEFAULT_LIMIT, format_size
    return format_size(DEFAULT_LIMIT).replace(".0 ", " ")


def _board_names():
    from zeroskip.platforms.boards import BOARDS
    return list(BOARDS)


class _Progress(logging.Handler):
    """Shows the runner's slow steps (``zeroskip.progress``) on a terminal.

    ``ticker``: one line per step, rewritten in place every second with the seconds spent and
    closed with the step's total; a step over in less than ``delay`` seconds shows nothing.
    Otherwise (under the demo's and bench's progress bars) each message is one line, written
    through tqdm so that the bars stay intact."""

    def __init__(self, stream, *, ticker=True, delay=0.5):
        super().__init__(logging.INFO)
        self.stream, self.ticker, self.delay = stream, ticker, delay
        self.step = None     # (message, start time)
        self.shown = False
        self.guard = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)
        if ticker:
            self.thread.start()

    def emit(self, record):
        message = record.getMessage()
        if not self.ticker:
            # under progress bars: a build's start and end only (the bars show the runs)
            if getattr(record, "kind", None) in ("build", "wait") and \
                    (record.step == "start" or record.kind == "build"):
                from tqdm import tqdm
                tqdm.write(f"zeroskip: {message}", file=self.stream)
            return
        with self.guard:
            self._end()
            if getattr(record, "step", None) == "start":
                self.step, self.shown = (message, time.monotonic()), False

    def _draw(self, final=False):
        message, started = self.step
        elapsed = time.monotonic() - started
        if not final and elapsed < self.delay:
            return
        tail = f" ... done in {elapsed:.0f} s" if final else f" ... {elapsed:.0f} s"
        # one terminal line, or the carriage return cannot rewrite it
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns or 80
        except (AttributeError, OSError, ValueError):
            columns = shutil.get_terminal_size().columns
        room = columns - len(tail) - len("zeroskip: ") - 1
        if len(message) > room:
            message = message[:max(room - 1, 10)] + "…"
        self.stream.write(f"\r\x1b[Kzeroskip: {message}{tail}{chr(10) if final else ''}")
        self.stream.flush()
        self.shown = True

    def _end(self):
        if self.step is not None and self.shown:
            self._draw(final=True)
        self.step = None

    def _tick(self):
        while not self.stopping.wait(1.0 if self.shown else max(self.delay, 0.1)):
            with self.guard:
                if self.step is not None:
                    self._draw()

    def close(self):
        self.stopping.set()
        with self.guard:
            self._end()
        super().close()


class _Builds(logging.Handler):
    """Records the simulator builds a command made (for the cache's automatic limit)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.folders = []

    def emit(self, record):
        if getattr(record, "build_dir", None):
            self.folders.append(record.build_dir)


def _attach(command):
    """The progress logger's handlers for this command: the build recorder, and the display
    when stderr is a terminal."""
    logger = logging.getLogger("zeroskip.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers = [_Builds()]
    if sys.stderr.isatty():
        handlers.append(_Progress(sys.stderr, ticker=command not in ("demo", "bench")))
    for handler in handlers:
        logger.addHandler(handler)
    return handlers


def _detach(handlers):
    logger = logging.getLogger("zeroskip.progress")
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()


def _limit_cache(built):
    """After a command that built a simulator: keep the cache to $ZEROSKIP_CACHE_LIMIT (default
    ``DEFAULT_LIMIT``), least recently used first, never touching what this command built or
    anything used in the last hour (other processes may be running it)."""
    from zeroskip.apps.cache import DEFAULT_LIMIT, evict, format_size, parse_size
    text = os.environ.get("ZEROSKIP_CACHE_LIMIT", "").strip()
    if text.lower() in ("0", "none", "off"):
        return
    try:
        limit = parse_size(text) if text else DEFAULT_LIMIT
    except ValueError:
        limit = DEFAULT_LIMIT
    removed = evict(limit, keep=tuple(Path(p) for p in built), min_age=3600)
    if removed and sys.stderr.isatty():
        print(f"zeroskip: cache over {format_size(limit)}: removed {len(removed)} least recently "
              f"used builds ({format_size(sum(e.size for e in removed))}); see `zeroskip cache`",
              file=sys.stderr)


def _add_energy_option(parser):
    parser.add_argument("--energy-table", metavar="FILE.json",
                        help="picojoules per event (a JSON object of event names, and "
                             "static_pj_per_cycle) replacing the bundled table's "
                             "(Horowitz, ISSCC 2014, 45 nm)")


def _energy_line(report) -> str:
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


def _gemm(args):
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
    _config(args)
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
          f"{_energy_line(report)}; result matches NumPy -> {args.out}")


def _verilog(args):
    from zeroskip.apps.outputs import Outputs, check_file
    from zeroskip.hw.verilog import generate
    from zeroskip.sim.loaders import BadInput
    check_file(args.output, "-o")
    for option, path in (("--header", args.header), ("--regmap", args.regmap)):
        if path and args.bus == "native":
            raise BadInput(f"{option} needs --bus axi or --bus wishbone (the native ports "
                           "have no register map)")
        if path:
            check_file(path, option)
    if not 1 <= args.clock_mhz <= 1000:
        raise BadInput(f"--clock-mhz must be between 1 and 1000, got {args.clock_mhz:g}")
    config = _config(args)
    if config.double_buffer and args.bus != "native":
        raise BadInput("--double-buffer is not supported behind --bus axi|wishbone yet")
    clock_hz = round(args.clock_mhz * 1e6)
    text = generate(config, args.bus, clock_hz=clock_hz)
    written = [args.output]
    with Outputs() as outputs:
        outputs.write_text(args.output, text)
        if args.bus != "native":
            from zeroskip.hw.bus.regmap import RegisterMap
            regmap = RegisterMap(config, args.bus, clock_hz=clock_hz)
            for path, document in ((args.header, regmap.header), (args.regmap, regmap.markdown)):
                if path:
                    outputs.write_text(path, document())
                    written.append(path)
        outputs.commit()
    fmt = f"{config.nm_n}:{config.nm_m} nm" if config.fmt == "nm" else config.fmt
    kind = "dense systolic array" if config.arch == "dense" else f"{fmt} decoders"
    bus = "" if args.bus == "native" else f", {args.bus} bus"
    print(f"wrote {', '.join(written)}: {config.rows}x{config.cols} PEs, {kind}{bus}")


def _bench(args):
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


def _sweep(args):
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
        from zeroskip.sim.rtl.runner import SimulatorMissing
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
            _limit_cache([str(folder) for folder in used])
    if summary["failed"]:
        raise RuntimeError(f"{summary['failed']} of {summary['ran']} points failed (their "
                           f"error is in results.csv); first: {summary['errors'][0]}")


def _demo(args):
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


def _run(args):
    from zeroskip.apps.run import format_report, run_model
    from zeroskip.sim.loaders import BadInput
    if args.port and args.sim:
        raise BadInput("--sim needs a simulation, not --port (the board runs the model)")
    _config(args)
    report = run_model(args.model, out=args.out, input=args.input, inputs=args.inputs,
                       labels=args.labels, calibrate_path=args.calibrate, prune=args.prune,
                       rows=args.rows, cols=args.cols, format=args.format, nm=args.nm,
                       mode=args.mode, sim=args.sim or "verilator", board=args.board,
                       port=args.port, progress=sys.stderr.isatty(),
                       energy_table=args.energy_table)
    print(format_report(report))
    print(f"wrote {args.out}/outputs.npz, report.json, report.md and layers.png")


def _formats(args):
    from zeroskip.apps.formats_table import formats_table
    from zeroskip.sim.loaders import BadInput
    if not 1 <= args.size <= 4096:
        raise BadInput(f"--size must be between 1 and 4096, got {args.size}")
    print(formats_table(args.size))


def _build(args):
    from zeroskip.platforms.boards import (BOARDS, ProgrammingFailed, TimingNotMet, build_board,
                                           program)
    from zeroskip.sim.loaders import BadInput
    from zeroskip.apps.outputs import check_folder
    try:
        board = BOARDS[args.board].for_arch(args.arch)
    except ValueError as exc:
        raise BadInput(f"--board {args.board}: {exc}") from None
    suffix = "" if args.arch == "zeroskip" else f"-{args.arch}"
    out = Path(args.out or Path("build") / f"{board.name}{suffix}")
    check_folder(out, "--out")
    report = build_board(board, out)
    print(f"{board.name}: {report['pe_count']} PEs at {report['clock_mhz']} MHz "
          f"(nextpnr Fmax {report['fmax_mhz']} MHz, timing "
          f"{'met' if report['timing_met'] else 'NOT met'}); "
          f"{report['luts_used']}/{report['luts_total']} LUTs, {report['ffs_used']} FFs, "
          f"{report['dsps_used']}/{report['dsps_total']} DSPs, "
          f"{report['brams_used']}/{report['brams_total']} BRAMs -> {report['bitstream']}")
    if args.program:
        try:
            program(board, report)
        except TimingNotMet as exc:
            raise BadInput(str(exc)) from None
        except ProgrammingFailed as exc:
            raise DeviceFailure(str(exc)) from None
        print(f"programmed {board.name}")


def _cache(args):
    from zeroskip.apps.cache import clear, entries, evict, format_size, parse_size
    from zeroskip.sim.loaders import BadInput
    from zeroskip.sim.rtl.runner import cache_root
    root = cache_root()
    if args.action == "clear" and args.limit is not None:
        raise BadInput("cache: clear removes everything; --limit keeps the newest entries: "
                       "give one")
    if args.action == "clear":
        removed = clear()
        print(f"removed {len(removed)} entries ({format_size(sum(e.size for e in removed))}) "
              f"from {root}")
        return
    if args.limit is not None:
        try:
            limit = parse_size(args.limit)
        except ValueError as exc:
            raise BadInput(f"--limit: {exc}") from None
        removed = evict(limit)
        for entry in removed:
            print(f"removed {entry.name} ({format_size(entry.size)})")
    found = entries()
    for entry in found:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        print(f"{format_size(entry.size):>10}  {used}  {entry.name}")
    print(f"{format_size(sum(e.size for e in found))} in {len(found)} entries under {root} "
          f"(least recently used first; `zeroskip cache clear` removes them)")


COMMANDS = {"gemm": _gemm, "run": _run, "build": _build, "verilog": _verilog, "bench": _bench, "demo": _demo,
            "formats": _formats, "cache": _cache, "sweep": _sweep}


def main(argv=None):
    from zeroskip.sim.loaders import BadInput
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    handlers = []
    try:
        if not argv:
            raise BadUsage(f"zeroskip: error: no command given; one of {', '.join(COMMANDS)} "
                           f"(zeroskip --help says what each does, zeroskip COMMAND --help its "
                           f"options)")
        args = _parser().parse_args(argv)
        args.argv = argv  # bench names the command that made its figures
        handlers = _attach(args.command)
        COMMANDS[args.command](args)
        built = handlers[0].folders
        _detach(handlers)
        handlers = []
        if built:
            _limit_cache(built)
    except (BadUsage, BadInput) as exc:
        print(f"zeroskip: error: {str(exc).splitlines()[0]}"
              if not str(exc).startswith("zeroskip") else str(exc).splitlines()[0],
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except DeviceFailure as exc:
        print(f"zeroskip: device error: {(str(exc).splitlines() or [''])[0]}", file=sys.stderr)
        return EXIT_DEVICE
    except KeyboardInterrupt:
        print("zeroskip: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # an internal failure still gets one line, not a traceback
        if os.environ.get("ZEROSKIP_DEBUG"):
            raise
        from zeroskip.sim.rtl.runner import SimulatorMissing
        if isinstance(exc, SimulatorMissing):  # not a bug: a tool to install, and how
            print(f"zeroskip: error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"zeroskip: internal error: {type(exc).__name__}: "
              f"{(str(exc).splitlines() or [''])[0]}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        _detach(handlers)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
