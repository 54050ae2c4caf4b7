"""Inferences on the network engine's RTL (:mod:`zeroskip.hw.engine.engine`): a compiled
network (:func:`zeroskip.sim.program.compile_network`) loaded once, then its inputs one after
another, in one simulation of one build per engine (the cocotb bench:
:mod:`zeroskip.tb.cocotb_engine`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zeroskip.hw.layouts import unpack
from zeroskip.sim.rtl.build import build
from zeroskip.sim.rtl.runner import run_cocotb

__all__ = ["TOP", "EngineRun", "engine_build", "run_engine", "board_engine_build",
           "run_engine_board"]

TOP = "zeroskip_engine"
BENCH = "zeroskip.tb.cocotb_engine"


@dataclass
class EngineRun:
    """One inference: the output map (HWC int8, flattened), the hardware counters
    (:data:`zeroskip.hw.engine.descriptor.ENGINE_COUNTERS`), whether a lane faulted, and the
    cycles the bench counted from start to done."""
    output: np.ndarray
    counters: dict
    fault: bool
    bench_cycles: int


def engine_build(params, sim="verilator"):
    """The build of an engine of ``params`` (an EngineParams) on ``sim`` (cached)."""
    from zeroskip.hw.engine.engine import Engine
    from zeroskip.hw.verilog import convert, primitive_models
    return build(sim, params.name(), lambda: (convert(Engine(params), TOP) +
                                              primitive_models(params.config)), TOP)


def network_job(program, inputs, *, timeout=200_000, reset_before=None, reset_after=0):
    """The bench's job for one network: its loads, its inputs' beats, and, for tests, an
    inference abandoned by a reset ``reset_after`` cycles after its start before input
    ``reset_before``."""
    job = {"beats": program.beats(), "inputs": [program.input_beats(x) for x in inputs],
           "output_size": program.output_size, "timeout": timeout}
    if reset_before is not None:
        job.update(reset_before=reset_before, reset_after=reset_after)
    return job


def run_engine(networks, sim="verilator"):
    """Run ``networks`` (a list of ``(program, inputs)`` or of :func:`network_job` dicts with
    their program as ``"program"``), all compiled for one EngineParams, in one simulation.
    Returns, per network, an :class:`EngineRun` per input."""
    jobs, programs = [], []
    for network in networks:
        if isinstance(network, dict):
            program = network["program"]
            job = {name: value for name, value in network.items() if name != "program"}
        else:
            program, inputs = network
            job = network_job(program, inputs)
        programs.append(program)
        jobs.append(job)
    params = programs[0].params
    if any(program.params != params for program in programs):
        raise ValueError("all networks of one simulation must be compiled for one engine")
    raw = run_cocotb(sim, engine_build(params, sim), TOP, BENCH,
                     {"lut": bool(params.lut_depth), "networks": jobs})
    layout = params.counters_layout
    return [[EngineRun(output=np.array(words, dtype=np.uint8).view(np.int8),
                       counters=unpack(layout, counters), fault=bool(fault),
                       bench_cycles=cycles)
             for words, counters, fault, cycles in outputs]
            for outputs in raw]


def board_engine_build(board, sim="verilator"):
    """The build of ``board``'s top with its network engine behind the link (cached), its
    UART at :data:`~zeroskip.platforms.top.DEFAULT_BAUD`."""
    from zeroskip.hw.verilog import convert, primitive_models
    from zeroskip.platforms.top import DEFAULT_BAUD, BoardTop
    params = board.engine

    def verilog():
        top = BoardTop(params.config, clock_hz=int(board.clock_mhz * 1e6), baud=DEFAULT_BAUD,
                       engine=params)
        return convert(top, "board_top") + primitive_models(params.config)
    return build(sim, f"board-{board.name}-{params.name()}", verilog, "board_top")


def run_engine_board(program, inputs, board, sim="verilator", *, faults=None, seed=1):
    """Run ``program`` (compiled for ``board.engine``) on ``inputs`` through the simulated
    board top of ``board`` (:class:`~zeroskip.platforms.top.BoardTop` with its engine, the
    UART at :data:`~zeroskip.platforms.top.DEFAULT_BAUD`), driven by the host runtime
    (:mod:`zeroskip.platforms.engine_runtime`) as a real board is: the program loaded once
    through the link, then each input. ``faults``: ``{request number: "corrupt" | "drop" |
    "stall" | "reply"}`` to damage on the way (the board refuses them, the host retries).
    Returns a :class:`~zeroskip.platforms.engine_runtime.NetworkRun`."""
    from zeroskip.platforms.engine_runtime import EngineInference, NetworkRun
    from zeroskip.platforms.top import DEFAULT_BAUD, default_idle_timeout, uart_divisor
    if program.params != board.engine:
        raise ValueError(f"the network was compiled for another engine than {board.name}'s")
    clock_hz = int(board.clock_mhz * 1e6)
    raw = run_cocotb(sim, board_engine_build(board, sim), "board_top",
                     "zeroskip.tb.cocotb_engine_board", {
        "program": program, "inputs": [np.asarray(x, dtype=np.int8) for x in inputs],
        "divisor": uart_divisor(clock_hz, DEFAULT_BAUD),
        "idle_timeout": default_idle_timeout(clock_hz),
        "faults": dict(faults or {}), "seed": seed})
    return NetworkRun(runs=[EngineInference(**run) for run in raw["inferences"]],
                      retries=raw["retries"], causes=raw["causes"], cycles=raw["cycles"],
                      injected=raw["injected"])
