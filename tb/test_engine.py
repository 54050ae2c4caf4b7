"""The network engine's compiler (:mod:`zeroskip.sim.program`) and the ONNX lowering for it
(:mod:`zeroskip.frontend.resident`), without a simulator: the networks the RTL test runs, their
NumPy reference against the host-sequenced path and the model's definition, and the refusals.
The engine's RTL: tb/test_engine_rtl.py."""

from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from zeroskip.config import ArrayConfig
from zeroskip.frontend.lowering import requantize
from zeroskip.hw.engine.descriptor import EngineParams
from zeroskip.hw.engine.output_stage import onnx_params, onnx_settings
from zeroskip.sim.program import (EngineTooSmall, NetLayer, compile_network, reference)
from zeroskip.sim.resident import NetworkTooLarge

MODELS = Path(__file__).resolve().parents[1] / "models"

#: The one engine configuration the RTL test builds: 8×8 csc, resident, small memories.
CONFIG = ArrayConfig(rows=8, cols=8, max_k=512, act_depth=1024, weight_depth=1024,
                     pointer_depth=64, out_depth=256, mask_depth=64, energy_counters=True,
                     resident=True)
PARAMS = EngineParams(CONFIG, fm_depth=1024, aux_depth=1024, param_depth=256, colmap_depth=256,
                      program_depth=16, lut_depth=256 * 256)


def numpy_engine(networks, sim=None):
    """:func:`~zeroskip.sim.rtl.engine_runner.run_engine`'s contract computed by
    :func:`zeroskip.sim.program.reference` (no hardware, no counters): the fast tests'
    stand-in for the engine's RTL, which tb/test_engine_rtl.py runs."""
    from zeroskip.sim.rtl.engine_runner import EngineRun
    return [[EngineRun(output=reference(program.layers, x).reshape(-1), counters={},
                       fault=False, bench_cycles=0) for x in inputs]
            for program, inputs in networks]


def event_counts(layers, x) -> dict:
    """The engine's event counters of one inference that NumPy gives exactly
    (:data:`zeroskip.hw.engine.descriptor.ENGINE_ENERGY_COUNTERS`): the multiplier fires (a
    product of a nonzero weight and a nonzero activation of the im2col matrix, padding's
    value included), the results through the output stage (every output pixel's channels),
    the activations written into the feature maps (those, and the pooled maps')."""
    from zeroskip.frontend.lowering import im2col
    fm = np.asarray(x, dtype=np.int8).reshape(-1)
    counts = {"macs_executed": 0, "stage_elements": 0, "map_writes": 0}
    for layer in layers:
        chw = fm.reshape(layer.height, layer.width, layer.channels).transpose(2, 0, 1)
        cols, _ = im2col(chw[None].astype(np.int64), list(layer.kernel), list(layer.strides),
                         list(layer.pads), list(layer.dilations), layer.pad_value)
        nonzero = (cols != 0).astype(np.int64) @ (layer.weights != 0).astype(np.int64)
        counts["macs_executed"] += int(nonzero.sum())
        outputs = cols.shape[0] * layer.n
        counts["stage_elements"] += outputs
        pooled = int(np.prod(layer.out_shape)) if layer.pool is not None else 0
        counts["map_writes"] += outputs + pooled
        fm = reference([layer], fm).reshape(-1)
    return counts


def gemm_network(rng, sizes=(48, 40, 24, 10), density=0.4):
    """A chain of fully connected layers (int8 weights of random sparsity, int32 biases,
    float32 scales, ReLU but on the last), the input and hidden maps 1×1×K."""
    layers = []
    for index, (k, n) in enumerate(zip(sizes, sizes[1:])):
        w = rng.integers(-128, 128, (k, n)) * (rng.random((k, n)) < density)
        bias = rng.integers(-3000, 3000, n)
        # the accumulators' spread for activations of spread 74 mapped to about 40 steps
        spread = 74 * np.sqrt((w.astype(np.int64) ** 2).sum(axis=0).mean()) + 1
        scale = np.float32(rng.uniform(0.5, 2.0) * 40 / spread)
        last = index == len(sizes) - 2
        zero = int(rng.integers(-20, 20))
        layers.append(NetLayer(1, 1, k, w.astype(np.int8),
                               [onnx_params(scale * np.float32(rng.uniform(0.8, 1.2)),
                                            int(b)) for b in bias],
                               onnx_settings(zero, np.int8, relu=not last)))
    return layers


