"""An ONNX graph run node by node: matrix products on the accelerator's RTL, everything else on
the host with ONNX's reference implementation (NumPy).

What runs on the array:

* the QOperator integer ops ``MatMulInteger``, ``ConvInteger``, ``QLinearMatMul``,
  ``QLinearConv``;
* in QDQ graphs (onnxruntime's ``quantize_static``), every ``Conv``, ``Gemm`` and ``MatMul``
  whose activations come from a ``DequantizeLinear`` of integers and whose weights are a
  ``DequantizeLinear`` of a constant or a graph input. Its accumulators are exact integers; a
  ``QuantizeLinear`` that alone consumes the result (directly or through a ``Relu``)
  requantizes them as the fused ``QLinearConv``/``QLinearMatMul`` does (onnxruntime fuses the
  same pattern), otherwise the node's float output is ``acc · x_scale · w_scale (+ bias)``.

A ``MatMul`` whose two operands are computed at run time (attention) runs on the host; the
report says so. A float weight without quantization is bad input (``calibrate`` quantizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from zeroskip.frontend import lowering
from zeroskip.frontend.terms import PYTHON, Terms
from zeroskip.sim import energy
from zeroskip.sim.loaders import BadInput

__all__ = ["Plan", "plan", "Executor", "INTEGER_OPS", "QDQ_OPS", "layer_record"]

INTEGER_OPS = ("MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv")
QDQ_OPS = ("Conv", "Gemm", "MatMul")
_INT_TYPES = (np.int8, np.uint8)


@dataclass
class Step:
    """What happens to one graph node."""
    index: int
    node: Any                       # onnx.NodeProto
    on: str                         # "accelerator" or "host"
    reason: str = ""                # for host nodes: why not the array
    fused_from: int | None = None   # a QuantizeLinear requantizing this step's accumulators
    relu: bool = False              # ... through a Relu between them
    integer: bool = False           # a host matmul of two dequantized operands: exact integers


@dataclass
class Plan:
    steps: list
    producers: dict  # output name -> the node that computes it


def _node_label(node):
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def plan(model, terms: Terms = PYTHON) -> Plan:
    """Where every node runs, decided before anything runs; BadInput names a node that must
    run on the array and cannot (and the options as ``terms`` names them)."""
    graph = model.graph
    consts = {init.name for init in graph.initializer}
    consts |= {inp.name for inp in graph.input}  # weights may be graph inputs
    float_consts = {init.name for init in graph.initializer if init.data_type in (1, 10, 11, 16)}
    producers: dict[str, Any] = {}
    consumers: dict[str, list] = {}
    for node in graph.node:
        if node.op_type == "Constant":
            consts |= set(node.output)
        for name in node.output:
            producers[name] = node
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def dequantized(name):
        node = producers.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    steps = []
    for index, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx"):
            steps.append(Step(index, node, "host", f"domain {node.domain}"))
            continue
        if node.op_type in INTEGER_OPS:
            _check_integer_attrs(node)
            steps.append(Step(index, node, "accelerator"))
            continue
        if node.op_type not in QDQ_OPS:
            steps.append(Step(index, node, "host"))
            continue
        a_dq, b_dq = dequantized(node.input[0]), dequantized(node.input[1])
        if b_dq is None:
            if node.input[1] in float_consts:
                raise BadInput(f"{_node_label(node)}: weight {node.input[1]!r} is float; run a "
                               f"quantized model or quantize this one with "
                               f"{terms.given('calibrate', 'CAL.npy')}")
            steps.append(Step(index, node, "host", "two dynamic operands (attention)"
                              if node.op_type == "MatMul" else "weights computed at run time"))
            continue
        if b_dq.input[0] not in consts:
            # exact integers on the host, requantized like the fused QLinearMatMul that
            # onnxruntime runs for this pattern
            steps.append(Step(index, node, "host", "two dynamic operands (attention): exact "
                              "integer product on the host", integer=a_dq is not None))
            continue
        if a_dq is None:
            steps.append(Step(index, node, "host", "activations not quantized"))
            continue
        _check_qdq_attrs(node)
        steps.append(Step(index, node, "accelerator"))

    # a QuantizeLinear that alone consumes an accelerated float node (maybe through a Relu)
    by_node = {id(step.node): step for step in steps}
    for step in steps:
        if not (step.on == "accelerator" or step.integer) or step.node.op_type not in QDQ_OPS:
            continue
        name, relu = step.node.output[0], False
        users = consumers.get(name, [])
        if len(users) == 1 and users[0].op_type == "Relu" and name not in outputs:
            name, relu = users[0].output[0], True
            users = consumers.get(name, [])
        if len(users) == 1 and users[0].op_type == "QuantizeLinear" and name not in outputs:
            quantize = by_node[id(users[0])]
            quantize.fused_from, quantize.relu = step.index, relu
    return Plan(steps, producers)


def _check_integer_attrs(node):
    attrs = _attrs(node)
    if node.op_type in ("ConvInteger", "QLinearConv") and attrs.get("auto_pad", b"NOTSET") \
            not in (b"NOTSET", b"VALID", b"SAME_UPPER", b"SAME_LOWER"):
        raise BadInput(f"{_node_label(node)}: auto_pad {attrs['auto_pad']!r} is not supported "
                       f"on the accelerator")


def _check_qdq_attrs(node):
    attrs = _attrs(node)
    if node.op_type == "Gemm":
        for name in ("alpha", "beta"):
            if attrs.get(name, 1.0) != 1.0:
                raise BadInput(f"{_node_label(node)}: {name} = {attrs[name]} is not supported "
                               f"on the accelerator (only 1.0: the bias is added exactly)")
    _check_integer_attrs(node)


class Executor:
    """Runs a planned graph. ``accelerator`` is a :class:`zeroskip.gemm_runner.GemmRunner`;
    ``on_step(step, record)`` is told after every node. BadInput (naming the options in
    ``terms``) for a node that must run on the array and cannot, or a host node ONNX's
    reference evaluator has no implementation of."""

    def __init__(self, model, accelerator, *, on_step: Callable | None = None,
                 terms: Terms = PYTHON):
        from onnx.reference import ReferenceEvaluator
        self.model = model
        self.plan = plan(model, terms)
        self.accelerator = accelerator
        self.on_step = on_step
        # The reference evaluator's per-node kernels (its rt_nodes_, built for the model's
        # opsets): the host ops run exactly as ONNX defines them, one node at a time.
        try:
            self.reference = ReferenceEvaluator(model, new_ops=[_dequantize_linear()])
        except NotImplementedError as exc:  # an operator with no host implementation
            raise BadInput(f"{(str(exc).splitlines() or [''])[0][:200]}: the host runs every "
                           f"node off the array with ONNX's reference evaluator") from None
        self.kernels = self.reference.rt_nodes_

    def run(self, feeds: dict) -> tuple[dict, list]:
        values: dict[str, Any] = {"": None}
        values.update(self.reference.rt_inits_)
        values.update(feeds)
        stash: dict[int, tuple] = {}
        records = []
        for step, kernel in zip(self.plan.steps, self.kernels):
            node = step.node
            inputs = [values[name] for name in node.input]
            if step.on == "accelerator" or step.integer:
                outputs, record, fused = self._accelerate(node, inputs, values,
                                                          step.on == "accelerator")
                stash[step.index] = fused
            elif step.fused_from is not None and stash.get(step.fused_from) is not None:
                outputs = [self._requantize(stash[step.fused_from], inputs, step.relu)]
                source = self.plan.steps[step.fused_from].node
                record = {"fused": f"requantizes {source.name or source.output[0]}'s exact "
                                   f"accumulators"}
            else:
                if kernel.need_context():
                    outputs = kernel.run(*inputs, context=values)
                else:
                    outputs = kernel.run(*inputs)
                record = {}
            record = {"name": node.name or node.output[0], "op": node.op_type, "on": step.on,
                      **({"reason": step.reason} if step.reason else {}), **record}
            for name, value in zip(node.output, outputs):
                values[name] = value
            records.append(record)
            if self.on_step is not None:
                self.on_step(step, record)
        return {o.name: values[o.name] for o in self.model.graph.output}, records

    # ---- the array ---------------------------------------------------------------------

    def _accelerate(self, node, inputs, values, on_array=True):
        """Outputs, the layer record and what a fused QuantizeLinear needs (or None)."""
        op, attrs = node.op_type, _attrs(node)
        if op in ("MatMulInteger", "ConvInteger"):
            a, b = inputs[0], inputs[1]
            za = _optional(inputs, 2, a.dtype)
            zb = _optional(inputs, 3, b.dtype)
            acc, record = self._integer(node, attrs, a, za, b, zb, on_array)
            return [acc], record, None
        if op in ("QLinearMatMul", "QLinearConv"):
            x, xs, xz, w, ws, wz, ys, yz = inputs[:8]
            acc, record = self._integer(node, attrs, x, xz, w, wz, on_array)
            if op == "QLinearConv" and len(inputs) > 8 and inputs[8] is not None:
                acc = acc.astype(np.int64) + _channel(inputs[8], acc.ndim, 1)
            channel_axis = 1 if op == "QLinearConv" else -1
            scale = lowering.dequantize_scale(xs, _channel(ws, acc.ndim, channel_axis), ys)
            dtype = yz.dtype if yz is not None else np.uint8
            return [lowering.requantize(acc, scale, 0 if yz is None else yz, dtype)], record, None
        # QDQ: integers and scales behind the DequantizeLinear nodes
        a_dq, b_dq = self.plan.producers[node.input[0]], self.plan.producers[node.input[1]]
        x, xs, xz = (values[n] if n else None for n in _padded(a_dq.input, 3))
        w, ws, wz = (values[n] if n else None for n in _padded(b_dq.input, 3))
        w_axis = _attrs(b_dq).get("axis", 1)
        for name, value in (("activations", x), ("weights", w)):
            if value.dtype not in _INT_TYPES:
                raise BadInput(f"{_node_label(node)}: {name} of type {value.dtype} (only int8 "
                               f"and uint8 run on the accelerator)")
        out_axis = 1 if op == "Conv" else -1
        if op == "Gemm":
            if attrs.get("transA", 0):
                x = x.T
            if attrs.get("transB", 0):
                w = w.T
                w_axis = 1 - (w_axis % 2)
        if np.size(ws) > 1 and (w_axis % w.ndim) != (0 if op == "Conv" else w.ndim - 1):
            raise BadInput(f"{_node_label(node)}: weights quantized along axis {w_axis}; only "
                           f"per-tensor or per-output-channel scales run on the accelerator")
        acc, record = self._integer(node, attrs, x, 0 if xz is None else xz, w,
                                    0 if wz is None else wz, on_array)
        acc = acc.astype(np.int64)
        w_scale = _channel(ws, acc.ndim, out_axis)
        bias_float = None
        if len(node.input) > 2 and node.input[2]:
            b_dq = self.plan.producers.get(node.input[2])
            if b_dq is not None and b_dq.op_type == "DequantizeLinear" and \
                    values[b_dq.input[0]].dtype == np.int32:
                acc = acc + _channel(values[b_dq.input[0]], acc.ndim, out_axis)
            else:
                bias_float = _channel(values[node.input[2]], acc.ndim, out_axis)
        scale = (np.asarray(xs, dtype=np.float32) * np.asarray(w_scale, dtype=np.float32))
        out = acc.astype(np.float32) * scale
        if bias_float is not None:
            out = out + bias_float.astype(np.float32)
        fused = None if bias_float is not None else (acc, xs, w_scale)
        return [out.astype(np.float32)], record, fused

    def _requantize(self, fused, inputs, relu):
        acc, xs, w_scale = fused
        ys, yz = inputs[1], inputs[2] if len(inputs) > 2 else None
        dtype = yz.dtype if yz is not None else np.uint8
        zero = 0 if yz is None else yz
        out = lowering.requantize(acc, lowering.dequantize_scale(xs, w_scale, ys), zero, dtype)
        return np.maximum(out, np.asarray(zero, dtype=dtype)) if relu else out

    def _integer(self, node, attrs, x, zx, w, zw, on_array=True):
        """``(x - zx) ⊛ (w - zw)`` as int32 through the array (or, ``on_array`` false, NumPy
        on the host), and the layer's figures."""
        zx, zw = np.asarray(zx), np.asarray(zw)
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            jobs, shape, finish = _conv_jobs(node, attrs, x, zx, w, zw)
        else:
            jobs, shape, finish = _matmul_jobs(node, x, zx, w, zw)
        pairs = [(job.acts, part) for job in jobs for part in job.parts]
        if not on_array:
            from zeroskip.sim import golden
            results = [lowering.finish_matmul(job, [golden.gemm(job.acts, p) for p in job.parts])
                       for job in jobs]
            return finish(results), {}
        try:
            runs = self.accelerator.run(pairs)
        except BadInput as exc:
            raise BadInput(f"{_node_label(node)}: {exc}") from None
        it = iter(runs)
        results = []
        for job in jobs:
            results.append(lowering.finish_matmul(job, [next(it)[0] for _ in job.parts]))
        reports = [report for _, report in runs]
        return finish(results), layer_record(jobs, reports, shape, self.accelerator)


