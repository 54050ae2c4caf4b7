"""CSC: per column, nonzero values with their absolute row indices; column end pointers."""

from amaranth.hdl import Signal, unsigned

from ..layouts import csc_entry_layout
from .lane import Cursor, LaneDecoder, Prefetch

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

    def cursor(self, m, memories, lane):
        if self.config.pipelined:
            return self._prefetching_cursor(m, memories, lane)
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
            pointer_rd.addr.eq(lane.end_next),
        ]

        end = pointer_rd.data
        m.d.comb += [
            cursor.valid.eq(entry != end),
            cursor.exhausted.eq(entry == end),
            cursor.row.eq(entry_rd.data.row),
            cursor.value.eq(entry_rd.data.value),
            cursor.last.eq(entry + 1 == end),
            cursor.truncated.eq(cursor.valid & (entry >= lane.loaded["entries"])),
        ]
        return cursor

    def _prefetching_cursor(self, m, memories, lane):
        """The same reader for a pipelined lane: entries and end pointers are both read in
        address order (entries from 0, end pointers from word 1, at every M-tile), so each
        comes through a :class:`~.lane.Prefetch` queue and every decision starts from
        registers. The lane waits for the queues to refill at each M-tile."""
        config = self.config
        cursor = Cursor(config)
        entries = Prefetch(m, memories["entries"], first=0, loaded=lane.loaded["entries"],
                           name="entries")
        ends = Prefetch(m, memories["pointers"], first=1, loaded=lane.loaded["pointers"],
                        name="ends")

        entry = Signal(unsigned(config.weight_addr_bits))       # index of entries.head
        entry_plus_one = Signal.like(entry)
        with m.If(cursor.restart):
            m.d.sync += [entry.eq(0), entry_plus_one.eq(1)]
        with m.Elif(cursor.consume):
            m.d.sync += [entry.eq(entry_plus_one), entry_plus_one.eq(entry_plus_one + 1)]

        end = ends.head
        m.d.comb += [
            entries.pop.eq(cursor.consume),
            entries.restart.eq(cursor.restart),
            ends.pop.eq(cursor.next_column),
            ends.restart.eq(cursor.restart),
            cursor.valid.eq(ends.head_valid & entries.head_valid & (entry != end)),
            cursor.exhausted.eq(ends.head_valid & (entry == end)),
            cursor.row.eq(entries.head.row),
            cursor.value.eq(entries.head.value),
            cursor.last.eq(entry_plus_one == end),
            # the skeleton checks the end pointer's address; the queue knows where it read
            cursor.truncated.eq(cursor.valid & entries.head_beyond),
        ]
        return cursor
