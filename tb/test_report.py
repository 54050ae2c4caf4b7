"""The GEMM report is honest: every figure names its source, loads are counted per GEMM by the
hardware, and a cycle count the model does not predict is an internal failure, never silent."""

import json

import numpy as np
import pytest

from zeroskip import cli
from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.decoders import decoder_class
from zeroskip.hw.layouts import shape_width
from zeroskip.sim import model
from zeroskip.sim.compiler import compile_gemm
from zeroskip.sim.report import DERIVED, ESTIMATE, HOST, MODEL, RTL, gemm_report
from zeroskip.sim.rtl.packing import weight_beats
from zeroskip.sim.rtl.runner import CycleMismatch, RunResult, run_programs

from .weights import random_weights

#: Report entries that describe the run rather than measure it.
DESCRIPTIVE = {"pe_count", "rows", "cols", "arch", "mode", "format", "nm", "simulator", "shape",
               "provenance"}


def expected_load_beats(program):
    """Write beats the host issues for a program: one per activation address, and per decoder
    memory one per address of its longest lane image (all lanes are written side by side)."""
    names = list(decoder_class(program.config).memories(program.config))
    return sum(run.acts.shape[1] + sum(max(len(image[name]) for image in run.lane_images)
                                       for name in names)
               for run in program.runs)


def _gemm(tmp_path, acts, weights, *options):
    np.save(tmp_path / "A.npy", acts)
    np.save(tmp_path / "W.npy", weights)
    return cli.main(["gemm", "--acts", str(tmp_path / "A.npy"), "--weights",
                     str(tmp_path / "W.npy"), "--out", str(tmp_path / "C.npy"), "--report",
                     str(tmp_path / "r.json"), *map(str, options)])


@pytest.mark.rtl
@pytest.mark.parametrize("fmt", ["csc", "bitmap"])
def test_every_figure_has_a_source_and_loads_are_what_was_written(tmp_path, rng, fmt):
    acts = rng.integers(-128, 128, (20, 48)).astype(np.int8)
    weights = random_weights(rng, 48, 30, density=0.2)
    assert _gemm(tmp_path, acts, weights, "--rows", 4, "--cols", 4, "--format", fmt) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    figures = set(report) - DESCRIPTIVE
    assert set(report["provenance"]) == figures
    # energies are estimates (event counts × a table); dense mode's from the cycle model too
    sources = dict(report["provenance"])
    events = sources.pop("events")
    assert set(sources.values()) <= {RTL, HOST, MODEL, ESTIMATE, f"{ESTIMATE}, {MODEL}"}
    # the events: a source each
    assert set(events) == set(report["events"]) and set(events.values()) == {RTL, DERIVED, HOST}
    assert events["mac_executed"] == RTL and report["provenance"]["energy_pj"] == ESTIMATE
    assert report["provenance"]["cycles"] == "rtl"
    assert report["provenance"]["ideal_cycles"] == "host"
    assert report["provenance"]["predicted_cycles"] == "model"

    config = ArrayConfig.for_capacity(4, 4, fmt=fmt)
    program = compile_gemm(acts, weights, config)
    assert report["load_cycles"] == expected_load_beats(program)
    # the bits the runner's write beats really carry: each lane a beat's mask selects gets a
    # word of its memory's width
    memories = decoder_class(config).memories(config)
    written = sum(bin(mask).count("1") * shape_width(memories[name][0])
                  for run in program.runs for name, beats in weight_beats(config, run).items()
                  for _, _, mask in beats)
    assert report["weight_bits_loaded"] == written
    assert report["weight_bits_loaded"] > report["weight_bits"]  # pointers, padding, reloads


@pytest.mark.rtl
def test_load_cycles_are_counted_per_gemm(rng):
    """Two GEMMs (of two and one runs) in one simulation: each is charged only its own loads
    (the counter used to run from reset, so the second GEMM also paid for the first)."""
    config = ArrayConfig(rows=2, cols=2, max_k=64, act_depth=64, weight_depth=128,
                         pointer_depth=9, out_depth=16)
    first = compile_gemm(rng.integers(-128, 128, (20, 40)).astype(np.int8),
                         random_weights(rng, 40, 6, density=0.5), config)
    second = compile_gemm(rng.integers(-128, 128, (3, 17)).astype(np.int8),
                          random_weights(rng, 17, 5, density=0.5), config, Mode.DENSE)
    assert len(first.runs) > 1
    for program, rtl in zip((first, second), run_programs([first, second], "verilator")):
        rtl.check(program)
        assert rtl.total("load_cycles") == expected_load_beats(program)
        for run, counters in zip(program.runs, rtl.counters):
            assert counters["load_cycles"] == expected_load_beats(
                type(program)(program.config, program.mode, program.shape, [run]))


