"""Every board's own configuration over random GEMM shapes within its documented limits (any M
and N, K up to its ``max_k``): the compiler must fit every one of them (host, hypothesis), and
`zeroskip gemm --board B` must simulate that exact configuration bit-exact on the RTL."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zeroskip.config import Mode
from zeroskip.platforms.boards import BOARDS
from zeroskip.sim import golden
from zeroskip.sim.compiler import compile_gemm
from zeroskip.sim.formats import csc
from zeroskip.sim.patterns import sparse_weights

from .rtl import simulators
from .test_cli import zeroskip


#: every board's configurations: (board, arch)
BOARD_ARCHS = [(name, arch) for name, board in BOARDS.items()
               for arch in ["zeroskip"] + (["dense"] if board.dense_config else [])]


@st.composite
def board_gemms(draw, config):
    m = draw(st.integers(1, 300))
    k = draw(st.integers(1, config.max_k))
    n = draw(st.integers(1, 500))
    density = draw(st.sampled_from([1.0, 0.5, 0.25, 0.1, 0.02, 0.0]))
    pattern = draw(st.sampled_from(["uniform", "block4x4", "heavy_tailed"]))
    seed = draw(st.integers(0, 2**32 - 1))
    mode = draw(st.sampled_from(list(Mode) if config.arch == "zeroskip" else [Mode.DENSE]))
    return config, (m, k, n), pattern, density, seed, mode


def _check_program(program, m, n):
    config = program.config
    for run in program.runs:
        assert all(len(cols) <= config.pointer_depth - 1 for cols in run.lane_columns)
        assert all(run.m_tiles * len(cols) <= config.out_depth for cols in run.lane_columns)
        assert run.acts.shape[1] <= config.act_depth
        if config.column_results and run.k < config.rows:
            # no column can be padded to `rows` tokens: one output per run and lane
            assert all(run.m_tiles * len(cols) <= 1 for cols in run.lane_columns)
    # every output of C is produced by exactly one run and lane (all-zero columns are skipped)
    covered = np.zeros((m, n), np.int64)
    for run in program.runs:
        rows = min(run.m_tiles * config.rows, m - run.m_start)
        for cols in run.lane_columns:
            covered[run.m_start:run.m_start + rows, cols] += 1
    assert covered.max() <= 1


@pytest.mark.parametrize("board,arch", BOARD_ARCHS)
def test_every_shape_within_the_limits_compiles(board, arch):
    @given(board_gemms(BOARDS[board].for_arch(arch).config))
    def check(case):
        config, (m, k, n), pattern, density, seed, mode = case
        rng = np.random.default_rng(seed)
        acts = np.zeros((m, k), np.int8)
        weights = sparse_weights(rng, k, n, pattern, density)
        _check_program(compile_gemm(acts, weights, config, mode), m, n)
    check()


def test_ulx3s_column_split_respects_the_output_memory():
    """The case that used to fail: K = 256 at 90% sparsity, N = 130..400 on the ULX3S (16
    results per PE, 31 columns per lane): a lane's column list must fit its output memory."""
    config = BOARDS["ulx3s-85f"].config
    rng = np.random.default_rng(18)
    for n in (130, 200, 257, 400):
        weights = sparse_weights(rng, 256, n, "uniform", 0.1)
        _check_program(compile_gemm(np.ones((64, 256), np.int8), weights, config), 64, n)


@pytest.mark.parametrize("board,arch,shape", [("icebreaker", "zeroskip", (21, 256, 5)),
                                              ("ulx3s-85f", "zeroskip", (20, 256, 150)),
                                              ("icebreaker", "dense", (9, 256, 11))])
@pytest.mark.rtl
def test_gemm_board_simulates_that_boards_configuration(tmp_path, rng, board, arch, shape):
    """`gemm --board B [--arch A]` without --port: that board's exact configuration, simulated
    (the ULX3S' dense one: tb/test_dense_rtl.py)."""
    m, k, n = shape
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    weights = sparse_weights(rng, k, n, "uniform", 0.1)
    acts[0] = -128
    weights[:, 0] = -128  # K at the limit, -128 × -128 in one output
    np.save(tmp_path / "A.npy", acts)
    np.save(tmp_path / "W.npy", weights)
    proc = zeroskip("gemm", "--board", board, "--acts", tmp_path / "A.npy", "--weights",
                    tmp_path / "W.npy", "--out", tmp_path / "C.npy", "--report",
                    tmp_path / "r.json", "--arch", arch)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), golden.gemm(acts, weights))
    report = json.loads((tmp_path / "r.json").read_text())
    config = BOARDS[board].for_arch(arch).config
    assert report["arch"] == arch
    assert (report["rows"], report["cols"]) == (config.rows, config.cols)
    assert report["cycles"] == report["predicted_cycles"]


