"""Cases for the output stage (hw/engine/output_stage.py), shared by its Amaranth-simulator test
and its cocotb test: layers of elements with their expected int8 outputs.

The expected values come from the project's one requantization of each rule, never from a
model written here: :func:`zeroskip.frontend.lowering.requantize` (ONNX, with the bias added to
the integer accumulator and a fused ReLU clamped at the zero point as
:mod:`zeroskip.frontend.graph` does), :func:`zeroskip.sim.requantize.requantize` with
``rounding="double"`` and :func:`zeroskip.sim.requantize.requantize_float` (TFLite, the bias
added as :mod:`zeroskip.frontend.tflite.array_ops` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zeroskip.frontend import lowering
from zeroskip.hw.engine.output_stage import (Rule, onnx_params, onnx_settings,
                                             tflite_float_params, tflite_params,
                                             tflite_settings)
from zeroskip.sim import requantize as rq

INT32_MIN, INT32_MAX = rq.INT32_MIN, rq.INT32_MAX


@dataclass
class Layer:
    """One layer's settings, per-channel parameter words, elements and expected outputs."""
    name: str
    settings: dict
    params: list                      # per channel: a dict for params_layout
    acc: np.ndarray                   # int64, the accumulators in
    channel: np.ndarray               # int64, their channels
    expected: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def onnx_layer(name, acc, channel, scale, bias, zero_point, dtype=np.int8, relu=False):
    """``scale`` and ``bias``: one per channel (float32 scales, int32 biases)."""
    acc, channel = np.asarray(acc, np.int64), np.asarray(channel, np.int64)
    scale = np.asarray(scale, np.float32)
    bias = np.asarray(bias, np.int64)
    with np.errstate(over="ignore"):  # a huge scale: the float32 product is infinite
        out = lowering.requantize(acc + bias[channel], scale[channel], dtype(zero_point),
                                  dtype)
    if relu:
        out = np.maximum(out, np.asarray(zero_point, dtype=dtype))
    # a uint8 output leaves the stage as its code minus 128 (see the stage's docstring)
    expected = out.astype(np.int64) - (128 if dtype == np.uint8 else 0)
    return Layer(name, onnx_settings(zero_point, dtype, relu),
                 [onnx_params(s, b) for s, b in zip(scale, bias)], acc, channel, expected)


def tflite_layer(name, acc, channel, multiplier, shift, bias, zero_point, low=-128, high=127):
    """``multiplier``, ``shift``, ``bias``: one per channel."""
    acc, channel = np.asarray(acc, np.int64), np.asarray(channel, np.int64)
    multiplier, shift = np.asarray(multiplier, np.int64), np.asarray(shift, np.int64)
    bias = np.asarray(bias, np.int64)
    expected = rq.requantize(acc + bias[channel], multiplier[channel], shift[channel],
                             zero_point, low, high, rounding="double").astype(np.int64)
    return Layer(name, tflite_settings(zero_point, low, high),
                 [tflite_params(q, s, b) for q, s, b in zip(multiplier, shift, bias)],
                 acc, channel, expected)


def tflite_float_layer(name, acc, channel, real, bias, zero_point, low=-128, high=127):
    """TFLite's float rule (FULLY_CONNECTED): ``real`` (float64) and ``bias``, one per
    channel."""
    acc, channel = np.asarray(acc, np.int64), np.asarray(channel, np.int64)
    real, bias = np.asarray(real, np.float64), np.asarray(bias, np.int64)
    with np.errstate(over="ignore", invalid="ignore"):  # a huge multiplier: infinite products
        expected = rq.requantize_float(acc + bias[channel], real[channel], zero_point, low,
                                       high).astype(np.int64)
    return Layer(name, tflite_settings(zero_point, low, high, Rule.TFLITE_FLOAT),
                 [tflite_float_params(r, b) for r, b in zip(real, bias)], acc, channel,
                 expected)


