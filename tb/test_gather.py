"""The gather unit (:mod:`zeroskip.hw.engine.gather`) in the Amaranth simulator and its
descriptor checks: every beat it writes against the front end's own im2col
(:func:`zeroskip.frontend.lowering.im2col`) laid out as the host compiler lays out A, and its
cycles against :meth:`Gather.cycles`. The same cases on Verilator and Icarus:
tb/test_gather_rtl.py."""

from dataclasses import replace
from unittest import mock

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.config import ArrayConfig, Mode
from zeroskip.frontend import lowering
from zeroskip.frontend.tflite import array_ops
from zeroskip.frontend.tflite.model import load
from zeroskip.hw.engine.gather import Gather, GatherLayer, GatherParams
from zeroskip.hw.layouts import pack
from zeroskip.sim.compiler import compile_gemm
from zeroskip.tb.tflite_builder import conv_model

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
    a = a[:, layer.k_first:layer.k_first + layer.k_count]
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
    # (name, layer): stride 1/2, padding 0/1/asymmetric, dilation 1/2, 1×1, 3×3 and 5×5, the
    # padding's value of every sign, M not a multiple of rows, a tile spanning output rows
    ("1x1", GatherLayer(5, 3, 4, kernel=(1, 1), pad_value=0)),
    ("1x1-stride2", GatherLayer(7, 6, 3, kernel=(1, 1), strides=(2, 2), pad_value=9)),
    ("3x3-pad1", GatherLayer(6, 5, 3, kernel=(3, 3), pads=(1, 1, 1, 1), pad_value=-5)),
    ("3x3-stride2", GatherLayer(7, 7, 2, kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
                                pad_value=17)),
    ("5x5-asym", GatherLayer(6, 7, 2, kernel=(5, 5), strides=(1, 2), pads=(2, 1, 1, 2),
                             pad_value=-128)),
    ("3x3-dil2", GatherLayer(7, 6, 2, kernel=(3, 3), dilations=(2, 2), pads=(2, 2, 2, 2),
                             pad_value=127)),
    ("column", GatherLayer(5, 1, 3, kernel=(3, 1), pads=(1, 0, 1, 0), pad_value=-1)),
    ("group1of2", GatherLayer(5, 5, 6, kernel=(3, 3), pads=(1, 1, 1, 1), c_first=3, c_count=3,
                              pad_value=3, fm_base=17)),
    ("tiles", GatherLayer(11, 5, 2, kernel=(3, 2), strides=(2, 1), pads=(0, 1, 1, 0),
                          tile_first=4, tiles=3, act_base=5, pad_value=-1)),
    # K = act_depth: one tile fills the activation memory; the feature map fills its own
    ("k-limit", GatherLayer(4, 4, 16, kernel=(4, 4), pad_value=-2)),
    ("fm-limit", GatherLayer(8, 9, 8, kernel=(2, 2), strides=(2, 2), fm_base=24, act_base=128,
                             pad_value=0)),
]


def plain_cases(rng):
    """(feature map, layer, A by lowering.im2col) of :data:`CASES`."""
    cases = []
    for _, layer in CASES:
        x = feature_map(rng, layer)
        cases.append((x, layer, im2col(x, layer)))
    return cases


def lowered_acts(op, model, x, lanes):
    """The A of every GEMM job of the TFLite lowering (before its zero-point shift)."""
    seen = []
    real = lowering.prepare_matmul

    def spy(a, za, w, zw):
        seen.append(np.array(a))
        return real(a, za, w, zw)
    with mock.patch.object(lowering, "prepare_matmul", spy):
        array_ops.lower(op, model, x, lanes)
    return seen


