"""N:M structured sparsity: in every group of M consecutive weights down a column at most N are
nonzero; each group stores exactly N values and their ceil(log2 M)-bit positions (NVIDIA Sparse
Tensor Core, Arm S2TA). Groups with fewer than N nonzeros are padded with zero entries."""

from dataclasses import dataclass

import numpy as np

from zeroskip.config import bits_for
from zeroskip.sim.loaders import as_int8_matrix
from zeroskip.sim.formats.lane import Presented

__all__ = ["NMMatrix", "encode", "decode", "size_bits", "check", "parse"]


def parse(text):
    """``"2:4"`` -> (2, 4), validated: 1 <= N < M <= 16."""
    try:
        n, m = (int(x) for x in str(text).split(":"))
    except ValueError:
        raise ValueError(f"N:M must look like 2:4, not {text!r}") from None
    if not 1 <= n < m <= 16:
        raise ValueError(f"N:M needs 1 <= N < M <= 16, not {n}:{m}")
    return n, m


@dataclass(frozen=True)
class NMMatrix:
    """A K × N_cols matrix in N:M form: ``values[c, g, s]`` and ``positions[c, g, s]`` are slot
    ``s`` of group ``g`` (rows ``g*M .. g*M+M-1``) of column ``c``, positions increasing."""
    shape: tuple
    n: int
    m: int
    values: np.ndarray
    positions: np.ndarray


def violations(weights, n, m):
    """(column, first row) of every group holding more than ``n`` nonzeros."""
    k, cols = weights.shape
    bad = []
    for start in range(0, k, m):
        counts = np.count_nonzero(weights[start:start + m], axis=0)
        bad += [(int(c), start) for c in np.flatnonzero(counts > n)]
    return sorted(bad)


def encode(weights, n=2, m=4):
    weights = as_int8_matrix(weights, "weights")  # never wrap an out-of-range value
    k, cols = weights.shape
    bad = violations(weights, n, m)
    if bad:
        c, start = bad[0]
        raise ValueError(f"weights break the {n}:{m} pattern: column {c}, rows {start}.."
                         f"{min(start + m, k) - 1} hold "
                         f"{np.count_nonzero(weights[start:start + m, c])} nonzeros "
                         f"({len(bad)} such groups)")
    groups = -(-k // m)
    values = np.zeros((cols, groups, n), np.int8)
    positions = np.zeros((cols, groups, n), np.int64)
    for c in range(cols):
        for g in range(groups):
            block = weights[g * m:(g + 1) * m, c]
            nz = np.flatnonzero(block)
            # padding zeros take the lowest free positions (any position of a full group of M);
            # slots stay sorted by position so a decoder can walk rows in order
            free = [p for p in range(m) if p not in set(nz.tolist())]
            slots = sorted(nz.tolist() + free[:n - len(nz)])
            positions[c, g] = slots
            values[c, g] = [block[p] if p < len(block) else 0 for p in slots]
    return NMMatrix((k, cols), n, m, values, positions)


def decode(matrix):
    k, cols = matrix.shape
    weights = np.zeros((matrix.values.shape[1] * matrix.m, cols), np.int8)
    c, g, s = np.nonzero(matrix.values)
    weights[g * matrix.m + matrix.positions[c, g, s], c] = matrix.values[c, g, s]
    return weights[:k]


def size_bits(matrix):
    """Exact storage: N entries of an 8-bit value and a position per group of M."""
    return int(matrix.values.size) * (8 + bits_for(matrix.m))


# Lane level -----------------------------------------------------------------------------------

def check(weights, config):
    bad = violations(weights, config.nm_n, config.nm_m)
    if bad:
        encode(weights, config.nm_n, config.nm_m)  # raises with the details


class Cursor:
    """Model of :class:`zeroskip.hw.decoders.NMDecoder`'s reader on one column: the N entries of
    every group in order; a zero (padding) entry is skipped in one cycle without a token."""

    def __init__(self, column, k, config):
        matrix = encode(column[:, None], config.nm_n, config.nm_m)
        rows = (np.arange(matrix.values.shape[1])[:, None] * config.nm_m + matrix.positions[0])
        self.entries = list(zip(rows.ravel().tolist(), matrix.values[0].ravel().tolist()))
        self.index = 0

    def present(self):
        if self.index == len(self.entries):
            return Presented(exhausted=True)
        row, value = self.entries[self.index]
        if value == 0:
            return Presented(floor=row + 1)
        return Presented(valid=True, row=row, value=value,
                         last=self.index == len(self.entries) - 1)

    def advance(self, consume):
        row, value = self.entries[self.index] if self.index < len(self.entries) else (0, 1)
        if consume or value == 0:
            self.index += 1


def lane_image(columns, k, config):
    entries = []
    for column in columns:
        matrix = encode(column[:, None], config.nm_n, config.nm_m)
        entries += [{"value": int(v), "position": int(p)}
                    for v, p in zip(matrix.values[0].ravel(), matrix.positions[0].ravel())]
    return {"entries": entries}