def tflite_float_layers(rng, channels, n):
    """The float rule: random multipliers (as TFLite derives them from float32 scales) and
    accumulators; ties (``acc · 2**-k`` exactly ``j + 0.5``, and ``real = (j + 0.5) / acc``
    whose float64 product lands on or next to the half); extremes (0, subnormal, the smallest
    normal, huge, negative; biases at the int32 limits); a zero point sweep."""
    real = rq.effective_multipliers(float(2.0 ** rng.uniform(-8, 0)),
                                    (2.0 ** rng.uniform(-10, -4, channels)).astype(np.float32),
                                    float(2.0 ** rng.uniform(-6, 0)))
    channel = rng.integers(0, channels, n)
    acc = np.where(rng.random(n) < 0.5, _accumulators(rng, n),
                   np.round(rng.uniform(-300, 300, n) / real[channel]).clip(
                       -2 ** 31, 2 ** 31 - 1).astype(np.int64))
    bias = rng.integers(-2 ** 20, 2 ** 20, channels)
    layers = [tflite_float_layer("tflite float random", acc, channel, real, bias,
                                 int(rng.integers(-128, 128)))]
    # ties: exact halves on channels 0..11, near-halves through channels 12..15
    real = np.concatenate([2.0 ** -np.arange(1, 24, 2), np.zeros(max(0, channels - 12))])
    accs, chans = [], []
    for c in range(12):
        k = 2 * c + 1
        for j in (-129, -128, -3, -2, -1, 0, 1, 2, 126, 127):
            accs.append((2 * j + 1) << (k - 1))
            chans.append(c)
    near = [int(a) | 1 for a in rng.integers(1 << 20, 1 << 31, max(0, channels - 12))]
    for c, a in zip(range(12, channels), near):
        real[c] = np.float64(rng.integers(0, 128) + 0.5) / a
        for delta in (-2, -1, 0, 1, 2):
            accs += [a + delta, -(a + delta)]
            chans += [c, c]
    layers.append(tflite_float_layer("tflite float ties", accs, chans, real,
                                     np.zeros(channels, np.int64), 0))
    extreme = np.array([1.0, 0.0, 5e-324, 2.2250738585072014e-308, 1e300, -0.5, 2.0 ** -31,
                        2.0 ** -40, 1.0 - 2.0 ** -53, 3.0, 2.0 ** 20, 0.25, 1e-9, 7.0, 0.5,
                        2.0 ** -33])[np.arange(channels) % 16]
    bias = np.array([0, INT32_MAX, INT32_MIN, 0, 1, -1, 0, INT32_MAX, INT32_MIN, 0, 0,
                     12345, -7, 0, 0, INT32_MIN], np.int64)[np.arange(channels) % 16]
    values = np.array([0, 1, -1, 2, -3, 127, 128, -128, -129, 255, 1 << 23, INT32_MAX,
                       INT32_MIN, 1 << 30, -(1 << 30)], np.int64)
    acc = np.repeat(values, channels)
    chans = np.tile(np.arange(channels), len(values))
    layers += [tflite_float_layer(f"tflite float extremes zp {z}", acc, chans, extreme, bias, z)
               for z in (0, -128, 127)]
    layers.append(tflite_float_layer("tflite float relu6", acc, chans, extreme, bias, -100,
                                     -100, 20))
    return layers


def _accumulators(rng, n, bits_high=31):
    """Accumulators of every magnitude: sign times 2**u for u uniform in 0..bits_high."""
    magnitude = np.floor(2.0 ** rng.uniform(0, bits_high, n)).astype(np.int64)
    return np.where(rng.random(n) < 0.5, -magnitude, magnitude)


def _scales(rng, channels, low=-30, high=2):
    return (2.0 ** rng.uniform(low, high, channels)).astype(np.float32)


def onnx_random(rng, channels, n, name="onnx random"):
    """Random accumulators, per-channel scales, biases and a zero point; ReLU or not."""
    acc = _accumulators(rng, n)
    scale = _scales(rng, channels)
    # products near the int8 range: accumulators scaled back to about ±300 in a third
    channel = rng.integers(0, channels, n)
    near = rng.random(n) < 0.4
    acc = np.where(near, np.round(rng.uniform(-300, 300, n) / scale[channel]).clip(
        INT32_MIN, INT32_MAX).astype(np.int64), acc)
    bias = rng.integers(-2 ** 20, 2 ** 20, channels)
    return onnx_layer(name, acc, channel, scale, bias, int(rng.integers(-128, 128)),
                      relu=bool(rng.integers(2)))


