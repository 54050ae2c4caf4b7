"""The decoder lane skeleton shared by every compressed-weight format.

A lane walks, for every M-tile, all the output columns the host assigned to it and turns each
column's nonzeros into tokens for its PE column. What differs between formats is only how the
next nonzero of a column is found in memory: that is a format's *cursor*.
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import DecodeStatus, Mode, bits_for
from zeroskip.hw.layouts import resident_bases, token_layout, write_signature
from zeroskip.hw.decoders.resident import latch_bases
from zeroskip.hw.memories import Banked, read_port

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
    ``entry_base``, ``mask_base``, ``end_first``
        Where a reader restarts (``restart``) in its entries (``values``) and ``masks``, and
        the address of the first column's end pointer: with
        :attr:`~zeroskip.config.ArrayConfig.resident`, the run's layer's (the job's in the
        start cycle, latched after it), else 0, 0 and 1.
    """

    def __init__(self, column, column_next, end_next, row, row_reset, row_advance, loaded,
                 k, previous_row, entry_base=0, mask_base=0, end_first=1):
        self.column = column
        self.column_next = column_next
        self.end_next = end_next
        self.row = row
        self.row_reset = row_reset
        self.row_advance = row_advance
        self.loaded = loaded
        self.k = k
        self.previous_row = previous_row
        self.entry_base = entry_base
        self.mask_base = mask_base
        self.end_first = end_first