def test_each_event_names_its_own_source(rng):
    """``provenance["events"]`` is a label per event (``rtl``, ``derived``, ``host``), not one
    for all of them (issue 34); the other figures keep one each. From made-up counter readings:
    the labels do not depend on the simulator."""
    from zeroskip.hw.layouts import counter_names
    from zeroskip.sim import energy
    config = ArrayConfig.for_capacity(2, 2)
    acts = rng.integers(-128, 128, (3, 8)).astype(np.int8)
    weights = random_weights(rng, 8, 3)
    program = compile_gemm(acts, weights, config)
    counters = [{name: 1 for name in counter_names(config)} | {
        "cycles": model.run_cycles(config, run.tokens)} for run in program.runs]
    report = gemm_report(program, acts, weights, RunResult(results=[], counters=counters,
                                                           wall_seconds=0), "verilator")
    events = report["provenance"]["events"]
    assert events == energy.EVENT_SOURCES and set(events) == set(report["events"])
    assert events["mac_executed"] == RTL and events["acc_updates"] == DERIVED
    assert events["act_operand_reads"] == DERIVED and events["host_words_in"] == HOST
    assert "act_reads" not in report["events"]
    assert all(isinstance(source, str) for name, source in report["provenance"].items()
               if name != "events")
    # no energy counters (the boards): no events, the labels still say where they would come
    # from
    bare = config.with_(energy_counters=False)
    program = compile_gemm(acts, weights, bare)
    counters = [{name: 1 for name in counter_names(bare)} for _ in program.runs]
    report = gemm_report(program, acts, weights, RunResult(results=[], counters=counters,
                                                           wall_seconds=0), "verilator")
    assert report["events"] is None and report["provenance"]["events"] == energy.EVENT_SOURCES


def test_check_refuses_cycles_the_model_does_not_predict(rng):
    config = ArrayConfig(rows=2, cols=2, max_k=16, act_depth=16, weight_depth=64,
                         pointer_depth=9, out_depth=16)
    program = compile_gemm(np.ones((2, 8), np.int8), random_weights(rng, 8, 3), config)
    predicted = model.run_cycles(config, program.runs[0].tokens)
    counters = {"cycles": predicted + 1}
    with pytest.raises(CycleMismatch, match=f"{predicted + 1} cycles.*predicts {predicted}"):
        RunResult(results=[[]], counters=[counters], wall_seconds=0, status=[[0, 0]]).check(
            program)
    RunResult(results=[[]], counters=[{"cycles": predicted}], wall_seconds=0,
              status=[[0, 0]]).check(program)


@pytest.mark.rtl
def test_gemm_exits_1_when_the_rtl_and_the_model_disagree(tmp_path, rng, monkeypatch, capsys):
    """A model that is off by one cycle (as a wrong model or a broken counter would be): the
    CLI must fail with both numbers, not write a report that disagrees with itself."""
    real = model.run_cycles
    monkeypatch.setattr(model, "run_cycles", lambda config, lanes: real(config, lanes) + 1)
    acts = rng.integers(-128, 128, (5, 12)).astype(np.int8)
    status = _gemm(tmp_path, acts, random_weights(rng, 12, 4), "--rows", 2, "--cols", 2)
    err = capsys.readouterr().err
    assert status == 1
    assert "CycleMismatch" in err and "the cycle model predicts" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "C.npy").exists() and not (tmp_path / "r.json").exists()


@pytest.mark.rtl
def test_speedup_and_bounds_agree_with_the_hardware(rng):
    """The skip run's `dense_cycles` (from the model) is what a dense run counts; a GEMV's
    mapped bound is reached although its work bound is not; `macs_executed` in skip mode is
    `macs_both_nonzero`."""
    import zeroskip
    acts = rng.integers(-128, 128, (1, 96)).astype(np.int8)
    acts[0, ::3] = 0
    weights = random_weights(rng, 96, 40, density=0.2)
    _, skip = zeroskip.gemm(acts, weights, rows=4, cols=4)
    _, dense = zeroskip.gemm(acts, weights, rows=4, cols=4, mode="dense")
    assert skip["dense_cycles"] == dense["cycles"] == dense["dense_cycles"]
    assert skip["speedup"] == round(dense["cycles"] / skip["cycles"], 3) > 1
    assert (skip["provenance"]["dense_cycles"], dense["provenance"]["dense_cycles"]) == (
        "model", "rtl")
    assert skip["fraction_of_ideal"] < 0.3 < 0.9 < skip["fraction_of_mapped_ideal"] <= 1
    assert skip["macs_executed"] == skip["macs_both_nonzero"] < skip["macs_effectual"]


def test_mapped_bound():
    from zeroskip.sim.model import mapped_ideal_cycles
    weights = np.zeros((10, 5), np.int8)
    weights[:4, 0] = 1      # a column of 4 nonzeros
    weights[:2, 1:3] = 1    # two of 2
    # 8 nonzeros over min(cols=8, 3 busy columns) lanes, but no lane can split the 4
    assert mapped_ideal_cycles(weights, m=1, rows=8, cols=8) == 4
    assert mapped_ideal_cycles(weights, m=20, rows=8, cols=2) == 3 * 4  # 3 M-tiles of 8 / 2
    assert mapped_ideal_cycles(np.zeros((3, 3), np.int8), m=5, rows=2, cols=2) == 0
