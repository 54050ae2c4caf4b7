"""cocotb (Verilator and Icarus): malformed compressed streams are flagged, stop the lane within
a bounded number of cycles and leave the next job correct; a reset in the middle of a job leaves
the next job correct."""

import copy

import numpy as np
import pytest

from zeroskip.config import LANE_KINDS, ArrayConfig, DecodeStatus, Mode
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.rtl.runner import run_programs

from .rtl import simulators
from .weights import fit_n_of_m, random_weights


#: memory cut short by the "truncated" cases: half of it is loaded
TRUNCATED_MEMORY = {"csc": "entries", "rle": "entries", "nm": "entries", "bitmap": "values"}


def corrupt(program, fmt, how, lane):
    """A copy of ``program`` whose ``lane`` memory holds a malformed stream (its first column
    must be W's column 0)."""
    program = copy.deepcopy(program)
    image = program.runs[0].lane_images[lane]
    _, k, _ = program.shape
    if how == "truncated":    # the host loads only half of a memory
        words = image[TRUNCATED_MEMORY[fmt]]
        del words[len(words) // 2:]
    elif how == "truncated_pointers":  # the lane's only column has no end pointer
        del image["pointers"][1:]
    elif fmt == "csc" and how == "row_out_of_range":
        image["entries"][1]["row"] = k + 2
    elif fmt == "csc" and how == "rows_not_increasing":
        image["entries"][1]["row"] = image["entries"][0]["row"]
    elif fmt == "rle":  # a run past the end of the column
        image["entries"][0]["run"] = (1 << program.config.rle_run_bits) - 2
    elif fmt == "nm":   # a repeated position inside a group
        image["entries"][1]["position"] = image["entries"][0]["position"]
    elif fmt == "bitmap":  # the summary claims a mask word beyond K
        image["summaries"][0] = 1 << 3
    return program


#: (lane, malformation, status in skip mode, status in dense mode or None for any)
CASES: list[tuple[str, str, DecodeStatus, DecodeStatus | None]] = [
    ("csc", "row_out_of_range", DecodeStatus.ROW_OUT_OF_RANGE, None),
    ("csc", "rows_not_increasing", DecodeStatus.ROWS_NOT_INCREASING, None),
    ("rle", "run_past_column_end", DecodeStatus.ROW_OUT_OF_RANGE, None),
    ("nm", "repeated_position", DecodeStatus.ROWS_NOT_INCREASING, None),
    ("bitmap", "word_beyond_k", DecodeStatus.ROW_OUT_OF_RANGE, None),
    ("csc-pipelined", "row_out_of_range", DecodeStatus.ROW_OUT_OF_RANGE, None),
         ("csc-pipelined", "rows_not_increasing", DecodeStatus.ROWS_NOT_INCREASING, None)]
CASES += [(lane, "truncated", DecodeStatus.TRUNCATED, DecodeStatus.TRUNCATED)
          for lane in ("csc", "rle", "nm", "bitmap", "csc-pipelined")]
CASES += [(lane, "truncated_pointers", DecodeStatus.TRUNCATED, DecodeStatus.TRUNCATED)
          for lane in ("csc", "rle", "bitmap", "csc-pipelined")]


@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("lane_kind,how,code,dense_code", CASES,
                         ids=[f"{f}-{h}" for f, h, _, _ in CASES])
def test_malformed_stream_is_flagged_and_the_next_job_is_right(sim, lane_kind, how, code,
                                                               dense_code, rng):
    config = ArrayConfig.for_capacity(4, 4, **LANE_KINDS[lane_kind])
    fmt = config.fmt
    k = 10
    acts = rng.integers(-128, 128, (6, k)).astype(np.int8)
    weights = np.zeros((k, 4), np.int8)
    weights[[0, 1, 5, 8], 0] = [3, -4, 5, 7]
    weights[:, 1:] = random_weights(rng, k, 3, density=0.5)
    if fmt == "nm":
        weights = fit_n_of_m(weights, config.nm_n, config.nm_m)
    expected_codes = {Mode.SKIP: code, Mode.DENSE: dense_code}
    for mode, expected in expected_codes.items():
        good = compile_gemm(acts, weights, config, mode)
        (run,) = good.runs
        lane = next(i for i, cols in enumerate(run.lane_columns) if cols and cols[0] == 0)
        bad = corrupt(good, fmt, how, lane)
        # the well-formed job first, so a truncated stream has its stale words behind it
        rtl_before, rtl_bad, rtl_good = run_programs([good, bad, good], sim)
        assert not rtl_before.faults
        faults = rtl_bad.faults
        assert faults, f"{mode.name}: the malformed stream was not flagged"
        assert faults[0][1] == lane
        if expected is not None:
            assert faults[0][2] == expected
        # it stopped: no more cycles than the whole well-formed run plus one column of K
        assert rtl_bad.counters[0]["cycles"] <= good.predicted_cycles + k + 8
        # the next job, after the harness resets the faulted accelerator, is right
        assert not rtl_good.faults
        np.testing.assert_array_equal(assemble(good, rtl_good.results),
                                      golden.gemm(acts, weights))


@pytest.mark.parametrize("sim", simulators())
def test_reset_in_the_middle_of_a_job(sim, rng):
    config = ArrayConfig.for_capacity(4, 4)
    acts = rng.integers(-128, 128, (20, 40)).astype(np.int8)
    first = compile_gemm(acts, random_weights(rng, 40, 12, density=0.5), config, Mode.DENSE)
    weights = random_weights(rng, 40, 9, density=0.3)
    second = compile_gemm(acts, weights, config, Mode.SKIP)
    results = run_programs([first, second, first, second], sim, abort_after=[57, None, 3, None])
    assert results[0] is None and results[2] is None
    for rtl in results[1::2]:
        assert not rtl.faults
        np.testing.assert_array_equal(assemble(second, rtl.results), golden.gemm(acts, weights))
        assert rtl.counters[0]["cycles"] == second.predicted_cycles
