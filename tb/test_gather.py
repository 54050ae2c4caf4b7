"""The gather unit (:mod:`zeroskip.hw.engine.gather`) in the Amaranth simulator and its
descriptor checks: every beat it writes against the front end's own im2col
(:func:`zeroskip.frontend.lowering.im2col`) laid out as the host compiler lays out A, and its
cycles against :meth:`Gather.cycles`. The same cases on Verilator and Icarus:
tb/test_gather_rtl.py."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.config import ArrayConfig
from zeroskip.frontend import lowering
from zeroskip.hw.engine.gather import Gather, GatherLayer, GatherParams
from zeroskip.hw.layouts import pack

#: One hardware configuration for every case: 4 PE rows read through 2 ports (two read
#: cycles a beat), a feature map of up to 600 activations, 256 activation words.
PARAMS = GatherParams(rows=4, fm_depth=600, act_depth=256, ports=2, kernel_bits=3)


def feature_map(rng, layer):
    """A random int8 HWC feature map for ``layer`` (every value, -128 and 127 included)."""
    x = rng.integers(-128, 128, (layer.height, layer.width, layer.channels)).astype(np.int8)
    x.flat[:2] = [-128, 127]
    return x


def im2col(x, layer):
    """A of ``layer`` by the front end: its im2col of the channel window, from NCHW."""
    window = x[:, :, layer.c_first:layer.c_first + layer.c_count]
    a, _ = lowering.im2col(np.moveaxis(window, -1, 0)[None], list(layer.kernel),
                           list(layer.strides), list(layer.pads), list(layer.dilations),
                           np.int64(layer.pad_value))
    return a


def act_words(a, layer, rows):
    """The activation-memory words the host compiler writes for A's tiles of ``layer``:
    ``{address: [activation of PE row r]}``, rows beyond M zero (sim/compiler.py)."""
    m, k = a.shape
    words = {}
    for t in range(layer.tile_count(rows)):
        tile = layer.tile_first + t
        block = np.zeros((rows, k), np.int64)
        valid = a[tile * rows:(tile + 1) * rows]
        block[:len(valid)] = valid
        for column in range(k):
            words[layer.act_base + t * k + column] = [int(v) for v in block[:, column]]
    return words


def fm_beats(x, layer):
    """The feature map's write beats (address, value): HWC from ``fm_base``."""
    return [(layer.fm_base + i, int(v)) for i, v in enumerate(x.reshape(-1))]


def word_values(word, rows, width=8):
    """The signed activations of an ``act_write`` data word."""
    values = [(word >> (width * r)) & ((1 << width) - 1) for r in range(rows)]
    return [v - (1 << width) if v >> (width - 1) else v for v in values]


CASES = [
    # (name, layer): stride 1/2, padding 0/1/asymmetric, dilation 1/2, 1×1, 3×3 and 5×5
    ("1x1", GatherLayer(5, 3, 4, kernel=1, pad_value=0)),
    ("3x3-pad1", GatherLayer(6, 5, 3, kernel=3, pads=(1, 1, 1, 1), pad_value=-5)),
    ("3x3-stride2", GatherLayer(7, 7, 2, kernel=3, strides=2, pads=(1, 1, 1, 1),
                                pad_value=17)),
    ("5x5-asym", GatherLayer(6, 7, 2, kernel=5, strides=(1, 2), pads=(2, 1, 1, 2),
                             pad_value=-128)),
    ("3x3-dil2", GatherLayer(7, 6, 2, kernel=3, dilations=2, pads=(2, 2, 2, 2), pad_value=127)),
    ("group1of2", GatherLayer(5, 5, 6, kernel=3, pads=(1, 1, 1, 1), c_first=3, c_count=3,
                              pad_value=3, fm_base=17)),
    ("tiles", GatherLayer(11, 5, 2, kernel=(3, 2), strides=(2, 1), pads=(0, 1, 1, 0),
                          tile_first=4, tiles=3, act_base=5, pad_value=-1)),
]


