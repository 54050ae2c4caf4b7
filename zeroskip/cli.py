"""The ``zeroskip`` command.

Exit status: 0 done; 2 bad input (one line on stderr naming the problem, nothing written); 3 a
device or link failure (a serial port that cannot be opened, a link that gives up, a programmer
that fails or finds no board); 1 internal failure (including RTL results or cycles disagreeing
with the golden and cycle models).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from zeroskip import __version__
from zeroskip.api import MAX_ARRAY_SIDE, DeviceFailure, array_config
from zeroskip.config import FORMATS, Mode

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
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 1 <= value <= MAX_ARRAY_SIDE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_ARRAY_SIDE}, got {value}")
    return value


def _n_of_m(text):
    from zeroskip.sim.formats.nm import parse
    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_array_options(parser):
    # no defaults on the parser: an option that a board's fixed configuration would override
    # must be told apart from one left at its default (zeroskip.api.ARRAY_DEFAULTS)
    parser.add_argument("--rows", type=_array_side, help="PE rows (default 8)")
    parser.add_argument("--cols", type=_array_side, help="PE columns (default 8)")
    parser.add_argument("--format", choices=FORMATS, help="compressed-weight format (default csc)")
    parser.add_argument("--nm", type=_n_of_m, metavar="N:M",
                        help="N:M pattern of the nm format (default 2:4)")


def _config(args):
    return array_config(args.rows, args.cols, args.format, args.nm, getattr(args, "board", None),
                        spell=lambda name: f"--{name}")


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
    gemm.add_argument("--mode", choices=[m.name.lower() for m in Mode], default="skip")
    gemm.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    gemm.add_argument("--waves", metavar="trace.fst",
                      help="dump a waveform of the run (FST for .fst names, else VCD)")
    gemm.add_argument("--board", choices=_board_names(),
                      help="use that board's exact array configuration (instead of --rows/"
                           "--cols/--format/--nm): simulated, or on the board with --port")
    gemm.add_argument("--port", metavar="/dev/ttyUSB1",
                      help="run on a board programmed by `zeroskip build --program` through "
                           "this serial port, instead of in simulation (needs --board)")

    bench = sub.add_parser("bench", help="speedup / fraction-of-ideal sweep over weight "
                           "sparsity and patterns on the RTL (table, CSV, PNG)")
    bench.add_argument("--out", default="bench", metavar="DIR", help="output folder")
    bench.add_argument("--rows", type=_array_side, default=8)
    bench.add_argument("--cols", type=_array_side, default=8)
    bench.add_argument("--size", type=int, default=256, metavar="S",
                       help="GEMM size S×S×S (default 256)")
    bench.add_argument("--readme", metavar="README.md",
                       help="also rewrite the marked results section of this file")

    demo = sub.add_parser("demo", help="a pruned MLP on the digits data set, end to end on "
                          "the simulated accelerator")
    demo.add_argument("--out", default="demo", metavar="DIR", help="output folder")
    demo.add_argument("--sparsity", type=float, default=0.9, metavar="S",
                      help="target weight sparsity, 0 <= S < 1 (default 0.9)")
    demo.add_argument("--weights", metavar="model.npz",
                      help="your own int8 layers (w0, w1, ... in×out; optional int32 b0, ...)")
    demo.add_argument("--rows", type=_array_side, default=8)
    demo.add_argument("--cols", type=_array_side, default=8)
    demo.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")

    table = sub.add_parser("formats", help="bits per weight of every format against density "
                           "(Markdown table, measured by the encoders)")
    table.add_argument("--size", type=int, default=256, metavar="S", help="S×S weights")

    build = sub.add_parser("build", help="build a board's bitstream (Yosys, nextpnr) and its "
                           "resource/timing report; optionally program the board")
    build.add_argument("--board", required=True, choices=_board_names(),
                       help="target board")
    build.add_argument("--out", metavar="DIR", help="build folder (default build/BOARD)")
    build.add_argument("--program", action="store_true",
                       help="program the board with openFPGALoader after building")

    verilog = sub.add_parser("verilog", help="write the accelerator's Verilog")
    _add_array_options(verilog)
    verilog.add_argument("-o", "--output", required=True, metavar="accel.v")
    return parser


def _board_names():
    from zeroskip.platforms.boards import BOARDS
    return list(BOARDS)


def _check_writable(path, what):
    from zeroskip.sim.loaders import BadInput
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise BadInput(f"{what}: directory {parent} does not exist")
    if Path(path).is_dir():
        raise BadInput(f"{what}: {path} is a directory")
    if not os.access(parent, os.W_OK):
        raise BadInput(f"{what}: cannot write to {parent}")


def _write_atomically(path, write):
    """Write via a temporary file in the same folder, so a failure leaves no partial output."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; an output file is not
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _gemm(args):
    import numpy as np

    from zeroskip.api import gemm
    from zeroskip.sim.loaders import BadInput, load_int8_matrix

    for path, what in ((args.out, "--out"), (args.report, "--report"), (args.waves, "--waves")):
        if path is not None:
            _check_writable(path, what)
    # the options are checked with the command's spelling before the API checks them again
    if args.port is not None and args.board is None:
        raise BadInput("--port needs --board (the board programmed at that port)")
    if args.port and args.waves:
        raise BadInput("--waves needs a simulation, not --port")
    acts = load_int8_matrix(args.acts, "--acts")
    weights = load_int8_matrix(args.weights, "--weights")
    _config(args)
    result, report = gemm(acts, weights, rows=args.rows, cols=args.cols, format=args.format,
                          nm=args.nm, board=args.board, mode=args.mode, sim=args.sim,
                          port=args.port, waves=args.waves)

    def save(tmp):
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
            np.save(f, result)
    _write_atomically(args.out, save)
    if args.report:
        _write_atomically(args.report, lambda tmp: Path(tmp).write_text(
            json.dumps(report, indent=2) + "\n"))
    print(f"{args.mode}: {report['cycles']} cycles (ideal {report['ideal_cycles']}, "
          f"fraction of ideal {report['fraction_of_ideal']}), "
          f"{report['macs_executed']} MACs executed, {report['macs_gated']} gated; "
          f"result matches NumPy -> {args.out}")