def gemm_reference(layers, x):
    """The chain computed directly from the definition (ONNX's QLinearMatMul, ReLU)."""
    a = np.asarray(x, dtype=np.int64).reshape(1, -1)
    for layer in layers:
        scale = np.array([p["multiplier"] for p in layer.params], np.uint32).view(np.float32)
        bias = np.array([p["bias"] for p in layer.params], np.int64)
        out = requantize(a @ layer.weights.astype(np.int64) + bias, scale,
                         layer.settings["zero_point"], np.int8)
        a = np.maximum(out, layer.settings["low"]).astype(np.int64)
    return a.reshape(-1)


def test_gemm_network_reference_is_the_definition(rng):
    layers = gemm_network(rng)
    compile_network(layers, PARAMS)
    for _ in range(5):
        x = rng.integers(-128, 128, 48).astype(np.int8)
        assert np.array_equal(reference(layers, x).reshape(-1), gemm_reference(layers, x))


def test_program_of_a_gemm_network(rng):
    layers = gemm_network(rng)
    program = compile_network(layers, PARAMS)
    assert [step["kind"] for step in program.steps][-1] == 0
    assert len(program.steps) == sum(program.runs_per_layer) + 1
    assert program.output_shape == (1, 1, 10)
    assert len(program.param_words) == 40 + 24 + 10
    beats = program.beats()
    assert len(beats["program"]) == len(program.steps)
    assert len(program.input_beats(np.zeros(48, np.int8))) == 48
    with pytest.raises(ValueError, match="48"):
        program.input_beats(np.zeros(47, np.int8))


def digits_model(name):
    """A bundled digits model, its test images and its lowering for the engine."""
    import onnx
    from zeroskip.frontend.resident import lower
    model = onnx.load(MODELS / f"{name}.onnx")
    x = np.load(MODELS / "digits_test_x.npy").astype(np.float32)
    return model, x, lower(model, {"x": x[:1]})


def digits_cnn():
    return digits_model("digits_cnn")


def engine_inputs(model, lowered, x):
    """Each image's engine input map and the model's tensor the engine must reproduce."""
    from onnx.reference import ReferenceEvaluator
    from zeroskip.frontend.graph import _dequantize_linear
    evaluator = ReferenceEvaluator(model, new_ops=[_dequantize_linear()])
    cases = []
    for image in x:
        tensor, expected = evaluator.run([lowered.input_name, lowered.output_name],
                                         {"x": image[None]})
        cases.append((lowered.engine_input(tensor), expected))
    return cases


def test_digits_cnn_lowered_for_the_engine():
    _, _, lowered = digits_cnn()
    shapes = [(layer.height, layer.width, layer.channels, layer.weights.shape)
              for layer in lowered.layers]
    assert shapes == [(8, 8, 1, (9, 8)), (8, 8, 8, (72, 16)), (1, 1, 256, (256, 10))]
    assert lowered.layers[1].pool == {"filter": (2, 2), "strides": (2, 2), "pads": (0, 0)}
    assert lowered.layers[0].pad_value == -128       # uint8 zero point 0, stored less 128
    program = compile_network(lowered.layers, PARAMS)
    assert [int(step["kind"]) for step in program.steps] == [1, 1, 2, 1, 0]


def test_digits_cnn_reference_matches_the_host_path():
    """The engine's NumPy reference equals the host-sequenced path (the fused integer rule;
    its logits dequantized) and the model's definition on the quantized logits."""
    from zeroskip.frontend.graph import Executor
    from .test_frontend import NumpyGemms
    model, x, lowered = digits_cnn()
    scale, zero = (np.float32(0.16575864), np.float32(202))
    for (engine_in, expected), image in zip(engine_inputs(model, lowered, x[:6]), x[:6]):
        out = lowered.tensor_output(reference(lowered.layers, engine_in))
        assert np.array_equal(out, expected)
        host, _ = Executor(model, NumpyGemms()).run({"x": image[None]})
        assert np.array_equal((out.astype(np.float32) - zero) * scale, host["logits"])


