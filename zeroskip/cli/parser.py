"""The ``zeroskip`` command line: :func:`build_parser` and the option helpers shared by the
commands. Each command's body is in its own module of :mod:`zeroskip.cli`."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import Iterable

from zeroskip import __version__
from zeroskip.api import MAX_ARRAY_SIDE, array_config, array_side
from zeroskip.config import ARCHS, FORMATS, Mode

__all__ = ["build_parser", "BadUsage", "did_you_mean", "config_from", "subcommands"]


class BadUsage(Exception):
    """A command line that the parser refuses (exit status 2); the message is one line, without
    the ``zeroskip: error:`` prefix that :func:`zeroskip.cli.main` adds."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the choice closest to ``word`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The command parsers of ``parser``, by name (empty for a command's own parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings]


class _Parser(argparse.ArgumentParser):
    """argparse with the command's one voice: an error is one line (argparse prints the whole
    usage before it), raised as :class:`BadUsage`, with "did you mean" for a misspelt option,
    command or choice."""

    def parse_known_args(self, args=None, namespace=None):
        self._words = list(sys.argv[1:] if args is None else args)  # for error()'s hints
        return super().parse_known_args(args, namespace)

    def error(self, message):
        # a misspelt option is the first thing to fix (it also shows as a missing required
        # option, or its value as a bad positional): name it
        unknown = self._unknown(getattr(self, "_words", []))
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if unknown:
            message = self._unrecognized(unknown)
        elif choice:
            message += did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        command = self.prog.removeprefix("zeroskip").strip()
        raise BadUsage(f"{command}: {message}" if command else message)

    def _unknown(self, words: list[str]) -> list[str]:
        """The words that look like options of this parser and are none (nor a prefix of
        one, which argparse accepts), up to a bare ``--``."""
        known = _option_strings(self)
        unknown = []
        for word in words:
            if word == "--" or (subcommands(self) and not word.startswith("-")):
                break  # the rest is a command's
            name = word.split("=", 1)[0] if word.startswith("--") else word[:2]  # -ofile
            if name.startswith("-") and len(name) > 1 and not name[1:2].isdigit() and \
                    not any(option.startswith(name) for option in known):
                unknown.append(word)
        return unknown

    def _unrecognized(self, words: list[str]) -> str:
        known = _option_strings(self)
        hints = (did_you_mean(word.split("=", 1)[0], known) for word in words
                 if word.startswith("-"))
        return f"unrecognized arguments: {' '.join(words)}{next(filter(None, hints), '')}"

    def parse_args(self, args=None, namespace=None):
        # an unknown option is found by the top-level parser, after the command's parser has
        # returned it: suggest from the command's own options
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = subcommands(self).get(getattr(parsed, "command", None) or "", self)
            command.error(command._unrecognized(extras))
        return parsed


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
    depths = parser.add_argument_group(
        "memory depths", "per PE or per lane; by default each PE gets the same depths whatever "
        "the array's size (zeroskip.config.ArrayConfig.for_capacity)")
    for name, metavar, what in DEPTHS:
        depths.add_argument(f"--{name.replace('_', '-')}", type=_positive, metavar=metavar,
                            dest=name, help=what)


def _add_size_options(parser, what):
    parser.add_argument("--rows", type=_array_side, default=8, metavar="R",
                        help=f"PE rows of the {what}, 1 to {MAX_ARRAY_SIDE} (default 8)")
    parser.add_argument("--cols", type=_array_side, default=8, metavar="C",
                        help=f"PE columns of the {what}, 1 to {MAX_ARRAY_SIDE} (default 8)")


SIM_HELP = "Verilog simulator: verilator (default) or icarus"


