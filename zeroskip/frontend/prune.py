"""Magnitude pruning of a quantized ONNX model's array weights, in the integer domain.

A weight is pruned by setting it to its zero point: ``w - zw`` becomes exactly 0, which the
lowering passes to the array as a zero the decoders skip. Only the constant weights of nodes
that run on the array (:func:`zeroskip.frontend.graph.plan`) are touched, so the pruned model
is still a model onnxruntime runs, and the reference the RTL is compared with is that same
pruned model.

Two patterns, both along the GEMM's reduction axis K as the lowering lays it out (a MatMul's
rows, a Gemm's rows or columns per ``transB``, a Conv's ``input channel × kernel`` per output
channel, as im2col flattens it):

* unstructured: the ``sparsity`` fraction of each weight tensor with the smallest ``|w - zw|``;
* N:M: the N largest ``|w - zw|`` kept in every M consecutive weights down K (the ``nm``
  format's decoders take exactly this).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zeroskip.frontend.terms import PYTHON, Terms
from zeroskip.sim.loaders import BadInput

__all__ = ["WeightView", "array_weights", "prune_quantized", "weight_sparsity"]


@dataclass(frozen=True)
class WeightView:
    """One weight initializer of an array node, and how its K × N GEMM matrix lies in it."""
    name: str            # the initializer
    zero_point: str      # its zero point's initializer ("" for none: 0)
    layout: str          # "conv" (O × I × kernel), "kn" (… × K × N) or "nk" (N × K)


def _attr(node, name, default):
    import onnx
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def array_weights(model) -> list[WeightView]:
    """The constant weights of the nodes the graph plan puts on the array (each once)."""
    from zeroskip.frontend.graph import plan
    initializers = {init.name for init in model.graph.initializer}
    graph_plan = plan(model)
    producers = graph_plan.producers
    views: dict[str, WeightView] = {}
    for step in graph_plan.steps:
        if step.on != "accelerator":
            continue
        node, op = step.node, step.node.op_type
        inputs = list(node.input) + [""] * 6
        if op in ("MatMulInteger", "ConvInteger"):
            weight, zero = inputs[1], inputs[3]
            layout = "conv" if op == "ConvInteger" else "kn"
        elif op in ("QLinearMatMul", "QLinearConv"):
            weight, zero = inputs[3], inputs[5]
            layout = "conv" if op == "QLinearConv" else "kn"
        else:  # QDQ Conv/Gemm/MatMul: the weight behind its DequantizeLinear
            dequantize = producers[node.input[1]]
            weight, zero = (list(dequantize.input) + ["", ""])[0], \
                (list(dequantize.input) + ["", ""])[2]
            layout = {"Conv": "conv", "MatMul": "kn"}.get(
                op, "nk" if _attr(node, "transB", 0) else "kn")
        if weight in initializers and weight not in views:
            views[weight] = WeightView(weight, zero if zero in initializers else "", layout)
    return list(views.values())


def _as_kn(values: np.ndarray, layout: str) -> np.ndarray:
    """The weights as a stack of K × N matrices (a view where NumPy allows)."""
    if layout == "conv":
        return values.reshape(values.shape[0], -1).T[None]
    if layout == "nk":
        return values.T[None]
    return values.reshape(-1, *values.shape[-2:])


def _from_kn(matrices: np.ndarray, layout: str, shape: tuple[int, ...]) -> np.ndarray:
    if layout == "conv":
        return matrices[0].T.reshape(shape)
    if layout == "nk":
        return matrices[0].T
    return matrices.reshape(shape)


def _zero_points(zero: np.ndarray | None, layout: str, columns: int) -> np.ndarray:
    """The zero point of every output column (N), as int64."""
    if zero is None:
        return np.zeros(columns, dtype=np.int64)
    zero = np.asarray(zero, dtype=np.int64).reshape(-1)
    if zero.size not in (1, columns):
        raise BadInput(f"prune: {zero.size} weight zero points for {columns} output channels")
    return np.broadcast_to(zero, (columns,))


def _prune_kn(real: np.ndarray, sparsity: float, nm: tuple[int, int] | None) -> np.ndarray:
    """``real`` (a stack of K × N matrices of ``w - zw``) with weights set to 0."""
    real = real.copy()
    if nm is not None:
        keep, group = nm
        for matrix in real:
            k = matrix.shape[0]
            for start in range(0, k, group):
                block = matrix[start:start + group]            # ≤ M rows × N columns
                # ranks down K, largest |w - zw| first; ties keep the earlier weight
                order = np.argsort(-np.abs(block), axis=0, kind="stable")
                drop = order[keep:]
                np.put_along_axis(block, drop, 0, axis=0)
        return real
    flat = real.reshape(-1)
    target = int(round(flat.size * sparsity))
    if target > int(np.count_nonzero(flat == 0)):
        order = np.argsort(np.abs(flat), kind="stable")
        flat[order[:target]] = 0
    return real


def prune_quantized(model, sparsity: float = 0.0, nm: tuple[int, int] | None = None, *,
                    terms: Terms = PYTHON):
    """A copy of ``model`` with its array weights pruned to ``sparsity`` (unstructured, per
    tensor; a tensor already sparser is left as it is) or to the N:M pattern ``nm``.

    BadInput if the model has no constant integer weight on the array to prune, naming the
    options in ``terms``."""
    import onnx
    from onnx import numpy_helper
    if not 0 <= sparsity < 1:
        raise BadInput(f"{terms('prune')}: sparsity must be in [0, 1), not {sparsity}")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {init.name: init for init in model.graph.initializer}
    views = array_weights(model)
    if not views:
        raise BadInput(f"{terms('prune')}: the model has no constant integer weights on the "
                       f"array (a float model is pruned before quantization: "
                       f"{terms.given('calibrate', 'CAL.npy')} {terms.given('prune', 'S')})")
    for view in views:
        init = inits[view.name]
        values = numpy_helper.to_array(init)
        if values.dtype.kind not in "iu":
            raise BadInput(f"prune: weight {view.name!r} is {values.dtype}, not integers")
        matrices = _as_kn(values, view.layout).astype(np.int64)
        zero = numpy_helper.to_array(inits[view.zero_point]) if view.zero_point else None
        zeros = _zero_points(zero, view.layout, matrices.shape[-1])
        pruned = _prune_kn(matrices - zeros, sparsity, nm) + zeros
        init.CopyFrom(numpy_helper.from_array(
            _from_kn(pruned, view.layout, values.shape).astype(values.dtype), init.name))
    return model


def weight_sparsity(model) -> float:
    """The fraction of the array weights (all tensors together) equal to their zero point."""
    from onnx import numpy_helper
    inits = {init.name: init for init in model.graph.initializer}
    zeros = total = 0
    for view in array_weights(model):
        values = numpy_helper.to_array(inits[view.name])
        matrices = _as_kn(values, view.layout).astype(np.int64)
        zero: Any = numpy_helper.to_array(inits[view.zero_point]) if view.zero_point else None
        real = matrices - _zero_points(zero, view.layout, matrices.shape[-1])
        zeros += int(np.count_nonzero(real == 0))
        total += real.size
    return zeros / total if total else 0.0
