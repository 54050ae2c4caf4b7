"""The Python API: what the ``zeroskip`` command does, callable from a script or a notebook.

    >>> import numpy as np, zeroskip
    >>> C, report = zeroskip.gemm(A, W, rows=8, cols=8, format="csc", mode="skip")

Every call runs the generated RTL in a simulator (or on a board), never a Python stand-in; it
validates its inputs exactly as the command does and returns the same report.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from zeroskip.config import ARCHS, FORMATS, ArrayConfig, Mode

__all__ = ["gemm", "run", "GemmRunner", "array_config", "array_side", "DeviceFailure", "ARRAY_DEFAULTS"]

#: The array options and their defaults when no board fixes them.
ARRAY_DEFAULTS: dict[str, Any] = {"rows": 8, "cols": 8, "format": "csc", "nm": (2, 4)}

#: Largest PE array side the command and this API accept.
MAX_ARRAY_SIDE = 16


class DeviceFailure(Exception):
    """A board, its serial link or its programmer failed (the command's exit status 3)."""


def _bad_input(message: str) -> Exception:
    from zeroskip.sim.loaders import BadInput
    return BadInput(message)


def array_side(text: str) -> int:
    """An array side given as text (a command-line option): an integer from 1 to
    :data:`MAX_ARRAY_SIDE`, else ValueError saying why."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if not 1 <= value <= MAX_ARRAY_SIDE:
        raise ValueError(f"must be between 1 and {MAX_ARRAY_SIDE}, got {value}")
    return value


def array_config(rows: int | None = None, cols: int | None = None, format: str | None = None,
                 nm: str | tuple[int, int] | None = None, board: str | None = None, *,
                 double_buffer: bool = False, arch: str = "zeroskip",
                 spell: Callable[[str], str] = str) -> ArrayConfig:
    """The :class:`ArrayConfig` for these options: a board's own configuration, or an array
    sized by :meth:`ArrayConfig.for_capacity`.

    ``spell`` names an option in error messages (the command passes ``--name``).

    Raises
    ------
    ValueError
        (:class:`zeroskip.sim.loaders.BadInput`) for an unknown board or format, an array side
        outside 1..16, a malformed N:M, an N:M pattern without the nm format, or array options
        given together with a board.
    """
    given = {"rows": rows, "cols": cols, "format": format, "nm": nm}
    if arch not in ARCHS:
        raise _bad_input(f"{spell('arch')} must be one of {', '.join(ARCHS)}, not {arch!r}")
    if arch == "dense":
        named = [spell(name) for name in ("format", "nm") if given[name] is not None]
        if double_buffer:
            named.append(spell("double_buffer"))
        if named:
            raise _bad_input(f"{spell('arch')} dense has no decoders and no double buffering: "
                             f"drop {', '.join(named)}")
    if board is not None:
        from zeroskip.platforms.boards import BOARDS
        if board not in BOARDS:
            raise _bad_input(f"{spell('board')}: unknown board {board!r} (one of "
                             f"{', '.join(BOARDS)})")
        named = [spell(name) for name, value in given.items() if value is not None]
        if double_buffer:
            named.append(spell("double_buffer"))
        if named:
            raise _bad_input(f"{spell('board')} {board} fixes the array configuration; drop "
                             f"{', '.join(named)}")
        try:
            return BOARDS[board].for_arch(arch).config
        except ValueError as exc:
            raise _bad_input(f"{spell('board')} {board}: {exc}") from None
    options: dict[str, Any] = {name: ARRAY_DEFAULTS[name] if value is None else value
                               for name, value in given.items()}
    for side in ("rows", "cols"):
        value = options[side]
        if not isinstance(value, int) or isinstance(value, bool) or \
                not 1 <= value <= MAX_ARRAY_SIDE:
            raise _bad_input(f"{spell(side)} must be an integer from 1 to {MAX_ARRAY_SIDE}, "
                             f"not {value!r}")
    if options["format"] not in FORMATS:
        raise _bad_input(f"{spell('format')} must be one of {', '.join(FORMATS)}, not "
                         f"{options['format']!r}")
    pattern = options["nm"]
    if isinstance(pattern, str):
        from zeroskip.sim.formats.nm import parse
        try:
            pattern = parse(pattern)
        except ValueError as exc:
            raise _bad_input(f"{spell('nm')}: {exc}") from None
    n, m = pattern
    if nm is not None and options["format"] != "nm":
        # an N:M pattern shapes only the nm format's decoders: never drop it silently
        raise _bad_input(f"{spell('nm')} {n}:{m} applies only to {spell('format')} nm, not "
                         f"{spell('format')} {options['format']}")
    config = ArrayConfig.for_capacity(options["rows"], options["cols"], fmt=options["format"],
                                      nm_n=n, nm_m=m)
    if arch == "dense":
        # the energy table prices the zeroskip design's events; it has no dense counterpart
        return config.with_(arch="dense", energy_counters=False)
    return config.with_(double_buffer=bool(double_buffer))


def gemm(acts: Any, weights: Any, *, rows: int | None = None, cols: int | None = None,
         format: str | None = None, nm: str | tuple[int, int] | None = None,
         mode: str | Mode | None = None, sim: str = "verilator", board: str | None = None,
         port: str | None = None, waves: str | None = None,
         config: ArrayConfig | None = None,
         energy_table: Any = None, double_buffer: bool = False,
         arch: str = "zeroskip") -> tuple[np.ndarray, dict]:
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
                       energy_table=energy_table, double_buffer=double_buffer, arch=arch)
    (result, report), = engine.run([(acts, weights)])
    return result, report


def run(model: Any, inputs: Any, *, labels: Any = None, calibrate: Any = None,
        prune: float | None = None, rows: int | None = None, cols: int | None = None,
        format: str | None = None, nm: str | tuple[int, int] | None = None,
        mode: str | Mode = "skip", sim: str = "verilator", board: str | None = None,
        port: str | None = None, progress: bool = False,
        energy_table: Any = None) -> tuple[dict, dict]:
    """An ONNX model on the generated RTL, as ``zeroskip run`` does; returns
    ``(outputs, report)``.

    Parameters
    ----------
    model : path or ``onnx.ModelProto``
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
    rows, cols, format, nm, mode, sim, board, port, energy_table
        The array and the energy table, as for :func:`gemm`.

    Returns
    -------
    outputs : dict of ndarray
        Every graph output, in the dtype the graph declares.
    report : dict
        ``layers`` (one entry per node: where it ran and, for the array, its RTL figures),
        ``total`` and ``reference`` (onnxruntime on the same inputs), as in ``report.json``.

    Raises
    ------
    ValueError
        (:class:`zeroskip.sim.loaders.BadInput`) for a model, input or option the command
        would refuse (exit 2), naming the node or input.
    """
    from zeroskip.apps import run as runner
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        name, model = str(model), runner.load_model(model)
    else:
        name = model.graph.name or "model"
        runner.check_model(model, name)
    runner.check_prune(prune)
    engine = GemmRunner(rows=rows, cols=cols, format=format, nm=nm, mode=mode, sim=sim,
                       board=board, port=port, energy_table=energy_table)
    if isinstance(inputs, dict):
        feeds = dict(inputs)
    else:
        wanted = runner.graph_inputs(model)
        if len(wanted) != 1:
            raise _bad_input(f"inputs: the model has {len(wanted)} graph inputs; pass a dict "
                             f"keyed by name")
        feeds = {wanted[0].name: inputs}
    runner.check_feeds(model, feeds)
    if labels is not None:
        labels = runner.check_labels(np.asarray(labels), feeds)
    model = runner.prepare_model(model, None if calibrate is None else np.asarray(calibrate),
                                 prune)
    return runner.infer(model, feeds, engine, labels=labels, progress=progress, name=name)


class GemmRunner:
    """The array the options describe, in a simulator or on a board: runs batches of GEMMs,
    each batch in one simulation (a simulator start costs more than a small GEMM).

    The options are those of :func:`gemm`, validated the same way.
    """

    def __init__(self, *, rows: int | None = None, cols: int | None = None,
                 format: str | None = None, nm: str | tuple[int, int] | None = None,
                 mode: str | Mode | None = None, sim: str = "verilator",
                 board: str | None = None, port: str | None = None, waves: str | None = None,
                 config: ArrayConfig | None = None, energy_table: Any = None,
                 double_buffer: bool = False, arch: str = "zeroskip"):
        from zeroskip.sim.energy import EnergyTable
        from zeroskip.sim.rtl.runner import SIMULATORS, SimulatorMissing, check_wave_support
        if port is not None and board is None:
            raise _bad_input("port needs board (the board programmed at that port)")
        if port is not None and waves is not None:
            raise _bad_input("waves need a simulation, not a board at a port")
        if sim not in SIMULATORS:
            raise _bad_input(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
        if config is None:
            config = array_config(rows, cols, format, nm, board, double_buffer=double_buffer,
                                  arch=arch)
        elif any(value is not None for value in (rows, cols, format, nm, board)) or \
                double_buffer or arch != "zeroskip":
            raise _bad_input("config fixes the array; drop rows, cols, format, nm, board, "
                             "double_buffer and arch")
        if mode is None:
            mode = "dense" if config.arch == "dense" else "skip"
        try:
            self.mode = Mode[mode.upper()] if isinstance(mode, str) else Mode(mode)
        except (KeyError, ValueError):
            raise _bad_input(f"mode must be one of {', '.join(m.name.lower() for m in Mode)}, "
                             f"not {mode!r}") from None
        if config.arch == "dense" and self.mode != Mode.DENSE:
            raise _bad_input(f"mode {self.mode.name.lower()}: the dense architecture executes "
                             f"every MAC (mode dense only)")
        if waves is not None:
            try:
                check_wave_support(sim, waves)
            except SimulatorMissing as exc:
                raise _bad_input(f"waves: {exc}") from None
        self.config, self.sim, self.board, self.port, self.waves = config, sim, board, port, waves
        self.energy_table = energy_table if isinstance(energy_table, EnergyTable) else \
            EnergyTable.load(energy_table)

    def compile(self, acts: Any, weights: Any):
        """The checked operands and program of one GEMM; BadInput names what is wrong."""
        from zeroskip.sim import formats
        from zeroskip.sim.compiler import GemmTooLarge, compile_gemm
        from zeroskip.sim.loaders import as_int8_matrix, check_gemm_operands
        acts = as_int8_matrix(acts, "acts")
        weights = as_int8_matrix(weights, "weights")
        check_gemm_operands(acts, weights)
        try:
            formats.module(self.config.fmt).check(weights, self.config)
        except ValueError as exc:
            raise _bad_input(f"weights: {exc}") from None
        try:
            return acts, weights, compile_gemm(acts, weights, self.config, self.mode)
        except GemmTooLarge as exc:
            raise _bad_input(str(exc)) from None

    def run(self, pairs: list[tuple[Any, Any]]) -> list[tuple[np.ndarray, dict]]:
        """``[(C, report), ...]`` for ``[(A, W), ...]``, every C checked against NumPy."""
        from zeroskip.sim import golden
        from zeroskip.sim.compiler import assemble
        from zeroskip.sim.report import gemm_report
        from zeroskip.sim.rtl.runner import run_programs

        compiled = [self.compile(acts, weights) for acts, weights in pairs]
        programs = [program for _, _, program in compiled]
        if self.port is not None:
            from zeroskip.platforms.runtime import LinkError, run_on_board
            from zeroskip.platforms.top import DEFAULT_BAUD
            try:
                rtls, _ = run_on_board(programs, self.port, self.config, baud=DEFAULT_BAUD)
            except LinkError as exc:
                message = str(exc)
                raise DeviceFailure(message if self.port in message
                                    else f"{self.port}: {message}") from None
            source = f"board {self.board} at {self.port}"
        else:
            rtls = run_programs(programs, self.sim, waves=self.waves)
            source = self.sim
        out = []
        for (acts, weights, program), rtl in zip(compiled, rtls):
            rtl.check(program)  # a lane fault or a cycle count the model does not predict
            result = assemble(program, rtl.results)
            golden.check_result(result, acts, weights)
            report = gemm_report(program, acts, weights, rtl, source, self.energy_table)
            report["matches_golden"] = True
            report["provenance"]["matches_golden"] = "host"
            out.append((result, report))
        return out