class Prefetch:
    """Reads a memory at consecutive addresses a few words ahead into a queue whose head is a
    register, so that logic deciding from the head never starts at a block RAM's clock-to-out
    and the memory's read address never depends on that decision.

    The read data is registered ``latency - 1`` times before it is queued (the first in the
    block RAM's own output register where there is one), so that even the word arriving at an
    empty queue comes from a flip-flop: a word arrives ``latency`` cycles after its read is
    issued (:attr:`~zeroskip.config.ArrayConfig.prefetch_latency`, at least 2). A read is
    issued whenever the queued and in-flight words leave room, whatever is popped this cycle;
    ``latency + 2`` slots sustain one word per cycle. ``restart`` empties the queue and starts
    again from ``first``; the head is valid ``latency + 1`` cycles later
    (:attr:`~zeroskip.config.ArrayConfig.lane_refill_cycles`).

    ``head``, ``head_valid``, ``head_beyond``
        The oldest queued word, whether there is one, and whether it was read at or beyond
        ``loaded``.
    ``pop``, ``restart``
        Inputs: take the head; start over from address ``first``.
    """

    def __init__(self, m, memory, *, latency, first, loaded, name):
        if not isinstance(latency, int) or latency < 2:
            raise ValueError(f"A prefetch queue registers its read data: latency must be an "
                             f"integer >= 2, not {latency!r}")
        read = read_port(m, memory, name=name)
        depth = latency + 2
        address = Signal(len(loaded), name=f"{name}_address")
        count = Signal(range(depth + 1), name=f"{name}_count")
        # reads in flight, by age, and whether each was at or beyond `loaded`
        issued = [Signal(name=f"{name}_issued{i}") for i in range(latency)]
        beyond = [Signal(name=f"{name}_beyond{i}") for i in range(latency)]
        data = read.data
        for stage in range(latency - 1):
            registered = Signal(memory.shape, name=f"{name}_read_data{stage or ''}")
            m.d.sync += registered.eq(data)
            data = registered
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
    reads : Out(4)
        With ``energy_counters``: how many of the lane's memory read ports fetched a word
        (read a new address) in the previous cycle.
    bank : In(1)
        With ``double_buffer``: the bank of the memories the run reads (the MSB of the write
        ports' addresses selects the bank written).
    column_base, entry_base, mask_base : In
        With ``resident``: where the run's layer starts in the lane's memories
        (:func:`zeroskip.hw.layouts.resident_bases`); the lane's columns are ``column_base``
        .. ``column_base + columns - 1`` of its column-indexed memories.
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
            members[f"{name}_write"] = In(write_signature(bits_for(depth) + config.bank_bits,
                                                          shape))
        if config.energy_counters:
            members["reads"] = Out(4)
        if config.double_buffer:
            members["bank"] = In(1)
        for name, shape in resident_bases(config).items():
            members[name] = In(shape)
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
        m = Module()
        memories, loaded = self._memories_with_marks(m)
        run = self._latch_run_settings(m)
        walk = _Walk(self._config, self)
        cursor = self.cursor(m, memories, LaneView(
            walk.column, walk.column_next, walk.end_next, walk.row, walk.row_reset,
            walk.row_advance, loaded, run.k, walk.previous_row,
            **{name: run.restart_at[name] for name in ("entry_base", "mask_base")
               if name in run.restart_at}, end_first=run.column_end_first))
        truncated = self._track_row_and_column(m, walk, cursor, memories, loaded, run)

        can_emit = ~self.tokens.valid | self.tokens.ready
        m.d.comb += self.busy.eq(walk.running | self.tokens.valid)
        with m.If(can_emit):
            m.d.sync += self.tokens.valid.eq(0)

        step = _Step(walk)
        with m.If(self.start):                              # a new run: the first column
            m.d.comb += cursor.restart.eq(1)
            m.d.sync += [
                self.status.eq(DecodeStatus.OK),
                walk.running.eq((self.m_tiles != 0) & (self.columns != 0)),
                walk.tile.eq(0), walk.tile_last.eq(self.m_tiles == 1), walk.tile_base.eq(0),
                walk.out_addr.eq(0), walk.emitted.eq(0), walk.row_last.eq(self.k == 1),
                walk.advancing.eq(0),
            ]
            m.d.comb += walk.row_reset.eq(1)
        with m.Elif(walk.running & walk.advancing):
            # a pipelined lane's move to the next column, a cycle after the last token
            m.d.sync += walk.advancing.eq(0)
            m.d.comb += [cursor.restart.eq(walk.advance_restart),
                         cursor.next_column.eq(~walk.advance_restart)]
        with m.Elif(walk.running & can_emit):
            with m.If(run.expand):
                self._expand_row(m, walk, cursor, run, step)
            with m.Else():
                self._next_nonzero(m, walk, cursor, step)
            fault, code = self._check_stream(m, walk, cursor, run, step, truncated)
            self._load_token(m, walk, run, step, fault, code)
            self._finish_column(m, walk, cursor, run, step)
        if self._config.energy_counters:
            self._count_reads(m, memories)
        return m

    def _count_reads(self, m, memories):
        """``reads``: the read ports (of whatever the format's cursor built) whose address
        changed, one cycle late. An asynchronous read port followed by a register reads every
        cycle on an FPGA; a word read again at the same address is not counted, as a memory
        with a read enable would not read it again."""
        fetched = []
        for memory_ in memories.values():
            for port in memory_.read_ports:
                previous = Signal.like(port.addr, name=f"read_addr_previous{len(fetched)}")
                m.d.sync += previous.eq(port.addr)
                fetched.append(port.addr != previous)
        assert len(fetched) < 2 ** len(self.reads), "more read ports than reads can count"
        m.d.sync += self.reads.eq(sum(fetched[1:], fetched[0]) if fetched else 0)

    def _memories_with_marks(self, m):
        """The format's memories with their write ports, and per memory a mark of how many words
        the host loaded (:attr:`LaneView.loaded`), so that the lane can tell a stream cut short
        from one that ends. Returns ``(memories, loaded)``, both by memory name."""
        config = self._config
        memories, loaded = {}, {}
        if config.double_buffer:
            # the bank of the run: the job's in the start cycle (a cursor may read then),
            # latched for the rest of the run
            bank_run = Signal(name="bank_run")
            with m.If(self.start & (self.columns != 0)):
                m.d.sync += bank_run.eq(self.bank)
            bank = Signal(name="bank_read")
            m.d.comb += bank.eq(Mux(self.start, self.bank, bank_run))
        for name, (shape, depth) in self.memories(config).items():
            mem = memory.Memory(shape=shape, depth=config.banked_depth(depth), init=[])
            m.submodules[name] = mem
            port = getattr(self, f"{name}_write")
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]
            if not config.double_buffer:
                memories[name] = mem
                loaded[name] = Signal(len(port.addr) + 1, name=f"{name}_loaded",
                                      reset_less=True)
                with m.If(port.en):
                    m.d.sync += loaded[name].eq(port.addr + 1)
                continue
            # one mark per bank, the one of the run's bank in view
            memories[name] = Banked(mem, depth, bank)
            marks = [Signal(len(port.addr), name=f"{name}_loaded_bank{b}", reset_less=True)
                     for b in range(2)]
            low = port.addr[:-1]
            for b, mark in enumerate(marks):
                with m.If(port.en & (port.addr[-1] == b)):
                    m.d.sync += mark.eq(low + 1)
            loaded[name] = Signal(len(port.addr), name=f"{name}_loaded")
            m.d.comb += loaded[name].eq(Mux(bank, marks[1], marks[0]))
        return memories, loaded

    def _latch_run_settings(self, m):
        """The run's settings (``mode``, ``m_tiles``, ``k``, ``rows_last``, ``columns``), latched
        at start, and ``expand``: whether the run expands its columns (dense and gate modes);
        with ``resident``, the layer's bases too (:func:`~.resident.latch_bases`).

        The settings come from the host link's registers, across the chip, and the lane's
        decisions would otherwise start there. Only the start cycle reads the inputs. A lane
        without columns has no use for them, and latching only when there are columns keeps each
        lane's copy its own: with the same enable, Yosys would merge the lanes' copies of the
        shared settings into one, across the chip again.
        """
        latched = {}
        for name in ("mode", "m_tiles", "k", "rows_last", "columns"):
            port = getattr(self, name)
            latched[name] = Signal.like(port, name=f"{name}_run")
            with m.If(self.start & (self.columns != 0)):
                m.d.sync += latched[name].eq(port)
        run = SimpleNamespace(**latched, expand=latched["mode"] != Mode.SKIP,
                              column_first=0, column_end_first=1, column_end=latched["columns"],
                              restart_at={})
        if self._config.resident:
            latch_bases(m, self, run)
        return run

    def _track_row_and_column(self, m, walk, cursor, memories, loaded, run):
        """Move the dense-expansion row and the column as the steps below and the cursor ask,
        keeping the look-ahead registers that let the next cycle's decisions start from
        flip-flops. Returns what makes the presented stream truncated: the cursor's own
        finding, or (with a ``pointers`` memory) a current column end pointer the host did not
        load."""
        with m.If(walk.row_reset):
            m.d.sync += walk.row.eq(0)
        with m.Elif(walk.row_advance):
            m.d.sync += walk.row.eq(walk.row + 1)
        # The current column's end pointer is always in use: whether the host loaded it
        # (column + 1 < loaded) is kept in a register too. The host writes no memory while
        # the lane runs, nor as it starts.
        pointers = "pointers" in memories
        truncated = cursor.truncated
        if pointers:
            truncated = truncated | walk.end_unloaded
        column = walk.column
        m.d.comb += [walk.column_next.eq(column), walk.end_next.eq(column + 1)]
        with m.If(cursor.next_column):
            m.d.comb += [walk.column_next.eq(column + 1), walk.end_next.eq(column + 2)]
            m.d.sync += walk.column_last.eq(column + 2 == run.column_end)
            if pointers:
                m.d.sync += walk.end_unloaded.eq(column + 2 >= loaded["pointers"])
        with m.If(cursor.restart):
            m.d.comb += [walk.column_next.eq(run.column_first),
                         walk.end_next.eq(run.column_end_first)]
            m.d.sync += walk.column_last.eq(Mux(self.start, self.columns, run.columns) == 1)
            if pointers:
                m.d.sync += walk.end_unloaded.eq(loaded["pointers"] <= run.column_end_first)
        m.d.sync += column.eq(walk.column_next)
        return truncated

    def _expand_row(self, m, walk, cursor, run, step):
        """Dense and gate modes: a token for every row of the column, carrying the cursor's
        nonzero where it lies on the row and a zero weight elsewhere."""
        row, token = walk.row, self.tokens.payload
        at_row = _flag(cursor.at_row, lambda: cursor.row == row)
        hit = cursor.valid & at_row
        # This row's weight is known unless the reader is still looking below it. A presented
        # nonzero is never below the row (that is a fault, which stops the lane), so no row
        # comparison decides this: it is on the path from the reader's registers back to its
        # read addresses.
        known = cursor.valid | cursor.exhausted | (row < cursor.floor)
        m.d.comb += [
            step.emit.eq(known),
            step.emit_row.eq(row),
            step.column_done.eq(known & walk.row_last),
            cursor.consume.eq(hit),
        ]
        with m.If(known):
            m.d.comb += [walk.row_reset.eq(step.column_done),
                         walk.row_advance.eq(~step.column_done)]
            m.d.sync += [
                token.weight.eq(Mux(hit, cursor.value, 0)),
                token.first.eq(row == 0),
                token.bubble.eq(0),
                walk.row_last.eq(Mux(step.column_done, run.k == 1, row + 2 == run.k)),
            ]

    def _next_nonzero(self, m, walk, cursor, step):
        """Skip mode: a token for every stored nonzero. An exhausted column closes with a
        bubble: it writes the zero result of an empty column, or the result of one whose last
        entry was not a nonzero."""
        token = self.tokens.payload
        m.d.comb += [
            step.emit.eq(cursor.valid | cursor.exhausted),
            step.emit_row.eq(Mux(cursor.valid, cursor.row, 0)),
            step.column_done.eq((cursor.valid & cursor.last) | cursor.exhausted),
            cursor.consume.eq(cursor.valid),
        ]
        m.d.sync += [
            token.weight.eq(Mux(cursor.valid, cursor.value, 0)),
            token.first.eq(~walk.emitted),
            token.bubble.eq(~cursor.valid),
            walk.emitted.eq(Mux(step.column_done, 0, walk.emitted | cursor.valid)),
        ]

    def _check_stream(self, m, walk, cursor, run, step, truncated):
        """Malformed memory contents: words the host did not load, a row index at or beyond K,
        rows that do not increase down a column, or an entry left over when a dense column is
        complete (it lies outside the column or out of order). Returns ``(fault, code)``: the
        lane stops at once with a status code, so a corrupt stream costs at most K tokens of a
        column, never a hang."""
        row, k = walk.row, run.k
        fault = Signal()
        code = Signal.like(self.status)
        with m.If(truncated):
            m.d.comb += [fault.eq(1), code.eq(DecodeStatus.TRUNCATED)]
        with m.Elif(run.expand):
            with m.If(cursor.valid & _flag(cursor.below_row, lambda: cursor.row < row)):
                # the expansion has passed it: an out-of-order entry would stall the lane
                m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROWS_NOT_INCREASING)]
            with m.Elif(step.column_done & cursor.valid & ~cursor.consume):
                m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ENTRY_LEFT_OVER)]
        with m.Elif(cursor.valid & _flag(cursor.beyond_k, lambda: cursor.row >= k)):
            m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROW_OUT_OF_RANGE)]
        with m.Elif(cursor.valid & walk.emitted &
                    _flag(cursor.not_after_previous, lambda: cursor.row <= walk.previous_row)):
            m.d.comb += [fault.eq(1), code.eq(DecodeStatus.ROWS_NOT_INCREASING)]
        # (only skip mode checks it, where every valid nonzero is consumed)
        with m.If(cursor.consume):
            m.d.sync += walk.previous_row.eq(cursor.row)
        return fault, code

    def _load_token(self, m, walk, run, step, fault, code):
        """Send the step's token, or stop the lane on a fault. The payload is loaded on a fault
        too (it is not valid then): only ``valid`` waits for the fault checks, which are the
        longest path of the lane."""
        token = self.tokens.payload
        with m.If(fault):
            m.d.sync += [walk.running.eq(0), self.status.eq(code)]
        with m.Elif(step.emit):
            m.d.sync += self.tokens.valid.eq(1)
        with m.If(step.emit):
            m.d.sync += [
                token.act_addr.eq(walk.tile_base + step.emit_row),
                token.last.eq(step.column_done),
                token.out_addr.eq(walk.out_addr),
                token.rows.eq(Mux(walk.tile_last, run.rows_last, self._config.rows)),
            ]

    def _finish_column(self, m, walk, cursor, run, step):
        """After a column's last token: the next output address, the next column, or the first
        column of the next M-tile (the lane's run ends after its last tile).

        Not gated by a fault: the lane stops anyway, and the fault checks stay off the path
        from the memories' read data back to their read addresses. A pipelined lane moves its
        reader in the next cycle, from registers (``config.column_advance_cycles``), so that
        the decision to emit a token does not also load the reader's flip-flops.
        """
        deferred = self._config.column_advance_cycles != 0
        with m.If(step.column_done):
            m.d.sync += walk.out_addr.eq(walk.out_addr + 1)
            with m.If(walk.column_last):
                m.d.sync += [walk.tile.eq(walk.tile + 1),
                             walk.tile_last.eq(walk.tile + 2 == run.m_tiles),
                             walk.tile_base.eq(walk.tile_base + run.k)]
                with m.If(walk.tile_last):
                    m.d.sync += walk.running.eq(0)
                if deferred:
                    m.d.sync += [walk.advancing.eq(~walk.tile_last), walk.advance_restart.eq(1)]
                else:
                    m.d.comb += cursor.restart.eq(1)
            with m.Else():
                if deferred:
                    m.d.sync += [walk.advancing.eq(1), walk.advance_restart.eq(0)]
                else:
                    m.d.comb += cursor.next_column.eq(1)


