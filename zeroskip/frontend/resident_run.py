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
from typing import Any

import numpy as np

from zeroskip.frontend.resident import EngineModel, lower
from zeroskip.frontend.terms import PYTHON, Terms
from zeroskip.sim.loaders import BadInput
from zeroskip.sim.program import EngineProgram, compile_network

__all__ = ["ResidentResult", "run_resident", "check_resident", "infer_resident"]


@dataclass
class ResidentResult:
    """A batch's outputs (every graph output, as the graph computes it) and, per image, the
    engine's counters (None from an engine without them); through a board top's UART, the
    link's record (:class:`~zeroskip.platforms.engine_runtime.NetworkRun`)."""
    outputs: dict
    counters: list
    lowered: EngineModel
    program: EngineProgram
    link: Any = None


def run_resident(model, feeds: dict, params, *, sim: str = "verilator",
                 engine: Callable | None = None, board: str | None = None,
                 port: str | None = None) -> ResidentResult:
    """The model's outputs for ``feeds`` (a batch) with its layers on an engine of ``params``;
    with ``board`` (and no ``engine``), on that board's simulated top through its UART, the
    program loaded once through the link as on the board
    (:func:`~zeroskip.sim.rtl.engine_runner.run_engine_board`), or with ``port`` on the board
    itself (:func:`~zeroskip.platforms.engine_runtime.run_engine_on_board`).

    Raises
    ------
    ValueError
        A node the engine does not run, or a resource the model overflows (naming it, what
        the model needs and what the engine has), before anything runs.
    RuntimeError
        A decoder lane of the engine faulted.
    DeviceFailure
        The board at ``port`` did not answer, even after retries.
    """
    from onnx.reference import ReferenceEvaluator

    from zeroskip.frontend.graph import _dequantize_linear
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
    link = None
    if engine is None and port is not None:
        link = _on_board(program, inputs, port)
        runs = link.runs
    elif engine is None and board is not None:
        from zeroskip.platforms.boards import BOARDS
        from zeroskip.sim.rtl.engine_runner import run_engine_board
        link = run_engine_board(program, inputs, BOARDS[board], sim)
        runs = link.runs
    else:
        if engine is None:
            from zeroskip.sim.rtl.engine_runner import run_engine
            engine = run_engine
        runs = engine([(program, inputs)], sim)[0]
    if any(run.fault for run in runs):
        raise RuntimeError("a decoder lane of the engine stopped on malformed memory "
                           "contents: the outputs are not valid")
    tensor = np.concatenate([_as_tensor(lowered, run.output) for run in runs])
    outputs = _epilogue(model, lowered.output_name, tensor, feeds)
    return ResidentResult(outputs=outputs, counters=[run.counters for run in runs],
                          lowered=lowered, program=program, link=link)


def _on_board(program, inputs, port):
    """The inferences on the board at ``port``; a link that fails is a DeviceFailure naming
    the port."""
    from zeroskip.gemm_runner import DeviceFailure
    from zeroskip.platforms.engine_runtime import run_engine_on_board
    from zeroskip.platforms.runtime import LinkError
    from zeroskip.platforms.top import DEFAULT_BAUD
    try:
        return run_engine_on_board(program, inputs, port, baud=DEFAULT_BAUD)
    except LinkError as exc:
        raise DeviceFailure.of_link(exc, port) from None


#: The clock ``inferences_per_s`` assumes: a configuration names no board, so no clock of its
#: own (the ULX3S configuration's target is 100 MHz); the report says it is assumed.
ASSUMED_CLOCK_HZ = 100_000_000