def tflite_cases(rng):
    """(feature map, layer, A by the TFLite lowering): a grouped CONV_2D's groups and the
    channel packs of DEPTHWISE_CONV_2D (block-diagonal GEMMs of ``lanes // multiplier``
    channels), SAME padding (the extra row and column after) and VALID."""
    cases = []
    for depthwise, shape, kernel, stride, dilation, padding, multiplier, lanes, groups in [
            (True, (6, 5, 5), (3, 3), (1, 1), (1, 1), "same", 1, 2, 1),
            (True, (7, 6, 3), (3, 3), (2, 2), (1, 2), "same", 2, 4, 1),
            (True, (5, 5, 4), (5, 5), (1, 1), (1, 1), "same", 1, 8, 1),
            (False, (5, 4, 6), (3, 3), (1, 1), (1, 1), "valid", 1, 8, 2),
            (False, (6, 6, 4), (2, 2), (2, 2), (1, 1), "same", 1, 8, 4)]:
        model = load(conv_model(rng, depthwise=depthwise, shape=shape, kernel=kernel,
                                stride=stride, dilation=dilation, padding=padding,
                                multiplier=multiplier, out_channels=4))
        op = model.ops[0]
        h, w, c = shape
        if groups > 1:      # a grouped convolution: each group's weights see c / groups channels
            weights = model.tensors[op.inputs[1]]
            weights.data = weights.data[..., :c // groups]
        zx = int(model.tensors[op.inputs[0]].zero_point[0])
        x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
        if padding == "same":
            (top, bottom), (left, right) = (
                array_ops.same_padding(h, kernel[0], stride[0], dilation[0]),
                array_ops.same_padding(w, kernel[1], stride[1], dilation[1]))
        else:
            top = bottom = left = right = 0
        per = max(1, lanes // multiplier) if depthwise else c // groups
        for job, a in enumerate(lowered_acts(op, model, x, lanes)):
            first = job * per
            layer = GatherLayer(h, w, c, kernel=kernel, strides=stride,
                                pads=(top, left, bottom, right), dilations=dilation,
                                c_first=first, c_count=min(per, c - first), pad_value=zx)
            # as many tiles as the activation memory holds (one run of the host compiler)
            tiles = min(layer.m_tiles(PARAMS.rows), PARAMS.act_depth // layer.k)
            cases.append((x[0], replace(layer, tiles=tiles), a))
    return cases


def random_cases(rng, count):
    """``count`` random layers that fit :data:`PARAMS`, with A by lowering.im2col."""
    cases = []
    while len(cases) < count:
        kernel = tuple(int(v) for v in rng.integers(1, 6, 2))
        dilations = tuple(int(v) for v in rng.integers(1, 3, 2))
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        channels = int(rng.integers(1, 6))
        pads = tuple(int(v) for v in rng.integers(0, 3, 4))
        try:
            layer = GatherLayer(h, w, channels, kernel=kernel,
                                strides=tuple(int(v) for v in rng.integers(1, 4, 2)),
                                pads=pads, dilations=dilations,
                                c_first=int(rng.integers(0, channels)),
                                pad_value=int(rng.integers(-128, 128)))
            tiles = layer.m_tiles(PARAMS.rows)
            first = int(rng.integers(0, tiles))
            k_first = int(rng.integers(0, layer.k)) if rng.random() < 0.3 else 0
            layer = replace(layer, tile_first=first,
                            tiles=int(rng.integers(1, tiles - first + 1)), k_first=k_first,
                            k_count=int(rng.integers(1, layer.k - k_first + 1)))
            layer.descriptor(PARAMS)
        except ValueError:
            continue                                    # a geometry that does not fit
        x = feature_map(rng, layer)
        cases.append((x, layer, im2col(x, layer)))
    return cases


async def _gather(ctx, dut, x, layer, *, timeout=20000, restart_at=None, other=None):
    """Write the feature map, gather ``layer``; the beats written and the cycles taken.
    ``restart_at``: pulse start again that many cycles after it, with the layer ``other``."""
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
        assert ctx.get(dut.busy)
        if cycles == restart_at:
            ctx.set(dut.layer, dut.layer.shape().const(other.descriptor(dut.params)))
        ctx.set(dut.start, cycles == restart_at)
        if ctx.get(dut.act_write.en):
            beats.append((ctx.get(dut.act_write.addr),
                          [int(v) for v in ctx.get(dut.act_write.data)]))
        await ctx.tick()
        cycles += 1
        assert cycles < timeout
    assert not ctx.get(dut.busy)
    return beats, cycles


def simulate(cases, params=PARAMS, restart=False):
    """Run ``cases`` (feature map, layer, A) back to back on one gather unit; ``restart``:
    each started again while busy, with the next case's layer (to be ignored)."""
    dut = Gather(params)
    out = []

    async def bench(ctx):
        for i, (x, layer, _) in enumerate(cases):
            other = cases[(i + 1) % len(cases)][1]
            out.append(await _gather(ctx, dut, x, layer, restart_at=3 if restart else None,
                                     other=other))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_gather_with_a_port_per_row_and_banks(rng):
    """The default of a read port per PE row (a beat a cycle) and the bank bit of a
    double-buffered array; starts while busy are ignored."""
    params = GatherParams(rows=3, fm_depth=400, act_depth=256, bank_bits=1)
    layers = [GatherLayer(5, 4, 3, kernel=(3, 3), pads=(1, 1, 1, 1), pad_value=-7, bank=1),
              GatherLayer(6, 6, 2, kernel=(2, 2), strides=(2, 2), pad_value=4, act_base=9),
              GatherLayer(4, 7, 4, kernel=(1, 3), dilations=(1, 2), pads=(0, 2, 0, 2),
                          c_first=1, c_count=2, bank=1, tile_first=1)]
    cases = []
    for layer in layers:
        x = feature_map(rng, layer)
        cases.append((x, layer, im2col(x, layer)))
    for (beats, cycles), (_, layer, a) in zip(simulate(cases, params, restart=True), cases):
        bank = layer.bank << params.act_addr_bits
        assert all(addr & bank == bank for addr, _ in beats)
        check([(addr & ~bank, word) for addr, word in beats], cycles, a, layer, params)


def check(beats, cycles, a, layer, params):
    """The beats are A's words in the compiler's layout, in address order, and the cycles are
    :meth:`GatherParams.cycles`."""
    expected = act_words(a, layer, params.rows)
    assert [addr for addr, _ in beats] == sorted(expected), "one beat per word, in order"
    assert dict(beats) == expected
    assert cycles == params.cycles(layer)


def test_gather_matches_the_front_ends_im2col(rng):
    cases = plain_cases(rng)
    for (beats, cycles), (_, layer, a) in zip(simulate(cases), cases):
        check(beats, cycles, a, layer, PARAMS)


def test_gather_matches_the_tflite_lowerings_groups_and_depthwise_packs(rng):
    cases = tflite_cases(rng)
    assert len(cases) == 3 + 2 + 1 + 2 + 4
    for (beats, cycles), (_, layer, a) in zip(simulate(cases), cases):
        check(beats, cycles, a, layer, PARAMS)


def test_gather_random_layers(rng):
    cases = random_cases(rng, 40)
    for (beats, cycles), (_, layer, a) in zip(simulate(cases), cases):
        check(beats, cycles, a, layer, PARAMS)


def test_gather_writes_the_host_compilers_runs_k_chunks_included(rng):
    """Each run of :func:`zeroskip.sim.compiler.compile_gemm` on A (its M-tiles and, with K
    beyond ``max_k``, its K-chunks) is a gather whose beats are the run's activation image."""
    config = ArrayConfig(rows=PARAMS.rows, cols=2, max_k=20, act_depth=PARAMS.act_depth,
                         weight_depth=512, pointer_depth=17, out_depth=8)
    whole = GatherLayer(7, 6, 5, kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1),
                        pad_value=-3)
    x = feature_map(rng, whole)
    a = im2col(x, whole)
    weights = rng.integers(-128, 128, (a.shape[1], 3)).astype(np.int8)
    program = compile_gemm(a, weights, config, Mode.DENSE)
    assert program.k_chunks > 1 and len({run.m_start for run in program.runs}) > 1
    cases = [(x, replace(whole, k_first=run.k_start, k_count=run.k,
                         tile_first=run.m_start // config.rows, tiles=run.m_tiles), a)
             for run in program.runs]
    for (beats, cycles), run, (_, layer, _) in zip(simulate(cases), program.runs, cases):
        assert dict(beats) == {addr: [int(v) for v in run.acts[:, addr]]
                               for addr in range(run.acts.shape[1])}
        assert cycles == PARAMS.cycles(layer)


def test_cases_reach_the_limits():
    by_name = dict(CASES)
    assert by_name["k-limit"].k == PARAMS.act_depth
    fm = by_name["fm-limit"]
    assert fm.fm_base + fm.height * fm.width * fm.channels == PARAMS.fm_depth
    assert fm.act_base + fm.tile_count(PARAMS.rows) * fm.k == PARAMS.act_depth
    assert {layer.pad_value > 0 for _, layer in CASES} == {True, False}
    assert any(layer.pad_value == 0 for _, layer in CASES)
    assert any(layer.m % PARAMS.rows for _, layer in CASES)


def test_descriptor_fields_pack():
    for _, layer in CASES:
        pack(PARAMS.descriptor_layout, layer.descriptor(PARAMS))


@pytest.mark.parametrize("layer,match", [
    (GatherLayer(20, 10, 4), "does not fit fm_depth"),
    (GatherLayer(4, 4, 2, fm_base=580), "does not fit fm_depth"),
    (GatherLayer(4, 4, 2, kernel=(8, 8), pads=(2, 2, 2, 2)), "kernel_bits 3"),
    (GatherLayer(4, 4, 2, pad_value=128), "pad_value 128"),
    (GatherLayer(4, 4, 2, tile_first=3, tiles=2), "M-tiles"),
    (GatherLayer(8, 8, 9, kernel=(3, 3), pads=(1, 1, 1, 1)), "act_depth"),
    (GatherLayer(4, 4, 2, bank=1), "bank"),
])
def test_descriptor_refuses_what_does_not_fit(layer, match):
    with pytest.raises(ValueError, match=match):
        layer.descriptor(PARAMS)


@pytest.mark.parametrize("kwargs,match", [
    (dict(height=0, width=2, channels=1), "height"),
    (dict(height=2, width=2, channels=2, c_first=1, c_count=2), "channels 1 .. 2"),
    (dict(height=2, width=2, channels=1, kernel=(3, 3)), "does not fit"),
    (dict(height=2, width=2, channels=1, strides=(0, 0)), "at least 1"),
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
