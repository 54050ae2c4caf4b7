"""The accelerator: decoder lanes, the PE array, control and hardware counters."""

import operator

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.hw.array import PEArray, tree_reduce
from zeroskip.config import DecodeStatus, bits_for
from zeroskip.hw.decoders import decoder_class, decoder_for
from zeroskip.hw.layouts import (counters_layout, job_layout, resident_bases,
                                 result_read_signature, write_signature)

__all__ = ["Accelerator", "AcceleratorBase", "accelerator_for", "accelerator_members"]


def accelerator_for(config):
    """The accelerator of ``config.arch``: :class:`Accelerator` (zero skipping) or the dense
    baseline, :class:`zeroskip.hw.dense.DenseAccelerator`; both have the same members."""
    if config.arch == "dense":
        from zeroskip.hw.dense import DenseAccelerator
        return DenseAccelerator(config)
    return Accelerator(config)


def accelerator_members(config):
    """The members of an accelerator of ``config`` (see :class:`Accelerator`)."""
    rows, cols = config.rows, config.cols
    members = {
        "start": In(1),
        "job": In(job_layout(config)),
        "busy": Out(1),
        "done": Out(1),
        "act_write": In(write_signature(config.act_addr_bits + config.bank_bits,
                                        data.ArrayLayout(signed(config.act_width), rows))),
    }
    # one write port per memory of the decoder lanes, lane-masked, all lanes in parallel
    for name, (shape, depth) in decoder_class(config).memories(config).items():
        members[f"{name}_write"] = In(write_signature(
            bits_for(depth) + config.bank_bits, data.ArrayLayout(shape, cols), mask=cols))
    members.update({
        "result_read": In(result_read_signature(config)),
        "result_column": In(range(cols)),
        "counters": Out(counters_layout(config)),
        "status": Out(data.ArrayLayout(DecodeStatus, cols)),
    })
    return members


def _popcount(bits):
    """Ones in ``bits``, as a balanced tree of adders."""
    return tree_reduce(operator.add, [bits[i] for i in range(len(bits))])


class AcceleratorBase(wiring.Component):
    """What every architecture's accelerator shares: its members (:func:`accelerator_members`),
    its configuration and the names of the memories the host loads per column."""

    def __init__(self, config):
        self._config = config
        super().__init__(accelerator_members(config))

    @property
    def config(self):
        return self._config

    @property
    def memory_names(self):
        """Names of the decoder lanes' memories (the dense array's: ``weights``), in load
        order."""
        return list(decoder_class(self._config).memories(self._config))


