"""N:M: every group of M rows of a column stores N (value, position) entries."""

from amaranth.hdl import Signal, signed, unsigned
from amaranth.lib import data

from ...config import bits_for
from ..memories import read_port
from .lane import Cursor, LaneDecoder

__all__ = ["NMDecoder", "nm_entry_layout"]


def nm_entry_layout(config):
    return data.StructLayout({"value": signed(8), "position": unsigned(bits_for(config.nm_m))})


class NMDecoder(LaneDecoder):
    """Lane decoder for :mod:`zeroskip.sim.formats.nm`.

    Memory: ``entries``, N per group, groups of a column in order, columns back to back. A
    column's length follows from K, so no pointers are stored. A zero (padding) entry is passed
    over in one cycle.
    """

    @classmethod
    def memories(cls, config):
        return {"entries": (nm_entry_layout(config), config.weight_depth)}

    def cursor(self, m, memories, lane):
        config = self.config
        n, group_size = config.nm_n, config.nm_m
        cursor = Cursor(config)
        entry_rd = read_port(m, memories["entries"], name="entries")

        width = config.weight_addr_bits
        entry = Signal(unsigned(width))
        entry_next = Signal.like(entry)
        column_end = Signal(unsigned(width))       # first entry of the next column
        group_base = Signal(unsigned(config.k_bits + 5))
        slot = Signal(range(n))
        # entries per column: N per group of M rows, the last group possibly short
        per_column = Signal(unsigned(width))
        m.d.comb += per_column.eq(n * ((self.k + group_size - 1) // group_size))

        stored = entry_rd.data
        row = group_base + stored.position
        exhausted = group_base >= self.k
        valid = ~exhausted & (stored.value != 0)
        m.d.comb += [
            cursor.valid.eq(valid),
            cursor.exhausted.eq(exhausted),
            cursor.row.eq(row),
            cursor.value.eq(stored.value),
            cursor.last.eq((slot == n - 1) & (group_base + group_size >= self.k)),
            cursor.floor.eq(row + 1),
            cursor.truncated.eq(~exhausted & (entry >= lane.loaded["entries"])),
        ]

        m.d.comb += entry_next.eq(entry)
        step = cursor.consume | (~valid & ~exhausted)
        with m.If(step):
            m.d.comb += entry_next.eq(entry + 1)
            with m.If(slot == n - 1):
                m.d.sync += [slot.eq(0), group_base.eq(group_base + group_size)]
            with m.Else():
                m.d.sync += slot.eq(slot + 1)
        with m.If(cursor.next_column):
            m.d.comb += entry_next.eq(column_end)
            m.d.sync += [column_end.eq(column_end + per_column), slot.eq(0), group_base.eq(0)]
        with m.If(cursor.restart):
            m.d.comb += entry_next.eq(0)
            m.d.sync += [column_end.eq(per_column), slot.eq(0), group_base.eq(0)]
        m.d.sync += entry.eq(entry_next)
        m.d.comb += entry_rd.addr.eq(entry_next)
        return cursor
