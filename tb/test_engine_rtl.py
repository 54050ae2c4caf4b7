"""cocotb (Verilator and Icarus): the network engine's Verilog runs whole networks on chip, one
build per simulator (:data:`tb.test_engine.PARAMS`): a chain of GEMMs built here, the bundled
digits CNN and the digits MLP (its bias after requantization through the lookup table), every
output bit-exact against the NumPy reference and the model's definition, the array's cycles
equal to the cycle model's, and an inference abandoned by a reset followed by an exact one.
The compiler's tests without a simulator: tb/test_engine.py."""

import numpy as np
import pytest

from zeroskip.sim.program import compile_network, predicted_array_cycles, reference
from zeroskip.sim.rtl.engine_runner import network_job, run_engine

from .rtl import simulators
from .test_engine import (MODELS, PARAMS, digits_model, engine_inputs, event_counts,
                          gemm_network)

pytestmark = pytest.mark.rtl


def host_array_cycles(layers):
    """The host-sequenced path's array cycles of the same GEMMs (each layer compiled and
    loaded on its own; the cycle model its RTL runs are checked against)."""
    from zeroskip.config import Mode
    from zeroskip.sim.compiler import compile_gemm
    config = PARAMS.config.with_(resident=False)
    return sum(compile_gemm(np.zeros((layer.conv_shape[0] * layer.conv_shape[1],
                                      layer.weights.shape[0]), np.int8), layer.weights,
                            config, Mode.SKIP).predicted_cycles for layer in layers)


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
    # the gemm chain's second inference is abandoned by a reset 300 cycles after its start
    networks = [{"program": gemm_program,
                 **network_job(gemm_program, gemm_inputs, reset_before=1, reset_after=300)}]
    networks += [(programs[name], [case[0] for case in cases[name]]) for name in models]
    results = run_engine(networks, sim)

    checks = [("gemm chain", gemm_program, gemm_layers, results[0],
               [reference(gemm_layers, x).reshape(-1) for x in gemm_inputs], None,
               gemm_inputs)]
    checks += [(name, programs[name], models[name][2].layers, runs,
                [case[1].reshape(-1) for case in cases[name]], models[name][2],
                [case[0] for case in cases[name]])
               for name, runs in zip(models, results[1:])]
    figures = {}
    for name, program, layers, runs, expected, lowered, inputs in checks:
        assert len(runs) == len(expected)
        for run, want, x in zip(runs, expected, inputs):
            got = run.output if lowered is None else lowered.tensor_output(run.output)
            assert not run.fault
            assert np.array_equal(got.reshape(-1), want), name
            assert run.counters["array_cycles"] == predicted_array_cycles(program)
            assert run.counters["runs"] == sum(program.runs_per_layer)
            assert run.counters["cycles"] <= run.bench_cycles
            # the energy events per inference: those NumPy gives exactly, and the rest's
            # bounds (a valid MAC per token and PE row; a beat of rows per gathered column)
            counters = run.counters
            for event, count in event_counts(layers, x).items():
                assert counters[event] == count, (name, event)
            assert counters["macs_executed"] + counters["macs_gated"] <= \
                counters["lane_busy"] * PARAMS.config.rows
            assert counters["lane_busy"] > 0 and counters["lane_reads"] > 0
            assert counters["outputs"] > 0 and counters["act_writes"] > 0
            assert counters["act_writes"] % (PARAMS.config.rows * PARAMS.config.cols) == 0
        figures[name] = (run.counters, host_array_cycles(layers))
    with capsys.disabled():
        for name, (counters, host) in figures.items():
            print(f"\n{sim} {name}: {counters['cycles']} cycles per inference "
                  f"(array {counters['array_cycles']}, gather {counters['gather_cycles']}, "
                  f"drain {counters['drain_cycles']}, pool {counters['pool_cycles']}; "
                  f"MACs {counters['macs_executed']} fired, {counters['macs_gated']} gated); "
                  f"host-sequenced array cycles {host}")


