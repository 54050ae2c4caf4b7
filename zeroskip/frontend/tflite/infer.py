"""A checked TFLite run on the accelerator: the model run operator by operator
(:class:`.executor.Executor`), its outputs compared with the model's definition (LiteRT's
reference kernels), and the run's report in the same form as an ONNX run's."""

from __future__ import annotations

from typing import Any

import numpy as np

from zeroskip.frontend.infer import array_of, layer_progress, total_of
from zeroskip.frontend.reference import compare
from zeroskip.frontend.tflite.executor import Executor
from zeroskip.frontend.tflite.model import ARRAY_OPS, TfliteModel
from zeroskip.frontend.tflite.reference import RUNTIME, reference_outputs
from zeroskip.sim.loaders import BadInput

__all__ = ["infer", "runtime_version"]


def runtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


def _check_labels(labels: Any, batch: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or labels.shape[0] != batch:
        raise BadInput(f"labels: expected {batch} integer class labels (one per sample), "
                       f"found {labels.dtype} of shape {list(labels.shape)}")
    return labels


def infer(model: TfliteModel, x: np.ndarray, accelerator, *, labels: Any = None,
          progress: bool = False, name: str = "model") -> tuple[dict, dict]:
    """The outputs of ``model`` on the batch ``x`` (checked already:
    :func:`zeroskip.frontend.tflite.executor.check_input`), keyed by output tensor name with
    the batch first, and the report: ``layers``, ``total``, and ``reference``, the comparison
    with LiteRT's reference kernels (``reference["definition"]``, the same figures at the top
    level as for ONNX). Raises BadInput for a model with no layer on the array; does not raise
    when the outputs differ (:func:`zeroskip.frontend.reference.check_definition` does)."""
    if not any(op.code in ARRAY_OPS for op in model.ops):
        found = ", ".join(dict.fromkeys(op.code for op in model.ops)) or "no operators"
        raise BadInput(f"no layer of {name} runs on the accelerator: it has {found}; the array "
                       f"runs {', '.join(ARRAY_OPS)}")
    if labels is not None:
        labels = _check_labels(labels, x.shape[0])
    executor = Executor(model, accelerator)
    with layer_progress(progress, len(model.ops), "op") as step:
        executor.on_step = step
        ours, layers = executor.run(x)
    batch = x.shape[0]
    for index in model.outputs:
        tensor = model.tensors[index]
        value = ours[tensor.name]
        sample = tensor.shape[1:] if tensor.shape[:1] == (1,) else tensor.shape
        # the declared shape where it agrees with what ran (a converter's files always do)
        if int(np.prod(sample, dtype=np.int64)) * batch == value.size:
            ours[tensor.name] = value.reshape(batch, *sample)
        elif value.shape[:1] != (batch,):
            ours[tensor.name] = value.reshape(batch, -1)
    theirs = reference_outputs(model.buffer, x)
    runtime = {"runtime": RUNTIME, "version": runtime_version()}
    definition = compare(ours, theirs, runtime, labels, scores_kinds="fiu")
    report: dict[str, Any] = {
        "model": name, "format_in": "tflite", "array": array_of(accelerator),
        "inputs": {model.tensors[model.inputs[0]].name: list(x.shape)},
        "reference": {"definition": dict(definition), **definition},
        "layers": layers, "total": total_of(layers, batch),
    }
    return ours, report