def test_flatten_permutes_the_gemm_rows_to_hwc():
    import onnx
    from onnx import numpy_helper
    model, _, lowered = digits_cnn()
    w = next(numpy_helper.to_array(i) for i in model.graph.initializer
             if i.name == "fc.W_quantized")            # (10, 256), NCHW-flattened columns
    # HWC row (y, x, c) of the engine's weights is ONNX's (c, y, x)
    engine_w = lowered.layers[2].weights
    assert np.array_equal(engine_w[(1 * 4 + 2) * 16 + 5], w[:, 5 * 16 + 1 * 4 + 2])
    assert onnx is not None


def test_a_network_too_large_is_refused_naming_the_resource(rng):
    layers = gemm_network(rng)
    small = EngineParams(CONFIG, param_depth=16)
    with pytest.raises(EngineTooSmall, match=r"parameter memory \(param_depth\): the network "
                                             r"needs 74, the engine has 16"):
        compile_network(layers, small)
    with pytest.raises(EngineTooSmall, match="program memory"):
        compile_network(gemm_network(rng, sizes=(8,) * 12),
                        EngineParams(CONFIG, param_depth=128, colmap_depth=128, program_depth=8))
    with pytest.raises(EngineTooSmall, match=r"feature-map memory \(fm_depth\)"):
        compile_network(layers, EngineParams(CONFIG, fm_depth=64))
    tiny = CONFIG.with_(weight_depth=16)
    with pytest.raises(NetworkTooLarge, match="weight memory"):
        compile_network(gemm_network(rng), EngineParams(tiny))


def test_layers_that_do_not_chain_or_pool_last_are_refused(rng):
    layers = gemm_network(rng)
    layers[1].channels = 41
    layers[1].weights = np.zeros((41, 24), np.int8)
    with pytest.raises(ValueError, match="layer 1 reads a 1×1×41 map"):
        compile_network(layers, PARAMS)
    layers = gemm_network(rng)
    layers[-1].pool = {"filter": (1, 1), "strides": (1, 1)}
    with pytest.raises(ValueError, match="pooling after the last layer"):
        compile_network(layers, PARAMS)


def test_digits_mlp_bias_after_requantization_is_a_table():
    """The MLP's MatMul → Q → DQ → Add(bias) → Q: the second requantization tabulated per
    channel; the engine's reference equals the model's definition on the last Add's
    quantized output (the host runs the softmax and the argmax after it)."""
    model, x, lowered = digits_model("digits_mlp")
    assert [layer.table.shape for layer in lowered.layers] == [(128, 256), (64, 256),
                                                               (10, 256)]
    assert lowered.output_name == "add_result2_QuantizeLinear_Output"
    program = compile_network(lowered.layers, PARAMS)
    assert len(program.lut_words) == (128 + 64 + 10) * 256
    assert all(step.get("lut", 1) for step in program.steps if step["kind"] == 1)
    for engine_in, expected in engine_inputs(model, lowered, x[:10]):
        assert np.array_equal(lowered.tensor_output(reference(lowered.layers, engine_in)),
                              expected)
    with pytest.raises(EngineTooSmall, match=r"lookup table \(lut_depth\): the network needs "
                                             r"51,712, the engine has 256"):
        compile_network(lowered.layers, EngineParams(CONFIG, param_depth=256,
                                                     colmap_depth=256, lut_depth=256))


def test_the_encoder_residual_add_is_refused_naming_the_node():
    model, x, _ = digits_model("digits_cnn")
    import onnx
    from zeroskip.frontend.resident import lower
    encoder = onnx.load(MODELS / "encoder.onnx")
    with pytest.raises(ValueError, match=r"node 'h0' \(Add\): between two layers the engine"):
        lower(encoder, {"x": x[:1]})


