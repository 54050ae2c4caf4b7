"""The bitstream build flow: :func:`build` runs Yosys, nextpnr and the bitstream packer on a
core behind a board's PLL and pins (:class:`~zeroskip.platforms.wrapper.BoardWrapper`) and
writes ``report.json`` with the resource and Fmax figures of the build (LUT/LC, FF, DSP, BRAM,
Fmax per clock: :mod:`zeroskip.platforms.build_report`); :func:`build_board` builds a board's
own top, unless the same design was already built with the same tools
(:func:`design_digest`).
"""

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

from zeroskip.platforms.boards import BOARDS
from zeroskip.platforms.build_report import board_report, first_error
from zeroskip.platforms.toolchain import tool_environment, toolchain_versions
from zeroskip.platforms.wrapper import BoardWrapper

__all__ = ["NEXTPNR_OPTS", "SEEDS", "build", "design_digest", "BuildFailed", "build_board"]

NEXTPNR_OPTS = "--report top_report.json --timing-allow-fail"
SEEDS = (1, 2, 3, 4, 5)


def build(board, core, out_dir, seeds=SEEDS):
    """Build ``core`` for ``board`` (a name in :data:`BOARDS`, or a :class:`Board`) into
    ``out_dir``; return (and write) the report. ``seeds``: the nextpnr placement seeds to try
    in turn until one meets timing.

    Timing failure does not stop the build (nextpnr's ``--timing-allow-fail``), so the report
    always carries the achieved Fmax; :func:`program` refuses a bitstream that misses timing.
    """
    board = BOARDS[board] if isinstance(board, str) else board
    out_dir = Path(out_dir)
    tool_environment()
    started = time.monotonic()
    # nextpnr's placement depends on its seed; a design that misses timing with one may meet
    # it with another, so try a few before giving up
    for seed in seeds:
        _run_flow(_plan(board, core, seed), out_dir)
        report = board_report(board, out_dir)
        if report["timing_met"]:
            break
    report["nextpnr_seed"] = seed
    report["toolchain"] = toolchain_versions(board)
    report["build_seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _plan(board, core, seed):
    """Amaranth's build plan (design, constraints, scripts) of ``core`` on ``board`` with
    nextpnr seed ``seed``."""
    options = {
        # No memory is read at an address in the cycle it is written there (the host loads
        # memories while the accelerator is idle and reads results after it), so block RAMs
        # need no collision-bypass logic, which would sit on the decoders' address paths.
        "synth_opts": ["-no-rw-check"],
        # a machine-readable post-synthesis cell count: the iCE40 flip-flop figure
        "script_after_synth": "tee -q -o stat.json stat -json",
    }
    if board.family == "ice40":
        options["synth_opts"].append("-dsp")   # synth_ice40 infers SB_MAC16 only when asked
    platform = board.make_platform()  # a platform builds once
    extra = f" {board.nextpnr_options}" if board.nextpnr_options else ""
    return platform.build(BoardWrapper(board, core), name="top", do_build=False, **options,
                          nextpnr_opts=f"{NEXTPNR_OPTS}{extra} --seed {seed}")


_SOURCE_LOCATION = re.compile(r'^\s*attribute \\src "[^"]*"\n', re.MULTILINE)


def design_digest(board, core, seeds=SEEDS):
    """What a build of ``core`` on ``board`` depends on, as a short hash: the design Yosys
    reads (without its source locations, so an edit elsewhere in the sources, or another
    checkout's path, does not count), the constraints, the scripts and the seeds tried."""
    plan = _plan(board, core, seeds[0])
    digest = hashlib.sha256(repr(tuple(seeds)).encode())
    for name in sorted(plan.files):
        if name.endswith((".debug.v", ".bat")):    # a copy of the design; Windows' script
            continue
        content = plan.files[name]
        content = content if isinstance(content, str) else content.decode("utf-8")
        digest.update(name.encode() + _SOURCE_LOCATION.sub("", content).encode())
    return digest.hexdigest()[:16]


class BuildFailed(RuntimeError):
    """A tool of the flow failed. ``tool_error``: the tool's own first error line (without
    its ``ERROR:``); ``does_not_fit``: the design needs more of a resource than the device
    has."""

    def __init__(self, message, tool_error="", does_not_fit=False):
        super().__init__(message)
        self.tool_error = tool_error
        self.does_not_fit = does_not_fit


def _run_flow(plan, out_dir):
    """Amaranth's build script (Yosys, nextpnr, the packer) in ``out_dir``, its output kept in
    ``build.log`` (the tools run quiet: only warnings and errors) and a failure raised as
    :class:`BuildFailed` with the tool's own error line."""
    plan.extract(str(out_dir))
    log_path = Path(out_dir) / "build.log"
    with open(log_path, "w") as log:
        done = subprocess.run(["sh", f"{plan.script}.sh"], cwd=out_dir, stdout=log,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        first, full = first_error(log_path.read_text(errors="replace"))
        raise BuildFailed(f"{'does not fit the device: ' if full else ''}{first} "
                          f"(exit {done.returncode}; {log_path})",
                          tool_error=first.removeprefix("ERROR:").strip(), does_not_fit=full)


def build_board(board, out_dir, *, baud=None, log=print):
    """Build the board top (accelerator, host link, UART) of ``board`` into ``out_dir``,
    unless the report there is of the same design (:func:`design_digest`) built with the same
    tools."""
    from zeroskip.platforms.top import DEFAULT_BAUD, BoardTop
    board = BOARDS[board] if isinstance(board, str) else board
    out_dir = Path(out_dir)
    baud = baud or DEFAULT_BAUD
    core = BoardTop(board.config, clock_hz=int(board.clock_mhz * 1e6), baud=baud)
    identity = {"board": board.name, "design": design_digest(board, core),
                "toolchain": toolchain_versions(board)}
    previous = out_dir / "report.json"
    if previous.exists():
        report = json.loads(previous.read_text())
        if (report.get("identity") == identity and Path(report["bitstream"]).exists()):
            log(f"{out_dir}: up to date")
            return report
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"building {board.name} into {out_dir} (Yosys, nextpnr: a few minutes)")
    report = build(board, core, out_dir)
    report["baud"] = baud
    report["identity"] = identity
    previous.write_text(json.dumps(report, indent=2) + "\n")
    return report
