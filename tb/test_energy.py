"""Energy: the RTL's event counters against counts derived independently from the operands,
the energy table's arithmetic, bad tables, and the issue's acceptance GEMM."""

import json

import numpy as np
import pytest

import zeroskip
from zeroskip.cli import main
from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.decoders import decoder_class
from zeroskip.sim import energy
from zeroskip.sim.compiler import compile_gemm
from zeroskip.sim.loaders import BadInput

from .rtl import simulators


def _operands(m, k, n, sparsity, seed=0):
    rng = np.random.default_rng(seed)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    acts[rng.random(acts.shape) < 0.1] = 0  # zero activations: gated, not skipped
    weights = rng.integers(-128, 128, (k, n)).astype(np.int8)
    weights[rng.random(weights.shape) < sparsity] = 0
    return acts, weights


# --- the table (host) ------------------------------------------------------------------------

def test_default_table_cites_a_source_for_every_entry():
    table = energy.EnergyTable.default()
    assert set(table.pj) == set(energy.RESIDENT_EVENTS) | {"static_pj_per_cycle"}
    assert all(table.sources[name] for name in table.pj)
    assert table.pj["mac_executed"] == 0.2 and table.pj["acc_updates"] == 0.1
    assert table.pj["host_words_in"] == 640.0 and "Horowitz" in table.source


def test_estimate_arithmetic():
    table = energy.EnergyTable("t", "test", {name: 0.0 for name in energy.EVENTS} |
                               {"mac_executed": 2.0, "act_operand_reads": 3.0,
                                "host_words_in": 100.0,
                                "static_pj_per_cycle": 0.5}, {})
    counts = {name: 0 for name in energy.EVENTS} | {"mac_executed": 10, "act_operand_reads": 4,
                                                    "host_words_in": 2}
    figures = energy.estimate(counts, 8, table)
    assert figures["energy_breakdown_pj"] == {"compute": 20.0, "onchip_memory": 12.0,
                                              "offchip": 200.0, "static": 4.0}
    assert figures["energy_pj"] == 236.0 == sum(figures["energy_breakdown_pj"].values())
    assert figures["edp_pj_cycles"] == 236.0 * 8
    assert figures["onchip_edp_pj_cycles"] == 36.0 * 8
    assert energy.estimate(None, 8, table)["energy_pj"] is None


def test_a_table_file_replaces_only_its_entries(tmp_path):
    path = tmp_path / "fpga.json"
    path.write_text(json.dumps({"name": "my fpga", "mac_executed": 1.5,
                                "static_pj_per_cycle": 0}))
    table = energy.EnergyTable.load(path)
    assert table.name == "my fpga" and table.pj["mac_executed"] == 1.5
    assert table.pj["static_pj_per_cycle"] == 0.0
    default = energy.EnergyTable.default().pj["act_operand_reads"]
    assert table.pj["act_operand_reads"] == default


