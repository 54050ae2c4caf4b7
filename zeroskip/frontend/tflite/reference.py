"""The definition a TFLite run is checked against: LiteRT (``ai-edge-litert``, no TensorFlow)
running the model with TFLite's reference kernels (``OpResolverType.BUILTIN_REF``), one sample
per invocation as the model declares batch 1."""

from __future__ import annotations

import numpy as np

__all__ = ["reference_outputs", "RUNTIME"]

RUNTIME = "LiteRT reference kernels (BUILTIN_REF)"


def reference_outputs(content: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs of the model ``content`` on each sample of ``x`` (the batch on the first
    axis), keyed by output tensor name, batched the same way."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(model_content=content,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    (given,), wanted = interpreter.get_input_details(), interpreter.get_output_details()
    shape = tuple(given["shape"])
    results: dict[str, list[np.ndarray]] = {d["name"]: [] for d in wanted}
    for sample in x:
        interpreter.set_tensor(given["index"], sample.reshape(shape).astype(given["dtype"]))
        interpreter.invoke()
        for detail in wanted:
            value = interpreter.get_tensor(detail["index"])
            results[detail["name"]].append(value.reshape(value.shape[1:]) if
                                           value.shape[:1] == (1,) else value.copy())
    return {name: np.stack(values) for name, values in results.items()}
