"""An ONNX model's layers for the network engine: the front end's plan
(:func:`zeroskip.frontend.graph.plan`) lowered to :class:`zeroskip.sim.program.NetLayer`.

What the engine runs of a QDQ model: a chain of ``Conv``/``Gemm``/``MatMul`` layers on the
array, each requantized by the ``QuantizeLinear`` that alone consumes it (maybe through a
``Relu``; the fused rule of :func:`zeroskip.frontend.graph.Executor`), with, between two
layers, only ``DequantizeLinear → MaxPool | Flatten | Reshape → QuantizeLinear`` of one scale
and zero point (an integer max, or nothing: the same activations). The zero points are folded
as the host lowering folds them (:func:`zeroskip.frontend.lowering.prepare_matmul`): the
activations stored as int8 (a uint8 code minus 128), ``-(za - c) · colsum(W)`` added to the
bias; a flattened NCHW map's Gemm has its K rows permuted to the engine's HWC order.

The host quantizes the input (the first layer's activations, computed by ONNX's reference
evaluator from the model's inputs) and reads the last layer's requantized output. Anything
else is refused with a ValueError naming the node, what it needs and what the engine does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zeroskip.frontend.graph import plan
from zeroskip.frontend.lowering import dequantize_scale, resolve_pads
from zeroskip.hw.engine.output_stage import onnx_params, onnx_settings
from zeroskip.sim.program import NetLayer

__all__ = ["EngineModel", "lower"]

_PASS_THROUGH = ("MaxPool", "Flatten", "Reshape")


@dataclass
class EngineModel:
    """A model lowered for the engine.

    Attributes
    ----------
    layers : list of NetLayer
    input_name : str
        The tensor the engine takes (the first layer's quantized activations).
    output_name : str
        The tensor the engine gives (the last layer's ``QuantizeLinear`` output).
    input_offset, output_offset : int
        What the stored int8 activations are less than the tensors' values (128 for uint8).
    output_dtype : numpy dtype
    """
    layers: list
    input_name: str
    output_name: str
    input_offset: int
    output_offset: int
    output_dtype: object

    def engine_input(self, value) -> np.ndarray:
        """One inference's input tensor (batch 1, NCHW or N×K) as the engine's HWC int8 map."""
        value = np.asarray(value)
        if value.ndim == 4:
            value = value[0].transpose(1, 2, 0)
        return (value.astype(np.int64) - self.input_offset).astype(np.int8).reshape(-1)

    def tensor_output(self, stored) -> np.ndarray:
        """The engine's output map back as the model's tensor (batch 1)."""
        stored = np.asarray(stored, dtype=np.int64)
        return (stored + self.output_offset).astype(self.output_dtype).reshape(1, -1)


def _label(node):
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _offset(dtype):
    return 128 if np.dtype(dtype) == np.dtype(np.uint8) else 0


def lower(model, feeds: dict) -> EngineModel:
    """The engine's layers of ``model``; ``feeds`` (one batch of the model's inputs) give the
    shapes of its maps.

    Raises
    ------
    ValueError
        A node the engine does not run (naming it, what it needs and what the engine does).
    """
    from onnx.reference import ReferenceEvaluator
    graph = model.graph
    planned = plan(model)
    producers = planned.producers
    values = {init.name: _array(init) for init in graph.initializer}
    steps = [step for step in planned.steps if step.on == "accelerator"]
    if not steps:
        raise ValueError("no layer of the model runs on the array")
    fused = {step.fused_from: step for step in planned.steps if step.fused_from is not None}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    names = []
    for step in steps:
        names.append(producers[step.node.input[0]].input[0])
    evaluator = ReferenceEvaluator(model, new_ops=[_dequantize_linear()])
    shapes = dict(zip(names, (np.shape(v) for v in evaluator.run(names, feeds))))

    layers: list[NetLayer] = []
    previous_out = ""        # the previous layer's requantized output tensor
    for index, step in enumerate(steps):
        node = step.node
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            raise ValueError(f"{_label(node)}: the engine runs QDQ Conv, Gemm and MatMul, not "
                             f"{node.op_type}")
        a_dq, w_dq = producers[node.input[0]], producers[node.input[1]]
        x_name = a_dq.input[0]
        xs, xz = (values[n] for n in (a_dq.input[1], a_dq.input[2]))
        w, ws, wz = (values[n] for n in w_dq.input[:3])
        quantize = fused.get(step.index)
        if quantize is None:
            raise ValueError(f"{_label(node)}: its output is not requantized by a "
                             f"QuantizeLinear alone; the engine's output stage needs one")
        q = quantize.node
        ys, yz = values[q.input[1]], values[q.input[2]]
        attrs = _attrs(node)
        second = _second_requantization(model, consumers, producers, values, q,
                                        w.shape[0] if node.op_type == "Conv" else
                                        (w.shape[0] if attrs.get("transB", 0) else w.shape[-1]))
        flatten_from = None
        if index:
            flatten_from = _between(producers, values, previous_out, x_name, layers[-1],
                                    node)
        x_shape = shapes[x_name]
        offset = _offset(xz.dtype)
        geometry: dict[str, Any] = {}  # a 1×1 kernel unless a Conv's
        if node.op_type == "Conv":
            if attrs.get("group", 1) != 1:
                raise ValueError(f"{_label(node)}: group {attrs['group']}; the engine's "
                                 f"compiler takes group 1")
            _, channels, height, width = x_shape
            kernel = list(attrs.get("kernel_shape") or w.shape[2:])
            strides = list(attrs.get("strides") or [1, 1])
            dilations = list(attrs.get("dilations") or [1, 1])
            auto_pad = attrs.get("auto_pad", b"NOTSET")
            auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
            pads = resolve_pads(auto_pad, [height, width], kernel, strides, dilations,
                                attrs.get("pads"))
            real_w = w.reshape(w.shape[0], -1).T.astype(np.int64)
            geometry = {"kernel": tuple(kernel), "strides": tuple(strides),
                        "pads": (pads[0], pads[1], pads[2], pads[3]),
                        "dilations": tuple(dilations)}
        else:
            if attrs.get("transA", 0):
                raise ValueError(f"{_label(node)}: transA; the engine takes activations as "
                                 f"rows")
            if w.ndim != 2:
                raise ValueError(f"{_label(node)}: {w.ndim}-D weights; the engine takes 2-D")
            real_w = (w.T if attrs.get("transB", 0) else w).astype(np.int64)
            channels, height, width = int(np.prod(x_shape[1:])), 1, 1
            if flatten_from is not None:
                # ONNX flattens NCHW; the engine's map is HWC: row (y, x, c) is W's (c, y, x)
                h, w_, c = flatten_from
                order = np.arange(c * h * w_).reshape(c, h, w_).transpose(1, 2, 0).reshape(-1)
                real_w = real_w[order]
        n = real_w.shape[1]
        zw = np.broadcast_to(np.asarray(wz, dtype=np.int64).reshape(-1), (n,))
        real_w = real_w - zw.reshape(1, -1)
        if real_w.min(initial=0) < -128 or real_w.max(initial=0) > 127:
            raise ValueError(f"{_label(node)}: weights less their zero point exceed int8; the "
                             f"engine's lanes hold one int8 part")
        bias = np.zeros(n, dtype=np.int64)
        if len(node.input) > 2 and node.input[2]:
            b_dq = producers.get(node.input[2])
            if b_dq is None or b_dq.op_type != "DequantizeLinear" or \
                    values[b_dq.input[0]].dtype != np.int32:
                raise ValueError(f"{_label(node)}: a float bias; the engine adds an int32 "
                                 f"bias (a DequantizeLinear of int32)")
            bias = np.broadcast_to(values[b_dq.input[0]].astype(np.int64).reshape(-1), (n,))
        # (a - za) W = (a - c) W - (za - c) colsum(W), exactly as the host lowering
        correction = -(int(np.asarray(xz).reshape(())) - offset) * real_w.sum(axis=0)
        bias = bias + correction
        if bias.min() < -2 ** 31 or bias.max() >= 2 ** 31:
            raise ValueError(f"{_label(node)}: bias with the zero-point correction exceeds int32")
        w_scale = np.broadcast_to(np.asarray(ws, dtype=np.float32).reshape(-1), (n,))
        scale = dequantize_scale(xs, w_scale, ys)
        layers.append(NetLayer(
            height=height, width=width, channels=channels,
            weights=real_w.astype(np.int8),
            params=[onnx_params(scale[j], int(bias[j])) for j in range(n)],
            settings=onnx_settings(int(np.asarray(yz).reshape(())), yz.dtype, step_relu(quantize)),
            pad_value=int(np.asarray(xz).reshape(())) - offset,
            table=None if second is None else second[0], **geometry))
        previous_out = q.output[0] if second is None else second[1].output[0]
        last_q = q if second is None else second[1]
    first = steps[0].node
    first_dq = producers[first.input[0]]
    return EngineModel(layers=layers, input_name=first_dq.input[0],
                       output_name=last_q.output[0],
                       input_offset=_offset(values[first_dq.input[2]].dtype),
                       output_offset=_offset(values[last_q.input[2]].dtype),
                       output_dtype=values[last_q.input[2]].dtype)


def _second_requantization(model, consumers, producers, values, q, channels):
    """A ``DequantizeLinear → Add (a constant's DequantizeLinear) → QuantizeLinear`` that
    alone consumes the layer's requantized output ``q`` (a bias added after requantization,
    as scikit-learn's converted MLPs do): its per-channel int8 → int8 table, computed by ONNX's
    reference kernels on every input code (what the host path runs), and the final
    QuantizeLinear; None without one (or with an addend that is not one per output channel
    of the layer's ``channels``)."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    users = consumers.get(q.output[0], [])
    if len(users) != 1 or users[0].op_type != "DequantizeLinear":
        return None
    dq = users[0]
    adds = consumers.get(dq.output[0], [])
    if len(adds) != 1 or adds[0].op_type != "Add":
        return None
    add = adds[0]
    other = add.input[1] if add.input[0] == dq.output[0] else add.input[0]
    constant = producers.get(other)
    if constant is None or constant.op_type != "DequantizeLinear" or \
            constant.input[0] not in values:
        return None
    finals = consumers.get(add.output[0], [])
    if len(finals) != 1 or finals[0].op_type != "QuantizeLinear":
        return None
    final = finals[0]
    addend = np.shape(values[constant.input[0]])
    if int(np.prod(addend)) != channels or (addend and addend[-1] != channels):
        return None
    code_type = values[q.input[2]].dtype
    nodes = [dq, constant, add, final]
    used = {name for node in nodes for name in node.input if name in values}
    inits = [onnx.numpy_helper.from_array(np.asarray(values[name]), name) for name in used]
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(code_type))
    graph = onnx.helper.make_graph(
        nodes, "second_requantization",
        [onnx.helper.make_tensor_value_info(q.output[0], elem, [256, channels])],
        [onnx.helper.make_tensor_value_info(final.output[0], onnx.TensorProto.UNDEFINED,
                                            None)], inits)
    sub = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    codes = (np.arange(-128, 128) + _offset(code_type)).astype(code_type)
    inputs = np.repeat(codes[:, None], channels, axis=1)
    out, = ReferenceEvaluator(sub, new_ops=[_dequantize_linear()]).run(
        None, {q.output[0]: inputs})
    table = (np.asarray(out).astype(np.int64) - _offset(out.dtype)).T
    return table.astype(np.int8), final


def step_relu(quantize_step) -> bool:
    return bool(quantize_step.relu)


def _between(producers, values, source, target, previous, node):
    """Check the nodes from the previous layer's output ``source`` to this layer's
    activations ``target`` are pass-throughs the engine does on chip; set the previous
    layer's pooling; return the (H, W, C) map a Flatten/Reshape flattened (or None)."""
    chain = []
    name = target
    while name != source:
        q = producers.get(name)
        if q is None or q.op_type != "QuantizeLinear":
            raise ValueError(f"{_label(node)}: its activations are not the previous layer's "
                             f"requantized output through MaxPool/Flatten/Reshape only")
        op = producers.get(q.input[0])
        dq = producers.get(op.input[0]) if op is not None else None
        if op is None or op.op_type not in _PASS_THROUGH or dq is None or \
                dq.op_type != "DequantizeLinear" or \
                not _same(values, dq.input[1:3], q.input[1:3]):
            label = _label(op) if op is not None else _label(q)
            raise ValueError(f"{label}: between two layers the engine does "
                             f"DequantizeLinear → MaxPool | Flatten | Reshape → QuantizeLinear "
                             f"of one scale and zero point only")
        chain.append(op)
        name = dq.input[0]
    flattened = None
    for op in reversed(chain):
        if op.op_type == "MaxPool":
            attrs = _attrs(op)
            if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1])) \
                    or previous.pool is not None:
                raise ValueError(f"{_label(op)}: the engine pools once per layer, floor mode, "
                                 f"dilation 1")
            pads = list(attrs.get("pads") or [0, 0, 0, 0])
            kernel = list(attrs["kernel_shape"])
            previous.pool = {"filter": tuple(kernel),
                             "strides": tuple(attrs.get("strides") or kernel),
                             "pads": (pads[0], pads[1])}
            if pads[2:] != [0, 0] and pads[2:] != pads[:2]:
                raise ValueError(f"{_label(op)}: the engine pads before each axis only")
        else:
            flattened = previous.out_shape
    return flattened


def _same(values, a, b):
    return all(np.array_equal(values.get(x), values.get(y)) and
               np.asarray(values.get(x)).dtype == np.asarray(values.get(y)).dtype
               for x, y in zip(a, b))


def _array(init):
    from onnx import numpy_helper
    return numpy_helper.to_array(init)


def _dequantize_linear():
    from zeroskip.frontend.graph import _dequantize_linear as kernel
    return kernel()
