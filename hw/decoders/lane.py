"""The decoder lane skeleton shared by every compressed-weight format.

A lane walks, for every M-tile, all the output columns the host assigned to it and turns each
column's nonzeros into tokens for its PE column. What differs between formats is only how the
next nonzero of a column is found in memory: that is a format's *cursor*.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...config import DecodeStatus, Mode, bits_for
from ..layouts import token_layout, write_signature

__all__ = ["LaneDecoder", "Cursor"]


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
        self.consume = Signal()
        self.next_column = Signal()
        self.restart = Signal()


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

    def cursor(self, m, memories, column_next, end_next):
        """Build the format's reader in ``m``; return a :class:`Cursor`.

        ``memories`` maps names to the lane's :class:`amaranth.lib.memory.Memory` objects;
        ``column_next`` is the column the lane will be on in the next cycle (read memories at
        next-state addresses so their data is there when it is needed); ``end_next`` is
        ``column_next + 1``, the address of its end pointer, selected from precomputed sums so
        that no adder follows the decision (it is on the critical path on an iCE40).
        """
        raise NotImplementedError

    def elaborate(self, platform):
        config = self._config
        m = Module()

        mems = {}
        for name, (shape, depth) in self.memories(config).items():
            mems[name] = mem = memory.Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mem
            port = getattr(self, f"{name}_write")
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]

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
        last_column = column + 1 == self.columns
        last_tile = tile + 1 == self.m_tiles

        cursor = self.cursor(m, mems, column_next, end_next)
        m.d.comb += [column_next.eq(column), end_next.eq(column + 1)]
        with m.If(cursor.next_column):
            m.d.comb += [column_next.eq(column + 1), end_next.eq(column + 2)]
        with m.If(cursor.restart):
            m.d.comb += [column_next.eq(0), end_next.eq(1)]
        m.d.sync += column.eq(column_next)
        expand = self.mode != Mode.SKIP

        token = self.tokens.payload
        can_emit = ~self.tokens.valid | self.tokens.ready
        m.d.comb += self.busy.eq(running | self.tokens.valid)
        with m.If(can_emit):
            m.d.sync += self.tokens.valid.eq(0)

        column_done = Signal()
        emit = Signal()
        emit_row = Signal.like(row)
        previous_row = Signal.like(row)
        with m.If(self.start):
            m.d.comb += cursor.restart.eq(1)
            m.d.sync += [
                self.status.eq(DecodeStatus.OK),
                running.eq((self.m_tiles != 0) & (self.columns != 0)),
                tile.eq(0), tile_base.eq(0), out_addr.eq(0), row.eq(0), emitted.eq(0),
                row_last.eq(self.k == 1),
            ]
        with m.Elif(running & can_emit):
            with m.If(expand):
                hit = cursor.valid & (cursor.row == row)
                # a zero for this row is certain unless the reader is still looking below it
                known = hit | cursor.exhausted | (cursor.valid & (cursor.row > row)) | \
                    (~cursor.valid & (row < cursor.floor))
                m.d.comb += [
                    emit.eq(known),
                    emit_row.eq(row),
                    column_done.eq(known & row_last),
                    cursor.consume.eq(hit),
                ]
                with m.If(known):
                    m.d.sync += [
                        token.weight.eq(Mux(hit, cursor.value, 0)),
                        token.first.eq(row == 0),
                        token.bubble.eq(0),
                        row.eq(Mux(column_done, 0, row + 1)),
                        row_last.eq(Mux(column_done, self.k == 1, row + 2 == self.k)),
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

            # Malformed memory contents: a row index at or beyond K, rows that do not increase
            # down a column, or an entry left over when a dense column is complete (it lies
            # outside the column or out of order). The lane stops at once with a status code,
            # so a corrupt stream costs at most K tokens of a column, never a hang.
            fault = Signal()
            code = Signal.like(self.status)
            with m.If(expand):
                with m.If(cursor.valid & (cursor.row < row)):
                    # the expansion has passed it: an out-of-order entry would stall the lane
                    m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROWS_NOT_INCREASING)]
                with m.Elif(column_done & cursor.valid & ~cursor.consume):
                    m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ENTRY_LEFT_OVER)]
            with m.Elif(cursor.valid & (cursor.row >= self.k)):
                m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROW_OUT_OF_RANGE)]
            with m.Elif(cursor.valid & emitted & (cursor.row <= previous_row)):
                m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROWS_NOT_INCREASING)]
            with m.If(cursor.valid):
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
                    token.rows.eq(Mux(last_tile, self.rows_last, config.rows)),
                ]
            # (not gated by `fault`: the lane stops anyway, and the fault checks stay off the
            # path from the memories' read data back to their read addresses)
            with m.If(column_done):
                m.d.sync += out_addr.eq(out_addr + 1)
                with m.If(last_column):
                    m.d.comb += cursor.restart.eq(1)
                    m.d.sync += [tile.eq(tile + 1), tile_base.eq(tile_base + self.k)]
                    with m.If(last_tile):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.comb += cursor.next_column.eq(1)
        return m

