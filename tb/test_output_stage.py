"""The output stage (hw/engine/output_stage.py) in Amaranth's simulator: a sample of every kind of
case against the project's requantization (the cocotb test, tb/test_output_stage_rtl.py, runs
them all on both simulators), its throughput and latency, and its parameter checks."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.hw.engine.output_stage import (OutputStage, Rule, onnx_params, onnx_settings,
                                             params_layout, tflite_params, tflite_settings)
from zeroskip.hw.layouts import pack, unpack

from . import output_stage_cases as cases

CHANNELS = 16
TAG_WIDTH = 16


def simulate(layers, *, valid_p=1.0, ready_p=1.0, seed=0, register_every=1, acc_width=32,
             float_rule=False):
    """Each layer's outputs (int8 values) and tags through the stage, with the input valid
    and the output ready each up with the given probabilities; and the cycles of each layer
    from its first input offered to its last output taken."""
    stage = OutputStage(CHANNELS, tag_width=TAG_WIDTH, register_every=register_every,
                        acc_width=acc_width, float_rule=float_rule)
    sim = Simulator(stage)
    sim.add_clock(1e-8)
    outcomes = []

    async def bench(ctx):
        rand = random.Random(seed)
        for layer in layers:
            assert not ctx.get(stage.busy)
            for channel, word in enumerate(layer.params):
                ctx.set(stage.params_write.en, 1)
                ctx.set(stage.params_write.addr, channel)
                ctx.set(stage.params_write.data, word)
                await ctx.tick()
            ctx.set(stage.params_write.en, 0)
            ctx.set(stage.settings, layer.settings)
            n = len(layer.acc)
            sent, values, tags, cycles = 0, [], [], 0
            while len(values) < n:
                offer = sent < n and rand.random() < valid_p
                ctx.set(stage.i.valid, offer)
                if offer:
                    ctx.set(stage.i.payload, {"acc": int(layer.acc[sent]),
                                              "channel": int(layer.channel[sent]),
                                              "tag": sent % (1 << TAG_WIDTH)})
                take = rand.random() < ready_p
                ctx.set(stage.o.ready, take)
                accepted = offer and ctx.get(stage.i.ready)
                taken = take and ctx.get(stage.o.valid)
                if taken:
                    word = ctx.get(stage.o.payload)
                    values.append(word.value)
                    tags.append(word.tag)
                await ctx.tick()
                sent += bool(accepted)
                cycles += 1
                assert cycles < 100 * n + 1000, "the stage hung"
            ctx.set(stage.i.valid, 0)
            ctx.set(stage.o.ready, 0)
            for _ in range(stage.latency + 2):
                assert not ctx.get(stage.o.valid), "an element too many"
                await ctx.tick()
            outcomes.append((np.array(values), np.array(tags), cycles))

    sim.add_testbench(bench)
    sim.run()
    return stage, outcomes


def check(layers, outcomes):
    for layer, (values, tags, _) in zip(layers, outcomes):
        assert tags.tolist() == [i % (1 << TAG_WIDTH) for i in range(len(layer.acc))], \
            f"{layer.name}: elements lost, repeated or reordered"
        wrong = np.flatnonzero(values != layer.expected)
        assert not wrong.size, (
            f"{layer.name}: {wrong.size} of {len(values)} wrong, first: acc "
            f"{layer.acc[wrong[0]]} channel {layer.channel[wrong[0]]} params "
            f"{layer.params[layer.channel[wrong[0]]]} settings {layer.settings}: got "
            f"{values[wrong[0]]}, expected {layer.expected[wrong[0]]}")


def sample(layer, count, rng):
    """``count`` elements of ``layer`` (all if fewer), keeping its parameters."""
    if len(layer.acc) <= count:
        return layer
    pick = np.sort(rng.choice(len(layer.acc), count, replace=False))
    return cases.Layer(layer.name, layer.settings, layer.params, layer.acc[pick],
                       layer.channel[pick], layer.expected[pick])


@pytest.mark.parametrize("register_every", [1, 2, 3])
def test_every_kind_of_case_matches_the_host_requantization(rng, register_every):
    layers = ([cases.onnx_random(rng, CHANNELS, 120), cases.tflite_random(rng, CHANNELS, 120)]
              + [sample(layer, 60, rng) for layer in cases.onnx_ties(CHANNELS)]
              + [sample(cases.tflite_ties(CHANNELS), 80, rng)]
              + [sample(layer, 60, rng) for layer in cases.onnx_extremes(CHANNELS)[::2]]
              + [sample(layer, 60, rng) for layer in cases.tflite_extremes(CHANNELS)[:2]]
              + [sample(layer, 30, rng) for layer in cases.activation_layers(rng, CHANNELS,
                                                                             30)])
    _, outcomes = simulate(layers, valid_p=0.7, ready_p=0.6, seed=1,
                           register_every=register_every)
    check(layers, outcomes)


@pytest.mark.parametrize("register_every,latency", [(1, 19), (2, 11), (3, 8)])
def test_one_element_per_cycle_and_the_latency(rng, register_every, latency):
    layers = [cases.tflite_random(rng, CHANNELS, 200)]
    stage, outcomes = simulate(layers, register_every=register_every)
    check(layers, outcomes)
    # the first output after the latency, then one per cycle
    assert stage.latency == latency
    assert outcomes[0][2] == 200 + latency


def test_a_narrower_accumulator_is_sign_extended(rng):
    """A 24-bit accumulator (ArrayConfig's acc_width 24): its values at both ends, with biases
    that take the sum beyond 24 bits."""
    layers = []
    for layer in (cases.onnx_random(rng, CHANNELS, 150), cases.tflite_random(rng, CHANNELS, 150)):
        acc = np.clip(layer.acc, -(1 << 23), (1 << 23) - 1)
        acc[:4] = [-(1 << 23), (1 << 23) - 1, -1, 0]
        params = layer.params
        if layer.settings["rule"] == Rule.ONNX:
            scale = np.array([p["multiplier"] for p in params], np.uint32).view(np.float32)
            layers.append(cases.onnx_layer(layer.name, acc, layer.channel, scale,
                                           [p["bias"] << 4 for p in params],
                                           layer.settings["zero_point"]))
        else:
            layers.append(cases.tflite_layer(
                layer.name, acc, layer.channel, [p["multiplier"] for p in params],
                [p["shift"] for p in params], [p["bias"] << 4 for p in params],
                layer.settings["zero_point"]))
    _, outcomes = simulate(layers, valid_p=0.8, ready_p=0.8, seed=4, acc_width=24)
    check(layers, outcomes)


@pytest.mark.parametrize("register_every", [1, 3])
def test_the_float_rule_and_the_others_beside_it(rng, register_every):
    """TFLite's float rule (FULLY_CONNECTED) in a stage built with it, and a sample of the
    other rules' cases through the same stage."""
    layers = ([sample(layer, 80, rng) for layer in cases.tflite_float_layers(rng, CHANNELS,
                                                                              200)]
              + [sample(cases.onnx_random(rng, CHANNELS, 100), 60, rng),
                 sample(cases.tflite_ties(CHANNELS), 60, rng)]
              + [sample(layer, 30, rng) for layer in cases.onnx_ties(CHANNELS)])
    stage, outcomes = simulate(layers, valid_p=0.8, ready_p=0.7, seed=5, float_rule=True,
                               register_every=register_every)
    check(layers, outcomes)
    assert stage.latency == {1: 21, 3: 9}[register_every]


def test_outputs_survive_a_long_stall(rng):
    layers = [cases.onnx_random(rng, CHANNELS, 100)]
    _, outcomes = simulate(layers, ready_p=0.05, seed=3)
    check(layers, outcomes)


def test_the_cases_hold_real_ties():
    """The tie cases are where a rounding rule shows: exact rational rounding (half to even)
    of ``acc · scale`` disagrees with ONNX's float32 rule on some of them."""
    from fractions import Fraction
    differ = 0
    for layer in cases.onnx_ties(CHANNELS):
        scale = np.array([p["multiplier"] for p in layer.params], np.uint32).view(np.float32)
        for acc, channel, want in zip(layer.acc, layer.channel, layer.expected):
            exact = round(Fraction(int(acc)) * Fraction(float(scale[channel])))
            differ += max(-128, min(127, exact)) != want
    assert differ >= 20


def test_parameter_words():
    assert onnx_params(np.float32(0.5), -3) == {"bias": -3, "multiplier": 0x3F000000,
                                                "shift": 0}
    assert tflite_params(1 << 30, -2, 7) == {"bias": 7, "multiplier": 1 << 30, "shift": -2}
    assert onnx_settings(3, np.uint8, relu=True) == {"rule": Rule.ONNX, "zero_point": -125,
                                                     "low": -125, "high": 127}
    assert tflite_settings(-5, -5, 40)["rule"] == Rule.TFLITE
    word = pack(params_layout(), tflite_params((1 << 31) - 1, -31, -(1 << 31)))
    assert unpack(params_layout(), word) == {"bias": -(1 << 31), "multiplier": (1 << 31) - 1,
                                             "shift": -31}
    for bad in (lambda: onnx_params(np.inf), lambda: onnx_params(1.0, 1 << 31),
                lambda: tflite_params(1 << 31, 0), lambda: tflite_params(-1, 0),
                lambda: tflite_params(1, 128), lambda: onnx_settings(300),
                lambda: onnx_settings(0, np.int16), lambda: tflite_settings(0, 5, 4)):
        with pytest.raises(ValueError):
            bad()
    for bad in (lambda: OutputStage(0), lambda: OutputStage(4, acc_width=33),
                lambda: OutputStage(4, tag_width=-1), lambda: OutputStage(4, register_every=4)):
        with pytest.raises(TypeError):
            bad()
