"""A TFLite model run operator by operator: FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D on
the array (:mod:`.array_ops`), every other operator on the host with TFLite's integer semantics
(:mod:`.host_ops`). A batch of N samples runs at once: every run-time tensor carries the batch
as its first axis (the model declares 1 there), so one layer is one simulation."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from zeroskip.frontend.tflite import array_ops
from zeroskip.frontend.tflite.model import ARRAY_OPS, OpInfo, TfliteModel
from zeroskip.sim.loaders import BadInput

__all__ = ["Executor", "check_input"]


def check_input(model: TfliteModel, x: Any, what: str = "input") -> np.ndarray:
    """``x`` as the batch of samples of the model's one input (N samples of its declared shape
    without the leading 1, or with it), or :class:`BadInput` saying what was found."""
    if len(model.inputs) != 1:
        raise BadInput(f"{what}: the model has {len(model.inputs)} inputs; give them by name")
    tensor = model.tensors[model.inputs[0]]
    x = np.asarray(x)
    sample = tensor.shape[1:] if tensor.shape[:1] == (1,) else tensor.shape
    if x.shape[1:] != tuple(sample) and x.shape[1:] != tuple(tensor.shape):
        raise BadInput(f"{what}: shape {list(x.shape)}; expected N samples of "
                       f"{list(sample)} (the model's input {tensor.name!r} is "
                       f"{list(tensor.shape)})")
    if x.shape[0] == 0:
        raise BadInput(f"{what}: no samples (shape {list(x.shape)})")
    dtype = np.dtype(tensor.dtype)
    if dtype.kind == "f":
        if x.dtype.kind not in "fiu":
            raise BadInput(f"{what}: dtype {x.dtype}; the model's input is {dtype.name}")
        return x.reshape(x.shape[0], *sample).astype(dtype)
    if x.dtype.kind not in "iu":
        raise BadInput(f"{what}: dtype {x.dtype}; the model's input is {dtype.name}")
    info = np.iinfo(dtype)
    if x.size and (x.min() < info.min or x.max() > info.max):
        raise BadInput(f"{what}: values in [{x.min()}, {x.max()}] do not fit the model's "
                       f"{dtype.name} input")
    return x.reshape(x.shape[0], *sample).astype(dtype)


class Executor:
    """Runs ``model`` on ``accelerator`` (a :class:`zeroskip.api.GemmRunner`, or anything with
    its ``run(pairs)``); ``on_step(op, record)`` is told after every operator."""

    def __init__(self, model: TfliteModel, accelerator, *,
                 on_step: Callable[[OpInfo, dict], None] | None = None):
        self.model = model
        self.accelerator = accelerator
        self.on_step = on_step

    def run(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], list[dict]]:
        """The model's outputs on the batch ``x`` (checked by :func:`check_input`), keyed by
        output tensor name, and one record per operator."""
        model = self.model
        values: dict[int, np.ndarray] = {model.inputs[0]: x}
        records = []
        for op in model.ops:
            inputs = [None if i < 0 else values[i] if i in values else model.tensors[i].data
                      for i in op.inputs]
            if op.code in ARRAY_OPS:
                if inputs[0] is None:
                    raise BadInput(f"operator {op.index} ({op.code}) has no input tensor")
                outputs, record = self._array(op, inputs[0])
                on = "accelerator"
            else:
                from zeroskip.frontend.tflite.host_ops import HOST_KERNELS
                outputs, record, on = HOST_KERNELS[op.code](op, model, inputs), {}, "host"
            for index, value in zip(op.outputs, outputs):
                values[index] = value
            record = {"name": model.tensors[op.outputs[0]].name, "op": op.code, "on": on,
                      **record}
            records.append(record)
            if self.on_step is not None:
                self.on_step(op, record)
        return {model.tensors[i].name: values[i] for i in model.outputs}, records

    def _array(self, op: OpInfo, x: np.ndarray) -> tuple[list[np.ndarray], dict]:
        from zeroskip.frontend.graph import layer_record
        layer = array_ops.lower(op, self.model, x, lanes=self.accelerator.config.cols)
        pairs = [(job.acts, part) for job in layer.jobs for part in job.parts]
        try:
            runs = self.accelerator.run(pairs)
        except BadInput as exc:
            raise BadInput(f"operator {op.index} ({op.code}): {exc}") from None
        it = iter(runs)
        results = [[next(it)[0] for _ in job.parts] for job in layer.jobs]
        out = array_ops.finish(layer, self.model, results)
        return [out], layer_record(layer.jobs, [report for _, report in runs], layer.shape,
                                   self.accelerator)
