"""CSC: per column, the nonzero values and their absolute row indices, plus column pointers
(EIE, Eyeriss v2)."""

from dataclasses import dataclass

import numpy as np

from ...config import bits_for

__all__ = ["CSCMatrix", "encode", "decode", "size_bits"]


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
    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(f"weights must be 2-D, not {weights.ndim}-D")
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