def _dequantize_linear():
    """ONNX's reference implements DequantizeLinear only from opset 19; versions 10 and 13
    (what onnxruntime's quantizer writes at opset 17) are the same computation minus types
    and attributes added later, so its common kernel runs them."""
    from onnx.reference.ops.op_dequantize_linear import _CommonDequantizeLinear

    class DequantizeLinear(_CommonDequantizeLinear):
        op_domain = ""
    return DequantizeLinear


def _padded(names, count):
    names = list(names)
    return names + [""] * (count - len(names))


def _optional(inputs, index, dtype):
    return inputs[index] if len(inputs) > index and inputs[index] is not None \
        else np.zeros((), dtype=dtype)


def _channel(values, ndim, axis):
    """A scalar, or a per-channel vector shaped to broadcast along ``axis`` of an
    ``ndim``-dimensional output."""
    values = np.asarray(values)
    if values.size <= 1:
        return values.reshape(())
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def _matmul_jobs(node, a, za, b, zb):
    """N-D matmul as ONNX (NumPy) broadcasts it: one GEMM for a 2-D weight (the leading
    dimensions of ``a`` folded into M), one per batch for batched weights."""
    if a.ndim < 2 or b.ndim < 2:
        raise BadInput(f"{_node_label(node)}: 1-D matmul operands are not supported on the "
                       f"accelerator")
    if za.size > 1 and a.ndim != 2:
        raise BadInput(f"{_node_label(node)}: a per-row activation zero point needs 2-D "
                       f"activations")
    k, n = b.shape[-2:]
    if b.ndim == 2:
        jobs = [lowering.prepare_matmul(a.reshape(-1, k), za.reshape(-1), b, zb.reshape(-1))]
        lead = a.shape[:-1]
        return jobs, (int(np.prod(lead)), k, n), lambda r: r[0].reshape(*lead, n)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a_b = np.broadcast_to(a, batch + a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b_b = np.broadcast_to(b, batch + b.shape[-2:]).reshape(-1, k, n)
    jobs = [lowering.prepare_matmul(ai, za.reshape(-1), bi, zb.reshape(-1))
            for ai, bi in zip(a_b, b_b)]
    m = a.shape[-2]
    return jobs, (m, k, n), lambda r: np.stack(r).reshape(*batch, m, n)


def _conv_jobs(node, attrs, x, zx, w, zw):
    """Conv through im2col: one GEMM per group, output (N, M, *spatial)."""
    if zx.size > 1:
        raise BadInput(f"{_node_label(node)}: a per-channel activation zero point is not "
                       f"supported")
    dims = x.ndim - 2
    kernel = list(attrs.get("kernel_shape") or w.shape[2:])
    strides = list(attrs.get("strides") or [1] * dims)
    dilations = list(attrs.get("dilations") or [1] * dims)
    group = attrs.get("group", 1)
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    pads = lowering.resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations,
                                 attrs.get("pads"))
    channels, out_channels = x.shape[1], w.shape[0]
    if channels % group or out_channels % group or w.shape[1] != channels // group:
        raise BadInput(f"{_node_label(node)}: {channels} input channels, weights "
                       f"{list(w.shape)} and group {group} do not agree")
    per_in, per_out = channels // group, out_channels // group
    zw_full = np.broadcast_to(zw.reshape(-1), (out_channels,))
    jobs, out = [], None
    for g in range(group):
        cols, out = lowering.im2col(x[:, g * per_in:(g + 1) * per_in], kernel, strides, pads,
                                    dilations, zx.reshape(()))
        weights = w[g * per_out:(g + 1) * per_out].reshape(per_out, -1).T
        jobs.append(lowering.prepare_matmul(cols, zx.reshape(()), weights,
                                            zw_full[g * per_out:(g + 1) * per_out]))
    n = x.shape[0]

    def finish(results):
        joined = np.concatenate(results, axis=1)            # N·out × M
        return np.moveaxis(joined.reshape(n, *out, out_channels), -1, 1)
    return jobs, (n * int(np.prod(out)), per_in * int(np.prod(kernel)), per_out), finish


