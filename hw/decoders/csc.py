"""CSC: per column, nonzero values with their absolute row indices; column end pointers."""

from amaranth.hdl import Signal, unsigned

from ..layouts import csc_entry_layout
from .lane import Cursor, LaneDecoder

__all__ = ["CSCDecoder"]


class CSCDecoder(LaneDecoder):
    """Lane decoder for :mod:`zeroskip.sim.formats.csc`.

    Memories: ``entries`` (row, value) of the lane's columns back to back, and ``pointers``,
    where word ``j + 1`` is the end of column ``j`` (word 0 is 0). Never stalls: the entry and
    the pointer it needs are read at the address the lane is about to move to.
    """

    @classmethod
    def memories(cls, config):
        return {
            "entries": (csc_entry_layout(config), config.weight_depth),
            "pointers": (unsigned(config.weight_addr_bits), config.pointer_depth),
        }

    def cursor(self, m, memories, column_next, end_next):
        config = self.config
        cursor = Cursor(config)
        entry_rd = memories["entries"].read_port()
        pointer_rd = memories["pointers"].read_port()

        entry = Signal(unsigned(config.weight_addr_bits))  # next unconsumed entry
        entry_next = Signal.like(entry)
        m.d.comb += entry_next.eq(entry)
        with m.If(cursor.consume):
            m.d.comb += entry_next.eq(entry + 1)
        with m.If(cursor.restart):
            m.d.comb += entry_next.eq(0)
        m.d.sync += entry.eq(entry_next)
        m.d.comb += [
            entry_rd.addr.eq(entry_next),
            pointer_rd.addr.eq(end_next),
        ]

        end = pointer_rd.data
        m.d.comb += [
            cursor.valid.eq(entry != end),
            cursor.exhausted.eq(entry == end),
            cursor.row.eq(entry_rd.data.row),
            cursor.value.eq(entry_rd.data.value),
            cursor.last.eq(entry + 1 == end),
        ]
        return cursor
