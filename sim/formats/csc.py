"""CSC: per column, the nonzero values and their absolute row indices, plus column pointers
(EIE, Eyeriss v2)."""

from dataclasses import dataclass

import numpy as np

from zeroskip.config import bits_for
from zeroskip.sim.loaders import as_int8_matrix
from zeroskip.sim.formats.lane import Presented

__all__ = ["CSCMatrix", "encode", "decode", "size_bits", "lane_entries"]


@dataclass(frozen=True)
class CSCMatrix:
    """A K × N int8 weight matrix in compressed sparse column form.

    Attributes
    ----------
    shape : (int, int)
    values : ndarray of int8, (nnz,)
        Nonzeros, column by column, rows increasing within a column.
    rows : ndarray of int, (nnz,)
        Row index (k) of each nonzero.
    pointers : ndarray of int, (N + 1,)
        ``values[pointers[n]:pointers[n + 1]]`` are the nonzeros of column ``n``.
    """
    shape: tuple
    values: np.ndarray
    rows: np.ndarray
    pointers: np.ndarray

    @property
    def nnz(self):
        return int(self.values.size)

    def column(self, n):
        """(rows, values) of column ``n``."""
        lo, hi = int(self.pointers[n]), int(self.pointers[n + 1])
        return self.rows[lo:hi], self.values[lo:hi]


def encode(weights):
    weights = as_int8_matrix(weights, "weights")  # never wrap an out-of-range value
    k, n = weights.shape
    # Column-major walk: nonzero() on the transpose lists (column, row) pairs column by column.
    columns, rows = np.nonzero(weights.T)
    counts = np.bincount(columns, minlength=n)
    pointers = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=pointers[1:])
    return CSCMatrix(shape=(k, n), values=weights[rows, columns].astype(np.int8),
                     rows=rows.astype(np.int64), pointers=pointers)


def decode(csc):
    k, n = csc.shape
    weights = np.zeros((k, n), dtype=np.int8)
    columns = np.repeat(np.arange(n), np.diff(csc.pointers))
    weights[csc.rows, columns] = csc.values
    return weights


def size_bits(csc):
    """Exact storage: per nonzero an 8-bit value and a row index; N + 1 column pointers."""
    k, n = csc.shape
    return csc.nnz * (8 + bits_for(k)) + (n + 1) * bits_for(csc.nnz + 1)


# Lane level: what one decoder lane holds and emits -------------------------------------------

def check(weights, config):
    """Any int8 matrix is representable."""


class Cursor:
    """Model of :class:`zeroskip.hw.decoders.CSCDecoder`'s reader on one column."""

    def __init__(self, column, k, config):
        self.entries = lane_entries(column, k, config)
        self.index = 0

    def present(self):
        if self.index == len(self.entries):
            return Presented(exhausted=True)
        row, value = self.entries[self.index]
        return Presented(valid=True, row=row, value=value,
                         last=self.index == len(self.entries) - 1)

    def advance(self, consume):
        self.index += int(consume)


def lane_image(columns, k, config):
    """Memory contents of a lane holding ``columns`` (a list of W columns), per memory name of
    :class:`zeroskip.hw.decoders.CSCDecoder`."""
    entries, pointers = [], [0]
    for column in columns:
        entries += [{"row": row, "value": value}
                    for row, value in lane_entries(column, k, config)]
        pointers.append(len(entries))
    return {"entries": entries, "pointers": pointers}


def lane_entries(column, k, config):
    """The ``(row, value)`` entries a lane stores for ``column``: its nonzeros, and stored
    zeros in the lowest free rows while it has fewer than ``config.min_column_tokens`` (and K
    rows allow), so that the lane's tokens for it take that many cycles."""
    rows = np.flatnonzero(column).tolist()
    pad = min(config.min_column_tokens, k) - len(rows)
    if pad > 0:
        taken = set(rows)
        rows = sorted(rows + [r for r in range(k) if r not in taken][:pad])
    return [(int(r), int(column[r])) for r in rows]