@pytest.mark.rtl
@pytest.mark.parametrize("sim", simulators())
def test_icebreaker_reaches_085_of_ideal_at_90_percent_sparsity(tmp_path, sim):
    """Issue 16: 64x256x64 at 90% random weight sparsity on the iCEBreaker's 16 PEs, at least
    0.85 of the work-proportional ideal by the RTL's cycle counter (0.55 with one output per PE
    and run: 21 cycles of fill and drain per output column). Its PE column keeps the results
    in one memory (column_results), so a run computes up to 16 outputs per PE."""
    rng = np.random.default_rng(2026)
    acts = rng.integers(-128, 128, (64, 256)).astype(np.int8)
    weights = (rng.integers(-128, 128, (256, 64)) * (rng.random((256, 64)) >= 0.9)).astype(np.int8)
    np.save(tmp_path / "A.npy", acts)
    np.save(tmp_path / "W.npy", weights)
    proc = zeroskip("gemm", "--board", "icebreaker", "--acts", tmp_path / "A.npy", "--weights",
                    tmp_path / "W.npy", "--out", tmp_path / "C.npy", "--report",
                    tmp_path / "r.json", "--sim", sim)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), golden.gemm(acts, weights))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["cycles"] == report["predicted_cycles"]
    assert report["fraction_of_ideal"] >= 0.85, report["fraction_of_ideal"]


def test_gemm_board_refuses_array_options(tmp_path):
    np.save(tmp_path / "A.npy", np.ones((2, 4), np.int8))
    np.save(tmp_path / "W.npy", np.ones((4, 2), np.int8))
    proc = zeroskip("gemm", "--board", "icebreaker", "--rows", 4, "--acts", tmp_path / "A.npy",
                    "--weights", tmp_path / "W.npy", "--out", tmp_path / "C.npy")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("zeroskip: error: --board icebreaker fixes the array "
                                   "configuration; drop --rows")
    assert not (tmp_path / "C.npy").exists()


@pytest.mark.rtl
def test_icebreaker_runs_an_mnist_sized_layer(tmp_path, rng):
    """K = 784 on the iCEBreaker, whose 24-bit accumulators hold K = 256: four K-chunks."""
    acts = rng.integers(0, 128, (16, 784)).astype(np.int8)
    weights = sparse_weights(rng, 784, 64, "uniform", 0.1)
    np.save(tmp_path / "A.npy", acts)
    np.save(tmp_path / "W.npy", weights)
    proc = zeroskip("gemm", "--board", "icebreaker", "--acts", tmp_path / "A.npy", "--weights",
                    tmp_path / "W.npy", "--out", tmp_path / "C.npy", "--report",
                    tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), golden.gemm(acts, weights))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["k_chunks"] == 4 and report["cycles"] == report["predicted_cycles"]


def test_column_results_pad_a_short_column_to_rows_tokens():
    """With one result memory per PE column, a column's closing token must follow the previous
    one's by `rows` cycles (else two PEs close in one cycle): the lane stores zeros in the
    lowest free rows of a shorter column, which the PEs gate."""
    config = BOARDS["icebreaker"].config
    assert config.column_results and config.min_column_tokens == config.rows == 16
    column = np.zeros(256, np.int8)
    column[[3, 200]] = [5, -7]
    entries = csc.lane_entries(column, 256, config)
    assert len(entries) == 16
    assert [row for row, _ in entries] == sorted({3, 200, *range(15)})
    assert {row: value for row, value in entries if value} == {3: 5, 200: -7}
    assert len(csc.lane_entries(np.ones(256, np.int8), 256, config)) == 256  # long: as is
    assert len(csc.lane_entries(column[:5], 5, config)) == 5                  # K < rows


def test_k_chunks_of_an_n_m_group_longer_than_max_k():
    """A 5:9 pattern on max_k 8 (found by `make regress`): K up to max_k is one chunk, more is
    bad input, not a division by zero."""
    from zeroskip.sim.compiler import GemmTooLarge, k_chunks
    assert k_chunks(8, 8, 9) == [(0, 8)] and k_chunks(3, 8, 9) == [(0, 3)]
    with pytest.raises(GemmTooLarge, match="whole groups of 9 rows"):
        k_chunks(9, 8, 9)
    assert k_chunks(20, 10, 4) == [(0, 8), (8, 16), (16, 20)]  # as before where a group fits


