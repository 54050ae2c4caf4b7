"""Host-side units: the CSC format, the column scheduler, the compiler's memory layout."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zeroskip.config import ArrayConfig, Mode, bits_for
from zeroskip.sim.compiler import assign_columns, column_costs, compile_gemm, lane_tokens
from zeroskip.sim.formats import bitmap, csc, nm, rle

from .conftest import small_config
from .weights import fit_n_of_m


@st.composite
def sparse_matrices(draw, max_side=40):
    k = draw(st.integers(1, max_side))
    n = draw(st.integers(1, max_side))
    density = draw(st.sampled_from([0.0, 0.05, 0.25, 0.5, 0.9, 1.0]))
    values = draw(arrays(np.int8, (k, n)))
    mask = draw(arrays(np.float64, (k, n), elements=st.floats(0, 1))) < density
    return (values * mask).astype(np.int8)


@given(sparse_matrices())
def test_csc_round_trip_and_exact_size(weights):
    matrix = csc.encode(weights)
    np.testing.assert_array_equal(csc.decode(matrix), weights)
    k, n = weights.shape
    nnz = np.count_nonzero(weights)
    assert matrix.nnz == nnz
    assert csc.size_bits(matrix) == nnz * (8 + bits_for(k)) + (n + 1) * bits_for(nnz + 1)
    for col in range(n):
        rows, values = matrix.column(col)
        assert list(rows) == sorted(rows)  # rows increase within a column
        np.testing.assert_array_equal(weights[rows, col], values)


@given(sparse_matrices(), st.sampled_from([2, 3, 4, 8]))
def test_rle_round_trip_and_exact_size(weights, run_bits):
    matrix = rle.encode(weights, run_bits)
    np.testing.assert_array_equal(rle.decode(matrix), weights)
    entries = len(matrix.runs)
    assert rle.size_bits(matrix) == (entries * (8 + run_bits) +
                                     (weights.shape[1] + 1) * bits_for(entries + 1))
    assert entries >= np.count_nonzero(weights)


@given(sparse_matrices(), st.sampled_from([8, 16, 64]))
def test_bitmap_round_trip_and_exact_size(weights, width):
    matrix = bitmap.encode(weights, width)
    np.testing.assert_array_equal(bitmap.decode(matrix), weights)
    k, n = weights.shape
    nnz = np.count_nonzero(weights)
    words = -(-k // width)
    padded = np.zeros((words * width, n), bool)
    padded[:k] = weights != 0
    occupied = int(padded.reshape(words, width, n).any(axis=1).sum())
    assert bitmap.size_bits(matrix) == (n * words + width * occupied + 8 * nnz +
                                        (n + 1) * bits_for(nnz + 1))


@given(sparse_matrices(), st.sampled_from([(2, 4), (1, 4), (2, 8), (4, 8), (1, 3), (7, 16)]))
def test_nm_round_trip_exact_size_and_violations(weights, pattern):
    n, m = pattern
    compliant = fit_n_of_m(weights, n, m)
    matrix = nm.encode(compliant, n, m)
    np.testing.assert_array_equal(nm.decode(matrix), compliant)
    k, cols = weights.shape
    assert nm.size_bits(matrix) == cols * -(-k // m) * n * (8 + bits_for(m))
    if nm.violations(weights, n, m):
        with pytest.raises(ValueError, match=f"{n}:{m} pattern: column"):
            nm.encode(weights, n, m)
    else:
        np.testing.assert_array_equal(nm.decode(nm.encode(weights, n, m)), weights)


@given(st.lists(st.integers(0, 300), min_size=1, max_size=200), st.integers(1, 16))
def test_list_scheduling_is_a_partition_within_one_column_of_the_mean(costs, lanes):
    assigned = assign_columns(np.array(costs), lanes)
    flat = sorted(c for lane in assigned for c in lane)
    assert flat == list(range(len(costs)))
    loads = [sum(costs[c] for c in lane) for lane in assigned]
    # LPT bound: the busiest lane exceeds the mean by at most the largest job
    assert max(loads) <= sum(costs) / lanes + max(costs)


@given(sparse_matrices(max_side=24), st.sampled_from(list(Mode)),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 30))
def test_compiled_streams_cover_every_weight_once(weights, mode, rows, cols, m):
    config = small_config(rows=rows, cols=cols, max_k=32, act_depth=256, weight_depth=128,
                          pointer_depth=9, out_depth=32)
    k, n = weights.shape
    acts = np.arange(m * k).reshape(m, k).astype(np.int8)
    program = compile_gemm(acts, weights, config, mode)
    seen = np.zeros((m, k, n), np.int64)  # how often each (row of A, k, column) is multiplied
    for run in program.runs:
        assert run.acts.shape == (rows, run.m_tiles * k)
        for lane in range(cols):
            for token in lane_tokens(program, run, lane):
                if token["bubble"] or token["weight"] == 0:
                    continue
                tile, kk = divmod(token["act_addr"], k)
                j = token["out_addr"] % len(run.lane_columns[lane])
                column = run.lane_columns[lane][j]
                assert weights[kk, column] == token["weight"]
                for r in range(token["rows"]):
                    seen[run.m_start + tile * rows + r, kk, column] += 1
    np.testing.assert_array_equal(seen, np.broadcast_to(weights != 0, (m, k, n)))


def test_column_costs():
    weights = np.array([[0, 1, 0], [0, 2, 3]], np.int8)
    config = small_config()
    assert list(column_costs(weights, Mode.SKIP, config)) == [1, 2, 1]
    assert list(column_costs(weights, Mode.DENSE, config)) == [2, 2, 2]


@pytest.mark.parametrize("bad", [dict(rows=0), dict(cols=-1), dict(fmt="zip"),
                                 dict(max_k=1 << 20, act_depth=1 << 20), dict(pointer_depth=1),
                                 dict(max_k=9000)])
def test_config_validation(bad):
    with pytest.raises((TypeError, ValueError)):
        ArrayConfig(**bad)


@pytest.mark.parametrize("acts,weights,name", [
    (np.full((2, 3), 300, np.int16), np.ones((3, 2), np.int8), "acts"),     # would wrap to 44
    (np.ones((2, 3), np.int8), np.full((3, 2), -129, np.int64), "weights"),
    (np.ones((2, 3), np.float32), np.ones((3, 2), np.int8), "acts"),
    (np.ones((2, 0), np.int8), np.ones((0, 2), np.int8), "acts"),           # K = 0
    (np.ones((2, 3), np.int8), np.ones((3,), np.int8), "weights"),
])
def test_compiler_rejects_operands_it_would_wrap_or_divide_by(acts, weights, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        compile_gemm(acts, weights, small_config())


@pytest.mark.parametrize("encode", [csc.encode, bitmap.encode, rle.encode, nm.encode])
def test_encoders_reject_values_outside_int8(encode):
    with pytest.raises(ValueError, match="weights: value 200 .* outside int8"):
        encode(np.array([[200, 0], [0, 1]], np.int16))


def test_host_crc_is_the_links_crc():
    """The runtime's binascii CRC is the catalog CRC the link's gateware instantiates."""
    from amaranth.lib.crc.catalog import CRC16_CCITT_FALSE

    from zeroskip.platforms.runtime import crc16
    for data in (b"", b"123456789", bytes(range(256)), b"\x5a\x02\x00\x01\xff"):
        assert crc16(data) == CRC16_CCITT_FALSE(data_width=8).compute(data)