def test_engine_params_refuse_a_configuration_without_resident_weights():
    with pytest.raises(ValueError, match="resident=True"):
        EngineParams(CONFIG.with_(resident=False))


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mlp"])
def test_a_resident_run_gives_the_host_paths_outputs(name):
    """The whole model with its layers on the engine (here its NumPy contract): the host's
    prologue and epilogue around it give every graph output of the host-sequenced path."""
    from zeroskip.frontend.graph import Executor
    from zeroskip.frontend.resident_run import run_resident
    from .test_frontend import NumpyGemms
    model, x, _ = digits_model(name)
    feeds = {"x": x[:16]}
    result = run_resident(model, feeds, PARAMS, engine=numpy_engine)
    host, _ = Executor(model, NumpyGemms()).run(feeds)
    assert set(result.outputs) == set(host)
    for output, value in host.items():
        assert np.array_equal(np.asarray(result.outputs[output]), np.asarray(value)), output


def test_run_resident_refuses_what_the_engine_does_not_do_yet():
    import zeroskip
    from zeroskip.sim.loaders import BadInput
    x = np.load(MODELS / "digits_test_x.npy")[:2].astype(np.float32)
    model = MODELS / "digits_cnn.onnx"
    with pytest.raises(BadInput, match="resident: the network engine runs skip mode"):
        zeroskip.run(model, x, resident=True, mode="dense")
    with pytest.raises(BadInput, match="icebreaker has no network engine configuration .*: "
                                       "ulx3s-85f"):
        zeroskip.run(model, x, resident=True, board="icebreaker")
    encoder = MODELS / "encoder.onnx"
    with pytest.raises(BadInput, match=r"resident: node 'h0' \(Add\)"):
        zeroskip.run(encoder, x, resident=True)


def test_infer_resident_reports_the_engine_and_the_definition():
    """The report of a resident run (here with the engine's NumPy contract): the engine
    sized to the model, the layers it holds, the comparison with the model's definition."""
    import onnx
    from zeroskip.frontend.resident_run import infer_resident
    model = onnx.load(MODELS / "digits_cnn.onnx")
    x = np.load(MODELS / "digits_test_x.npy")[:8].astype(np.float32)
    labels = np.load(MODELS / "digits_test_y.npy")[:8]
    outputs, report = infer_resident(model, {"x": x}, ArrayConfig.for_capacity(8, 8),
                                     labels=labels, engine=numpy_engine)
    assert report["reference"]["unoptimized"]["bit_exact"]
    assert report["total"]["resident"] and report["total"]["inferences"] == 8
    assert report["engine"]["fm_depth"] == 1024 and report["engine"]["steps"] == 5
    assert [(layer["m"], layer["k"], layer["n"]) for layer in report["layers"]] == \
        [(64, 9, 8), (64, 72, 16), (1, 256, 10)]
    assert outputs["logits"].shape == (8, 10)


def counting_engine(networks, sim=None):
    """:func:`numpy_engine` with counters: :func:`event_counts`' and fixed figures for the
    rest (the report's arithmetic is under test, not the counts)."""
    from zeroskip.sim.rtl.engine_runner import EngineRun
    fixed = {"cycles": 2000, "array_cycles": 900, "gather_cycles": 500, "drain_cycles": 400,
             "pool_cycles": 100, "runs": 3, "macs_gated": 50, "lane_busy": 300,
             "lane_reads": 320, "outputs": 40, "act_writes": 64 * 30}
    return [[EngineRun(output=reference(program.layers, x).reshape(-1),
                       counters=fixed | event_counts(program.layers, x), fault=False,
                       bench_cycles=2000) for x in inputs]
            for program, inputs in networks]


