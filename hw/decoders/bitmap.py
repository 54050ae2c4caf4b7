"""Bitmap: a mask bit per weight, nonzero values packed, a value pointer per column."""

from amaranth.hdl import Mux, Signal, signed, unsigned

from .lane import Cursor, LaneDecoder

__all__ = ["BitmapDecoder"]


def _lowest_set_index(m, bits):
    """Index of the lowest set bit of ``bits`` (0 when none)."""
    lowest = Signal.like(bits)
    index = Signal(range(max(2, len(bits))))
    m.d.comb += lowest.eq(bits & (~bits + 1))
    for i in range(len(bits)):
        with m.If(lowest[i]):
            m.d.comb += index.eq(i)
    return lowest, index


class BitmapDecoder(LaneDecoder):
    """Lane decoder for :mod:`zeroskip.sim.formats.bitmap`.

    Memories: ``masks`` (``bitmap_width``-bit words, ceil(K / width) per column), ``values``
    (the nonzeros, packed) and ``pointers`` (word ``j + 1`` = end of column ``j``'s values).
    One nonzero per cycle: the set bits of the current word are taken lowest first and the next
    word is addressed as the last one is taken. A mask word with no set bit costs a cycle.
    """

    @classmethod
    def memories(cls, config):
        return {
            "masks": (unsigned(config.bitmap_width), config.mask_depth),
            "values": (signed(8), config.weight_depth),
            "pointers": (unsigned(config.weight_addr_bits), config.pointer_depth),
        }

    def cursor(self, m, memories, column_next):
        config = self.config
        width = config.bitmap_width
        shift = width.bit_length() - 1
        cursor = Cursor(config)
        mask_rd = memories["masks"].read_port()
        value_rd = memories["values"].read_port()
        pointer_rd = memories["pointers"].read_port()

        word = Signal(unsigned(max(1, (config.mask_depth).bit_length())))
        word_next = Signal.like(word)
        column_first = Signal.like(word)            # first mask word of the current column
        word_in_column = Signal(unsigned(config.k_bits + 1))
        cleared = Signal(width)                     # bits of the current word already taken
        value = Signal(unsigned(config.weight_addr_bits))
        value_next = Signal.like(value)
        words_per_column = (self.k + width - 1) >> shift

        bits = Signal(width)
        m.d.comb += bits.eq(mask_rd.data & ~cleared)
        lowest, index = _lowest_set_index(m, bits)
        end = pointer_rd.data
        exhausted = value == end
        valid = ~exhausted & (bits != 0)
        m.d.comb += [
            cursor.valid.eq(valid),
            cursor.exhausted.eq(exhausted),
            cursor.row.eq((word_in_column << shift) | index),
            cursor.value.eq(value_rd.data),
            cursor.last.eq(value + 1 == end),
            cursor.floor.eq((word_in_column + 1) << shift),
        ]

        m.d.comb += [word_next.eq(word), value_next.eq(value)]
        next_word = Signal()
        with m.If(cursor.consume):
            m.d.comb += value_next.eq(value + 1)
            m.d.sync += cleared.eq(cleared | lowest)
            m.d.comb += next_word.eq((bits & ~lowest) == 0)
        with m.If(~valid & ~exhausted):
            m.d.comb += next_word.eq(1)
        with m.If(next_word):
            m.d.comb += word_next.eq(word + 1)
            m.d.sync += [word_in_column.eq(word_in_column + 1), cleared.eq(0)]
        with m.If(cursor.next_column):
            m.d.comb += word_next.eq(column_first + words_per_column)
            m.d.sync += [column_first.eq(column_first + words_per_column),
                         word_in_column.eq(0), cleared.eq(0)]
        with m.If(cursor.restart):
            m.d.comb += [word_next.eq(0), value_next.eq(0)]
            m.d.sync += [column_first.eq(0), word_in_column.eq(0), cleared.eq(0)]
        m.d.sync += [word.eq(word_next), value.eq(value_next)]
        m.d.comb += [
            mask_rd.addr.eq(word_next),
            value_rd.addr.eq(value_next),
            pointer_rd.addr.eq(column_next + 1),
        ]
        return cursor