def test_board_table_compares_the_architectures_per_lut():
    """`make boards`: zeroskip / dense per kLUT, per DSP and per BRAM at each sparsity, and the
    crossover of each where the ratio passes 1, interpolated linearly."""
    from zeroskip.platforms.table import comparisons, markdown, with_efficiency

    def row(arch, gmacs, luts, dsps, brams):
        return with_efficiency({
            "board": "b", "device": "d", "arch": arch, "pe_count": 4, "rows": 2, "cols": 2,
            "clock_mhz": 100, "fmax_mhz": 101.0, "timing_met": True, "luts_used": luts,
            "luts_total": 9000, "ffs_used": 1, "dsps_used": dsps, "dsps_total": 9,
            "brams_used": brams, "brams_total": 9, "peak_dense_gmacs": 1.0,
            "throughput": [{"sparsity": s, "cycles": 10, "dense_equivalent_gmacs": g}
                           for s, g in zip((0.0, 0.5, 0.75, 0.9), gmacs)]})
    rows = [row("zeroskip", [1, 2, 4, 10], 2000, 4, 8), row("dense", [2, 2, 2, 2], 1000, 8, 2)]
    compared, = comparisons(rows)
    assert [r["per_klut"] for r in compared["ratios"]] == [0.25, 0.5, 1.0, 2.5]
    assert [r["per_dsp"] for r in compared["ratios"]] == [1.0, 2.0, 4.0, 10.0]
    assert [r["per_bram"] for r in compared["ratios"]] == [0.125, 0.25, 0.5, 1.25]
    assert compared["crossover_sparsity"] == 0.75
    assert compared["crossovers"] == {"per_klut": 0.75, "per_dsp": None,
                                      "per_bram": pytest.approx(0.75 + 0.15 * 0.5 / 0.75)}
    assert "BRAM 85%" in markdown(rows, [compared]) and "DSP below 0%" in \
        markdown(rows, [compared])
    rows[0]["throughput"][2]["per_klut"] = 1.5     # ratio 0.75 at 75%: crossover in 75..90%
    assert comparisons(rows)[0]["crossover_sparsity"] == pytest.approx(0.75 + 0.15 / 7, abs=1e-3)
    assert "crossover sparsity" in markdown(rows, comparisons(rows))
    assert comparisons(rows[:1]) == []     # a board without a dense build is not compared


def test_board_table_rebuilds_one_architecture_and_keeps_the_others():
    """`make boards ARCH=dense`: the fresh dense rows replace the boards.json's dense rows in
    place, the zeroskip rows are kept; every row carries its LUTs per PE."""
    from zeroskip.platforms.table import merged_rows, with_efficiency

    def row(board, arch, luts):
        return with_efficiency({"board": board, "arch": arch, "pe_count": 8, "luts_used": luts,
                                "dsps_used": 1, "brams_used": 1, "throughput": []})
    previous = [row("a", "zeroskip", 800), row("a", "dense", 1600), row("b", "zeroskip", 80)]
    fresh = [row("a", "dense", 400), row("b", "dense", 40)]
    merged = merged_rows(fresh, previous)
    assert [(r["board"], r["arch"], r["luts_used"]) for r in merged] == [
        ("a", "zeroskip", 800), ("a", "dense", 400), ("b", "zeroskip", 80), ("b", "dense", 40)]
    assert [r["luts_per_pe"] for r in merged] == [100.0, 50.0, 10.0, 5.0]


def test_area_counts_cells_per_family():
    """`make area`: an iCE40 statistic's flip-flop kinds count as one column; a family
    without a synthesis flow is refused."""
    from zeroskip.platforms.area import _counted, module_cells
    counted = _counted({"SB_DFFE": 3, "SB_DFFSR": 2, "SB_LUT4": 7, "SB_IO": 1}, "ice40")
    assert counted == {"SB_LUT4": 7, "SB_CARRY": 0, "SB_DFF*": 5, "SB_RAM40_4K": 0,
                       "SB_MAC16": 0}
    with pytest.raises(ValueError, match="family must be one of"):
        module_cells(BOARDS["icebreaker"].config, "gowin")


def test_dense_column_results_are_one_result_per_word():
    """The dense array takes column_results (a memory of one result per word per column);
    other formats' lanes and double buffering still refuse it."""
    from zeroskip.config import ArrayConfig
    config = ArrayConfig(rows=3, cols=2, arch="dense", max_k=64, act_depth=64,
                         out_depth=4, column_results=True, pipelined=True)
    assert (config.result_rows, config.result_depth, config.result_read_latency) == (1, 12, 2)
    assert config.fanout_registers
    with pytest.raises(ValueError, match="column_results is built for csc lanes"):
        ArrayConfig(fmt="bitmap", column_results=True)