def test_resident_report_prices_the_engines_counters_per_inference():
    """``total``'s off-chip words (the input and output tensors), inferences per second at
    the assumed clock and the energy estimate of the engine's counters, with provenance."""
    import onnx
    from zeroskip.frontend.resident_run import ASSUMED_CLOCK_HZ, infer_resident
    from zeroskip.sim import energy
    model = onnx.load(MODELS / "digits_cnn.onnx")
    x = np.load(MODELS / "digits_test_x.npy")[:2].astype(np.float32)
    config = ArrayConfig.for_capacity(8, 8)
    _, report = infer_resident(model, {"x": x}, config, engine=counting_engine)
    total, provenance = report["total"], report["total"]["provenance"]
    # an 8×8 one-channel int8 image in, 10 int8 logits out: 16 + 3 words
    assert total["offchip_words_per_inference"] == 19
    assert total["inferences_per_s"] == ASSUMED_CLOCK_HZ / 2000
    assert total["clock_hz"] == ASSUMED_CLOCK_HZ and "assumed" in total["clock"]
    events = total["energy_events"]
    assert events["host_words_in"] == 16 and events["host_words_out"] == 3
    assert events["lane_writes"] == 0        # the weights are loaded once, not per inference
    assert events["fm_reads"] == 64 * 30 // 8 + 100
    assert events["result_writes"] == events["result_reads"] == 40 * 8
    table = energy.EnergyTable.default()
    breakdown = total["energy_breakdown_pj"]
    assert breakdown["offchip"] == 19 * table.pj["host_words_in"]
    assert breakdown["static"] == 2000 * table.pj["static_pj_per_cycle"]
    assert total["energy_per_inference_pj"] == pytest.approx(sum(breakdown.values()))
    assert total["energy_table"]["source"] == table.source
    assert provenance["offchip_words_per_inference"] == "host"
    assert provenance["inferences_per_s"] == "derived"
    assert provenance["energy_per_inference_pj"] == "derived"
    assert provenance["energy_events"]["mac_executed"] == "rtl"
    assert provenance["energy_events"]["fm_reads"] == "derived"
    assert provenance["energy_events"]["host_words_in"] == "host"
    assert provenance["energy_events"]["lane_writes"] == "host"
    assert provenance["cycles_per_inference"] == "rtl"
    from zeroskip.apps.run_report import format_resident_report
    text = format_resident_report(report | {"model": "digits_cnn.onnx"})
    assert "energy per inference (estimate" in text and "inferences/s" in text


def test_a_resident_run_on_a_board_uses_its_engine_and_clock():
    """``board``: the board's own engine (fixed memories; the report names them) at the
    board's clock; a model that overflows it is refused naming the resource."""
    import onnx
    from zeroskip.frontend.resident_run import infer_resident
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.sim.loaders import BadInput
    board = BOARDS["ulx3s-85f"]
    model = onnx.load(MODELS / "digits_cnn.onnx")
    x = np.load(MODELS / "digits_test_x.npy")[:2].astype(np.float32)
    _, report = infer_resident(model, {"x": x}, board.config, board="ulx3s-85f",
                               engine=counting_engine)
    assert report["engine"]["fm_depth"] == board.engine.fm_depth == 2048
    assert report["array"]["board"] == "ulx3s-85f"
    total = report["total"]
    assert total["clock_hz"] == 100e6 and total["clock"] == "ulx3s-85f's clock"
    assert total["inferences_per_s"] == round(100e6 / total["cycles_per_inference"], 1)
    small = replace(board, engine=replace(board.engine, fm_depth=512))
    with mock.patch.dict(BOARDS, {"ulx3s-85f": small}):
        with pytest.raises(BadInput, match=r"^resident: feature-map memory \(fm_depth\): the "
                                           r"network needs 1,024, the engine has 512$"):
            infer_resident(model, {"x": x}, board.config, board="ulx3s-85f",
                           engine=counting_engine)


def test_resident_report_without_counters_has_no_energy():
    import onnx
    from zeroskip.frontend.resident_run import infer_resident
    model = onnx.load(MODELS / "digits_mlp.onnx")
    x = np.load(MODELS / "digits_test_x.npy")[:1].astype(np.float32)
    _, report = infer_resident(model, {"x": x}, ArrayConfig.for_capacity(8, 8),
                               engine=numpy_engine)
    total = report["total"]
    assert total["energy_per_inference_pj"] is None and total["inferences_per_s"] is None
    assert total["offchip_words_per_inference"] == 16 + 3


