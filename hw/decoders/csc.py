"""CSC: per column, nonzero values with their absolute row indices; column end pointers."""

from amaranth.hdl import Cat, Mux, Signal, unsigned

from zeroskip.hw.layouts import csc_entry_layout
from zeroskip.hw.memories import read_port
from zeroskip.hw.decoders.lane import Cursor, LaneDecoder, Prefetch

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
        entry_rd = read_port(m, memories["entries"], name="entries")
        pointer_rd = read_port(m, memories["pointers"], name="pointers")

        entry = Signal(unsigned(config.weight_addr_bits))  # next unconsumed entry
        entry_next = Signal.like(entry)
        m.d.comb += entry_next.eq(entry)
        with m.If(cursor.consume):
            m.d.comb += entry_next.eq(entry + 1)
        with m.If(cursor.restart):
            m.d.comb += entry_next.eq(lane.entry_base)
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
        latency = config.prefetch_latency
        entries = Prefetch(m, memories["entries"], latency=latency, first=lane.entry_base,
                           loaded=lane.loaded["entries"], name="entries")
        ends = Prefetch(m, memories["pointers"], latency=latency, first=lane.end_first,
                        loaded=lane.loaded["pointers"], name="ends")

        # `entry` indexes entries.head. Whether it is at the end of its column, or one short of
        # it, is kept in registers computed a cycle ahead from every (entry, end) pair the next
        # cycle can bring, so the lane's decision starts from flip-flops, not from comparators.
        entry = Signal(unsigned(config.weight_addr_bits))
        entry_plus = [Signal.like(entry, name=f"entry_plus_{i}") for i in (1, 2)]
        at_end = Signal()      # entry == end of the column
        at_last = Signal()     # entry + 1 == end of the column
        base = lane.entry_base
        with m.If(cursor.restart):
            m.d.sync += [entry.eq(base), entry_plus[0].eq(base + 1),
                         entry_plus[1].eq(base + 2)]
        with m.Elif(cursor.consume):
            m.d.sync += [entry.eq(entry_plus[0]), entry_plus[0].eq(entry_plus[1]),
                         entry_plus[1].eq(entry_plus[1] + 1)]

        def flags_next(base, base_plus_one):
            return ends.next_head(lambda end: Cat(base == end, base_plus_one == end))

        flags = Mux(cursor.restart, flags_next(base, base + 1),
                    Mux(cursor.consume, flags_next(entry_plus[0], entry_plus[1]),
                        flags_next(entry, entry_plus[0])))
        m.d.sync += Cat(at_end, at_last).eq(flags)

        # The head entry's row against the lane's row (dense expansion), K and the previous
        # nonzero's row, likewise a cycle ahead: the skeleton would otherwise compare them on
        # its way to `consume` and to its fault checks.
        def row_ahead(name, compare):
            def against(row):
                return entries.next_head(lambda entry_word: compare(entry_word.row, row))
            flag = Signal(name=name)
            m.d.sync += flag.eq(Mux(lane.row_reset, against(0),
                                    Mux(lane.row_advance, against(lane.row + 1),
                                        against(lane.row))))
            return flag

        cursor.at_row = row_ahead("at_row", lambda entry_row, row: entry_row == row)
        cursor.below_row = row_ahead("below_row", lambda entry_row, row: entry_row < row)
        cursor.beyond_k = Signal()
        m.d.sync += cursor.beyond_k.eq(
            entries.next_head(lambda entry_word: entry_word.row >= lane.k))
        # the previous row is the head's when the head is consumed (popped)
        cursor.not_after_previous = Signal()
        m.d.sync += cursor.not_after_previous.eq(Mux(
            cursor.consume,
            entries.next_head(lambda entry_word: entry_word.row <= entries.head.row),
            entries.next_head(lambda entry_word: entry_word.row <= lane.previous_row)))

        m.d.comb += [
            entries.pop.eq(cursor.consume),
            entries.restart.eq(cursor.restart),
            ends.pop.eq(cursor.next_column),
            ends.restart.eq(cursor.restart),
            cursor.valid.eq(ends.head_valid & entries.head_valid & ~at_end),
            cursor.exhausted.eq(ends.head_valid & at_end),
            cursor.row.eq(entries.head.row),
            cursor.value.eq(entries.head.value),
            cursor.last.eq(at_last),
            # the skeleton checks the end pointer's address; the queue knows where it read
            cursor.truncated.eq(cursor.valid & entries.head_beyond),
        ]
        return cursor
