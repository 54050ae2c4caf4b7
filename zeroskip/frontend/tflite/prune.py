"""``--prune S`` on a ``.tflite``: magnitude pruning of the array layers' int8 weights, written
as a model any TFLite runtime runs.

Pruning is in the integer domain: in each weight tensor of a FULLY_CONNECTED, CONV_2D or
DEPTHWISE_CONV_2D, the fraction S of weights with the smallest magnitudes (ties broken by
position, so exactly that fraction) become 0, the int8 value of a real zero since TFLite's int8
weights are symmetric. The values are rewritten in place in a copy of the file, so everything
else (quantization, options, metadata) is byte for byte the original.
"""

from __future__ import annotations

import numpy as np

from zeroskip.frontend.tflite.model import ARRAY_OPS, TfliteModel, parse
from zeroskip.sim.loaders import BadInput

__all__ = ["prune", "check_sparsity"]


def check_sparsity(sparsity: float, what: str = "prune") -> float:
    """``sparsity`` as a float in [0, 1), or :class:`BadInput` naming ``what``."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise BadInput(f"{what}: expected a fraction in [0, 1), got {sparsity!r}") from None
    if not 0 <= value < 1:
        raise BadInput(f"{what}: expected a fraction in [0, 1), got {value:g}")
    return value


def _pruned(weights: np.ndarray, sparsity: float) -> np.ndarray:
    flat = weights.reshape(-1).copy()
    count = int(round(sparsity * flat.size))
    if count:
        order = np.argsort(np.abs(flat.astype(np.int16)), kind="stable")
        flat[order[:count]] = 0
    return flat.reshape(weights.shape)


def prune(model: TfliteModel, sparsity: float) -> tuple[bytes, dict[str, float]]:
    """A copy of ``model``'s file with every array layer's weights pruned to at least
    ``sparsity`` zeros (a layer already sparser keeps its zeros), and each pruned weight
    tensor's resulting sparsity by name."""
    sparsity = check_sparsity(sparsity)
    content = bytearray(model.buffer)
    done: dict[str, float] = {}
    for op in model.ops:
        if op.code not in ARRAY_OPS:
            continue
        tensor = model.tensors[op.inputs[1]]
        if tensor.name in done:
            continue
        assert tensor.data is not None and tensor.data_offset is not None
        pruned = _pruned(tensor.data, sparsity)
        start = tensor.data_offset
        content[start:start + pruned.nbytes] = pruned.astype(np.int8).tobytes()
        done[tensor.name] = round(1 - int(np.count_nonzero(pruned)) / pruned.size, 4)
    result = bytes(content)
    reread = parse(result)         # the copy reads back with the pruned weights
    for op in reread.ops:
        if op.code in ARRAY_OPS:
            data = reread.tensors[op.inputs[1]].data
            if data is None or round(1 - int(np.count_nonzero(data)) / data.size, 4) != \
                    done[reread.tensors[op.inputs[1]].name]:
                raise AssertionError("the pruned copy does not read back as written")
    return result, done
