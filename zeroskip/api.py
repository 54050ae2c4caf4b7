"""The Python API: what the ``zeroskip`` command does, callable from a script or a notebook.

    >>> import numpy as np, zeroskip
    >>> C, report = zeroskip.gemm(A, W, rows=8, cols=8, format="csc", mode="skip")

Every call runs the generated RTL in a simulator (or on a board), never a Python stand-in; it
validates its inputs exactly as the command does and returns the same report. This module is
the public layer only: the array options are :mod:`zeroskip.array_options`', the GEMM runs
:mod:`zeroskip.gemm_runner`'s, a model's run the ONNX front end's (:mod:`zeroskip.frontend`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zeroskip.array_options import ARRAY_DEFAULTS, MAX_ARRAY_SIDE, array_config, array_side
from zeroskip.config import ArrayConfig, Mode
from zeroskip.frontend.reference import OutputsDiffer
from zeroskip.gemm_runner import DeviceFailure, GemmRunner

__all__ = ["gemm", "run", "GemmRunner", "array_config", "array_side", "DeviceFailure",
           "OutputsDiffer", "ARRAY_DEFAULTS", "MAX_ARRAY_SIDE"]


def gemm(acts: Any, weights: Any, *, rows: int | None = None, cols: int | None = None,
         format: str | None = None, nm: str | tuple[int, int] | None = None,
         mode: str | Mode | None = None, sim: str = "verilator", board: str | None = None,
         port: str | None = None, waves: str | None = None,
         config: ArrayConfig | None = None,
         energy_table: Any = None, double_buffer: bool = False,
         arch: str = "zeroskip", depths: dict[str, int] | None = None
         ) -> tuple[np.ndarray, dict]:
    """C = A · W (int8 × int8 → int32) on the generated RTL; returns ``(C, report)``.

    Parameters
    ----------
    acts, weights : array-like of integers in [-128, 127]
        A (M × K) and W (K × N).
    rows, cols, format, nm
        The array (defaults 8, 8, ``"csc"``, 2:4); ``nm`` as ``"2:4"`` or ``(2, 4)``.
    mode : ``"skip"``, ``"gate"`` or ``"dense"``
        Default: skip (dense for ``arch="dense"``, which has no other mode).
    sim : ``"verilator"`` or ``"icarus"``
    board : str, optional
        Use that board's exact configuration (instead of rows/cols/format/nm): simulated, or
        on the board itself with ``port``.
    port : str, optional
        Serial port of a board programmed with ``zeroskip build --program``.
    waves : path, optional
        Write a waveform of the simulation (FST for ``.fst`` names, else VCD).
    config : ArrayConfig, optional
        A configuration of your own (instead of rows/cols/format/nm/board).
    energy_table : path or :class:`zeroskip.sim.energy.EnergyTable`, optional
        Picojoules per event replacing the bundled table's (``--energy-table``).
    double_buffer : bool
        Two banks of every memory (:attr:`ArrayConfig.double_buffer`): operands load and
        results come back while the previous and next runs compute; the report adds
        ``total_cycles`` (simulation only).
    depths : dict, optional
        Memory depths instead of the derived ones, by :data:`zeroskip.config.DEPTH_OPTIONS`
        name (``max_k``, ``act_depth``, ``weight_depth``, ``pointer_depth``, ``out_depth``,
        ``mask_depth``): by default every PE gets the same depths whatever the array's size.
    arch : ``"zeroskip"`` or ``"dense"``
        ``"dense"``: the baseline, a conventional output-stationary systolic array generated
        by the same project (:attr:`ArrayConfig.arch`), with a board's dense configuration for
        ``board``.

    Returns
    -------
    C : ndarray of int32, M × N
        Bit-exact ``A @ W``; checked against NumPy before it is returned.
    report : dict
        The figures of the run and their sources (``provenance``), as in ``--report``.

    Raises
    ------
    ValueError
        (:class:`zeroskip.sim.loaders.BadInput`) for input the tool rejects, naming it.
    DeviceFailure
        When the board's link fails.
    RuntimeError
        Internal failures: a decoder fault, RTL cycles the model does not predict, a result
        that differs from NumPy, a simulator that fails.
    """
    engine = GemmRunner(rows=rows, cols=cols, format=format, nm=nm, mode=mode, sim=sim,
                        board=board, port=port, waves=waves, config=config,
                       energy_table=energy_table, double_buffer=double_buffer, arch=arch,
                        depths=depths)
    (result, report), = engine.run([(acts, weights)])
    return result, report


def run(model: Any, inputs: Any, *, labels: Any = None, calibrate: Any = None,
        prune: float | None = None, rows: int | None = None, cols: int | None = None,
        format: str | None = None, nm: str | tuple[int, int] | None = None,
        mode: str | Mode = "skip", sim: str = "verilator", board: str | None = None,
        port: str | None = None, progress: bool = False,
        energy_table: Any = None, depths: dict[str, int] | None = None,
        resident: bool = False) -> tuple[dict, dict]:
    """An ONNX or TFLite model on the generated RTL, as ``zeroskip run`` does; returns
    ``(outputs, report)``.

    Parameters
    ----------
    model : path, ``onnx.ModelProto``, or the bytes of a ``.tflite`` file
        A ``.tflite`` model is a full-integer int8 one; its definition is LiteRT's reference
        kernels (``report["reference"]["definition"]``) and ``calibrate`` does not apply.
    inputs : ndarray (a model with one graph input) or dict of arrays keyed by input name
    labels : 1-D integer array, optional
        Class labels: the report gives the accuracy of the RTL and of onnxruntime.
    calibrate : ndarray, optional
        Quantize a float model first on these inputs (onnxruntime's ``quantize_static``, QDQ);
        ``prune`` zeroes that fraction of each weight matrix by magnitude before.
    prune : float in [0, 1), optional
        With ``calibrate``: prune the float weights before quantization. Without: prune a
        quantized model's array weights to their zero points (each tensor's smallest
        ``|w - zero point|``).
    rows, cols, format, nm, mode, sim, board, port, energy_table, depths
        The array, its memory depths and the energy table, as for :func:`gemm`.
    resident : bool
        Run the model's layers resident on the network engine (:mod:`zeroskip.hw.engine`),
        simulated, sized to the model: weights loaded once, activations on chip between
        layers, the host quantizing the input and running what follows the engine's last
        layer; ``report["total"]`` then gives the engine's cycles per inference from its
        counters. ONNX models, skip mode, no board yet.

    Returns
    -------
    outputs : dict of ndarray
        Every graph output, in the dtype the graph declares.
    report : dict
        ``layers`` (one entry per node: where it ran and, for the array, its RTL figures),
        ``total`` and ``reference``, as in ``report.json``: ``reference["unoptimized"]``
        compares the outputs with the model's definition (onnxruntime running the graph as
        written, optimizations off), the top-level fields with onnxruntime's default session,
        whose fused int8 kernels round differently (and differently by CPU).

    Raises
    ------
    ValueError
        (:class:`zeroskip.sim.loaders.BadInput`) for a model, input or option the command
        would refuse (exit 2), naming the node, input or argument: among them a model
        with no layer on the array, ``calibrate`` for a model quantized already or with no
        matrix product to quantize, inputs or labels of another dtype or shape than the model
        takes.
    TypeError
        For a ``model`` that is neither a path nor an ``onnx.ModelProto``.
    OutputsDiffer
        (a RuntimeError) When the outputs differ from the model's definition: a wrong answer
        is never returned. The exception carries ``outputs`` and ``report`` for diagnosis,
        and the output with the largest difference (``output``, ``max_abs_diff``).
    DeviceFailure
        When the board's link fails.
    RuntimeError
        Internal failures, as for :func:`gemm`.
    """
    import os

    from zeroskip.frontend.tflite.model import is_tflite
    if resident:
        from zeroskip.frontend.resident_run import check_resident
        check_resident(is_tflite(model), mode, board, port, energy_table)
    if is_tflite(model):
        return _run_tflite(model, inputs, labels=labels, calibrate=calibrate, prune=prune,
                           progress=progress,
                           runner=dict(rows=rows, cols=cols, format=format, nm=nm, mode=mode,
                                       sim=sim, board=board, port=port,
                                       energy_table=energy_table, depths=depths))
    from zeroskip.frontend.infer import infer
    from zeroskip.frontend.inputs import check_feeds, check_labels
    from zeroskip.frontend.model import check_model, graph_inputs, load_model, model_name
    from zeroskip.frontend.quantize import check_calibratable, check_prune, prepare_model
    from zeroskip.frontend.reference import check_definition
    from zeroskip.sim.loaders import BadInput
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        path = os.fsdecode(model)
        name, model = path, load_model(path)
    else:
        name = model_name(check_model(model, model_name(model)))
    check_prune(prune)
    engine = GemmRunner(rows=rows, cols=cols, format=format, nm=nm, mode=mode, sim=sim,
                        board=board, port=port, energy_table=energy_table, depths=depths)
    if isinstance(inputs, dict):
        feeds = dict(inputs)
    else:
        wanted = graph_inputs(model)
        if len(wanted) != 1:
            raise BadInput(f"inputs: the model has {len(wanted)} graph inputs "
                           f"({', '.join(i.name for i in wanted)}); pass a dict keyed by name")
        feeds = {wanted[0].name: inputs}
    check_feeds(model, feeds)
    if labels is not None:
        labels = check_labels(np.asarray(labels), feeds)
    if calibrate is not None:
        check_calibratable(model, name)
        calibrate = np.asarray(calibrate)
    model = prepare_model(model, calibrate, prune, name=name)
    if resident:
        from zeroskip.frontend.resident_run import infer_resident
        outputs, report = infer_resident(model, feeds, engine.config, labels=labels, sim=sim,
                                         name=name, board=board, port=port)
        check_definition(outputs, report)
        return outputs, report
    outputs, report = infer(model, feeds, engine, labels=labels, progress=progress, name=name)
    check_definition(outputs, report)
    return outputs, report


def _run_tflite(model: Any, inputs: Any, *, labels: Any, calibrate: Any, prune: float | None,
                progress: bool, runner: dict) -> tuple[dict, dict]:
    """:func:`run` for a TFLite model (a path or the file's bytes)."""
    from zeroskip.frontend.reference import check_definition
    from zeroskip.frontend.tflite.executor import check_input
    from zeroskip.frontend.tflite.infer import infer
    from zeroskip.frontend.tflite.model import load
    from zeroskip.frontend.tflite.prune import check_sparsity, prune as prune_model
    from zeroskip.sim.loaders import BadInput
    name = "model.tflite" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)
    loaded = load(model)
    if calibrate is not None:
        raise BadInput("calibrate: a TFLite model is quantized already (full-integer int8); "
                       "leave calibrate out")
    engine = GemmRunner(**runner)
    if isinstance(inputs, dict):
        wanted = loaded.tensors[loaded.inputs[0]].name
        if list(inputs) != [wanted]:
            raise BadInput(f"inputs: keys {', '.join(map(str, inputs)) or 'none'}; the model's "
                           f"input is {wanted!r}")
        inputs = inputs[wanted]
    x = check_input(loaded, inputs, "inputs")
    pruned = None
    if prune is not None:
        content, pruned = prune_model(loaded, check_sparsity(prune))
        loaded = load(content)
    outputs, report = infer(loaded, x, engine, labels=labels, progress=progress, name=name)
    if pruned is not None:
        report["pruned_sparsity"] = pruned
    check_definition(outputs, report)
    return outputs, report
