"""What every host kernel needs: a tensor's per-tensor quantization and a fused activation's
clamp, read from the model as TFLite's kernels read them (float32 scale, integer zero point)."""

from __future__ import annotations

import numpy as np

from zeroskip.frontend.tflite.model import OpInfo, TfliteModel
from zeroskip.sim.requantize import activation_range

__all__ = ["ROUNDING", "quant", "fused_range", "round_half_away"]

#: The build of TFLite's requantizing multiply that LiteRT's reference host kernels use:
#: ``double`` rounding (gemmlowp's doubling high multiply, then a rounding shift; ties away
#: from zero). Measured with ``ai-edge-litert`` 2.3 on ADD (ties of a half sum), MUL, MEAN
#: and QUANTIZE, where single rounding disagrees (tb/test_tflite_host_ops.py)
ROUNDING = "double"


def quant(model: TfliteModel, index: int) -> tuple[np.float32, int]:
    """Tensor ``index``'s ``(scale, zero_point)``, per tensor; ValueError if it has none or
    several (per-channel quantization is for weights, which the host kernels do not take)."""
    tensor = model.tensors[index]
    if tensor.scale.size != 1:
        raise ValueError(f"tensor {index} ({tensor.name!r}) must have one scale and zero point "
                         f"(per-tensor quantization), not {tensor.scale.size}")
    return np.float32(tensor.scale[0]), int(tensor.zero_point[0])


def fused_range(op: OpInfo, model: TfliteModel) -> tuple[int, int]:
    """The int8 clamp of ``op``'s fused activation on its first output's quantization."""
    scale, zero_point = quant(model, op.outputs[0])
    return activation_range(op.options.get("fused_activation_function", "none"),
                            float(scale), zero_point)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """C's ``round`` (TfLiteRound), exactly, in ``x``'s floating type: ties away from zero."""
    whole = np.trunc(x)
    return whole + np.where(np.abs(x - whole) >= 0.5, np.sign(x), 0).astype(x.dtype)