def layer_record(jobs, reports, shape, accelerator):
    """A layer's figures: sums over its GEMMs, each labelled with its source."""
    def total(name):
        return int(sum(r[name] for r in reports))
    cycles, dense, ideal = total("cycles"), total("dense_cycles"), total("ideal_cycles")
    zeros = sum(job.weight_zeros for job in jobs)
    size = sum(job.weight_size for job in jobs)
    m, k, n = shape
    record = {
        "m": m, "k": k, "n": n, "gemms": len(reports),
        "weight_sparsity": round(zeros / size, 4) if size else 0.0,
        "format": accelerator.config.fmt,
        "mode": accelerator.mode.name.lower(),
        "cycles": cycles,
        "dense_cycles": dense,
        "ideal_cycles": ideal,
        "fraction_of_ideal": round(ideal / cycles, 4) if cycles else None,
        # the bound of this array's mapping (a column of W never split over lanes): why a
        # layer with few or uneven weight columns stays below fraction_of_ideal 1
        "mapped_ideal_cycles": total("mapped_ideal_cycles"),
        "speedup": round(dense / cycles, 3) if cycles else None,
        "macs_executed": total("macs_executed"),
        "load_cycles": total("load_cycles"),
        **energy.combine(reports),
    }
    record["provenance"] = {
        "m": "host", "k": "host", "n": "host", "gemms": "host", "weight_sparsity": "host",
        "cycles": "rtl", "dense_cycles": reports[0]["provenance"]["dense_cycles"],
        "ideal_cycles": "host", "fraction_of_ideal": "rtl", "mapped_ideal_cycles": "host",
        "speedup": reports[0]["provenance"]["speedup"], "macs_executed": "rtl",
        "load_cycles": "rtl",
        **{name: reports[0]["provenance"].get(name) for name in energy.FIGURES},
    }
    return record