@pytest.mark.parametrize("sim", simulators())
def test_digits_models_resident_match_the_host_path(sim, capsys):
    """Every test image (Verilator; three on Icarus, which runs ~1,000 cycles a second here)
    through digits_cnn and digits_mlp on the engine: the graph's outputs equal the
    host-sequenced path's (its GEMMs in NumPy, bit-exact with its RTL runs elsewhere), so the
    accuracy is the same."""
    from zeroskip.frontend.graph import Executor
    from zeroskip.frontend.resident_run import run_resident
    from .test_frontend import NumpyGemms
    images = None if sim == "verilator" else 3
    labels = np.load(MODELS / "digits_test_y.npy")[:images]
    for name in ("digits_cnn", "digits_mlp"):
        model, x, _ = digits_model(name)
        feeds = {"x": x[:images]}
        result = run_resident(model, feeds, PARAMS, sim=sim)
        host, _ = Executor(model, NumpyGemms()).run(feeds)
        for output, value in host.items():
            assert np.array_equal(np.asarray(result.outputs[output]), np.asarray(value))
        scores = result.outputs["logits" if name == "digits_cnn" else "probabilities"]
        accuracy = float(np.mean(np.argmax(scores, axis=1) == labels))
        cycles = {c["cycles"] for c in result.counters}
        with capsys.disabled():
            print(f"\n{sim} {name}: {len(labels)} images bit-exact with the host path, "
                  f"accuracy {accuracy:.4f}, cycles per inference {sorted(cycles)}")


def test_zeroskip_run_resident(capsys):
    """``zeroskip.run(..., resident=True, board="ulx3s-85f")``: digits_cnn on the ULX3S's board
    top (its engine: the 16×8 pipelined array with column result memories, fixed memories)
    through its UART (Verilator), the outputs the host-sequenced path's, the report's
    figures from the engine's counters and the link's byte counts at the board's clock."""
    import zeroskip
    from zeroskip.frontend.graph import Executor
    from .test_frontend import NumpyGemms
    model, x, _ = digits_model("digits_cnn")
    labels = np.load(MODELS / "digits_test_y.npy")[:8]
    outputs, report = zeroskip.run(MODELS / "digits_cnn.onnx", x[:8], labels=labels,
                                   resident=True, board="ulx3s-85f")
    host, _ = Executor(model, NumpyGemms()).run({"x": x[:8]})
    assert np.array_equal(outputs["logits"], host["logits"])
    total = report["total"]
    assert report["reference"]["unoptimized"]["bit_exact"]
    assert report["array"]["rows"] == 16 and report["engine"]["fm_depth"] == 2048
    assert total["cycles_per_inference"] > total["array_cycles_per_inference"] > 0
    # the input map (64 bytes) written, a RUN, the output map (10 bytes) read, with frames
    assert total["link_bytes_per_inference"] == link_bytes(64, 10, report_bytes=45)
    assert total["offchip_words_per_inference"] == -(-91 // 4) + -(-73 // 4)
    assert total["inferences_per_s_with_uart"] < total["inferences_per_s"]
    with capsys.disabled():
        print(f"\nzeroskip.run resident digits_cnn (ulx3s-85f's board top, UART): "
              f"{total['cycles_per_inference']} cycles, {total['link_bytes_per_inference']} "
              f"link bytes per inference")


def link_bytes(input_bytes, output_bytes, report_bytes):
    """The protocol's bytes for one inference (frames of payload + 6 bytes): the input map's
    WRITE (target, address, bytes) and its empty reply, RUN (a byte) and its report, READ
    (column, address, count) and the output map."""
    requests = (3 + input_bytes + 6) + (1 + 6) + (5 + 6)
    replies = 6 + (report_bytes + 6) + (output_bytes + 6)
    return requests + replies


def test_a_damaged_program_download_is_refused_and_retried():
    """The ULX3S's board top with digits_cnn through its UART (Verilator): a program frame
    damaged on the way (a flipped bit) is refused by the board, nothing of it written, and
    sent again; the outputs are bit-exact, and the link's own byte counts per inference are
    the protocol's. (Dropped bytes and stalled frames: the same link's tests on the
    accelerator's board top, tb/test_board_rtl.py; each costs the 20 ms idle timeout.)"""
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.sim.rtl.engine_runner import run_engine_board
    board = BOARDS["ulx3s-85f"]
    model, x, lowered = digits_model("digits_cnn")
    cases = engine_inputs(model, lowered, x[:3])
    program = compile_network(lowered.layers, board.engine)
    # requests 0, 1: INFO, RESET; the program's WRITEs follow
    faults = {3: "corrupt"}
    out = run_engine_board(program, [c[0] for c in cases], board, faults=faults)
    assert out.injected == ["corrupt"]
    assert out.causes == {"BAD_CRC": 1} and out.retries == 1
    for (inputs, _), run in zip(cases, out.runs):
        assert not run.fault
        assert np.array_equal(run.output, reference(lowered.layers, inputs).reshape(-1))
    for i in (1, 2):
        received = out.link_rx[i] - out.link_rx[i - 1]
        sent = out.link_tx[i] - out.link_tx[i - 1]
        assert received + sent == link_bytes(64, 10, report_bytes=45)
        assert received == 3 + 64 + 6 + 7 + 11