def onnx_ties(channels):
    """Rounding ties, constructed:

    - ``acc · scale`` exactly ``j + 0.5`` (scale ``2**-k``): round half to even;
    - ``float32(acc)`` a tie (``acc`` beyond 2**24, halfway between two float32 values);
    - the float32 product a tie at ``j + 0.5 ± 2**-(q + 1)`` that rounds to ``j + 0.5``
      (scale ``3 · 2**-(q + 1)``), then to even: one LSB from exact rounding.
    """
    accs, scales = [], []
    for k in range(1, 24, 2):                       # acc · 2**-k = j + 0.5
        for j in (-129, -128, -2, -1, 0, 1, 2, 3, 126, 127):
            accs.append((2 * j + 1) << (k - 1))
            scales.append(2.0 ** -k)
    for j in (64, 65, 100, 127):                    # float32(acc) ties, scale 2**-20
        base = (2 * j + 1) << 19
        for delta in (-4, -3, -2, -1, 1, 2, 3, 4):
            accs.append(base + delta)
            scales.append(2.0 ** -20)
            accs.append(-(base + delta))
            scales.append(2.0 ** -20)
    for j in list(range(1, 40)) + list(range(60, 128, 3)):  # float32 product ties
        q = 23 - int(np.floor(np.log2(j + 0.5)))
        for sign in (1, -1):
            numerator = (2 * j + 1) * (1 << q) + sign
            if numerator % 3 == 0:
                for acc_sign in (1, -1):
                    accs.append(acc_sign * (numerator // 3))
                    scales.append(3.0 * 2.0 ** -(q + 1))
    # one channel per distinct scale, cycled through the layer's channels
    distinct = sorted(set(scales))
    groups = [distinct[i:i + channels] for i in range(0, len(distinct), channels)]
    layers = []
    for number, group in enumerate(groups):
        index = {s: c for c, s in enumerate(group)}
        picked = [(a, index[s]) for a, s in zip(accs, scales) if s in index]
        acc, channel = (np.array(v, np.int64) for v in zip(*picked))
        scale = np.ones(channels, np.float32)
        scale[:len(group)] = group
        layers.append(onnx_layer(f"onnx ties {number}", acc, channel, scale,
                                 np.zeros(channels, np.int64), 0))
    return layers


def onnx_extremes(channels):
    """Saturation both ways, scale extremes (0, -0, subnormal, the smallest and largest normal,
    negative), biases at the int32 limits (their sum with the accumulator beyond int32)."""
    scale = np.array([1.0, 0.0, -0.0, 1e-45, 1.1754944e-38, 3.4028235e38, -1.0, 2.0 ** -31,
                      2.0 ** -32, 1.0 + 2.0 ** -23, 0.999999940, 3e-10, 2.0 ** 24, -2.0 ** -24,
                      7.5, 2.0 ** -8],
                     np.float32)[np.arange(channels) % 16]
    bias = np.array([0, INT32_MAX, INT32_MIN, 0, 1, -1, 0, INT32_MAX, INT32_MIN, 0, 0,
                     12345, -7, 0, 0, INT32_MIN], np.int64)[np.arange(channels) % 16]
    values = np.array([0, 1, -1, 2, -2, 127, 128, -128, -129, 255, 256, 1 << 23, (1 << 24) + 1,
                       INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 1 << 30, -(1 << 30)],
                      np.int64)
    acc = np.repeat(values, channels)
    channel = np.tile(np.arange(channels), len(values))
    return [onnx_layer(f"onnx extremes zp {z}", acc, channel, scale, bias, z)
            for z in (0, -128, 127)] + [
        onnx_layer("onnx extremes uint8 zp 0", acc, channel, scale, bias, 0, np.uint8),
        onnx_layer("onnx extremes uint8 zp 255 relu", acc, channel, scale, bias, 255,
                   np.uint8, relu=True)]


def _reals(params):
    return np.array([p["multiplier"] | p["multiplier_high"] << 32 for p in params],
                    np.uint64).view(np.float64)


def tflite_random(rng, channels, n, name="tflite random", low=-128, high=127, zero_point=None):
    """Random accumulators and biases, per-channel multipliers of reals from 2**-24 to 2**6
    (double rounding: left shifts above 1.0)."""
    real = 2.0 ** rng.uniform(-24, 6, channels)
    multiplier, shift = rq.quantize_multiplier(real, rounding="double")
    channel = rng.integers(0, channels, n)
    acc = _accumulators(rng, n)
    near = rng.random(n) < 0.4
    acc = np.where(near, np.round(rng.uniform(-300, 300, n) / real[channel]).clip(
        -2 ** 30, 2 ** 30).astype(np.int64), acc)
    bias = rng.integers(-2 ** 20, 2 ** 20, channels)
    zero = int(rng.integers(-128, 128)) if zero_point is None else zero_point
    return tflite_layer(name, acc, channel, multiplier, shift, bias, zero, low, high)


def tflite_ties(channels):
    """gemmlowp's ties, constructed: multiplier 2**30 (one half) and ``2**30 + 2**29``, odd
    accumulators (ties of the doubling high multiply), right shifts of exact halves (ties of
    the rounding divide), both signs; and multiplier 0."""
    multiplier = np.array([1 << 30, (1 << 30) + (1 << 29), 1 << 30, 1 << 30, (1 << 31) - 1,
                           1 << 30, 0, (1 << 30) + 1], np.int64)[np.arange(channels) % 8]
    shift = np.array([0, 0, -1, -3, -1, -31, 0, -5], np.int64)[np.arange(channels) % 8]
    values = np.concatenate([np.arange(-40, 41), [INT32_MAX, INT32_MIN, (1 << 30) + 1,
                                                  -(1 << 30) - 1, 3 << 28, -(3 << 28)]])
    acc = np.repeat(values.astype(np.int64), channels)
    channel = np.tile(np.arange(channels), len(values))
    return tflite_layer("tflite ties", acc, channel, multiplier, shift,
                        np.zeros(channels, np.int64), 0)


def tflite_extremes(channels):
    """Saturation, shifts from -40 to +40 (left shifts wrapping at 32 bits, right shifts
    flushing to zero), biases at the int32 limits (their sum wraps, as TFLite's int32 does)."""
    shift = np.array([-40, -32, -31, -20, -1, 0, 1, 2, 8, 16, 30, 31, 32, 33, 40, 0],
                     np.int64)[np.arange(channels) % 16]
    multiplier = np.array([(1 << 31) - 1, 1 << 30, 1518500250, 0, (1 << 31) - 1,
                           (1 << 30) + 7, 1 << 30, 1234567890, (1 << 31) - 1, 1 << 30,
                           1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1],
                          np.int64)[np.arange(channels) % 16]
    bias = np.array([0, INT32_MAX, INT32_MIN, 0, 5, -5, 0, 0, 0, 0, 0, 0, 0, 0, INT32_MAX, 0],
                    np.int64)[np.arange(channels) % 16]
    values = np.array([0, 1, -1, 3, -3, 127, -128, 1 << 16, -(1 << 16), INT32_MAX, INT32_MIN,
                       INT32_MAX - 1, INT32_MIN + 1, 1 << 30, -(1 << 30)], np.int64)
    acc = np.repeat(values, channels)
    channel = np.tile(np.arange(channels), len(values))
    return [tflite_layer(f"tflite extremes zp {z}", acc, channel, multiplier, shift, bias, z)
            for z in (0, -128, 127)]


def activation_layers(rng, channels, n):
    """The fused activations' clamps (TFLite's activation_range: none, relu, relu6,
    relu_n1_to_1) at random output scales and zero points, and ONNX's fused ReLU."""
    layers = []
    for activation in ("none", "relu", "relu6", "relu_n1_to_1"):
        scale = float(2.0 ** rng.uniform(-6, -1))
        zero = int(rng.integers(-128, 100))
        low, high = rq.activation_range(activation, scale, zero)
        layers.append(tflite_random(rng, channels, n, f"tflite {activation}", low, high, zero))
    for relu in (False, True):
        layer = onnx_random(rng, channels, n, f"onnx relu={relu}")
        zero = int(rng.integers(-128, 128))
        layers.append(onnx_layer(layer.name, layer.acc, layer.channel,
                                 np.array([p["multiplier"] for p in layer.params],
                                          np.uint32).view(np.float32),
                                 [p["bias"] for p in layer.params], zero, relu=relu))
    return layers


def zero_point_sweep(rng, channels, per_layer):
    """Every output zero point -128..127 under both rules (and every uint8 one for ONNX's
    uint8 outputs), ``per_layer`` elements each."""
    layers = []
    for zero in range(-128, 128):
        layer = onnx_random(rng, channels, per_layer)
        scale = np.array([p["multiplier"] for p in layer.params], np.uint32).view(np.float32)
        bias = [p["bias"] for p in layer.params]
        layers.append(onnx_layer(f"onnx zp {zero}", layer.acc, layer.channel, scale, bias,
                                 zero))
        layers.append(onnx_layer(f"onnx uint8 zp {zero + 128}", layer.acc, layer.channel,
                                 scale, bias, zero + 128, np.uint8))
        layers.append(tflite_random(rng, channels, per_layer, f"tflite zp {zero}",
                                    zero_point=zero))
    return layers


def all_layers(rng, channels, *, random_elements=2000, sweep_elements=6, float_rule=True):
    """Every case of the cocotb test (``float_rule``: also those of TFLite's float rule)."""
    floats = []
    if float_rule:
        floats = tflite_float_layers(rng, channels, random_elements)
        base = floats[0]
        floats += [tflite_float_layer(f"tflite float zp {z}", base.acc[:sweep_elements],
                                      base.channel[:sweep_elements], _reals(base.params),
                                      [p["bias"] for p in base.params], z)
                   for z in range(-128, 128)]
    return ([onnx_random(rng, channels, random_elements),
             tflite_random(rng, channels, random_elements)]
            + onnx_ties(channels) + [tflite_ties(channels)]
            + onnx_extremes(channels) + tflite_extremes(channels)
            + activation_layers(rng, channels, 200)
            + zero_point_sweep(rng, channels, sweep_elements) + floats)
