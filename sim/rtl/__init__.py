"""Simulator drivers: Verilog generation cache, Verilator/Icarus builds, the cocotb harness that
runs a compiled program on the accelerator's RTL.

:mod:`~zeroskip.sim.rtl.cache`
    the build cache: its root, the digests that key builds, the locks that share them
:mod:`~zeroskip.sim.rtl.build`
    simulator builds through cocotb's runner, the accelerator's Verilog, trace formats
:mod:`~zeroskip.sim.rtl.packing`
    operands to port beats, result words to arrays
:mod:`~zeroskip.sim.rtl.runner`
    runs: a cocotb module on a build, programs on the accelerator, their checks
:mod:`~zeroskip.sim.rtl.harness`
    the cocotb module that drives the accelerator's ports

Slow steps (a build, a simulation) are reported on the ``zeroskip.progress`` logger at INFO
level, each as a start record and an end record (``record.step`` is ``"start"`` or ``"end"``,
``record.kind`` ``"build"``, ``"wait"`` (for another process's build) or ``"simulation"``; a
build's end record carries ``record.build_dir``). Nothing is shown unless the caller
attaches a handler: the command does, on a terminal.
"""
