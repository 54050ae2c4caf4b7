"""Bitmap: occupied mask words with a per-column occupancy summary, packed nonzero values."""

from amaranth.hdl import Signal, signed, unsigned

from zeroskip.hw.memories import read_port
from zeroskip.hw.decoders.lane import Cursor, LaneDecoder

__all__ = ["BitmapDecoder"]


def _lowest_set(m, bits):
    """(one-hot lowest set bit, its index) of ``bits``."""
    lowest = Signal.like(bits)
    index = Signal(range(max(2, len(bits))))
    m.d.comb += lowest.eq(bits & (~bits + 1))
    for i in range(len(bits)):
        with m.If(lowest[i]):
            m.d.comb += index.eq(i)
    return lowest, index


class BitmapDecoder(LaneDecoder):
    """Lane decoder for :mod:`zeroskip.sim.formats.bitmap`.

    Memories: ``summaries`` (per column, one bit per ``bitmap_width``-row word of the mask: is it
    occupied), ``masks`` (the occupied words only, columns back to back), ``values`` (the
    nonzeros, packed) and ``pointers`` (word ``j + 1`` = end of column ``j``'s values). The set
    bits of the current word are taken lowest first, one per cycle; the next occupied word is
    addressed as the last bit of one is taken, and the summary says which rows it covers, so
    all-zero words cost nothing.
    """

    @classmethod
    def memories(cls, config):
        words_per_column = -(-config.max_k // config.bitmap_width)
        return {
            "summaries": (unsigned(words_per_column), config.pointer_depth - 1),
            "masks": (unsigned(config.bitmap_width), config.mask_depth),
            "values": (signed(8), config.weight_depth),
            "pointers": (unsigned(config.weight_addr_bits), config.pointer_depth),
        }

    def cursor(self, m, memories, lane):
        config = self.config
        shift = config.bitmap_width.bit_length() - 1
        cursor = Cursor(config)
        summary_rd = read_port(m, memories["summaries"], name="summaries")
        mask_rd = read_port(m, memories["masks"], name="masks")
        value_rd = read_port(m, memories["values"], name="values")
        pointer_rd = read_port(m, memories["pointers"], name="pointers")

        word = Signal(unsigned(max(1, config.mask_depth.bit_length())))
        word_next = Signal.like(word)
        cleared = Signal(config.bitmap_width)         # bits of the current word already taken
        words_taken = Signal.like(summary_rd.data)    # summary bits of finished words
        value = Signal(unsigned(config.weight_addr_bits))
        value_next = Signal.like(value)

        summary = Signal.like(summary_rd.data)
        bits = Signal(config.bitmap_width)
        m.d.comb += [
            summary.eq(summary_rd.data & ~words_taken),
            bits.eq(mask_rd.data & ~cleared),
        ]
        word_bit, word_index = _lowest_set(m, summary)
        row_bit, row_index = _lowest_set(m, bits)
        end = pointer_rd.data
        m.d.comb += [
            cursor.valid.eq(value != end),
            cursor.exhausted.eq(value == end),
            cursor.row.eq((word_index << shift) | row_index),
            cursor.value.eq(value_rd.data),
            cursor.last.eq(value + 1 == end),
            cursor.truncated.eq(cursor.valid & (
                (value >= lane.loaded["values"]) | (word >= lane.loaded["masks"]) |
                (lane.column >= lane.loaded["summaries"]))),
        ]

        m.d.comb += [word_next.eq(word), value_next.eq(value)]
        with m.If(cursor.consume):
            m.d.comb += value_next.eq(value + 1)
            with m.If((bits & ~row_bit) == 0):
                m.d.comb += word_next.eq(word + 1)
                m.d.sync += [cleared.eq(0), words_taken.eq(words_taken | word_bit)]
            with m.Else():
                m.d.sync += cleared.eq(cleared | row_bit)
        with m.If(cursor.next_column):
            m.d.sync += [cleared.eq(0), words_taken.eq(0)]
        with m.If(cursor.restart):
            m.d.comb += [word_next.eq(lane.mask_base), value_next.eq(lane.entry_base)]
            m.d.sync += [cleared.eq(0), words_taken.eq(0)]
        m.d.sync += [word.eq(word_next), value.eq(value_next)]
        m.d.comb += [
            summary_rd.addr.eq(lane.column_next),
            mask_rd.addr.eq(word_next),
            value_rd.addr.eq(value_next),
            pointer_rd.addr.eq(lane.end_next),
        ]
        return cursor
