"""The decoder lane skeleton shared by every compressed-weight format.

A lane walks, for every M-tile, all the output columns the host assigned to it and turns each
column's nonzeros into tokens for its PE column. What differs between formats is only how the
next nonzero of a column is found in memory: that is a format's *cursor*.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import DecodeStatus, Mode, bits_for
from zeroskip.hw.layouts import token_layout, write_signature
from zeroskip.hw.memories import read_port

__all__ = ["LaneDecoder", "Cursor", "LaneView", "Prefetch"]


class Cursor:
    """The interface between the lane skeleton and a format's reader.

    The reader drives (combinationally, for the current cycle):

    ``valid``, ``row``, ``value``, ``last``
        The next unconsumed nonzero of the current column, and whether it is the column's last.
    ``exhausted``
        The current column has no entry left.
    ``floor``
        While neither ``valid`` nor ``exhausted`` (the reader is fetching), no nonzero of the
        column lies below this row; dense expansion keeps emitting zeros below it.
    ``truncated``
        What is presented was read beyond the words the host loaded (see
        :attr:`LaneView.loaded`): the stream is cut short.
    ``at_row``, ``below_row``, ``beyond_k``, ``not_after_previous`` (optional)
        ``row`` equals / is below the lane's dense-expansion row (:attr:`LaneView.row`), is at
        or beyond the run's K (:attr:`LaneView.k`), is at or below the row of the previous
        nonzero the lane consumed (:attr:`LaneView.previous_row`): registers the reader
        computes a cycle ahead, so the lane's decision and fault checks start from flip-flops;
        without them the skeleton compares.

    The skeleton drives:

    ``consume``
        Take the current nonzero.
    ``next_column``
        The current column is finished (all its tokens emitted); move to the next one.
    ``restart``
        Move to the lane's first column (a new M-tile, or a new run when ``start`` pulses).
    """

    def __init__(self, config):
        self.valid = Signal()
        self.row = Signal(unsigned(config.k_bits + 1))
        self.value = Signal(8)
        self.last = Signal()
        self.exhausted = Signal()
        self.floor = Signal(unsigned(config.k_bits + 1))
        self.truncated = Signal()
        self.at_row = None
        self.below_row = None
        self.beyond_k = None
        self.not_after_previous = None
        self.consume = Signal()
        self.next_column = Signal()
        self.restart = Signal()


class LaneView:
    """What a format's reader sees of the lane skeleton.

    ``column``
        The column the lane is on (a register).
    ``column_next``
        The column the lane will be on in the next cycle: read memories at next-state addresses
        so their data is there when it is needed.
    ``end_next``
        ``column_next + 1``, the address of its end pointer, selected from precomputed sums so
        that no adder follows the decision (it is on the critical path on an iCE40).
    ``row``, ``row_reset``, ``row_advance``
        Dense expansion: the row (k) the lane is on, and whether it goes back to 0 or on to
        ``row + 1`` in the next cycle.
    ``loaded``
        Per memory name, how many words the host loaded (the last address written + 1: the host
        loads every memory from address 0 up). Words at or beyond it belong to no stream of
        this job. Memories keep their contents over a reset, and so do these marks.
    ``k``, ``previous_row``
        The run's K; the row of the last nonzero the lane consumed (it becomes the current
        ``row`` of the cursor when ``consume`` is set).
    """

    def __init__(self, column, column_next, end_next, row, row_reset, row_advance, loaded,
                 k, previous_row):
        self.column = column
        self.column_next = column_next
        self.end_next = end_next
        self.row = row
        self.row_reset = row_reset
        self.row_advance = row_advance
        self.loaded = loaded
        self.k = k
        self.previous_row = previous_row


class Prefetch:
    """Reads a memory at consecutive addresses a few words ahead into a queue whose head is a
    register, so that logic deciding from the head never starts at a block RAM's clock-to-out
    and the memory's read address never depends on that decision.

    The read data is registered once more before it is queued (in the block RAM's own output
    register where there is one), so that even the word arriving at an empty queue comes from
    a flip-flop: a word arrives ``LATENCY`` cycles after its read is issued. A read is issued
    whenever the queued and in-flight words leave room, whatever is popped this cycle;
    ``LATENCY + 2`` slots sustain one word per cycle. ``restart`` empties the queue and starts
    again from ``first``; the head is valid ``LATENCY + 1`` cycles later
    (:attr:`~zeroskip.config.ArrayConfig.lane_refill_cycles`).

    ``head``, ``head_valid``, ``head_beyond``
        The oldest queued word, whether there is one, and whether it was read at or beyond
        ``loaded``.
    ``pop``, ``restart``
        Inputs: take the head; start over from address ``first``.
    """

    LATENCY = 2

    def __init__(self, m, memory, *, first, loaded, name):
        read = read_port(m, memory, name=name)
        latency = self.LATENCY
        depth = latency + 2
        address = Signal(len(loaded), name=f"{name}_address")
        count = Signal(range(depth + 1), name=f"{name}_count")
        # reads in flight, by age, and whether each was at or beyond `loaded`
        issued = [Signal(name=f"{name}_issued{i}") for i in range(latency)]
        beyond = [Signal(name=f"{name}_beyond{i}") for i in range(latency)]
        data = Signal(memory.shape, name=f"{name}_read_data")
        m.d.sync += data.eq(read.data)
        slots = [Signal(memory.shape, name=f"{name}_slot{i}") for i in range(depth)]
        slot_beyond = [Signal(name=f"{name}_slot{i}_beyond") for i in range(depth)]
        self.head, self.head_beyond = slots[0], slot_beyond[0]
        self.head_valid = Signal(name=f"{name}_valid")
        self.pop = Signal(name=f"{name}_pop")
        self.restart = Signal(name=f"{name}_restart")
        arrives = issued[-1]
        self._slots, self._arriving = slots, data
        self._arrives_at_head = arrives & (count == self.pop)

        issue = count + sum(issued) < depth
        m.d.comb += read.addr.eq(address)
        # count != 0, kept in a register: the lane's decision starts from it
        m.d.sync += self.head_valid.eq(count - self.pop + arrives != 0)
        fill = count - self.pop                       # where an arriving word goes
        for i in range(depth):
            with m.If(arrives & (fill == i)):
                m.d.sync += [slots[i].eq(data), slot_beyond[i].eq(beyond[-1])]
            with m.Elif(self.pop & (i + 1 < depth)):
                m.d.sync += [slots[i].eq(slots[min(i + 1, depth - 1)]),
                             slot_beyond[i].eq(slot_beyond[min(i + 1, depth - 1)])]
        m.d.sync += [count.eq(count - self.pop + arrives), issued[0].eq(issue),
                     beyond[0].eq(address >= loaded)]
        for i in range(1, latency):
            m.d.sync += [issued[i].eq(issued[i - 1]), beyond[i].eq(beyond[i - 1])]
        with m.If(issue):
            m.d.sync += address.eq(address + 1)
        with m.If(self.restart):
            m.d.sync += [address.eq(first), count.eq(0), self.head_valid.eq(0),
                         *(i.eq(0) for i in issued)]

    def next_head(self, function):
        """``function(word)`` for the word that will be the head in the next cycle (valid when
        the head will be), built as a choice among ``function`` of each word it could be: so
        ``function`` works from registers (and read data) in parallel with this cycle's
        ``pop``, and only a small multiplexer follows it."""
        return Mux(self._arrives_at_head, function(self._arriving),
                   Mux(self.pop, function(self._slots[1]), function(self._slots[0])))


class LaneDecoder(wiring.Component):
    """Turns one lane's compressed columns into the token stream its PE column consumes.

    For each M-tile the lane walks all of its columns:

    - skip mode: one token per stored nonzero, back to back across column boundaries; a
      column that runs out of entries without a closing nonzero (an empty column, or N:M
      padding at its end) closes with a bubble token, which writes the result;
    - dense and gate modes: every column is expanded on the fly to all K rows, zeros included.

    Subclasses name their memories in :meth:`memories` and find nonzeros in :meth:`cursor`.

    Members
    -------
    start : In(1)
        Pulse to begin a run with the settings below (held stable during the run).
    mode, m_tiles, k, rows_last, columns : In
        Execution mode, M-tiles, K, valid rows in the last M-tile, columns in this lane.
    <memory>_write : In(write_signature)
        One write port per memory of the format (see :meth:`memories`).
    tokens : Out(stream.Signature(token_layout))
        Work for the PE column.
    busy : Out(1)
        Between ``start`` and the last token leaving.
    status : Out(DecodeStatus)
        OK, or why the lane stopped on malformed memory contents (held until the next start).
    """

    def __init__(self, config):
        self._config = config
        members = {
            "start": In(1),
            "mode": In(2),
            "m_tiles": In(unsigned(config.tile_bits)),
            "k": In(unsigned(config.k_bits + 1)),
            "rows_last": In(unsigned(config.row_count_bits)),
            "columns": In(unsigned(config.pointer_addr_bits)),
            "tokens": Out(stream.Signature(token_layout(config))),
            "busy": Out(1),
            "status": Out(DecodeStatus),
        }
        for name, (shape, depth) in self.memories(config).items():
            members[f"{name}_write"] = In(write_signature(bits_for(depth), shape))
        super().__init__(members)

    @property
    def config(self):
        return self._config

    @classmethod
    def memories(cls, config):
        """``{name: (shape, depth)}`` of the lane's memories, in load order."""
        raise NotImplementedError

    def cursor(self, m, memories, lane):
        """Build the format's reader in ``m``; return a :class:`Cursor`.

        ``memories`` maps names to the lane's :class:`amaranth.lib.memory.Memory` objects;
        ``lane`` is a :class:`LaneView` of the skeleton. The skeleton itself checks the column
        end pointers (memory ``pointers``, word ``column + 1``) against what was loaded.
        """
        raise NotImplementedError

    def elaborate(self, platform):
        config = self._config
        m = Module()

        mems, loaded = {}, {}
        for name, (shape, depth) in self.memories(config).items():
            mems[name] = mem = memory.Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mem
            port = getattr(self, f"{name}_write")
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]
            loaded[name] = Signal(len(port.addr) + 1, name=f"{name}_loaded", reset_less=True)
            with m.If(port.en):
                m.d.sync += loaded[name].eq(port.addr + 1)

        # The run's settings, latched at start: they come from the host link's registers,
        # across the chip, and the lane's decisions would otherwise start there. Only the start
        # cycle reads the inputs. A lane without columns has no use for them, and latching only
        # when there are columns keeps each lane's copy its own: with the same enable, Yosys
        # would merge the lanes' copies of the shared settings into one, across the chip again.
        latched = {}
        for name in ("mode", "m_tiles", "k", "rows_last", "columns"):
            port = getattr(self, name)
            latched[name] = Signal.like(port, name=f"{name}_run")
            with m.If(self.start & (self.columns != 0)):
                m.d.sync += latched[name].eq(port)
        mode, m_tiles, k, rows_last, columns = latched.values()

        running = Signal()
        tile = Signal.like(self.m_tiles)
        tile_base = Signal(unsigned(config.act_addr_bits))  # tile * K
        column = Signal.like(self.columns)
        column_next = Signal.like(self.columns)
        end_next = Signal(len(self.columns) + 1)
        out_addr = Signal(unsigned(config.out_addr_bits))
        emitted = Signal()                                  # a token of this column went out
        row = Signal(unsigned(config.k_bits + 1))           # dense expansion: current k
        row_last = Signal()                                 # row + 1 == K, kept in a register
        row_reset, row_advance = Signal(), Signal()         # row in the next cycle: 0, row + 1
        # column + 1 == columns and tile + 1 == m_tiles, kept in registers: the compares are
        # carry chains, and both decide the lane's next state
        column_last = Signal()
        tile_last = Signal()
        previous_row = Signal.like(row)                     # of the last nonzero consumed

        cursor = self.cursor(m, mems, LaneView(column, column_next, end_next, row, row_reset,
                                               row_advance, loaded, k, previous_row))
        with m.If(row_reset):
            m.d.sync += row.eq(0)
        with m.Elif(row_advance):
            m.d.sync += row.eq(row + 1)
        # The current column's end pointer is always in use: whether the host loaded it
        # (column + 1 < loaded) is kept in a register too. The host writes no memory while
        # the lane runs, nor as it starts.
        end_unloaded = Signal()
        truncated = cursor.truncated
        if "pointers" in mems:
            truncated = truncated | end_unloaded
        m.d.comb += [column_next.eq(column), end_next.eq(column + 1)]
        with m.If(cursor.next_column):
            m.d.comb += [column_next.eq(column + 1), end_next.eq(column + 2)]
            m.d.sync += column_last.eq(column + 2 == columns)
            if "pointers" in mems:
                m.d.sync += end_unloaded.eq(column + 2 >= loaded["pointers"])
        with m.If(cursor.restart):
            m.d.comb += [column_next.eq(0), end_next.eq(1)]
            m.d.sync += column_last.eq(Mux(self.start, self.columns, columns) == 1)
            if "pointers" in mems:
                m.d.sync += end_unloaded.eq(loaded["pointers"] <= 1)
        m.d.sync += column.eq(column_next)
        expand = mode != Mode.SKIP

        token = self.tokens.payload
        can_emit = ~self.tokens.valid | self.tokens.ready
        m.d.comb += self.busy.eq(running | self.tokens.valid)
        with m.If(can_emit):
            m.d.sync += self.tokens.valid.eq(0)

        # A pipelined lane moves its reader to the next column (or back to the first) in the
        # cycle after the column's last token, from these registers (config.column_advance_cycles)
        deferred = config.column_advance_cycles != 0
        advancing = Signal()
        advance_restart = Signal()

        column_done = Signal()
        emit = Signal()
        emit_row = Signal.like(row)
        with m.If(self.start):
            m.d.comb += cursor.restart.eq(1)
            m.d.sync += [
                self.status.eq(DecodeStatus.OK),
                running.eq((self.m_tiles != 0) & (self.columns != 0)),
                tile.eq(0), tile_last.eq(self.m_tiles == 1), tile_base.eq(0), out_addr.eq(0),
                emitted.eq(0), row_last.eq(self.k == 1), advancing.eq(0),
            ]
            m.d.comb += row_reset.eq(1)
        with m.Elif(running & advancing):
            m.d.sync += advancing.eq(0)
            m.d.comb += [cursor.restart.eq(advance_restart),
                         cursor.next_column.eq(~advance_restart)]
        with m.Elif(running & can_emit):
            with m.If(expand):
                at_row = _flag(cursor.at_row, lambda: cursor.row == row)
                hit = cursor.valid & at_row
                # This row's weight is known unless the reader is still looking below it. A
                # presented nonzero is never below the row (that is a fault, which stops the
                # lane), so no row comparison decides this: it is on the path from the
                # reader's registers back to its read addresses.
                known = cursor.valid | cursor.exhausted | (row < cursor.floor)
                m.d.comb += [
                    emit.eq(known),
                    emit_row.eq(row),
                    column_done.eq(known & row_last),
                    cursor.consume.eq(hit),
                ]
                with m.If(known):
                    m.d.comb += [row_reset.eq(column_done), row_advance.eq(~column_done)]
                    m.d.sync += [
                        token.weight.eq(Mux(hit, cursor.value, 0)),
                        token.first.eq(row == 0),
                        token.bubble.eq(0),
                        row_last.eq(Mux(column_done, k == 1, row + 2 == k)),
                    ]
            with m.Else():
                # An exhausted column closes with a bubble: it writes the zero result of an
                # empty column, or the result of one whose last entry was not a nonzero.
                m.d.comb += [
                    emit.eq(cursor.valid | cursor.exhausted),
                    emit_row.eq(Mux(cursor.valid, cursor.row, 0)),
                    column_done.eq((cursor.valid & cursor.last) | cursor.exhausted),
                    cursor.consume.eq(cursor.valid),
                ]
                m.d.sync += [
                    token.weight.eq(Mux(cursor.valid, cursor.value, 0)),
                    token.first.eq(~emitted),
                    token.bubble.eq(~cursor.valid),
                    emitted.eq(Mux(column_done, 0, emitted | cursor.valid)),
                ]

            # Malformed memory contents: words the host did not load, a row index at or beyond
            # K, rows that do not increase down a column, or an entry left over when a dense
            # column is complete (it lies outside the column or out of order). The lane stops
            # at once with a status code, so a corrupt stream costs at most K tokens of a
            # column, never a hang.
            fault = Signal()
            code = Signal.like(self.status)
            with m.If(truncated):
                m.d.comb += [fault.eq(1), code.eq(DecodeStatus.TRUNCATED)]
            with m.Elif(expand):
                with m.If(cursor.valid & _flag(cursor.below_row, lambda: cursor.row < row)):
                    # the expansion has passed it: an out-of-order entry would stall the lane
                    m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROWS_NOT_INCREASING)]
                with m.Elif(column_done & cursor.valid & ~cursor.consume):
                    m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ENTRY_LEFT_OVER)]
            with m.Elif(cursor.valid & _flag(cursor.beyond_k, lambda: cursor.row >= k)):
                m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROW_OUT_OF_RANGE)]
            with m.Elif(cursor.valid & emitted &
                        _flag(cursor.not_after_previous, lambda: cursor.row <= previous_row)):
                m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROWS_NOT_INCREASING)]
            # (only skip mode checks it, where every valid nonzero is consumed)
            with m.If(cursor.consume):
                m.d.sync += previous_row.eq(cursor.row)

            with m.If(fault):
                m.d.sync += [running.eq(0), self.status.eq(code)]
            with m.Elif(emit):
                m.d.sync += self.tokens.valid.eq(1)
            # the payload is loaded on a fault too (it is not valid then): only `valid` waits
            # for the fault checks, which are the longest path of the lane
            with m.If(emit):
                m.d.sync += [
                    token.act_addr.eq(tile_base + emit_row),
                    token.last.eq(column_done),
                    token.out_addr.eq(out_addr),
                    token.rows.eq(Mux(tile_last, rows_last, config.rows)),
                ]
            # (not gated by `fault`: the lane stops anyway, and the fault checks stay off the
            # path from the memories' read data back to their read addresses)
            with m.If(column_done):
                m.d.sync += out_addr.eq(out_addr + 1)
                with m.If(column_last):
                    m.d.sync += [tile.eq(tile + 1), tile_last.eq(tile + 2 == m_tiles),
                                 tile_base.eq(tile_base + k)]
                    with m.If(tile_last):
                        m.d.sync += running.eq(0)
                    if deferred:
                        m.d.sync += [advancing.eq(~tile_last), advance_restart.eq(1)]
                    else:
                        m.d.comb += cursor.restart.eq(1)
                with m.Else():
                    if deferred:
                        m.d.sync += [advancing.eq(1), advance_restart.eq(0)]
                    else:
                        m.d.comb += cursor.next_column.eq(1)
        return m


def _flag(computed, compare):
    """A cursor's optional look-ahead flag, or ``compare()`` where the cursor has none."""
    return compare() if computed is None else computed