class Accelerator(AcceleratorBase):
    """A zero-skipping GEMM engine with its operands in on-chip memory.

    Computes, for one run, the M-tiles × lane columns laid out in memory by the host compiler
    (:mod:`zeroskip.sim.compiler`), then raises ``done``. Each of the ``cols`` decoder lanes feeds
    its own PE column and runs through its own list of output columns back to back, so no column
    waits for another until the end of the run.

    Members
    -------
    start : In(1)
        Pulse to start a run with ``job``; ignored while busy.
    job : In(job_layout)
        Mode and shape of the run; held stable while busy.
    busy, done : Out(1)
        ``done`` rises when a run finishes and stays up until the next ``start``.
    act_write : In(write_signature)
        Writes one activation per PE row (R bytes) at ``addr`` of every PE of that row.
    <memory>_write : In(write_signature with lane mask)
        One per memory of the format's decoder lanes (e.g. ``entries``, ``pointers``): writes
        ``data[c]`` into lane ``c`` for every lane selected by ``mask``.
    result_read : In(read_signature), result_column : In
        Reads the results of one PE column (R words), one cycle after ``addr``.
    counters : Out(counters_layout)
        Hardware counters of the last run (see :data:`zeroskip.hw.layouts.COUNTERS`).
    status : Out(array of DecodeStatus)
        Per lane: OK, or the malformed-memory fault that stopped it (the run still ends; its
        results must not be used).
    """

    def elaborate(self, platform):
        config = self._config
        rows, cols = config.rows, config.cols
        m = Module()

        m.submodules.array = array = PEArray(config)
        lanes = []
        for c in range(cols):
            lane = decoder_for(config)
            m.submodules[f"lane{c}"] = lane
            lanes.append(lane)
            wiring.connect(m, lane.tokens, array.columns[c])
            m.d.comb += [
                self.status[c].eq(lane.status),
                lane.start.eq(self.start & ~self.busy),
                lane.mode.eq(self.job.mode),
                lane.m_tiles.eq(self.job.m_tiles),
                lane.k.eq(self.job.k),
                lane.rows_last.eq(self.job.rows_last),
                lane.columns.eq(self.job.lane_columns[c]),
            ]
            if config.double_buffer:
                m.d.comb += lane.bank.eq(self.job.bank)
            for name in resident_bases(config):
                m.d.comb += getattr(lane, name).eq(getattr(self.job, name))
            for name in self.memory_names:
                port, lane_port = getattr(self, f"{name}_write"), getattr(lane, f"{name}_write")
                m.d.comb += [
                    lane_port.en.eq(port.en & port.mask[c]),
                    lane_port.addr.eq(port.addr),
                    lane_port.data.eq(port.data[c]),
                ]
        m.d.comb += array.mode.eq(self.job.mode)
        wiring.connect(m, wiring.flipped(self.act_write), array.act_write)
        wiring.connect(m, wiring.flipped(self.result_read), array.result_read)
        m.d.comb += array.result_column.eq(self.result_column)
        if config.double_buffer:
            # the run's bank for the PEs' activation reads and result writes, fixed from start
            # until the next start (the drain's last writes included)
            bank = Signal(name="bank_run")
            with m.If(self.start & ~self.busy):
                m.d.sync += bank.eq(self.job.bank)
            m.d.comb += array.bank.eq(bank)

        # Control: busy from start until every lane has finished and the last token has
        # drained through the column and into the output memories.
        lanes_busy = Signal(cols)
        m.d.comb += lanes_busy.eq(Cat(*(lane.busy for lane in lanes)))
        busy = Signal()
        done = Signal()
        drain = Signal(range(config.array_latency + 2))
        m.d.comb += [self.busy.eq(busy), self.done.eq(done)]
        with m.If(self.start & ~busy):
            m.d.sync += [busy.eq(1), done.eq(0), drain.eq(config.array_latency + 1)]
        with m.Elif(busy & (lanes_busy == 0)):
            with m.If(drain == 0):
                m.d.sync += [busy.eq(0), done.eq(1)]
            with m.Else():
                m.d.sync += drain.eq(drain - 1)

        # Counters. Popcounts are registered once so a wide array does not lengthen the
        # critical path; the drain above outlasts that delay and the PEs' one, so every count
        # is final when `done` rises.
        counters = self.counters
        executed = Signal(range(rows * cols + 1))
        gated = Signal(range(rows * cols + 1))
        tokens = Signal(range(cols + 1))
        starved = Signal(range(cols + 1))
        waiting = Signal(range(cols + 1))
        counting = Signal()
        counting_macs = Signal()  # the PEs' flags arrive two cycles later than the lanes'
        counting_flags = Signal()
        # the array-wide popcounts in two registered steps: per PE column, then across columns
        executed_columns = [Signal(range(rows + 1)) for _ in range(cols)]
        gated_columns = [Signal(range(rows + 1)) for _ in range(cols)]
        for c in range(cols):
            m.d.sync += [
                executed_columns[c].eq(_popcount(array.executed[c * rows:(c + 1) * rows])),
                gated_columns[c].eq(_popcount(array.gated[c * rows:(c + 1) * rows])),
            ]
        m.d.sync += [
            counting.eq(busy),
            counting_flags.eq(counting),
            counting_macs.eq(counting_flags),
            executed.eq(_popcount(executed_columns)),
            gated.eq(_popcount(gated_columns)),
            tokens.eq(_popcount(Cat(*(lane.tokens.valid for lane in lanes)))),
            starved.eq(_popcount(Cat(*(lane.busy & ~lane.tokens.valid for lane in lanes)))),
            waiting.eq(Mux(lanes_busy.any(), _popcount(~lanes_busy), 0)),
        ]
        with m.If(self.start & ~busy):
            m.d.sync += [getattr(counters, name).eq(0) for name in
                         ("cycles", "macs_executed", "macs_gated", "lane_busy", "stall_decoder",
                          "stall_imbalance")]
        with m.Else():
            with m.If(busy):
                m.d.sync += counters.cycles.eq(counters.cycles + 1)
            with m.If(counting_macs):
                m.d.sync += [
                    counters.macs_executed.eq(counters.macs_executed + executed),
                    counters.macs_gated.eq(counters.macs_gated + gated),
                ]
            with m.If(counting):
                m.d.sync += [
                    counters.lane_busy.eq(counters.lane_busy + tokens),
                    counters.stall_decoder.eq(counters.stall_decoder + starved),
                    counters.stall_imbalance.eq(counters.stall_imbalance + waiting),
                ]
        # Load beats since reset; the host takes the difference between two runs' readings (a
        # per-run latch here was tried: it re-rolled the ULX3S placement from 103 to 96 MHz).
        loading = self.act_write.en
        for name in self.memory_names:
            loading = loading | getattr(self, f"{name}_write").en
        with m.If(loading):
            m.d.sync += counters.load_cycles.eq(counters.load_cycles + 1)
        if config.energy_counters:
            self._count_energy_events(m, lanes, busy, counting)
        if config.double_buffer:
            # end to end: every cycle from the first load beat after reset on
            timing = Signal()
            with m.If(loading):
                m.d.sync += timing.eq(1)
            with m.If(loading | timing):
                m.d.sync += counters.total_cycles.eq(counters.total_cycles + 1)
        return m

    def _count_energy_events(self, m, lanes, busy, counting):
        """The counters of :data:`zeroskip.hw.layouts.ENERGY_COUNTERS`: per run, the words the
        lanes read and the results closed (both registered, like the lanes' other counts);
        since reset, like ``load_cycles``, the bytes and words written by the loads."""
        config, counters = self._config, self.counters
        rows, cols = config.rows, config.cols
        reads = Signal(range(15 * cols + 1))
        closed = Signal(range(cols + 1))
        m.d.sync += [
            reads.eq(sum(lane.reads for lane in lanes)),
            closed.eq(_popcount(Cat(*(lane.tokens.valid & lane.tokens.ready &
                                      lane.tokens.payload.last for lane in lanes)))),
        ]
        with m.If(self.start & ~busy):
            m.d.sync += [counters.lane_reads.eq(0), counters.outputs.eq(0)]
        with m.Elif(counting):
            m.d.sync += [counters.lane_reads.eq(counters.lane_reads + reads),
                         counters.outputs.eq(counters.outputs + closed)]
        # an activation beat writes one byte into every PE of its row: rows × cols copies
        with m.If(self.act_write.en):
            m.d.sync += counters.act_writes.eq(counters.act_writes + rows * cols)
        written = [Mux(getattr(self, f"{name}_write").en,
                       _popcount(getattr(self, f"{name}_write").mask), 0)
                   for name in self.memory_names]
        m.d.sync += counters.lane_writes.eq(counters.lane_writes + sum(written))
