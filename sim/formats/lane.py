"""Cycle-exact model of a decoder lane on one column: the specification the hardware decoders
are tested against, and the cost the host compiler schedules with.

Each format supplies a cursor model mirroring its hardware reader (see
:class:`zeroskip.hw.decoders.lane.Cursor`): every cycle it *presents* the next nonzero of the
column, or that the column is exhausted, or that it is still fetching (with a floor below
which no nonzero remains); then it *advances*, consuming the nonzero or not.
"""

from dataclasses import dataclass

__all__ = ["Presented", "column_run"]


@dataclass(frozen=True)
class Presented:
    valid: bool = False
    row: int = 0
    value: int = 0
    last: bool = False
    exhausted: bool = False
    floor: int = 0


def column_run(cursor, k, expand):
    """Drive ``cursor`` through one column as the lane skeleton does.

    Returns ``(tokens, cycles)``: tokens as ``(row, weight, first, last, bubble)`` tuples, and
    the cycles the column occupies the lane.
    """
    tokens, cycles = [], 0
    if expand:
        row = 0
        while True:
            p = cursor.present()
            cycles += 1
            hit = p.valid and p.row == row
            known = p.valid or p.exhausted or row < p.floor  # a valid row below `row` is a fault
            cursor.advance(consume=hit)
            if known:
                tokens.append((row, p.value if hit else 0, row == 0, row == k - 1, False))
                row += 1
                if row == k:
                    return tokens, cycles
            if cycles > 64 * k + 64:
                raise RuntimeError("lane model does not terminate (malformed column?)")
    emitted = False
    while True:
        p = cursor.present()
        cycles += 1
        if p.valid:
            tokens.append((p.row, p.value, not emitted, p.last, False))
            emitted = True
            cursor.advance(consume=True)
            if p.last:
                return tokens, cycles
        elif p.exhausted:
            # closing bubble: writes the zero of an empty column, or the result of a column
            # whose last entry was not a nonzero
            tokens.append((0, 0, not emitted, True, True))
            return tokens, cycles
        else:
            cursor.advance(consume=False)
        if cycles > 64 * k + 64:
            raise RuntimeError("lane model does not terminate (malformed column?)")
