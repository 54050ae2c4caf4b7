"""cocotb (Verilator and Icarus): the PE array's Verilog, fed token streams with random idle
cycles per column, against the NumPy golden model."""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.array import PEArray
from zeroskip.hw.layouts import pack, token_layout
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm, lane_tokens
from zeroskip.sim.rtl.packing import act_beats, result_words_to_array
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import build_component, simulators
from .weights import random_weights

CONFIG = ArrayConfig(rows=3, cols=2, max_k=64, act_depth=512, weight_depth=1024,
                     pointer_depth=33, out_depth=256)


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("idle", [0.0, 0.5])
def test_array_with_idle_columns(sim, mode, idle, rng):
    m, k, n = 7, 29, 5
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    acts[rng.random((m, k)) < 0.3] = 0
    weights = random_weights(rng, k, n, density=0.4)
    program = compile_gemm(acts, weights, CONFIG, mode)
    (run,) = program.runs
    layout = token_layout(CONFIG)
    job = {
        "mode": int(mode),
        "act_beats": act_beats(run),
        "columns": [[pack(layout, t) for t in lane_tokens(program, run, c)]
                    for c in range(CONFIG.cols)],
        "idle_probability": idle,
        "latency": CONFIG.array_latency + 2,
        "depths": [run.m_tiles * len(cols) for cols in run.lane_columns],
    }
    build = build_component(sim, "array", CONFIG, PEArray, "zeroskip_array")
    words = run_cocotb(sim, build, "zeroskip_array", "zeroskip.tb.cocotb_array", job)
    result = assemble(program, [[result_words_to_array(CONFIG, w) for w in words]])
    np.testing.assert_array_equal(result, golden.gemm(acts, weights))
