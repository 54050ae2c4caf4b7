"""cocotb (Verilator and Icarus): the network engine's Verilog runs whole networks on chip, one
build per simulator (:data:`tb.test_engine.PARAMS`): a chain of GEMMs built here and the
bundled digits CNN, every output bit-exact against the NumPy reference and the model's
definition, the array's cycles equal to the cycle model's, and an inference abandoned by a
reset followed by an exact one. The compiler's tests without a simulator: tb/test_engine.py."""

import numpy as np
import pytest

from zeroskip.hw.engine.engine import Engine
from zeroskip.hw.layouts import unpack
from zeroskip.hw.verilog import convert
from zeroskip.sim.program import compile_network, predicted_array_cycles, reference
from zeroskip.sim.rtl import build
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import simulators
from .test_engine import PARAMS, digits_model, engine_inputs, gemm_network

TOP = "zeroskip_engine"

pytestmark = pytest.mark.rtl


def engine_build(sim):
    """The one build of :data:`PARAMS` on ``sim``."""
    return build.build(sim, PARAMS.name(), lambda: convert(Engine(PARAMS), TOP), TOP)


def host_array_cycles(layers, x_rows):
    """The host-sequenced path's array cycles of the same GEMMs (every layer compiled and
    loaded on its own, the cycle model that its RTL runs are checked against)."""
    from zeroskip.config import Mode
    from zeroskip.sim.compiler import compile_gemm
    config = PARAMS.config.with_(resident=False)
    return sum(compile_gemm(np.zeros((m, layer.weights.shape[0]), np.int8), layer.weights,
                            config, Mode.SKIP).predicted_cycles
               for layer, m in zip(layers, x_rows))


def _network_job(program, inputs, **extra):
    return {"beats": program.beats(), "inputs": [program.input_beats(x) for x in inputs],
            "output_size": program.output_size, "timeout": 200_000, **extra}


@pytest.mark.parametrize("sim", simulators())
def test_engine_runs_networks_on_chip(sim, rng, capsys):
    gemm_layers = gemm_network(rng)
    gemm_program = compile_network(gemm_layers, PARAMS)
    gemm_inputs = [rng.integers(-128, 128, 48).astype(np.int8) for _ in range(4)]
    models = {name: digits_model(name) for name in ("digits_cnn", "digits_mlp")}
    programs = {name: compile_network(lowered.layers, PARAMS)
                for name, (_, _, lowered) in models.items()}
    cases = {name: engine_inputs(model, lowered, x[:images])
             for (name, (model, x, lowered)), images in zip(models.items(), (6, 4))}
    job = {"lut": True, "networks": [
        # the second inference is abandoned by a reset after 300 cycles
        _network_job(gemm_program, gemm_inputs, reset_before=1, reset_after=300),
        *(_network_job(programs[name], [case[0] for case in cases[name]]) for name in models),
    ]}
    results = run_cocotb(sim, engine_build(sim), TOP, "zeroskip.tb.cocotb_engine", job)

    layout = PARAMS.counters_layout
    figures = {}
    checks = [("gemm chain", gemm_program, gemm_layers, results[0],
               [reference(gemm_layers, x).reshape(-1) for x in gemm_inputs], None)]
    checks += [(name, programs[name], models[name][2].layers, outputs,
                [case[1].reshape(-1) for case in cases[name]], models[name][2])
               for name, outputs in zip(models, results[1:])]
    for name, program, layers, outputs, expected, lowered in checks:
        for (words, raw, fault, cycles), want in zip(outputs, expected):
            got = np.array(words, dtype=np.uint8).view(np.int8)
            if lowered is not None:
                got = lowered.tensor_output(got).reshape(-1)
            assert fault == 0
            assert np.array_equal(got, want), name
            counters = unpack(layout, raw)
            assert counters["array_cycles"] == predicted_array_cycles(program)
            assert counters["runs"] == sum(program.runs_per_layer)
            assert counters["cycles"] <= cycles
        rows = [layer.conv_shape[0] * layer.conv_shape[1] for layer in layers]
        figures[name] = (counters, host_array_cycles(layers, rows))
    with capsys.disabled():
        for name, (counters, host) in figures.items():
            print(f"\n{sim} {name}: {counters['cycles']} cycles per inference "
                  f"(array {counters['array_cycles']}, gather {counters['gather_cycles']}, "
                  f"drain {counters['drain_cycles']}, pool {counters['pool_cycles']}); "
                  f"host-sequenced array cycles {host}")
