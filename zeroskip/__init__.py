"""zeroskip: a generator of zero-skipping sparse GEMM accelerators in Amaranth HDL.

The public API:

- :func:`gemm`: ``C, report = zeroskip.gemm(A, W, rows=8, cols=8, format="csc", mode="skip")``
  runs one GEMM on the generated RTL in a simulator (or on a board) and returns the result and
  the report of the ``zeroskip gemm`` command;
- :func:`run`: ``outputs, report = zeroskip.run("model.onnx", x)`` runs an ONNX model with its
  matrix products on the RTL, as ``zeroskip run`` does, checked against the model's definition
  (onnxruntime, optimizations off): outputs that differ raise :class:`OutputsDiffer`;
- :class:`ArrayConfig`: the one configuration object of the hardware, the host compiler and the
  tests; :class:`Mode`, :data:`FORMATS`;
- building blocks: :mod:`zeroskip.sim.compiler` (``compile_gemm``), :mod:`zeroskip.sim.formats`
  (the formats' encoders and decoders), :class:`zeroskip.hw.accelerator.Accelerator` (an
  Amaranth component for a design of your own), :mod:`zeroskip.sim.rtl.runner` (simulators).
"""

from importlib.metadata import PackageNotFoundError, version

from zeroskip.api import DeviceFailure, OutputsDiffer, array_config, gemm, run
from zeroskip.config import FORMATS, ArrayConfig, Mode

try:
    __version__ = version("zeroskip")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "gemm", "run", "array_config", "ArrayConfig", "Mode", "FORMATS",
           "DeviceFailure", "OutputsDiffer"]
