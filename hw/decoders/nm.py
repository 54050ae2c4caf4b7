"""N:M: every group of M rows of a column stores N (value, position) entries."""

from amaranth.hdl import Mux, Signal, signed, unsigned
from amaranth.lib import data

from zeroskip.config import bits_for
from zeroskip.hw.memories import read_port
from zeroskip.hw.decoders.lane import Cursor, LaneDecoder

__all__ = ["NMDecoder", "nm_entry_layout"]


def nm_entry_layout(config):
    return data.StructLayout({"value": signed(8), "position": unsigned(bits_for(config.nm_m))})


class NMDecoder(LaneDecoder):
    """Lane decoder for :mod:`zeroskip.sim.formats.nm`.

    Memory: ``entries``, N per group, groups of a column in order, columns back to back. A
    column's length follows from the run's K (latched at start), so no pointers are stored: a
    column ends with its group that reaches K, and the next one starts after that group. A zero
    (padding) entry is passed over in one cycle.
    """

    @classmethod
    def memories(cls, config):
        return {"entries": (nm_entry_layout(config), config.weight_depth)}

    def cursor(self, m, memories, lane):
        config = self.config
        n, group_size = config.nm_n, config.nm_m
        cursor = Cursor(config)
        entry_rd = read_port(m, memories["entries"], name="entries")
        k = lane.k                                 # the run's K, latched at start

        width = config.weight_addr_bits
        entry = Signal(unsigned(width))
        entry_next = Signal.like(entry)
        # The first entry of the next group. A column ends in its last group (a dense column
        # may leave that group's padding unread) or just past it, with the column exhausted:
        # the next column starts there, so no entries-per-column count (a division by M) is
        # needed.
        group_end = Signal(unsigned(width), init=n)
        group_base = Signal(unsigned(config.k_bits + 5))
        slot = Signal(range(n))

        stored = entry_rd.data
        row = group_base + stored.position
        exhausted = group_base >= k
        valid = ~exhausted & (stored.value != 0)
        m.d.comb += [
            cursor.valid.eq(valid),
            cursor.exhausted.eq(exhausted),
            cursor.row.eq(row),
            cursor.value.eq(stored.value),
            cursor.last.eq((slot == n - 1) & (group_base + group_size >= k)),
            cursor.floor.eq(row + 1),
            cursor.truncated.eq(~exhausted & (entry >= lane.loaded["entries"])),
        ]

        m.d.comb += entry_next.eq(entry)
        step = cursor.consume | (~valid & ~exhausted)
        with m.If(step):
            m.d.comb += entry_next.eq(entry + 1)
            with m.If(slot == n - 1):
                m.d.sync += [slot.eq(0), group_base.eq(group_base + group_size),
                             group_end.eq(group_end + n)]
            with m.Else():
                m.d.sync += slot.eq(slot + 1)
        with m.If(cursor.next_column):
            column_start = Mux(exhausted, entry, group_end)
            m.d.comb += entry_next.eq(column_start)
            m.d.sync += [group_end.eq(column_start + n), slot.eq(0), group_base.eq(0)]
        with m.If(cursor.restart):
            m.d.comb += entry_next.eq(lane.entry_base)
            m.d.sync += [group_end.eq(lane.entry_base + n), slot.eq(0), group_base.eq(0)]
        m.d.sync += entry.eq(entry_next)
        m.d.comb += entry_rd.addr.eq(entry_next)
        return cursor
