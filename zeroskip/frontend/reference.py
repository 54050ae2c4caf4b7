"""The model's outputs from the accelerator run compared with onnxruntime on the same inputs.

The model's definition is its graph as written: onnxruntime with graph optimizations off
(``ORT_DISABLE_ALL``), or ONNX's own reference evaluator where onnxruntime cannot run the
model. An accelerator run that differs from it is a wrong answer (:class:`OutputsDiffer`).
onnxruntime's default session is compared too, second: it rewrites QDQ patterns into fused
int8 kernels (QLinearConv, QLinearAdd, QLinearSoftmax, ...) that round differently from the
nodes they replace, and differently on CPUs with and without AVX-512 VNNI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["OutputsDiffer", "reference_outputs", "difference", "compare", "against_reference",
           "check_definition", "definition_of", "FUSED_KERNELS_DIFFER"]

#: Why onnxruntime's default session may differ from the model's definition (one sentence).
FUSED_KERNELS_DIFFER = ("Fused int8 kernels round differently from the graph as written, and "
                        "differently from one CPU to another (with or without AVX-512 VNNI): "
                        "only the comparison with the model's definition is a check.")


class OutputsDiffer(RuntimeError):
    """The accelerator run's outputs differ from the model's definition (the graph as written,
    run by onnxruntime with optimizations off): a wrong answer.

    Attributes
    ----------
    outputs : dict of ndarray
        The outputs of the run, as :func:`zeroskip.run` would have returned them.
    report : dict
        Its report; ``report["reference"]["unoptimized"]`` holds the comparison.
    output : str
        The output with the largest difference; ``max_abs_diff`` that difference.
    """

    def __init__(self, outputs: dict, report: dict):
        definition = definition_of(report)
        self.outputs, self.report = outputs, report
        self.output = definition.get("max_abs_diff_output", "")
        self.max_abs_diff = definition["max_abs_diff"]
        runtime = {"onnxruntime": "onnxruntime, optimizations off",
                   "onnx.reference": "ONNX's reference evaluator"}.get(definition["runtime"],
                                                                        definition["runtime"])
        super().__init__(f"outputs differ from the model's definition ({runtime}): max |diff| "
                         f"{self.max_abs_diff:g} on {self.output}")


def reference_outputs(model, feeds, optimized=True) -> tuple[dict, dict]:
    """The outputs of onnxruntime on the same inputs, and which runtime gave them: ONNX's own
    reference evaluator when onnxruntime cannot run the model (it lacks per-channel weight
    zero points in ConvInteger, for one), with onnxruntime's message.

    ``optimized`` false runs the graph as written (``ORT_DISABLE_ALL``): onnxruntime's default
    rewrites QDQ patterns into its own integer kernels (QLinearAdd, QLinearSoftmax, ...) whose
    arithmetic differs from the ONNX definition of the nodes they replace."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    if not optimized:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds))), {
            "runtime": "onnxruntime", "version": onnxruntime.__version__,
            "graph_optimization": "default (ORT_ENABLE_ALL)" if optimized else "ORT_DISABLE_ALL"}
    except Exception as exc:  # onnxruntime's own Fail/NotImplemented/InvalidGraph errors
        import onnx
        from onnx.reference import ReferenceEvaluator
        names = [o.name for o in model.graph.output]
        return dict(zip(names, ReferenceEvaluator(model).run(names, feeds))), {
            "runtime": "onnx.reference", "version": onnx.__version__,
            "onnxruntime_error": str(exc).split("Status Message: ")[-1].strip()[:300]}


def _equal(ours: np.ndarray, theirs: np.ndarray) -> bool:
    floats = ours.dtype.kind in "fc" and np.asarray(theirs).dtype.kind in "fc"
    return bool(np.array_equal(ours, theirs, equal_nan=floats))


def difference(ours: dict, theirs: dict) -> dict:
    """``max_abs_diff`` over the outputs, the output that has it (``max_abs_diff_output``)
    and ``bit_exact`` (every output equal, NaN where NaN)."""
    diffs = {n: float(np.max(np.abs(ours[n].astype(np.float64) -
                                    np.asarray(theirs[n]).astype(np.float64))))
             if ours[n].size else 0.0 for n in ours}
    worst = max(diffs, key=lambda n: diffs[n]) if diffs else ""
    return {"max_abs_diff": diffs[worst] if diffs else 0.0, "max_abs_diff_output": worst,
            "bit_exact": all(_equal(ours[n], theirs[n]) for n in ours)}


def _class_scores(outputs, batch, kinds="f"):
    """The first output of a dtype kind in ``kinds`` shaped [batch, classes] (classes > 1):
    the class scores."""
    for name, value in outputs.items():
        if value.ndim == 2 and value.shape[0] == batch and value.shape[1] > 1 and \
                value.dtype.kind in kinds:
            return name
    return None


def compare(ours: dict, theirs: dict, runtime: dict, labels=None, scores_kinds="f") -> dict:
    """One comparison: the runtime, the differences and, for a classifier's scores (the first
    2-D output of a dtype kind in ``scores_kinds``: float for ONNX, also integers for a
    quantized TFLite softmax), the top-1 agreement (and with ``labels`` both accuracies)."""
    reference: dict[str, Any] = {**runtime, **difference(ours, theirs)}
    first = next(iter(ours.values()))
    batch = first.shape[0] if first.ndim else 0
    scores = _class_scores(ours, batch, scores_kinds)
    if scores is not None:
        top_ours, top_theirs = ours[scores].argmax(axis=1), theirs[scores].argmax(axis=1)
        reference["scores_output"] = scores
        reference["top1_agreement"] = round(float(np.mean(top_ours == top_theirs)), 4)
        if labels is not None:
            reference["accuracy"] = round(float(np.mean(top_ours == labels)), 4)
            reference["reference_accuracy"] = round(float(np.mean(top_theirs == labels)), 4)
    return reference


def against_reference(model, feeds: dict, ours: dict, labels=None) -> dict:
    """The report's ``reference``: ``unoptimized``, the comparison with the model's
    definition (first), and at the top level the comparison with onnxruntime's default
    session (fused kernels); both the same where onnxruntime cannot run the model."""
    literal = compare(ours, *reference_outputs(model, feeds, optimized=False), labels)
    if literal["runtime"] != "onnxruntime":
        return {"unoptimized": dict(literal), **literal}
    literal["graph_optimization"] = "ORT_DISABLE_ALL"
    return {"unoptimized": literal, **compare(ours, *reference_outputs(model, feeds), labels)}


def definition_of(report: dict) -> dict:
    """The comparison with the model's definition in a run's report: ``unoptimized`` for ONNX
    (the graph as written), ``definition`` for TFLite (LiteRT's reference kernels)."""
    reference = report["reference"]
    return reference["unoptimized"] if "unoptimized" in reference else reference["definition"]


def check_definition(outputs: dict, report: dict) -> None:
    """:class:`OutputsDiffer` if the run's outputs differ from the model's definition."""
    if not definition_of(report)["bit_exact"]:
        raise OutputsDiffer(outputs, report)