def _verilog(args):
    from zeroskip.hw.verilog import generate
    _check_writable(args.output, "-o")
    config = _config(args)
    text = generate(config)
    _write_atomically(args.output, lambda tmp: Path(tmp).write_text(text))
    fmt = f"{config.nm_n}:{config.nm_m} nm" if config.fmt == "nm" else config.fmt
    print(f"wrote {args.output}: {config.rows}x{config.cols} PEs, {fmt} decoders")


def _bench(args):
    from zeroskip.apps.bench import run_bench, write_outputs
    from zeroskip.sim.loaders import BadInput
    if not 1 <= args.size <= 4096:
        raise BadInput(f"--size must be between 1 and 4096, got {args.size}")
    if args.readme and not Path(args.readme).is_file():
        raise BadInput(f"--readme: no such file: {args.readme}")
    shape = (args.size, args.size, args.size)
    config, rows = run_bench(rows=args.rows, cols=args.cols, shape=shape)
    print(write_outputs(config, rows, args.out, shape, readme=args.readme))
    print(f"wrote {args.out}/bench.md, bench.csv, bench.json, bench.png")


def _demo(args):
    import math

    from zeroskip.apps.demo import format_summary, run_demo
    from zeroskip.sim.loaders import BadInput
    if not (math.isfinite(args.sparsity) and 0 <= args.sparsity < 1):
        raise BadInput(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise BadInput(f"--out: {args.out} exists and is not a directory")
    summary = run_demo(args.out, sparsity=args.sparsity, weights=args.weights, rows=args.rows,
                       cols=args.cols, sim=args.sim)
    print(format_summary(summary))
    print(f"wrote {args.out}/summary.json and {args.out}/demo.png")
    if not summary["logits_match"]:
        raise RuntimeError("the accelerator's logits differ from the NumPy int8 reference")


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
    board = BOARDS[args.board]
    out = Path(args.out or Path("build") / board.name)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out: {out} exists and is not a directory")
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


COMMANDS = {"gemm": _gemm, "build": _build, "verilog": _verilog, "bench": _bench, "demo": _demo,
            "formats": _formats}


def main(argv=None):
    from zeroskip.sim.loaders import BadInput
    try:
        args = _parser().parse_args(argv)
        COMMANDS[args.command](args)
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
        print(f"zeroskip: internal error: {type(exc).__name__}: "
              f"{(str(exc).splitlines() or [''])[0]}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
