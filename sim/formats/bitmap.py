"""Bitmap: one bit per weight marks the nonzeros, which are stored packed (NVDLA weight
compression, SIGMA); per column a pointer to its first value."""

from dataclasses import dataclass

import numpy as np

from ...config import bits_for
from .lane import Presented

__all__ = ["BitmapMatrix", "encode", "decode", "size_bits", "check"]


@dataclass(frozen=True)
class BitmapMatrix:
    """``mask`` (K × N bool), ``values`` (nonzeros column by column), ``pointers`` (N + 1)."""
    shape: tuple
    mask: np.ndarray
    values: np.ndarray
    pointers: np.ndarray


def encode(weights, **_):
    weights = np.asarray(weights)
    k, n = weights.shape
    mask = weights != 0
    columns, rows = np.nonzero(mask.T)
    pointers = np.zeros(n + 1, np.int64)
    np.cumsum(mask.sum(axis=0), out=pointers[1:])
    return BitmapMatrix((k, n), mask, weights[rows, columns].astype(np.int8), pointers)


def decode(matrix):
    weights = np.zeros(matrix.shape, np.int8)
    columns, rows = np.nonzero(matrix.mask.T)
    weights[rows, columns] = matrix.values
    return weights


def size_bits(matrix):
    """Exact storage: K·N mask bits, 8 bits per nonzero, N + 1 value pointers."""
    k, n = matrix.shape
    nnz = int(matrix.values.size)
    return k * n + 8 * nnz + (n + 1) * bits_for(nnz + 1)


# Lane level -----------------------------------------------------------------------------------

def check(weights, config):
    """Any int8 matrix is representable."""


def column_words(column, width):
    """The column's mask as ``width``-bit words, row 0 in bit 0 of word 0."""
    bits = np.zeros(-(-len(column) // width) * width, bool)
    bits[:len(column)] = column != 0
    return [int(sum(1 << i for i in np.flatnonzero(bits[w:w + width])))
            for w in range(0, len(bits), width)]


class Cursor:
    """Model of :class:`zeroskip.hw.decoders.BitmapDecoder`'s reader on one column: the set
    bits of the current mask word one per cycle, the next word loaded as the last bit of one is
    taken; a word with no bit left costs one cycle."""

    def __init__(self, column, k, config):
        self.width = config.bitmap_width
        self.words = column_words(column, self.width)
        self.values = column[column != 0].tolist()
        self.word, self.bits, self.index = 0, self.words[0], 0

    def _load_next(self):
        self.word += 1
        self.bits = self.words[self.word] if self.word < len(self.words) else 0

    def present(self):
        if self.index == len(self.values):
            return Presented(exhausted=True)
        if self.bits == 0:
            return Presented(floor=(self.word + 1) * self.width)
        low = (self.bits & -self.bits).bit_length() - 1
        return Presented(valid=True, row=self.word * self.width + low,
                         value=self.values[self.index], last=self.index == len(self.values) - 1)

    def advance(self, consume):
        if self.index == len(self.values):
            return
        if self.bits == 0:
            self._load_next()
        elif consume:
            self.bits &= self.bits - 1
            self.index += 1
            if self.bits == 0:
                self._load_next()


def lane_image(columns, k, config):
    words, values, pointers = [], [], [0]
    for column in columns:
        words += column_words(column, config.bitmap_width)
        values += [int(v) for v in column[column != 0]]
        pointers.append(len(values))
    return {"masks": words, "values": values, "pointers": pointers}