@pytest.mark.parametrize("content, message", [
    ('{"mac_exectued": 1}', "unknown key 'mac_exectued'"),
    ('{"act_reads": 1}', "'act_reads' is now 'act_operand_reads'"),
    ('{"mac_executed": -1}', "mac_executed must be a number of picojoules >= 0"),
    ('{"mac_executed": "0.2"}', "must be a number of picojoules"),
    ('{"mac_executed": true}', "must be a number of picojoules"),
    ('{"static_pj_per_cycle": NaN}', "must be a number of picojoules"),
    ('[1, 2]', "expected a JSON object"),
    ('{"name": 3}', "'name' must be a string"),
    ('{', "not a JSON file"),
])
def test_bad_tables_are_bad_input(tmp_path, capsys, content, message):
    path = tmp_path / "table.json"
    path.write_text(content)
    with pytest.raises(BadInput, match=message):
        energy.EnergyTable.load(path)
    # the command: exit 2, one line, before anything runs or is written
    out = tmp_path / "C.npy"
    np.save(tmp_path / "A.npy", np.ones((2, 2), np.int8))
    assert main(["gemm", "--acts", tmp_path / "A.npy", "--weights", tmp_path / "A.npy",
                 "--out", out, "--energy-table", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.split("'")[0] in err, err
    assert not out.exists()


def test_a_missing_table_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        zeroskip.api.GemmRunner(energy_table=tmp_path / "none.json")


def test_board_configurations_have_no_energy_counters():
    """Their builds were measured without them; the report says there is no estimate."""
    from zeroskip.platforms.boards import BOARDS
    assert not any(board.config.energy_counters for board in BOARDS.values())
    # a configuration round-trips through its dict, with or without the counters (a sweep's
    # board build rebuilds it from one), and the boards keep the digests they had before (the
    # boards' are new since they keep their results in column memories)
    for config in [ArrayConfig(), *(board.config for board in BOARDS.values())]:
        assert ArrayConfig.from_dict(config.to_dict()) == config
    assert BOARDS["ulx3s-85f"].config.digest() == "4cc1aef794a2"
    assert BOARDS["icebreaker"].config.digest() == "bd2970f8a9ca"
    program = compile_gemm(*_operands(8, 16, 4, 0.5), BOARDS["ulx3s-85f"].config, Mode.SKIP)
    assert energy.events(program, None) is None


#: The hardware counter of each event labelled ``rtl``: the event is that counter's reading.
COUNTED = {"mac_executed": "macs_executed", "mac_gated": "macs_gated", "tokens": "lane_busy",
           "lane_reads": "lane_reads", "act_writes": "act_writes", "lane_writes": "lane_writes"}


class _Counters:
    """A RunResult's ``total`` over made-up counter readings."""

    def __init__(self, readings):
        self.readings = readings

    def total(self, name):
        return self.readings[name]


def test_every_event_has_its_own_source():
    """One label per event (issue 34): ``rtl`` exactly where the event is the reading of a
    hardware counter of that activity, ``derived`` where it is computed from counters, ``host``
    where no counter enters it."""
    sources = energy.EVENT_SOURCES
    assert set(sources) == set(energy.EVENTS)
    assert sources["mac_executed"] == energy.RTL
    assert {name for name, source in sources.items() if source == energy.RTL} == set(COUNTED)
    assert {name for name, source in sources.items() if source == energy.DERIVED} == {
        "acc_updates", "act_operand_reads", "result_writes"}
    assert {name for name, source in sources.items() if source == energy.HOST} == {
        "result_reads", "host_words_in", "host_words_out"}
    from zeroskip.hw.layouts import COUNTERS, ENERGY_COUNTERS
    program = compile_gemm(*_operands(9, 20, 7, 0.5), ArrayConfig.for_capacity(4, 4))
    names = COUNTERS + ENERGY_COUNTERS
    low = energy.events(program, _Counters({name: 1000 + i for i, name in enumerate(names)}))
    high = energy.events(program, _Counters({name: 5000 + 7 * i for i, name in
                                             enumerate(names)}))
    assert low is not None and high is not None
    for name, source in sources.items():
        if source == energy.RTL:
            assert low[name] == 1000 + names.index(COUNTED[name]), name
        elif source == energy.DERIVED:
            assert low[name] != high[name], name  # counters enter it
        else:
            assert low[name] == high[name], name  # no counter does


# --- on the RTL ------------------------------------------------------------------------------

def _lane_words(program):
    """Lane-memory words the host loads: every word of every lane image of every run."""
    memories = decoder_class(program.config).memories(program.config)
    return sum(len(image[name]) for run in program.runs for image in run.lane_images
               for name in memories)


@pytest.mark.rtl
@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("fmt", ["csc", "bitmap", "rle", "nm"])
def test_events_match_counts_derived_from_the_operands(sim, fmt):
    """M = 13 (not a multiple of the rows), one run per mode; every count by hand. The 4×4
    arrays the other RTL tests build (nm: 2:4)."""
    config = ArrayConfig.for_capacity(4, 4, fmt=fmt)
    m, k, n = 13, 24, 7
    acts, weights = _operands(m, k, n, 0.6)
    if fmt == "nm":  # 2:4: keep the two largest of every group of four down K
        from zeroskip.frontend.prune import _prune_kn
        weights = _prune_kn(weights[None].astype(np.int64), 0, (2, 4))[0].astype(np.int8)
    tiles = -(-m // config.rows)
    nnz = int(np.count_nonzero(weights))
    for mode in ("dense", "gate", "skip"):
        _, report = zeroskip.gemm(acts, weights, config=config, mode=mode, sim=sim)
        events = report["events"]
        program = compile_gemm(acts, weights, config, Mode[mode.upper()])
        assert program.runs and len(program.runs) == 1
        # each activation byte goes to every PE of its row, in all cols copies
        assert events["act_writes"] == tiles * config.rows * k * config.cols
        assert events["lane_writes"] == _lane_words(program)
        # every output closes once per M-tile and writes a word in every PE of its column
        assert events["result_writes"] == tiles * config.rows * n == events["result_reads"]
        effectual = m * nnz                        # valid rows × nonzero weights
        if mode == "skip":
            assert events["mac_executed"] + events["mac_gated"] == effectual
            assert events["mac_executed"] == int(((acts != 0).astype(int) @
                                                  (weights != 0).astype(int)).sum())
        else:
            assert events["act_operand_reads"] == m * k * n
            assert events["tokens"] == tiles * k * n  # every weight, zeros too
            executed = m * k * n if mode == "dense" else \
                int(((acts != 0).astype(int) @ (weights != 0).astype(int)).sum())
            assert events["mac_executed"] == executed
        assert events["acc_updates"] == events["mac_executed"]
        # the lanes read every word they hold at most twice per M-tile (rle reads its entries
        # through two ports), plus a re-read of each column's pointers
        assert events["lane_reads"] > 0
        assert events["lane_reads"] <= tiles * 2 * (_lane_words(program) + n) + 4 * config.cols
        assert events["host_words_in"] == -(-(tiles * config.rows * k * 8 +
                                              program.weight_bits_loaded) // 32)
        assert report["energy_pj"] == pytest.approx(sum(report["energy_breakdown_pj"].values()))
        assert report["provenance"]["events"] == energy.EVENT_SOURCES


@pytest.mark.rtl
def test_acceptance_energy_skip_gate_dense_on_a_90_percent_sparse_gemm():
    """96×256×80 at 90% sparsity on 8×8: energy skip < gate < dense, on-chip EDP dense/skip
    at least 30× (the issue's bar; goal 50×)."""
    acts, weights = _operands(96, 256, 80, 0.9)
    reports = {mode: zeroskip.gemm(acts, weights, rows=8, cols=8, mode=mode)[1]
               for mode in ("skip", "gate", "dense")}
    energies = {mode: r["energy_pj"] for mode, r in reports.items()}
    assert energies["skip"] < energies["gate"] < energies["dense"], energies
    dense, skip = reports["dense"], reports["skip"]
    onchip_ratio = dense["onchip_edp_pj_cycles"] / skip["onchip_edp_pj_cycles"]
    assert onchip_ratio >= 30, onchip_ratio
    # the model of dense mode's energy that skip's report carries is the measured one,
    # but for the lane reads (taken as skip's)
    assert skip["dense_energy_pj"] == pytest.approx(dense["energy_pj"], rel=1e-3)
    assert skip["onchip_edp_ratio_vs_dense"] == pytest.approx(onchip_ratio, rel=1e-2)
