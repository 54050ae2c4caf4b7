"""The CSC weight decoder: compressed columns in, a stream of column work tokens out."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...config import Mode
from ..layouts import csc_entry_layout, token_layout, write_signature

__all__ = ["CSCDecoder"]


class CSCDecoder(wiring.Component):
    """Turns one lane's compressed columns into the token stream its PE column consumes.

    The lane's memory holds, for the output columns the host assigned to it, the nonzeros of W
    column by column (row index and value, CSC), and the column end pointers. For each M-tile the
    decoder walks all of the lane's columns:

    - skip mode: one token per stored nonzero, back to back across column boundaries; an empty
      column costs one bubble token (its output still has to be written as zero);
    - dense and gate modes: the columns are expanded on the fly to all K rows, zeros included.

    It emits one token per cycle, sustained, whatever the pattern: the entry and pointer memories
    are read at the address the state is about to move to, so the next entry is always ready.

    Parameters
    ----------
    config : :class:`zeroskip.config.ArrayConfig`

    Members
    -------
    start : In(1)
        Pulse to begin a run with the settings below (held stable during the run).
    mode, m_tiles, k, rows_last, columns : In
        Execution mode, M-tiles, K, valid rows in the last M-tile, columns in this lane.
    entry_write : In(write_signature)
        Loads compressed entries (row, value).
    pointer_write : In(write_signature)
        Loads column end pointers: word ``j + 1`` is the end of column ``j``; word 0 is unused.
    tokens : Out(stream.Signature(token_layout))
        Work for the PE column.
    busy : Out(1)
        Between ``start`` and the last token leaving.
    """

    def __init__(self, config):
        self._config = config
        super().__init__({
            "start": In(1),
            "mode": In(2),
            "m_tiles": In(unsigned(config.tile_bits)),
            "k": In(unsigned(config.k_bits + 1)),
            "rows_last": In(unsigned(config.row_count_bits)),
            "columns": In(unsigned(config.pointer_addr_bits)),
            "entry_write": In(write_signature(config.weight_addr_bits,
                                              csc_entry_layout(config))),
            "pointer_write": In(write_signature(config.pointer_addr_bits,
                                                unsigned(config.weight_addr_bits))),
            "tokens": Out(stream.Signature(token_layout(config))),
            "busy": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        config = self._config
        m = Module()

        m.submodules.entries = entries = memory.Memory(
            shape=csc_entry_layout(config), depth=config.weight_depth, init=[])
        m.submodules.pointers = pointers = memory.Memory(
            shape=unsigned(config.weight_addr_bits), depth=config.pointer_depth, init=[])
        for port, mem in ((self.entry_write, entries), (self.pointer_write, pointers)):
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]
        entry_rd = entries.read_port()
        pointer_rd = pointers.read_port()

        running = Signal()
        tile = Signal.like(self.m_tiles)            # current M-tile
        tile_base = Signal(unsigned(config.act_addr_bits))  # tile * K
        column = Signal.like(self.columns)          # current column of the lane
        out_addr = Signal(unsigned(config.out_addr_bits))
        column_start = Signal(unsigned(config.weight_addr_bits))
        entry = Signal(unsigned(config.weight_addr_bits))  # next unconsumed entry
        row = Signal(unsigned(config.k_bits + 1))          # dense expansion: current k

        # Reading at the next-state address keeps entry_rd.data == entries[entry] and
        # pointer_rd.data == pointers[column + 1] in every cycle.
        column_next = Signal.like(column)
        entry_next = Signal.like(entry)
        m.d.comb += [
            column_next.eq(column),
            entry_next.eq(entry),
            pointer_rd.addr.eq(column_next + 1),
            entry_rd.addr.eq(entry_next),
        ]
        m.d.sync += [column.eq(column_next), entry.eq(entry_next)]

        column_end = pointer_rd.data
        stored = entry_rd.data
        column_empty = entry == column_end
        expand = self.mode != Mode.SKIP
        last_tile = tile + 1 == self.m_tiles

        token = self.tokens.payload
        can_emit = ~self.tokens.valid | self.tokens.ready
        m.d.comb += self.busy.eq(running | self.tokens.valid)

        with m.If(can_emit):
            m.d.sync += self.tokens.valid.eq(0)

        with m.If(self.start):
            m.d.comb += [column_next.eq(0), entry_next.eq(0)]
            m.d.sync += [
                running.eq((self.m_tiles != 0) & (self.columns != 0)),
                tile.eq(0), tile_base.eq(0), out_addr.eq(0), column_start.eq(0), row.eq(0),
            ]
        with m.Elif(running & can_emit):
            column_done = Signal()
            emit_row = Signal.like(row)
            with m.If(expand):
                hit = ~column_empty & (stored.row == row)
                m.d.comb += [
                    emit_row.eq(row),
                    column_done.eq(row + 1 == self.k),
                ]
                m.d.sync += [
                    token.weight.eq(Mux(hit, stored.value, 0)),
                    token.first.eq(row == 0),
                    token.bubble.eq(0),
                    row.eq(Mux(column_done, 0, row + 1)),
                ]
                with m.If(hit):
                    m.d.comb += entry_next.eq(entry + 1)
            with m.Else():
                m.d.comb += [
                    emit_row.eq(Mux(column_empty, 0, stored.row)),
                    column_done.eq(column_empty | (entry + 1 == column_end)),
                ]
                m.d.sync += [
                    token.weight.eq(Mux(column_empty, 0, stored.value)),
                    token.first.eq(column_empty | (entry == column_start)),
                    token.bubble.eq(column_empty),
                ]
                with m.If(~column_empty):
                    m.d.comb += entry_next.eq(entry + 1)

            m.d.sync += [
                self.tokens.valid.eq(1),
                token.act_addr.eq(tile_base + emit_row),
                token.last.eq(column_done),
                token.out_addr.eq(out_addr),
                token.rows.eq(Mux(last_tile, self.rows_last, config.rows)),
            ]

            with m.If(column_done):
                m.d.sync += [
                    out_addr.eq(out_addr + 1),
                    column_start.eq(column_end),
                ]
                with m.If(column + 1 == self.columns):
                    # Next M-tile: the same columns again, from the first entry.
                    m.d.comb += [column_next.eq(0), entry_next.eq(0)]
                    m.d.sync += [
                        tile.eq(tile + 1),
                        tile_base.eq(tile_base + self.k),
                        column_start.eq(0),
                    ]
                    with m.If(last_tile):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.comb += column_next.eq(column + 1)

        return m
