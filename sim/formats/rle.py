"""Run-length: each nonzero is stored with the number of zeros before it in its column (Eyeriss,
EIE's relative index). A run longer than the field takes an escape entry: the all-ones run code
with the value byte counting extra zeros. Column pointers mark where each column ends."""

from dataclasses import dataclass

import numpy as np

from zeroskip.config import bits_for
from zeroskip.sim.loaders import as_int8_matrix
from zeroskip.sim.formats.lane import Presented

__all__ = ["RLEMatrix", "encode", "decode", "size_bits", "check"]


@dataclass(frozen=True)
class RLEMatrix:
    """``runs``/``values`` entries column by column, ``pointers`` (N + 1), ``run_bits``."""
    shape: tuple
    run_bits: int
    runs: np.ndarray
    values: np.ndarray
    pointers: np.ndarray


def escape_code(run_bits):
    return (1 << run_bits) - 1


def escape_skip(run_bits, value):
    """Zeros an escape entry stands for: the run code plus the value byte read unsigned."""
    return escape_code(run_bits) + (int(value) & 0xFF)


def encode_column(column, run_bits):
    """(run, value) entries of one column."""
    escape = escape_code(run_bits)
    entries = []
    previous = -1
    for row in np.flatnonzero(column).tolist():
        gap = row - previous - 1
        while gap >= escape:
            skip = min(gap, escape + 255)
            entries.append((escape, skip - escape))
            gap -= skip
        entries.append((gap, int(column[row])))
        previous = row
    return entries


def encode(weights, run_bits=4):
    weights = as_int8_matrix(weights, "weights")  # never wrap an out-of-range value
    k, n = weights.shape
    runs, values, pointers = [], [], [0]
    for c in range(n):
        entries = encode_column(weights[:, c], run_bits)
        runs += [r for r, _ in entries]
        values += [v for _, v in entries]
        pointers.append(len(runs))
    as_int8 = np.array(values, np.int64)
    as_int8 = np.where(as_int8 > 127, as_int8 - 256, as_int8).astype(np.int8)
    return RLEMatrix((k, n), run_bits, np.array(runs, np.int64), as_int8,
                     np.array(pointers, np.int64))


def decode(matrix):
    k, n = matrix.shape
    weights = np.zeros((k, n), np.int8)
    escape = escape_code(matrix.run_bits)
    for c in range(n):
        row = -1
        for i in range(matrix.pointers[c], matrix.pointers[c + 1]):
            if matrix.runs[i] == escape:
                row += escape_skip(matrix.run_bits, matrix.values[i])
            else:
                row += matrix.runs[i] + 1
                weights[row, c] = matrix.values[i]
    return weights


def size_bits(matrix):
    """Exact storage: per entry an 8-bit value and a run field; N + 1 column pointers."""
    k, n = matrix.shape
    entries = int(matrix.runs.size)
    return entries * (8 + matrix.run_bits) + (n + 1) * bits_for(entries + 1)


# Lane level -----------------------------------------------------------------------------------

def check(weights, config):
    """Any int8 matrix is representable."""


class Cursor:
    """Model of :class:`zeroskip.hw.decoders.RLEDecoder`'s reader on one column. It sees two
    entries at once, so an escape followed by a nonzero costs one cycle; an escape followed by
    another escape costs one cycle of its own."""

    def __init__(self, column, k, config):
        self.run_bits = config.rle_run_bits
        self.entries = encode_column(column, self.run_bits)
        self.index, self.base = 0, 0

    def _decode(self):
        escape = escape_code(self.run_bits)
        entries, i = self.entries, self.index
        if i == len(entries):
            return "end", None
        run, value = entries[i]
        if run != escape:
            return "nonzero", (self.base + run, value, i + 1)
        skip = escape_skip(self.run_bits, value)
        if i + 1 < len(entries) and entries[i + 1][0] != escape:
            run1, value1 = entries[i + 1]
            return "nonzero", (self.base + skip + run1, value1, i + 2)
        return "skip", (self.base + skip, None, i + 1)

    def present(self):
        kind, info = self._decode()
        if kind == "end":
            return Presented(exhausted=True)
        row, value, after = info
        if kind == "skip":
            return Presented(floor=row)
        return Presented(valid=True, row=row, value=value, last=after == len(self.entries))

    def advance(self, consume):
        kind, info = self._decode()
        if kind == "skip":
            self.base, _, self.index = info
        elif kind == "nonzero" and consume:
            row, _, self.index = info
            self.base = row + 1


def lane_image(columns, k, config):
    entries, pointers = [], [0]
    for column in columns:
        entries += [{"run": r, "value": v} for r, v in encode_column(column, config.rle_run_bits)]
        pointers.append(len(entries))
    return {"entries": entries, "pointers": pointers}
