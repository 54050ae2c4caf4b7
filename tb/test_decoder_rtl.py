"""cocotb (Verilator and Icarus): the decoder lane's Verilog against its NumPy specification,
with random backpressure, and its sustained throughput."""

import numpy as np
import pytest

from zeroskip.config import LANE_KINDS, ArrayConfig, Mode
from zeroskip.hw.decoders import decoder_class, decoder_for
from zeroskip.hw.layouts import pack, token_layout
from zeroskip.sim.compiler import compile_gemm, lane_tokens
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import build_component, simulators
from .weights import fit_n_of_m, random_weights

#: The lanes under test (every lane kind), with their format parameters.
FORMAT_PARAMS = {"bitmap": dict(bitmap_width=64), "rle": dict(rle_run_bits=4),
                 "nm": dict(nm_n=2, nm_m=4)}
LANES = {lane: dict(params, **FORMAT_PARAMS.get(lane, {}))
           for lane, params in LANE_KINDS.items()}


def lane_config(lane, **extra):
    params = dict(LANES[lane], **extra)
    return ArrayConfig(rows=4, cols=1, max_k=256, act_depth=2048, weight_depth=4096,
                       pointer_depth=33, out_depth=256, mask_depth=256, **params)


def lane_job(config, weights, m, modes, drop_empty_columns=False):
    """Memory beats of lane 0 and, per mode, its settings and expected packed tokens.
    Empty columns are kept by default, to exercise the decoder's bubble tokens."""
    k = weights.shape[0]
    token = token_layout(config)
    runs = []
    beats = None
    for mode in modes:
        program = compile_gemm(np.zeros((m, k), np.int8), weights, config, mode,
                               drop_empty_columns=drop_empty_columns)
        (run,) = program.runs
        if beats is None:
            beats = {name: [(a, pack(shape, v)) for a, v in enumerate(run.lane_images[0][name])]
                     for name, (shape, _) in decoder_class(config).memories(config).items()}
        settings = {"mode": int(mode), "m_tiles": run.m_tiles, "k": k,
                    "rows_last": run.rows_last, "columns": len(run.lane_columns[0])}
        expected = [pack(token, t) for t in lane_tokens(program, run, 0)]
        runs.append((settings, expected))
    return {"memory_beats": beats, "runs": runs}


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("fmt", LANES)
@pytest.mark.parametrize("case", ["random50", "random90", "all_zero", "single", "long_runs"])
def test_decoder_stream_under_backpressure(sim, fmt, case, rng):
    config = lane_config(fmt)
    kw = {"random50": dict(density=0.5), "random90": dict(density=0.1),
          "all_zero": dict(density=0.0), "single": dict(pattern="single"),
          "long_runs": dict(pattern="long_runs")}[case]
    weights = random_weights(rng, 61, 9, **kw)
    if fmt == "nm":
        weights = fit_n_of_m(weights, config.nm_n, config.nm_m)
    job = lane_job(config, weights, m=6, modes=[Mode.SKIP, Mode.DENSE])
    job["ready_probabilities"] = [1.0, 0.6, 0.2]
    job["timeout_cycles"] = 100_000
    build = build_component(sim, "decoder", config, decoder_for, "zeroskip_decoder")
    outcomes = run_cocotb(sim, build, "zeroskip_decoder", "zeroskip.tb.cocotb_decoder", job)
    assert len(outcomes) == 6  # every token of both modes at three backpressure levels checked


def long_zero_runs(fmt, rng):
    """256-row columns whose nonzeros are far apart: 60 to 69 zeros between them (whole
    all-zero mask words, escape entries), or, for N:M, the 1:16 pattern (up to 30 zeros)."""
    weights = np.zeros((256, 16), np.int8)
    for c in range(16):
        if fmt == "nm":
            rows = [g * 16 + int(rng.integers(16)) for g in range(16)]
        else:
            rows = np.cumsum(rng.integers(61, 71, 4)) - 60
        weights[rows, c] = rng.integers(1, 128, len(rows))
    return weights


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("fmt", LANES)
def test_decoder_sustains_one_nonzero_per_cycle_on_long_zero_runs(sim, fmt, rng, capsys):
    config = lane_config(fmt, **({"nm_n": 1, "nm_m": 16} if fmt == "nm" else {}))
    weights = long_zero_runs(fmt, rng)
    job = lane_job(config, weights, m=8, modes=[Mode.SKIP], drop_empty_columns=True)
    job["ready_probabilities"] = [1.0]
    job["timeout_cycles"] = 10_000
    build = build_component(sim, "decoder", config, decoder_for, "zeroskip_decoder")
    (outcome,) = run_cocotb(sim, build, "zeroskip_decoder", "zeroskip.tb.cocotb_decoder", job)
    nonzeros = 2 * np.count_nonzero(weights)  # two M-tiles
    rate = nonzeros / outcome["cycles"]
    with capsys.disabled():
        print(f"\n[{sim}] {fmt} decoder: {nonzeros} nonzeros in {outcome['cycles']} cycles = "
              f"{rate:.3f} nonzeros/cycle/lane")
    assert outcome["tokens"] == nonzeros
    # no stall at all: one cycle to register the first token, and a pipelined lane's queue
    # refill at each of the two M-tiles and its move to the next column after every column
    # but the last
    columns = 2 * job["runs"][0][0]["columns"]
    assert outcome["cycles"] == (nonzeros + 1 + 2 * config.lane_refill_cycles
                                 + (columns - 1) * config.column_advance_cycles)