#: The memory-depth options of the array commands: (ArrayConfig field, metavar, help)
DEPTHS = [("max_k", "K", "the longest K a run accumulates (default 4096)"),
          ("act_depth", "WORDS", "activation words per PE (default 8192)"),
          ("weight_depth", "WORDS", "compressed-weight words per lane"),
          ("pointer_depth", "WORDS", "column pointers per lane"),
          ("out_depth", "RESULTS", "results per PE"),
          ("mask_depth", "WORDS", "bitmap words per lane (--format bitmap)")]


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def depths_from(args) -> dict:
    """The memory depths a command was given (none given: an empty dict)."""
    return {name: getattr(args, name) for name, _, _ in DEPTHS
            if getattr(args, name, None) is not None}


def config_from(args):
    """The ArrayConfig of a command's array options (errors spell them as flags)."""
    return array_config(args.rows, args.cols, args.format, args.nm, getattr(args, "board", None),
                        double_buffer=getattr(args, "double_buffer", False),
                        arch=getattr(args, "arch", "zeroskip"), depths=depths_from(args),
                        spell=lambda name: f"--{name.replace('_', '-')}")


ARCH_HELP = ("zeroskip (default): the zero-skipping array; dense: the baseline, a conventional "
             "output-stationary systolic array (no decoders, every MAC)")


def _add_arch_option(parser):
    parser.add_argument("--arch", choices=ARCHS, default="zeroskip", help=ARCH_HELP)


DOUBLE_BUFFER_HELP = ("two banks of every memory: the next run's operands load and the last "
                      "run's results come back while a run computes (total_cycles: end to end)")


def build_parser() -> argparse.ArgumentParser:
    """The ``zeroskip`` command line: one sub-parser per command.

    Building it has no side effects (no file, folder or logger is touched); the Sphinx CLI
    reference is generated from it.
    """
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

    run = sub.add_parser("run", help="an ONNX or int8 TFLite model on the generated RTL: "
                         "matrix products on the array, other ops on the host, checked "
                         "against the model's definition (onnxruntime running the graph as "
                         "written; LiteRT's reference kernels)")
    run.add_argument("model", metavar="MODEL.onnx|MODEL.tflite")
    given = run.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", metavar="X.npy",
                       help="the input of a model with one graph input (N samples of it)")
    given.add_argument("--inputs", metavar="IN.npz", help="inputs keyed by graph input name")
    run.add_argument("--out", required=True, metavar="DIR",
                     help="writes outputs.npz, report.json, report.md and layers.png there")
    _add_array_options(run)
    run.add_argument("--mode", choices=[m.name.lower() for m in Mode], default="skip",
                     help="skip (default), gate or dense (as for gemm)")
    run.add_argument("--sim", choices=("verilator", "icarus"), help=SIM_HELP)
    run.add_argument("--labels", metavar="y.npy",
                     help="class labels: the report gives the accuracy of the RTL and of "
                          "the reference")
    run.add_argument("--calibrate", metavar="CAL.npy",
                     help="quantize a float ONNX model first (onnxruntime's quantize_static, "
                          "QDQ) on these inputs")
    run.add_argument("--prune", type=float, metavar="S",
                     help="zero the fraction S of each weight matrix by magnitude "
                          "(exploration; no fine-tuning): with --calibrate the float weights "
                          "before quantization, else a quantized model's array weights (set "
                          "to their zero points); a .tflite's pruned copy is written as "
                          "DIR/pruned.tflite")
    run.add_argument("--board", choices=_board_names(),
                     help="use that board's array configuration (with --port: on the board)")
    run.add_argument("--port", metavar="/dev/ttyUSB1", help="run on the board at this port")
    run.add_argument("--resident", action="store_true",
                     help="run the model's layers resident on the network engine (weights "
                          "loaded once, activations on chip between layers): simulated sized to "
                          "the model; with --board ulx3s-85f its board top, through its UART; "
                          "with --port on the board; ONNX, skip mode")
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


def _add_energy_option(parser):
    parser.add_argument("--energy-table", metavar="FILE.json",
                        help="picojoules per event (a JSON object of event names, and "
                             "static_pj_per_cycle) replacing the bundled table's "
                             "(Horowitz, ISSCC 2014, 45 nm)")
