"""Verilog generation."""

import re

from amaranth.back import verilog

from .accelerator import Accelerator

__all__ = ["generate", "convert", "TOP_NAME"]

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