def test_event_counts_of_a_gemm_chain(rng):
    layers = gemm_network(rng)
    x = rng.integers(-128, 128, 48).astype(np.int8)
    counts = event_counts(layers, x)
    assert counts["stage_elements"] == counts["map_writes"] == 40 + 24 + 10
    assert 0 < counts["macs_executed"] <= 48 * 40 + 40 * 24 + 24 * 10


def _cli_run(tmp_path, capsys, *extra, model="digits_mlp.onnx"):
    from zeroskip import cli
    x = np.load(MODELS / "digits_test_x.npy")[:12]
    y = np.load(MODELS / "digits_test_y.npy")[:12]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    status = cli.main(["run", str(MODELS / model), "--input", str(tmp_path / "x.npy"),
                       "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "out"),
                       "--rows", "8", "--cols", "8", "--resident", *extra])
    return status, capsys.readouterr()


def test_cli_run_resident_writes_the_engine_report(tmp_path, capsys, monkeypatch):
    """``zeroskip run --resident`` (the engine's NumPy contract in place of its RTL): exit
    0, the outputs bit-exact with the definition, report.md with the engine's layers."""
    import json
    from zeroskip.sim.rtl import engine_runner
    monkeypatch.setattr(engine_runner, "run_engine", numpy_engine)
    status, captured = _cli_run(tmp_path, capsys)
    assert status == 0, captured.err
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"outputs.npz", "report.json", "report.md"}
    report = json.loads((out / "report.json").read_text())
    assert report["total"]["resident"] and report["reference"]["unoptimized"]["bit_exact"]
    assert "resident on the network engine" in captured.out
    assert "| layer 0 | 1×64×128 |" in (out / "report.md").read_text()
    assert captured.out.strip().endswith("wrote " + str(out) + "/outputs.npz, report.json, "
                                         "report.md")


@pytest.mark.parametrize("extra, message", [
    (("--mode", "dense"), "--resident: the network engine runs --mode skip, not dense"),
    (("--energy-table", "x.json"), "drop --energy-table"),
])
def test_cli_run_resident_refusals_exit_2(tmp_path, capsys, extra, message):
    status, captured = _cli_run(tmp_path, capsys, *extra)
    assert status == 2
    assert captured.err.startswith("zeroskip: error: ") and message in captured.err, \
        captured.err
    assert not (tmp_path / "out").exists()


def test_cli_run_resident_refuses_a_model_the_engine_does_not_run(tmp_path, capsys):
    status, captured = _cli_run(tmp_path, capsys, model="encoder.onnx")
    assert status == 2
    assert "zeroskip: error: --resident: node 'h0' (Add)" in captured.err, captured.err


def test_resident_table_lays_out_every_figure():
    """``make resident``'s table: per model the resident figures (compute and with the UART),
    the host-sequenced path's, the CPU's and the energy ratio, from its measurement dict."""
    from zeroskip.apps.resident_table import resident_markdown
    result = {
        "model": "digits_cnn", "images": 20, "bit_exact": True, "accuracy": 1.0,
        "resident": {"cycles_per_inference": 4672, "array_cycles_per_inference": 495,
                     "clock_hz": 100e6, "inferences_per_s": 21404.1,
                     "link_bytes_per_inference": 164, "offchip_words_per_inference": 42,
                     "link_seconds_per_inference": 0.000547, "inferences_per_s_with_uart": 1685.2},
        "host_sequenced": {"gemms": 3, "requests": 40, "bytes_sent": 9000, "cycles": 2_000_000,
                           "seconds": 0.02, "compute_cycles": 900},
        "energy_pj": {"resident": 194_300.0, "host_sequenced": 1_984_500.0, "ratio": 10.21,
                      "array": "8×8", "table": {"name": "t", "source": "s"}},
        "cpu": {"seconds": 0.0001, "inferences_per_s": 10_000, "cpu": "x86_64",
                "onnxruntime": "1.0"},
    }
    text = resident_markdown([result])
    row = next(line for line in text.splitlines() if line.startswith("| digits_cnn"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells == ["digits_cnn", "4,672", "0.047", "21,404", "164", "0.594", "1,685", "20.00",
                     "9,000", "0.100", "194.3 vs 1,984.5 (10.2×)"]
    assert "20 test images" in text and "onnxruntime 1.0" in text
