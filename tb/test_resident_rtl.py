"""cocotb (Verilator and Icarus): a resident network's weights loaded once into the
accelerator's lanes, its layers run in a shuffled order by changing only the job (activations
loaded per run), every result bit-exact against the golden model and every run's cycle counter
equal to the cycle model."""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble
from zeroskip.sim.resident import plan_network
from zeroskip.sim.rtl.runner import run_programs

from .rtl import simulators
from .test_resident import network_weights

CONFIG = ArrayConfig(rows=4, cols=4, fmt="csc", max_k=64, act_depth=256, weight_depth=256,
                     pointer_depth=33, out_depth=64, resident=True)


@pytest.mark.parametrize("sim", simulators())
def test_resident_layers_selected_by_the_job(sim, rng):
    weights = network_weights(CONFIG, rng, shapes=((13, 7), (29, 5), (6, 9)))
    # empty columns stay in the lanes: the hardware closes them with a bubble
    network = plan_network(weights, CONFIG, drop_empty_columns=False)
    order = [(1, Mode.SKIP), (0, Mode.SKIP), (2, Mode.SKIP), (0, Mode.DENSE), (1, Mode.SKIP),
             (2, Mode.GATE), (0, Mode.SKIP), (2, Mode.SKIP)]
    cases = []
    for layer, mode in order:
        m = int(rng.integers(1, 3 * CONFIG.rows + 2))
        acts = rng.integers(-128, 128, (m, weights[layer].shape[0])).astype(np.int8)
        acts[rng.random(acts.shape) < 0.3] = 0
        cases.append((layer, acts, network.program(layer, acts, mode)))
    programs = [program for _, _, program in cases]
    results = run_programs(programs, sim, resident=network)
    for (layer, acts, program), result in zip(cases, results):
        result.check(program)   # no lane fault; cycles equal to the cycle model
        np.testing.assert_array_equal(assemble(program, result.results),
                                      golden.gemm(acts, weights[layer]))
    # the weights went in once: later runs wrote activations only
    first, *rest = [counters for result in results for counters in result.counters]
    act_beats = [run.acts.shape[1] for program in programs for run in program.runs]
    assert first["load_cycles"] > act_beats[0] and first["lane_writes"] > 0
    assert [c["load_cycles"] for c in rest] == act_beats[1:]
    assert all(c["lane_writes"] == 0 for c in rest)
