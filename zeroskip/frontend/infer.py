"""A checked model run on the accelerator: every node planned (and a model with nothing for the
array refused) before anything runs, the graph run node by node, its outputs compared with the
model's definition and onnxruntime, and the run's report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from zeroskip.frontend.graph import Executor, Plan, plan
from zeroskip.frontend.model import declared_dtype
from zeroskip.frontend.quantize import MATRIX_OPS, QUANTIZED_OPS
from zeroskip.frontend.reference import against_reference
from zeroskip.frontend.terms import PYTHON, Terms
from zeroskip.sim import energy
from zeroskip.sim.loaders import BadInput

__all__ = ["infer", "check_accelerated", "total_of", "array_of", "layer_progress"]


def check_accelerated(planned: Plan, name: str, terms: Terms = PYTHON) -> None:
    """BadInput unless at least one node of the plan runs on the array: a run with nothing on
    it would only be onnxruntime's answer, and an empty report. The message names what the
    model has instead (and, for a float model, the option that quantizes it)."""
    steps = planned.steps
    if any(step.on == "accelerator" for step in steps):
        return
    found = dict.fromkeys(
        step.node.op_type + (f" from {step.node.domain}" if step.node.domain not in
                             ("", "ai.onnx") else "") +
        (f" ({step.reason})" if step.reason and step.node.op_type in MATRIX_OPS else "")
        for step in steps)
    hint = "the array runs quantized matrix products (QDQ Conv/Gemm/MatMul, QLinearConv, " \
           "QLinearMatMul, ConvInteger, MatMulInteger)"
    if not any(step.node.op_type in QUANTIZED_OPS for step in steps):
        hint += f"; a float model is quantized by {terms.given('calibrate', 'CAL.npy')}"
    raise BadInput(f"no layer of {name} runs on the accelerator: it has {', '.join(found)}; "
                   f"{hint}")


def infer(model, feeds: dict, accelerator, *, labels=None, progress=False,
          name="model", terms: Terms = PYTHON) -> tuple[dict, dict]:
    """The model's outputs (in the dtypes the graph declares) and the report: the graph run
    node by node (:class:`zeroskip.frontend.graph.Executor`) and compared with the model's
    definition and onnxruntime (:func:`zeroskip.frontend.reference.against_reference`).
    ``feeds`` and ``labels`` are checked already
    (:func:`zeroskip.frontend.inputs.check_feeds`, :func:`~zeroskip.frontend.inputs.check_labels`).

    BadInput, before anything runs, for a model with no layer on the array or a node that
    cannot run; the report says whether the outputs match (``reference.unoptimized``), this
    function does not raise on a difference
    (:func:`zeroskip.frontend.reference.check_definition` does).
    """
    check_accelerated(plan(model, terms), name, terms)
    executor = Executor(model, accelerator, terms=terms)  # plans every node before any run
    with layer_progress(progress, len(model.graph.node), "node") as step:
        executor.on_step = step
        ours, layers = executor.run(feeds)
    ours = {output: np.asarray(value, dtype=declared_dtype(model, output, value))
            for output, value in ours.items()}
    first = next(iter(feeds.values()))
    report = {
        "model": name, "array": array_of(accelerator),
        "inputs": {input: list(value.shape) for input, value in feeds.items()},
        "reference": against_reference(model, feeds, ours, labels), "layers": layers,
        "total": total_of(layers, first.shape[0] if first.ndim else 1),
    }
    return ours, report


@contextmanager
def layer_progress(shown: bool, count: int, unit: str) -> Iterator[Callable | None]:
    """An executor's ``on_step``: a progress bar over ``count`` layers when ``shown``."""
    if not shown:
        yield None
        return
    from tqdm import tqdm
    with tqdm(total=count, desc="layers", unit=unit) as bar:
        def step(_, record):
            bar.set_postfix_str(f"{record['name']} ({record['on']})")
            bar.update(1)
        yield step


def array_of(accelerator) -> dict:
    """The report's ``array``: the configuration and mode that ran, and where."""
    config = accelerator.config
    return {"rows": config.rows, "cols": config.cols, "format": config.fmt,
            "mode": accelerator.mode.name.lower(),
            "simulator": accelerator.sim if accelerator.port is None else
            f"board {accelerator.board} at {accelerator.port}"}


def total_of(layers, batch: int) -> dict:
    """The ``total`` of a run's report from its layer records: the array layers' figures
    summed, each with its provenance, and the energy per inference of a ``batch``."""
    accel = [layer for layer in layers if layer["on"] == "accelerator"]
    total: dict[str, Any] = {"accelerator_layers": len(accel),
                             "host_layers": len(layers) - len(accel)}
    for name in ("cycles", "dense_cycles", "ideal_cycles", "mapped_ideal_cycles",
                 "macs_executed", "load_cycles"):
        total[name] = int(sum(layer[name] for layer in accel))
    cycles = total["cycles"]
    total["fraction_of_ideal"] = round(total["ideal_cycles"] / cycles, 4) if cycles else None
    total["speedup"] = round(total["dense_cycles"] / cycles, 3) if cycles else None
    if accel:
        total.update(energy.combine(accel))
        total["provenance"] = {"cycles": "rtl", "load_cycles": "rtl", "macs_executed": "rtl",
                               "ideal_cycles": "host", "fraction_of_ideal": "rtl",
                               "mapped_ideal_cycles": "host",
                               "dense_cycles": accel[0]["provenance"]["dense_cycles"],
                               "speedup": accel[0]["provenance"]["speedup"],
                               **{name: accel[0]["provenance"].get(name)
                                  for name in energy.FIGURES}}
    if total.get("energy_pj") is not None and batch:
        total["energy_per_inference_pj"] = round(total["energy_pj"] / batch, 3)
        total["provenance"]["energy_per_inference_pj"] = total["provenance"]["energy_pj"]
    return total
