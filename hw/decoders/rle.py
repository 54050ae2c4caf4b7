"""Run-length: (zero run, value) entries with escapes for long runs; column end pointers."""

from amaranth.hdl import Mux, Signal, signed, unsigned
from amaranth.lib import data

from zeroskip.hw.memories import read_port
from zeroskip.hw.decoders.lane import Cursor, LaneDecoder

__all__ = ["RLEDecoder", "rle_entry_layout"]


def _saturate(value, width):
    """``value`` clamped to the largest ``width``-bit number."""
    top = (1 << width) - 1
    return Mux(value > top, top, value)


def rle_entry_layout(config):
    return data.StructLayout({"run": unsigned(config.rle_run_bits), "value": signed(8)})


class RLEDecoder(LaneDecoder):
    """Lane decoder for :mod:`zeroskip.sim.formats.rle`.

    Memories: ``entries`` and ``pointers`` (word ``j + 1`` = end of column ``j``). The reader
    sees two consecutive entries each cycle (two read ports), so an escape entry and the nonzero
    after it cost one cycle together; only an escape followed by another escape costs a cycle
    on its own.
    """

    @classmethod
    def memories(cls, config):
        return {
            "entries": (rle_entry_layout(config), config.weight_depth),
            "pointers": (unsigned(config.weight_addr_bits), config.pointer_depth),
        }

    def cursor(self, m, memories, lane):
        config = self.config
        escape = (1 << config.rle_run_bits) - 1
        cursor = Cursor(config)
        first_rd = read_port(m, memories["entries"], name="first")
        second_rd = read_port(m, memories["entries"], name="second")
        pointer_rd = read_port(m, memories["pointers"], name="pointers")

        entry = Signal(unsigned(config.weight_addr_bits))
        entry_next = Signal.like(entry)
        base = Signal(unsigned(config.k_bits + 10))  # row after the last one decoded

        e0, e1 = first_rd.data, second_rd.data
        end = pointer_rd.data
        exhausted = entry == end
        escape0 = e0.run == escape
        skip0 = escape + e0.value.as_unsigned()
        pair = escape0 & (entry + 1 != end) & (e1.run != escape)
        valid = ~exhausted & (~escape0 | pair)
        row = Signal.like(base)
        skipped = Signal.like(base)
        m.d.comb += [
            row.eq(_saturate(Mux(escape0, base + skip0 + e1.run, base + e0.run), len(base))),
            skipped.eq(_saturate(base + skip0, len(base))),
            cursor.valid.eq(valid),
            cursor.exhausted.eq(exhausted),
            # a run past the end of the column must stay beyond K, never wrap back into it
            cursor.row.eq(_saturate(row, len(cursor.row))),
            cursor.value.eq(Mux(escape0, e1.value, e0.value)),
            cursor.last.eq(Mux(escape0, entry + 2 == end, entry + 1 == end)),
            cursor.floor.eq(_saturate(skipped, len(cursor.floor))),
            # the first entry is in use unless the column is exhausted, the second with an escape
            cursor.truncated.eq(~exhausted & (
                (entry >= lane.loaded["entries"]) |
                (escape0 & (entry + 1 != end) & (entry + 1 >= lane.loaded["entries"])))),
        ]

        m.d.comb += entry_next.eq(entry)
        with m.If(cursor.consume):
            m.d.comb += entry_next.eq(Mux(escape0, entry + 2, entry + 1))
            m.d.sync += base.eq(_saturate(row + 1, len(base)))
        with m.If(~valid & ~exhausted):
            m.d.comb += entry_next.eq(entry + 1)
            m.d.sync += base.eq(skipped)
        with m.If(cursor.next_column):
            m.d.sync += base.eq(0)
        with m.If(cursor.restart):
            m.d.comb += entry_next.eq(lane.entry_base)
            m.d.sync += base.eq(0)
        m.d.sync += entry.eq(entry_next)
        m.d.comb += [
            first_rd.addr.eq(entry_next),
            second_rd.addr.eq(entry_next + 1),
            pointer_rd.addr.eq(lane.end_next),
        ]
        return cursor
