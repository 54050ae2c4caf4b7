"""cocotb (Verilator and Icarus): the decoder lane's Verilog against its NumPy specification,
with random backpressure, and its sustained throughput."""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.decoders import decoder_class, decoder_for
from zeroskip.hw.layouts import pack, token_layout
from zeroskip.sim.compiler import compile_gemm, lane_tokens
from zeroskip.sim.runner import run_cocotb

from .rtl import build_component, simulators
from .weights import random_weights

CONFIG = ArrayConfig(rows=4, cols=1, max_k=64, act_depth=512, weight_depth=1024,
                     pointer_depth=33, out_depth=256)


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
@pytest.mark.parametrize("case", ["random50", "random90", "all_zero", "single", "long_runs"])
def test_decoder_stream_under_backpressure(sim, case, rng):
    kw = {"random50": dict(density=0.5), "random90": dict(density=0.1),
          "all_zero": dict(density=0.0), "single": dict(pattern="single"),
          "long_runs": dict(pattern="long_runs")}[case]
    weights = random_weights(rng, 61, 9, **kw)
    job = lane_job(CONFIG, weights, m=6, modes=[Mode.SKIP, Mode.DENSE])
    job["ready_probabilities"] = [1.0, 0.6, 0.2]
    job["timeout_cycles"] = 100_000
    build = build_component(sim, "decoder", CONFIG, decoder_for, "zeroskip_decoder")
    outcomes = run_cocotb(sim, build, "zeroskip_decoder", "zeroskip.tb.cocotb_decoder", job)
    for outcome in outcomes:
        if outcome["ready_probability"] == 1.0 and outcome["tokens"]:
            # sustained one token per cycle; one extra cycle registers the first token
            assert outcome["cycles"] == outcome["tokens"] + 1


@pytest.mark.parametrize("sim", simulators())
def test_decoder_sustains_one_nonzero_per_cycle_on_long_zero_runs(sim, rng, capsys):
    # 64-deep columns holding two nonzeros each (62-zero runs) and all-zero columns in between;
    # the host compiler leaves the all-zero columns out of the schedule.
    weights = np.zeros((64, 24), np.int8)
    weights[0, ::2] = 5
    weights[63, ::2] = -7
    job = lane_job(CONFIG, weights, m=8, modes=[Mode.SKIP], drop_empty_columns=True)
    job["ready_probabilities"] = [1.0]
    job["timeout_cycles"] = 10_000
    build = build_component(sim, "decoder", CONFIG, decoder_for, "zeroskip_decoder")
    (outcome,) = run_cocotb(sim, build, "zeroskip_decoder", "zeroskip.tb.cocotb_decoder", job)
    nonzeros = 2 * np.count_nonzero(weights)  # two M-tiles
    rate = nonzeros / outcome["cycles"]
    with capsys.disabled():
        print(f"\n[{sim}] CSC decoder: {nonzeros} nonzeros in {outcome['cycles']} cycles = "
              f"{rate:.3f} nonzeros/cycle/lane")
    assert outcome["tokens"] == nonzeros
    assert rate >= 0.95
