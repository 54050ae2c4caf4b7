"""cocotb (Verilator and Icarus): the output stage's Verilog against the project's requantization
(ONNX's float32 rule, TFLite's gemmlowp rule and its float rule) over random accumulators,
constructed rounding ties, saturation both ways, scale, multiplier, shift and bias extremes,
every output zero point, the activation clamps, and random idle cycles and backpressure on both
streams.

One build per simulator for every case (a build costs 40-140 s): one configuration, with the
float rule (the stage without it is the same datapath less the float rule's part; the Amaranth
simulator tests run both), all the layers in one simulation."""

import numpy as np
import pytest

from zeroskip.hw.engine.output_stage import (OutputStage, input_layout, latency,
                                             output_layout, params_layout, settings_layout)
from zeroskip.hw.layouts import pack
from zeroskip.hw.verilog import convert
from zeroskip.sim.rtl import build
from zeroskip.sim.rtl.runner import run_cocotb

from . import output_stage_cases as cases
from .rtl import simulators

CHANNELS, ACC_WIDTH, TAG_WIDTH = 16, 32, 16
TOPLEVEL = "zeroskip_output_stage"
#: (input valid, output ready) probabilities, one pair per layer in turn; the first layer
#: (random ONNX elements) runs at full rate
PRESSURES = [(1.0, 1.0), (0.5, 0.5), (0.9, 0.3), (0.3, 0.9), (1.0, 0.7), (0.7, 1.0)]


def stage_build(sim):
    def generate():
        return convert(OutputStage(CHANNELS, acc_width=ACC_WIDTH, tag_width=TAG_WIDTH,
                                   float_rule=True), TOPLEVEL)
    # build.build looked up on its module: the guard in conftest.py replaces it there
    return build.build(sim, f"output_stage-c{CHANNELS}-a{ACC_WIDTH}-t{TAG_WIDTH}-float",
                       generate, TOPLEVEL)


def packed(layer):
    """A layer as the testbench's port words."""
    tags = np.arange(len(layer.acc)) % (1 << TAG_WIDTH)
    inputs = input_layout(ACC_WIDTH, CHANNELS, TAG_WIDTH)
    outputs = output_layout(TAG_WIDTH)
    return {
        "name": layer.name,
        "settings": pack(settings_layout(), layer.settings),
        "params": [(c, pack(params_layout(float_rule=True), word))
                   for c, word in enumerate(layer.params)],
        "inputs": [pack(inputs, {"acc": int(a), "channel": int(c), "tag": int(t)})
                   for a, c, t in zip(layer.acc, layer.channel, tags)],
        "expected": [pack(outputs, {"value": int(v), "tag": int(t)})
                     for v, t in zip(layer.expected, tags)],
    }


@pytest.mark.parametrize("sim", simulators())
def test_output_stage_matches_the_host_requantization(sim, rng, capsys):
    layers = cases.all_layers(rng, CHANNELS)
    job = {"layers": [packed(layer) for layer in layers], "pressures": PRESSURES,
           "latency": latency(float_rule=True), "timeout_cycles_per_element": 50}
    outcomes = run_cocotb(sim, stage_build(sim), TOPLEVEL, "zeroskip.tb.cocotb_output_stage",
                          job)
    assert [o["elements"] for o in outcomes] == [len(layer.acc) for layer in layers]
    # every zero point of both rules (and every uint8 one) went through
    names = {o["name"] for o in outcomes}
    assert all(f"onnx zp {z}" in names and f"tflite zp {z}" in names
               for z in range(-128, 128))
    assert all(f"onnx uint8 zp {z}" in names for z in range(256))
    assert all(f"tflite float zp {z}" in names for z in range(-128, 128))
    # full rate: one element per cycle after the latency
    first = outcomes[0]
    assert (first["valid_p"], first["ready_p"]) == (1.0, 1.0)
    assert first["cycles"] == first["elements"] + latency(float_rule=True)
    elements = sum(o["elements"] for o in outcomes)
    with capsys.disabled():
        print(f"\n[{sim}] output stage: {elements} elements in {len(outcomes)} layers checked")