class _Walk:
    """The registers of a lane's walk over its M-tiles and columns, shared by the parts of
    :meth:`LaneDecoder.elaborate`. Names are given explicitly: they are the generated
    Verilog's, and a rename would change the netlist."""

    def __init__(self, config, lane):
        self.running = Signal(name="running")
        self.tile = Signal.like(lane.m_tiles, name="tile")
        self.tile_base = Signal(unsigned(config.act_addr_bits), name="tile_base")  # tile * K
        self.column = Signal.like(lane.columns, name="column")
        self.column_next = Signal.like(lane.columns, name="column_next")
        self.end_next = Signal(len(lane.columns) + 1, name="end_next")
        self.out_addr = Signal(unsigned(config.out_addr_bits), name="out_addr")
        self.emitted = Signal(name="emitted")          # a token of this column went out
        self.row = Signal(unsigned(config.k_bits + 1), name="row")  # dense expansion: current k
        self.row_last = Signal(name="row_last")        # row + 1 == K, kept in a register
        # row in the next cycle: 0, row + 1. The first of these was created by a tuple
        # assignment, which Amaranth's tracer cannot name; its Verilog name is kept.
        self.row_reset = Signal(name="$signal")
        self.row_advance = Signal(name="row_advance")
        # column + 1 == columns and tile + 1 == m_tiles, kept in registers: the compares are
        # carry chains, and both decide the lane's next state
        self.column_last = Signal(name="column_last")
        self.tile_last = Signal(name="tile_last")
        self.previous_row = Signal.like(self.row, name="previous_row")  # of the last nonzero
        self.end_unloaded = Signal(name="end_unloaded")  # the column's end pointer: not loaded
        # a pipelined lane's move to the next column (or back to the first), a cycle after
        # the column's last token
        self.advancing = Signal(name="advancing")
        self.advance_restart = Signal(name="advance_restart")


class _Step:
    """What the lane does in a cycle it may emit: whether a token goes out, for which row,
    and whether it closes its column."""

    def __init__(self, walk):
        self.column_done = Signal(name="column_done")
        self.emit = Signal(name="emit")
        self.emit_row = Signal.like(walk.row, name="emit_row")


def _flag(computed, compare):
    """A cursor's optional look-ahead flag, or ``compare()`` where the cursor has none."""
    return compare() if computed is None else computed
