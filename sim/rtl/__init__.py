"""Simulator drivers: Verilog generation cache, Verilator/Icarus builds, the cocotb harness that
runs a compiled program on the accelerator's RTL."""
