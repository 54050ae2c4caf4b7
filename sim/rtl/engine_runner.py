"""Inferences on the network engine's RTL (:mod:`zeroskip.hw.engine.engine`): a compiled
network (:func:`zeroskip.sim.program.compile_network`) loaded once, then its inputs one after
another, in one simulation of one build per engine (the cocotb bench:
:mod:`zeroskip.tb.cocotb_engine`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zeroskip.sim.rtl.build import build
from zeroskip.sim.rtl.runner import run_cocotb

__all__ = ["TOP", "EngineRun", "engine_build", "run_engine"]

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
    from zeroskip.hw.layouts import unpack
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
