"""Programming a board with a built bitstream through openFPGALoader; a bitstream that misses
its clock is refused first."""

import os
import subprocess
from pathlib import Path

from zeroskip.platforms.boards import BOARDS
from zeroskip.platforms.toolchain import TOOLS, find_tool

__all__ = ["ProgrammingFailed", "TimingNotMet", "program"]


class ProgrammingFailed(RuntimeError):
    """The programmer could not program the board (none attached, no access, ...)."""


class TimingNotMet(ProgrammingFailed):
    """The bitstream misses its clock: refused before any programmer runs."""


def program(board, report):
    """Program ``board`` with the bitstream of ``report`` through openFPGALoader."""
    board = BOARDS[board] if isinstance(board, str) else board
    if not report["timing_met"]:
        raise TimingNotMet(f"{board.name}: the design reaches {report['fmax_mhz']} MHz, "
                                f"short of its {board.clock_mhz} MHz clock; not programming it")
    loader = os.environ.get("OPENFPGALOADER") or find_tool(*TOOLS["OPENFPGALOADER"])
    argv = [loader if arg == "openFPGALoader" else arg.format(bitstream=report["bitstream"])
            for arg in board.program_argv]
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except OSError as error:
        raise ProgrammingFailed(f"cannot run {loader}: {error}") from None
    if result.returncode:
        output = (result.stderr + result.stdout).strip()
        lines = output.splitlines() or ["(no message)"]
        hint = ""
        if "libusb" in output.lower():
            hint = " (openFPGALoader needs libusb-1.0: apt-get install libusb-1.0-0)"
        raise ProgrammingFailed(f"programming {board.name} failed ({Path(loader).name} exit "
                                f"{result.returncode}): {lines[-1].strip()}{hint}")