def _per_inference(counters: dict, config, result: ResidentResult,
                   clock: tuple[str, float] | None) -> dict:
    """The report's figures per inference beyond the engine's cycles, each with its provenance
    (merged into ``total["provenance"]`` by the caller's ``update``):

    ``offchip_words_per_inference``
        Through a board top's UART: the bytes the board's link received and sent between two
        RUNs (its own byte counters, reported by each RUN; an inference's input map written,
        its RUN, its output map read, with their frames and replies), in 32-bit words
        (``derived``; None for a single inference). Otherwise the 32-bit words of the
        engine's input tensor (int8, as the host writes it) and output tensor (``host``,
        from the tensors' sizes).
    ``link_bytes_per_inference``, ``link_seconds_per_inference``, ``inferences_per_s_with_uart``
        Through the UART only: those bytes, their time on the line at the board's baud (10
        bits a byte; the link never sends and receives at once) and inferences per second
        with it, ``1 / (cycles / clock_hz + link_seconds)`` (``derived``).
    ``inferences_per_s``, ``clock_hz``
        ``clock_hz / cycles_per_inference`` at the board's clock (``clock``: a board name and
        its clock in Hz, the PLL's target, which its build meets) or else at
        :data:`ASSUMED_CLOCK_HZ` (``clock`` says it is assumed), the engine's compute alone:
        no UART, no host nodes (``derived``).
    ``energy_per_inference_pj``, ``energy_breakdown_pj``, ``energy_events``, ``energy_table``
        An **estimate**: the engine's event counters of one inference priced by
        :mod:`zeroskip.sim.energy`'s table (:func:`~zeroskip.sim.energy.resident_events`), the
        off-chip part the input and output tensors only (``derived``: its events' sources are
        ``provenance["energy_events"]``). None for a configuration without energy counters.
    """
    from zeroskip.sim import energy
    words_in = -(-int(np.prod(result.program.input_shape)) // 4)
    words_out = -(-int(result.program.output_size) // 4)
    cycles = counters.get("cycles")
    board, clock_hz = clock if clock is not None else (None, ASSUMED_CLOCK_HZ)
    figures: dict = {
        "offchip_words_per_inference": words_in + words_out,
        "clock_hz": clock_hz,
        "clock": f"{board}'s clock" if board else "assumed (no board given)",
        "inferences_per_s": round(clock_hz / cycles, 1) if cycles else None,
        "link_bytes_per_inference": None, "link_seconds_per_inference": None,
        "inferences_per_s_with_uart": None,
    }
    link_provenance = "host"
    if result.link is not None:
        link_provenance = "derived"
        moved = _link_bytes(result.link)
        figures["offchip_words_per_inference"] = None
        if moved is not None:
            received, sent = moved
            from zeroskip.platforms.top import DEFAULT_BAUD
            words_in, words_out = -(-received // 4), -(-sent // 4)
            seconds = (received + sent) * 10 / DEFAULT_BAUD
            figures.update(offchip_words_per_inference=words_in + words_out,
                           link_bytes_per_inference=received + sent, uart_baud=DEFAULT_BAUD,
                           link_seconds_per_inference=round(seconds, 9),
                           inferences_per_s_with_uart=round(
                               1 / (seconds + (cycles or 0) / clock_hz), 1))
    table = energy.EnergyTable.default()
    events = energy.resident_events(counters, config, words_in, words_out) if cycles else None
    estimate = energy.estimate(events, int(cycles or 0), table, energy.RESIDENT_CATEGORIES)
    figures.update(energy_per_inference_pj=estimate["energy_pj"],
                   energy_breakdown_pj=estimate["energy_breakdown_pj"],
                   energy_events=events, energy_table=estimate["energy_table"])
    provenance = {"offchip_words_per_inference": link_provenance, "clock_hz": "model",
                  "inferences_per_s": "derived", "link_bytes_per_inference": "derived",
                  "link_seconds_per_inference": "derived",
                  "inferences_per_s_with_uart": "derived",
                  "energy_per_inference_pj": "derived", "energy_breakdown_pj": "derived",
                  "energy_events": {name: energy.RESIDENT_SOURCES[name] for name in events}
                  if events else None}
    return figures | {"_provenance": provenance}


def _link_bytes(link) -> tuple[int, int] | None:
    """Bytes (received, sent) the board's link moved for one inference: the difference of
    its counters between the last two RUNs (32-bit counts, wrapping); None for a single
    inference."""
    if len(link.link_rx) < 2:
        return None
    return ((link.link_rx[-1] - link.link_rx[-2]) % 2 ** 32,
            (link.link_tx[-1] - link.link_tx[-2]) % 2 ** 32)


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


def check_resident(tflite: bool, mode, board: str | None, port: str | None, energy_table,
                   terms: Terms = PYTHON) -> None:
    """:class:`BadInput`, in ``terms``' words, for what a resident run does not do yet."""
    option = terms("resident")
    if tflite:
        raise BadInput(f"{option}: the network engine runs ONNX models so far; leave {option} "
                       "out for a TFLite model")
    if board is not None:
        from zeroskip.platforms.boards import BOARDS
        if board in BOARDS and BOARDS[board].engine is None:
            have = [name for name, b in BOARDS.items() if b.engine is not None]
            raise BadInput(f"{option}: {board} has no network engine configuration (its array "
                           f"cannot hold a network's weights); boards with one: "
                           f"{', '.join(have)}")
    if str(getattr(mode, "name", mode)).lower() != "skip":
        skip = f"{terms('mode')} skip" if terms.flags else "skip mode"
        raise BadInput(f"{option}: the network engine runs {skip}, not {mode}")
    if energy_table is not None:
        raise BadInput(f"{option}: the network engine's energy is estimated with the default "
                       f"table only; drop {terms('energy_table')}")


def infer_resident(model, feeds: dict, config, *, labels=None, sim: str = "verilator",
                   name: str = "model", engine: Callable | None = None, board: str | None = None,
                   port: str | None = None, terms: Terms = PYTHON) -> tuple[dict, dict]:
    """:func:`zeroskip.frontend.infer.infer` with the model's layers resident on an engine of
    ``config`` (``resident=True`` is set) sized to the model
    (:func:`zeroskip.sim.program.engine_params_for`), or on ``board``'s own engine (its
    fixed memories; a model that overflows one is refused) at its clock: the outputs (in the
    dtypes the graph
    declares) and the report, whose ``total`` gives the engine's figures per inference from
    its hardware counters (``resident``, ``cycles_per_inference``, the array's, the gather
    unit's, the drain's and the pooling unit's cycles, the runs; and :func:`_per_inference`'s
    off-chip words, throughput and energy estimate) and whose ``reference``
    compares the outputs with the model's definition, as the host-sequenced run's does.

    What the engine does not run, or what does not fit, is :class:`BadInput` naming the
    ``resident`` option in ``terms``' words."""
    try:
        return _infer_resident(model, feeds, config, labels=labels, sim=sim, name=name,
                               engine=engine, board=board, port=port)
    except BadInput:
        raise
    except ValueError as exc:   # what the engine does not run or what does not fit
        raise BadInput(f"{terms('resident')}: {exc}") from None


def _infer_resident(model, feeds: dict, config, *, labels, sim: str, name: str,
                    engine: Callable | None, board: str | None,
                    port: str | None) -> tuple[dict, dict]:
    from zeroskip.frontend.model import declared_dtype
    from zeroskip.frontend.reference import against_reference
    from zeroskip.sim.program import engine_params_for
    lowered = lower(model, {key: value[:1] for key, value in feeds.items()})
    params, clock = None, None
    if board is not None:
        from zeroskip.platforms.boards import BOARDS
        # check_resident refused a board without an engine
        params, clock = BOARDS[board].engine, (board, BOARDS[board].clock_mhz * 1e6)
    if params is None:
        params = engine_params_for(lowered.layers, config.with_(resident=True))
    config = params.config
    result = run_resident(model, feeds, params, sim=sim, engine=engine, board=board, port=port)
    outputs = {output: np.asarray(value, dtype=declared_dtype(model, output, value))
               for output, value in result.outputs.items()}
    counters = result.counters[-1] if result.counters else {}
    total: dict = {"resident": True, "inferences": len(result.counters)}
    for field, counter in (("cycles_per_inference", "cycles"),
                           ("array_cycles_per_inference", "array_cycles"),
                           ("gather_cycles_per_inference", "gather_cycles"),
                           ("drain_cycles_per_inference", "drain_cycles"),
                           ("pool_cycles_per_inference", "pool_cycles"),
                           ("runs_per_inference", "runs")):
        total[field] = int(counters[counter]) if counter in counters else None
    total["provenance"] = {field: "rtl" for field in total
                           if field.endswith("_per_inference")}
    figures = _per_inference(counters, config, result, clock)
    total["provenance"].update(figures.pop("_provenance"))
    total.update(figures)
    layers = [{"name": f"layer {index}", "on": "engine", "m": layer.conv_shape[0] *
               layer.conv_shape[1], "k": layer.weights.shape[0], "n": layer.n,
               "pool": layer.pool is not None, "table": layer.table is not None}
              for index, layer in enumerate(lowered.layers)]
    report = {
        "model": name,
        "array": {"rows": config.rows, "cols": config.cols, "format": config.fmt,
                  "mode": "skip", "simulator": None if port else sim, "resident": True,
                  "board": board, "port": port},
        "engine": {"fm_depth": params.fm_depth, "aux_depth": params.aux_depth,
                   "param_depth": params.param_depth, "colmap_depth": params.colmap_depth,
                   "program_depth": params.program_depth, "lut_depth": params.lut_depth,
                   "steps": len(result.program.steps)},
        "inputs": {key: list(value.shape) for key, value in feeds.items()},
        "reference": against_reference(model, feeds, outputs, labels),
        "layers": layers, "total": total,
    }
    return outputs, report
