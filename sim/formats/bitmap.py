"""Bitmap: one bit per weight marks the nonzeros, which are stored packed (NVDLA weight
compression, SIGMA).

The mask is cut into ``width``-bit words down each column; only words with a set bit are stored,
and a per-column occupancy summary (one bit per word) says which. A decoder therefore never
fetches an all-zero word: it jumps from one occupied word to the next through the summary.
Value pointers mark where each column's values end."""

from dataclasses import dataclass

import numpy as np

from zeroskip.config import bits_for
from zeroskip.sim.loaders import as_int8_matrix
from zeroskip.sim.formats.lane import Presented

__all__ = ["BitmapMatrix", "encode", "decode", "size_bits", "check"]


@dataclass(frozen=True)
class BitmapMatrix:
    """``mask`` (K × N bool), ``values`` (nonzeros column by column), ``pointers`` (N + 1) and
    the word ``width`` of the stored mask."""
    shape: tuple
    width: int
    mask: np.ndarray
    values: np.ndarray
    pointers: np.ndarray


def encode(weights, width=64):
    weights = as_int8_matrix(weights, "weights")  # never wrap an out-of-range value
    k, n = weights.shape
    mask = weights != 0
    columns, rows = np.nonzero(mask.T)
    pointers = np.zeros(n + 1, np.int64)
    np.cumsum(mask.sum(axis=0), out=pointers[1:])
    return BitmapMatrix((k, n), width, mask, weights[rows, columns].astype(np.int8), pointers)


def decode(matrix):
    weights = np.zeros(matrix.shape, np.int8)
    columns, rows = np.nonzero(matrix.mask.T)
    weights[rows, columns] = matrix.values
    return weights


def column_words(column, width):
    """The column's mask as ``width``-bit words, row 0 in bit 0 of word 0."""
    bits = np.zeros(-(-len(column) // width) * width, bool)
    bits[:len(column)] = np.asarray(column) != 0
    return [sum(1 << int(i) for i in np.flatnonzero(bits[w:w + width]))
            for w in range(0, len(bits), width)]


def size_bits(matrix):
    """Exact storage: a summary bit per mask word, the occupied mask words, 8 bits per
    nonzero and N + 1 value pointers."""
    k, n = matrix.shape
    words_per_column = -(-k // matrix.width)
    occupied = sum(sum(1 for w in column_words(matrix.mask[:, c], matrix.width) if w)
                   for c in range(n))
    nnz = int(matrix.values.size)
    return (n * words_per_column + matrix.width * occupied + 8 * nnz +
            (n + 1) * bits_for(nnz + 1))


# Lane level -----------------------------------------------------------------------------------

def check(weights, config):
    """Any int8 matrix is representable."""


def column_image(column, width):
    """(summary, occupied words) of one column."""
    words = column_words(column, width)
    summary = sum(1 << i for i, w in enumerate(words) if w)
    return summary, [w for w in words if w]


class Cursor:
    """Model of :class:`zeroskip.hw.decoders.BitmapDecoder`'s reader on one column: the set
    bits of the occupied words, lowest first, one per cycle; never a wait."""

    def __init__(self, column, k, config):
        self.width = config.bitmap_width
        self.summary, self.words = column_image(column, self.width)
        self.values = np.asarray(column)[np.asarray(column) != 0].tolist()
        self.word, self.bits, self.index = 0, self.words[0] if self.words else 0, 0

    def present(self):
        if self.index == len(self.values):
            return Presented(exhausted=True)
        base = ((self.summary & -self.summary).bit_length() - 1) * self.width
        low = (self.bits & -self.bits).bit_length() - 1
        return Presented(valid=True, row=base + low, value=self.values[self.index],
                         last=self.index == len(self.values) - 1)

    def advance(self, consume):
        if not consume:
            return
        self.bits &= self.bits - 1
        self.index += 1
        if self.bits == 0:
            self.summary &= self.summary - 1
            self.word += 1
            self.bits = self.words[self.word] if self.word < len(self.words) else 0


def lane_image(columns, k, config):
    summaries, words, values, pointers = [], [], [], [0]
    for column in columns:
        summary, occupied = column_image(column, config.bitmap_width)
        summaries.append(summary)
        words += occupied
        values += [int(v) for v in column[column != 0]]
        pointers.append(len(values))
    return {"summaries": summaries, "masks": words, "values": values, "pointers": pointers}
