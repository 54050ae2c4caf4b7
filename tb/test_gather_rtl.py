"""cocotb (Verilator and Icarus): the gather unit's Verilog against the front end's im2col
(:func:`zeroskip.frontend.lowering.im2col`) and the TFLite lowering's groups and depthwise
packs, every case on one build per simulator (the descriptor is a run-time input), with the
cycles of :meth:`GatherParams.cycles`. The cases and their checks: tb/test_gather.py."""

import numpy as np
import pytest

from zeroskip.hw.engine.gather import Gather
from zeroskip.hw.layouts import pack
from zeroskip.hw.verilog import convert
from zeroskip.sim.rtl import build
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import simulators
from .test_gather import (PARAMS, check, fm_beats, plain_cases, random_cases, tflite_cases,
                          word_values)

TOP = "zeroskip_gather"


def gather_build(sim):
    """The one build of :data:`PARAMS` on ``sim``."""
    p = PARAMS
    name = (f"gather-r{p.rows}-fm{p.fm_depth}-a{p.act_depth}-w{p.act_width}-b{p.bank_bits}"
            f"-p{p.ports}-d{p.dim_bits}-k{p.kernel_bits}")
    return build.build(sim, name, lambda: convert(Gather(PARAMS), TOP), TOP)


@pytest.mark.parametrize("sim", simulators())
def test_gather_rtl(sim):
    rng = np.random.default_rng(31)
    cases = plain_cases(rng) + tflite_cases(rng) + random_cases(rng, 12)
    layout = PARAMS.descriptor_layout
    mask = (1 << PARAMS.act_width) - 1    # a port's bits (-128 on 8 bits is X on Icarus)
    job = {"cases": [{"fm_beats": [(addr, value & mask) for addr, value in fm_beats(x, layer)],
                      "layer": pack(layout, layer.descriptor(PARAMS)),
                      "timeout": PARAMS.cycles(layer) + 10} for x, layer, _ in cases]}
    # one gather is started again while busy, with another case's layer: ignored
    job["cases"][2]["restart_at"] = 7
    job["cases"][2]["other_layer"] = job["cases"][3]["layer"]
    results = run_cocotb(sim, gather_build(sim), TOP, "zeroskip.tb.cocotb_gather", job)
    assert len(results) == len(cases)
    for (beats, cycles), (_, layer, a) in zip(results, cases):
        words = [(addr, word_values(word, PARAMS.rows, PARAMS.act_width))
                 for addr, word in beats]
        check(words, cycles, a, layer, PARAMS)
