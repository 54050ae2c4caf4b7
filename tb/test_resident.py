"""Resident weights (:attr:`ArrayConfig.resident`): the configuration option, the memory plan
of :mod:`zeroskip.sim.resident` and its refusals, and every format's decoder lane (Amaranth
simulator) walking the layers of one image loaded once, selected by the job's bases."""

from typing import Any

import numpy as np
import pytest
from amaranth.sim import Simulator

from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.decoders import decoder_for
from zeroskip.hw.layouts import job_layout, pack, resident_bases, unpack
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, lane_tokens
from zeroskip.sim.resident import NetworkTooLarge, plan_network

from .conftest import small_config
from .test_decoder import FORMAT_CONFIGS, TOKEN_FIELDS
from .weights import fit_n_of_m, random_weights


def network_weights(config, rng, shapes=((13, 7), (29, 5), (6, 9))):
    """Layers of different K, N and sparsity, with an all-zero column and a column of one
    nonzero in the first; N:M-shaped for an ``nm`` configuration."""
    layers = []
    for i, (k, n) in enumerate(shapes):
        w = random_weights(rng, k, n, density=(0.5, 0.15, 0.8)[i % 3])
        if i == 0:
            w[:, 1] = 0
            w[:, 2] = 0
            w[k // 2, 2] = -128
        if config.fmt == "nm":
            w = fit_n_of_m(w, config.nm_n, config.nm_m)
        layers.append(w)
    return layers


# The option -----------------------------------------------------------------------------------

def test_resident_is_off_by_default_and_keeps_the_digest():
    config = ArrayConfig()
    assert config.resident is False
    assert "resident" not in config.to_dict()
    assert ArrayConfig.from_dict(config.to_dict()) == config
    on = config.with_(resident=True)
    assert on.to_dict()["resident"] is True
    assert on.digest() != config.digest()
    assert ArrayConfig.from_dict(on.to_dict()) == on


def test_for_capacity_passes_resident():
    config = ArrayConfig.for_capacity(4, 4, m=16, k=64, n=32, resident=True)
    assert config.resident and config == ArrayConfig.for_capacity(4, 4, m=16, k=64, n=32).with_(
        resident=True)


def test_the_boards_keep_resident_off():
    """The boards' builds were measured without it: their configurations stay as they are."""
    from zeroskip.platforms.boards import BOARDS
    for board in BOARDS.values():
        for config in (board.config, board.dense_config):
            assert config is None or not config.resident


@pytest.mark.parametrize("params, error", [
    (dict(resident="yes"), TypeError),
    (dict(resident=True, double_buffer=True), ValueError),
    (dict(resident=True, arch="dense"), ValueError),
])
def test_resident_refuses(params, error):
    with pytest.raises(error, match="resident"):
        ArrayConfig(**params)


@pytest.mark.parametrize("fmt, bases", [
    ("csc", {"column_base", "entry_base"}), ("rle", {"column_base", "entry_base"}),
    ("bitmap", {"column_base", "entry_base", "mask_base"}), ("nm", {"entry_base"}),
])
def test_job_carries_the_bases_only_when_resident(fmt, bases):
    config = small_config(fmt=fmt)
    assert resident_bases(config) == {}
    assert not set(dict(job_layout(config).members)) & bases
    on = config.with_(resident=True)
    assert set(resident_bases(on)) == bases
    assert job_layout(on).size == job_layout(config).size + sum(
        shape.width for shape in resident_bases(on).values())
    job = {"mode": 2, "m_tiles": 1, "k": 3, "rows_last": 1, "lane_columns": [1, 2],
           **{name: 5 for name in bases}}
    assert unpack(job_layout(on), pack(job_layout(on), job)) == job


# The plan -------------------------------------------------------------------------------------

def test_plan_places_layers_at_common_bases(rng):
    config = small_config(rows=2, cols=3, resident=True)
    weights = network_weights(config, rng)
    network = plan_network(weights, config, drop_empty_columns=False)
    layers = network.layers
    assert [layer.bases for layer in layers][0] == {"column_base": 0, "entry_base": 0}
    for layer, after in zip(layers, layers[1:] + [None]):
        most = max(len(cols) for cols in layer.lane_columns)
        nnz = max(len(image["entries"]) for image in layer.lane_images)
        if after is not None:
            assert after.bases["column_base"] == layer.bases["column_base"] + most + 1
            assert after.bases["entry_base"] == layer.bases["entry_base"] + nnz
        for lane, image in enumerate(layer.lane_images):
            base = layer.bases
            placed = network.lane_images[lane]
            entries = placed["entries"][base["entry_base"]:][:len(image["entries"])]
            assert entries == image["entries"]
            pointers = placed["pointers"][base["column_base"]:][:len(image["pointers"])]
            assert pointers == [base["entry_base"] + p for p in image["pointers"]]
    assert network.needs["entries"] == max(len(i["entries"]) for i in network.lane_images)


def test_plan_drops_empty_columns_by_default(rng):
    config = small_config(rows=2, cols=3, resident=True)
    weights = network_weights(config, rng)
    network = plan_network(weights, config)
    assert 1 not in [n for cols in network.layers[0].lane_columns for n in cols]
    acts = rng.integers(-128, 128, (5, weights[0].shape[0])).astype(np.int8)
    program = network.program(0, acts)
    # a run loads no weights, and its job names the layer's region
    assert program.weight_bits_loaded == 0
    assert {k: program.runs[0].job(Mode.SKIP)[k] for k in network.layers[0].bases} == \
        network.layers[0].bases


@pytest.mark.parametrize("change, weights, message", [
    (dict(max_k=16), [np.ones((17, 2), np.int8)],
     "max_k: layer 0 needs K = 17 (a resident layer is one K-chunk), the configuration has "
     "max_k 16"),
    (dict(weight_depth=40), [np.ones((16, 4), np.int8)] * 2,
     "weight memory (weight_depth): the network needs 64 words in every lane (2 layers, each "
     "at the same address in every lane), the configuration has 40"),
    (dict(pointer_depth=5), [np.ones((2, 4), np.int8)] * 2,
     "pointer memory (pointer_depth): the network needs 6 words in every lane"),
    (dict(pointer_depth=3), [np.ones((2, 8), np.int8)],
     "columns per lane: layer 0 needs 4 columns in a lane, the configuration has 2 "
     "(pointer_depth - 1)"),
    (dict(out_depth=3), [np.ones((2, 5), np.int8), np.ones((2, 8), np.int8)],
     "result memory (out_depth): layer 1 needs 4 results per PE for one M-tile, the "
     "configuration has 3"),
])
def test_a_network_that_does_not_fit_is_refused(change, weights, message):
    config = small_config(rows=2, cols=2, resident=True, **change)
    with pytest.raises(NetworkTooLarge) as error:
        plan_network(weights, config)
    assert str(error.value).startswith(message)
    assert isinstance(error.value, ValueError) and "\n" not in str(error.value)


def test_masks_are_checked(rng):
    config = small_config(rows=2, cols=2, resident=True, fmt="bitmap", bitmap_width=8,
                          mask_depth=3)
    w = np.ones((24, 2), np.int8)
    with pytest.raises(NetworkTooLarge, match=r"^mask memory \(mask_depth\): the network "
                       r"needs 6 words in every lane .* the configuration has 3$"):
        plan_network([w, w], config)


@pytest.mark.parametrize("weights, config, message", [
    ([], small_config(resident=True), "at least one layer"),
    ([np.ones((2, 2))], small_config(), "resident=True"),
    ([np.full((2, 2), 300)], small_config(resident=True), "weights\\[0\\]"),
])
def test_plan_argument_errors(weights, config, message):
    with pytest.raises(ValueError, match=message):
        plan_network(weights, config)


def test_program_checks_the_activations(rng):
    config = small_config(rows=2, cols=2, resident=True)
    network = plan_network(network_weights(config, rng), config)
    with pytest.raises(ValueError, match="layer 1's K is 29"):
        network.program(1, np.zeros((3, 13), np.int8))


def test_nm_pattern_is_checked(rng):
    config = small_config(rows=2, cols=2, resident=True, fmt="nm")
    with pytest.raises(ValueError):
        plan_network([np.ones((8, 2), np.int8)], config)


# Every format's lane, resident ----------------------------------------------------------------

def simulate_resident_lane(config, network, lane, jobs):
    """Load ``network``'s image of ``lane`` once, then run every ``(program, run, mode)`` of
    ``jobs`` by setting its job; returns each run's tokens. The job's inputs are scrambled
    after start: the lane latches them."""
    dut = decoder_for(config)
    streams = []

    async def testbench(ctx):
        for name in dut.memories(config):
            port = getattr(dut, f"{name}_write")
            for addr, value in enumerate(network.lane_images[lane][name]):
                ctx.set(port.en, 1)
                ctx.set(port.addr, addr)
                ctx.set(port.data, value)
                await ctx.tick()
            ctx.set(port.en, 0)
        for program, run in jobs:
            job = run.job(program.mode)
            ctx.set(dut.mode, job["mode"])
            ctx.set(dut.m_tiles, run.m_tiles)
            ctx.set(dut.k, run.k)
            ctx.set(dut.rows_last, run.rows_last)
            ctx.set(dut.columns, len(run.lane_columns[lane]))
            for name in resident_bases(config):
                ctx.set(getattr(dut, name), job[name])
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for name in resident_bases(config):
                ctx.set(getattr(dut, name), 0)
            out = []
            cycle = 0
            while ctx.get(dut.busy):
                ctx.set(dut.tokens.ready, 1)
                if ctx.get(dut.tokens.valid):
                    token = ctx.get(dut.tokens.payload)
                    out.append({name: int(getattr(token, name)) for name in TOKEN_FIELDS})
                await ctx.tick()
                cycle += 1
                assert cycle < 10_000, "decoder hung"
            assert ctx.get(dut.status) == 0
            streams.append(out)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return streams


#: Every format's lane, and the csc lane that reads through prefetch queues.
_KINDS: dict[str, dict[str, Any]] = {**FORMAT_CONFIGS, "csc-pipelined": {"pipelined": True}}
LANES = {name: {"fmt": name.split("1:")[0].split("-")[0], **params}
         for name, params in _KINDS.items()}


@pytest.mark.parametrize("lane_kind", LANES)
def test_every_format_lane_walks_the_resident_layers(lane_kind, rng):
    """Three layers loaded once; each run, in a shuffled order and in skip and dense modes,
    emits exactly its layer's tokens (the decoders' specification)."""
    config = small_config(rows=2, cols=2, mask_depth=64, max_k=64, resident=True,
                          **LANES[lane_kind])
    weights = network_weights(config, rng)
    network = plan_network(weights, config, drop_empty_columns=False)
    jobs = []
    for layer, mode in [(2, Mode.SKIP), (0, Mode.SKIP), (1, Mode.DENSE), (0, Mode.DENSE),
                        (1, Mode.SKIP), (2, Mode.DENSE)]:
        acts = np.zeros((5, weights[layer].shape[0]), np.int8)
        program = network.program(layer, acts, mode)
        (run,) = program.runs
        jobs.append((program, run))
    for lane in range(config.cols):
        streams = simulate_resident_lane(config, network, lane, jobs)
        for (program, run), got in zip(jobs, streams):
            assert got == lane_tokens(program, run, lane)


def test_resident_programs_assemble_to_the_golden_gemm(rng):
    """The host side alone: results placed by a layer's lane columns assemble into C (each
    lane's results computed from the layer's own lane weights)."""
    config = small_config(rows=2, cols=3, resident=True)
    weights = network_weights(config, rng)
    network = plan_network(weights, config)
    for layer, w in enumerate(weights):
        acts = rng.integers(-128, 128, (7, w.shape[0])).astype(np.int8)
        program = network.program(layer, acts)
        results = []
        for run in program.runs:
            a = run.acts.astype(np.int64).reshape(config.rows, run.m_tiles, run.k)
            results.append([np.einsum("rtk,kj->rtj", a, lw.astype(np.int64)).reshape(
                config.rows, -1) for lw in run.lane_weights])
        np.testing.assert_array_equal(assemble(program, results), golden.gemm(acts, w))
