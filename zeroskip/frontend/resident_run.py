"""An ONNX model's inference with its layers resident on the network engine: the host
quantizes the input (the nodes before the engine's first layer), the engine runs every layer
it holds (:func:`zeroskip.frontend.resident.lower`), and the host runs the nodes after its
output (a ``DequantizeLinear``, a softmax, an argmax), each by ONNX's reference kernels as the
host-sequenced path runs them (:class:`zeroskip.frontend.graph.Executor`), so the outputs are
the host-sequenced path's, bit for bit.

The engine is the RTL's (:func:`zeroskip.sim.rtl.engine_runner.run_engine`, one simulation for
the batch, an image an inference) or, for tests, any callable with its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zeroskip.frontend.resident import EngineModel, lower
from zeroskip.sim.program import compile_network, reference

__all__ = ["ResidentResult", "run_resident", "numpy_engine"]


@dataclass
class ResidentResult:
    """A batch's outputs (every graph output, as the graph computes it) and, per image, the
    engine's counters (None from an engine without them)."""
    outputs: dict
    counters: list
    lowered: EngineModel
    program: object


def numpy_engine(networks, sim=None):
    """:func:`~zeroskip.sim.rtl.engine_runner.run_engine`'s contract computed by
    :func:`zeroskip.sim.program.reference` (no hardware, no counters)."""
    from zeroskip.sim.rtl.engine_runner import EngineRun
    return [[EngineRun(output=reference(program.layers, x).reshape(-1), counters={},
                       fault=False, bench_cycles=0) for x in inputs]
            for program, inputs in networks]


def run_resident(model, feeds: dict, params, *, sim: str = "verilator",
                 engine: Callable | None = None) -> ResidentResult:
    """The model's outputs for ``feeds`` (a batch) with its layers on an engine of ``params``.

    Raises
    ------
    ValueError
        A node the engine does not run, or a resource the model overflows (naming it, what
        the model needs and what the engine has), before anything runs.
    RuntimeError
        A decoder lane of the engine faulted.
    """
    from onnx.reference import ReferenceEvaluator

    from zeroskip.frontend.graph import _dequantize_linear
    if engine is None:
        from zeroskip.sim.rtl.engine_runner import run_engine
        engine = run_engine
    first = next(iter(feeds.values()))
    batch = int(first.shape[0]) if np.ndim(first) else 1
    lowered = lower(model, {name: value[:1] for name, value in feeds.items()})
    program = compile_network(lowered.layers, params)
    evaluator = ReferenceEvaluator(model, new_ops=[_dequantize_linear()])
    inputs = []
    for image in range(batch):
        tensor, = evaluator.run([lowered.input_name],
                                {name: value[image:image + 1] for name, value in feeds.items()})
        inputs.append(lowered.engine_input(tensor))
    runs = engine([(program, inputs)], sim)[0]
    if any(run.fault for run in runs):
        raise RuntimeError("a decoder lane of the engine stopped on malformed memory "
                           "contents: the outputs are not valid")
    tensor = np.concatenate([_as_tensor(lowered, run.output) for run in runs])
    outputs = _epilogue(model, lowered.output_name, tensor, feeds)
    return ResidentResult(outputs=outputs, counters=[run.counters for run in runs],
                          lowered=lowered, program=program)


def _as_tensor(lowered, stored):
    """The engine's output map (HWC) as the model's tensor of batch 1 (NCHW for a map with
    more than one pixel, else N × channels)."""
    h, w, c = lowered.layers[-1].out_shape
    values = lowered.tensor_output(stored).reshape(h, w, c)
    if h * w == 1:
        return values.reshape(1, c)
    return values.transpose(2, 0, 1)[None]


def _epilogue(model, name, tensor, feeds):
    """The graph's outputs from the engine's output tensor ``name``: the nodes it takes to
    compute them (none of those before the engine), by ONNX's reference kernels."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from zeroskip.frontend.graph import _dequantize_linear
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    needed, stack = set(), [o.name for o in graph.output]
    inputs = set()
    while stack:
        value = stack.pop()
        if value == name or value in inputs:
            continue
        node = producers.get(value)
        if node is None:
            inputs.add(value)    # an initializer or a graph input
            continue
        if id(node) in needed:
            continue
        needed.add(id(node))
        stack += [v for v in node.input if v]
    nodes = [node for node in graph.node if id(node) in needed]
    if not nodes:
        return {name: tensor}
    graph_inputs = [i for i in graph.input if i.name in inputs]
    elem = onnx.helper.np_dtype_to_tensor_dtype(tensor.dtype)
    sub = onnx.helper.make_graph(
        nodes, "epilogue",
        [onnx.helper.make_tensor_value_info(name, elem, list(tensor.shape))] + graph_inputs,
        list(graph.output),
        [init for init in graph.initializer if init.name in inputs])
    sub_model = onnx.helper.make_model(sub, opset_imports=list(model.opset_import))
    evaluator = ReferenceEvaluator(sub_model, new_ops=[_dequantize_linear()])
    values = evaluator.run(None, {name: tensor,
                                  **{i.name: feeds[i.name] for i in graph_inputs}})
    return dict(zip((o.name for o in graph.output), values))