async def _gather(ctx, dut, x, layer, *, timeout=20000):
    """Write the feature map, gather ``layer``; the beats written and the cycles taken."""
    for addr, value in fm_beats(x, layer):
        ctx.set(dut.fm_write.en, 1)
        ctx.set(dut.fm_write.addr, addr)
        ctx.set(dut.fm_write.data, value)
        await ctx.tick()
    ctx.set(dut.fm_write.en, 0)
    ctx.set(dut.layer, dut.layer.shape().const(layer.descriptor(dut.params)))
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    beats, cycles = [], 1
    while not ctx.get(dut.done):
        if ctx.get(dut.act_write.en):
            beats.append((ctx.get(dut.act_write.addr),
                          [int(v) for v in ctx.get(dut.act_write.data)]))
        await ctx.tick()
        cycles += 1
        assert cycles < timeout
    return beats, cycles


def simulate(cases):
    """Run ``cases`` (feature map, layer) back to back on one gather unit."""
    dut = Gather(PARAMS)
    out = []

    async def bench(ctx):
        for x, layer in cases:
            out.append(await _gather(ctx, dut, x, layer))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def check(beats, cycles, x, layer, gather):
    expected = act_words(im2col(x, layer), layer, gather.rows)
    assert [addr for addr, _ in beats] == sorted(expected), "one beat per word, in order"
    assert dict(beats) == expected
    assert cycles == gather.cycles(layer)


def test_gather_matches_the_front_ends_im2col(rng):
    cases = [(feature_map(rng, layer), layer) for _, layer in CASES]
    gather = PARAMS
    for (beats, cycles), (x, layer) in zip(simulate(cases), cases):
        check(beats, cycles, x, layer, gather)


def test_descriptor_fields_pack():
    for _, layer in CASES:
        pack(PARAMS.descriptor_layout, layer.descriptor(PARAMS))


@pytest.mark.parametrize("layer,match", [
    (GatherLayer(20, 10, 4), "does not fit fm_depth"),
    (GatherLayer(4, 4, 2, fm_base=580), "does not fit fm_depth"),
    (GatherLayer(4, 4, 2, kernel=8, pads=(2, 2, 2, 2)), "kernel_bits 3"),
    (GatherLayer(4, 4, 2, pad_value=128), "pad_value 128"),
    (GatherLayer(4, 4, 2, tile_first=3, tiles=2), "M-tiles"),
    (GatherLayer(8, 8, 9, kernel=3, pads=(1, 1, 1, 1)), "act_depth"),
    (GatherLayer(4, 4, 2, bank=1), "bank"),
])
def test_descriptor_refuses_what_does_not_fit(layer, match):
    with pytest.raises(ValueError, match=match):
        layer.descriptor(PARAMS)


@pytest.mark.parametrize("kwargs,match", [
    (dict(height=0, width=2, channels=1), "height"),
    (dict(height=2, width=2, channels=2, c_first=1, c_count=2), "channels 1 .. 2"),
    (dict(height=2, width=2, channels=1, kernel=3), "does not fit"),
    (dict(height=2, width=2, channels=1, strides=0), "at least 1"),
    (dict(height=2, width=2, channels=1, pads=(0, 0, 0, -1)), "negative"),
])
def test_layer_refuses_bad_geometry(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GatherLayer(**kwargs)


def test_constructor_checks():
    with pytest.raises(ValueError, match="divisor"):
        GatherParams(4, 16, 16, ports=3)
    with pytest.raises(TypeError, match="rows"):
        GatherParams(0, 16, 16)



def test_for_config_matches_the_accelerators_act_write():
    from zeroskip.hw.accelerator import accelerator_members
    config = ArrayConfig(rows=4, cols=2, max_k=64, act_depth=128, weight_depth=256,
                         pointer_depth=17, out_depth=64, double_buffer=True)
    gather = Gather(GatherParams.for_config(config, 256))
    members = gather.signature.members["act_write"].signature.members
    assert members == accelerator_members(config)["act_write"].signature.members.flip()
    gather._MustUse__silence = True                 # compared, not built
