"""The drain: a run's results, read from the accelerator's result port, as a stream of
accumulators for the output stage, each tagged with where its activation goes.

After a run of a GEMM step (:mod:`zeroskip.hw.engine.descriptor`), PE column ``c`` holds the
outputs of its lane's ``j``-th column for M-tile ``t`` as output ``w = t * columns_c + j``
(:func:`zeroskip.sim.compiler.assemble`'s layout): at result address ``w``, a word of one
result per PE row, or with ``column_results`` row ``r``'s at ``w * rows + r``. The drain walks
the lanes, their outputs in order and each output's rows, and streams every result of a real
row (the last tile's rows beyond ``rows_last`` are padding) with its parameter word's address
(``param_base`` + the output channel, from the column map) and its feature-map address (HWC,
from ``pixel_first``).

Each element is a read of the result port (a word again per row without ``column_results``),
issued while a queue has room for it and every read in flight; its result reaches the queue
``result_read_latency`` cycles later. A lane's first output costs two cycles (the column map's
address, its latch), every other output one (its map word is read while the previous output's
elements are issued), then one per element; the run's end, the last read's latency and a
cycle in the queue.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import bits_for
from zeroskip.hw.engine.output_stage import input_layout
from zeroskip.hw.layouts import result_read_signature, write_signature
from zeroskip.hw.memories import read_port

__all__ = ["Drain", "channel_bits", "tag_width"]


def channel_bits(params) -> int:
    """Bits of an output channel in the column map (``params``: an EngineParams)."""
    return bits_for(params.max_channels + 1)


def tag_width(params) -> int:
    """Bits of an element's tag: its map address, and above it its output channel."""
    return params.map_addr_bits + channel_bits(params)


class Drain(wiring.Component):
    """Results to the output stage, and the column map that names their channels.

    Parameters
    ----------
    params : EngineParams

    Members
    -------
    start : In(1)
        Pulse to drain the run described by ``step`` (held stable until ``done``).
    step : In(step_layout)
    busy, done : Out(1)
        ``done`` rises when the last element has been accepted, until the next start.
    result_read : Out(result_read_signature), result_column : Out
        The accelerator's result port.
    colmap_write : In(write_signature)
        Writes the column map (the host, before an inference).
    o : Out(stream of output_stage.input_layout)
        ``acc``, ``channel`` (the parameter word's address) and ``tag`` (the map address,
        and above it the output channel: :func:`tag_width`).
    """

    def __init__(self, params):
        self._params = params
        config = params.config
        super().__init__({
            "start": In(1),
            "step": In(params.step_layout),
            "busy": Out(1),
            "done": Out(1),
            "result_read": Out(result_read_signature(config)),
            "result_column": Out(range(config.cols)),
            "colmap_write": In(write_signature(bits_for(params.colmap_depth),
                                               unsigned(channel_bits(params)))),
            "o": Out(stream.Signature(input_layout(config.acc_width, params.param_depth,
                                                   tag_width(params)))),
        })

    def elaborate(self, platform):
        m = Module()
        params = self._params
        config = params.config
        rows, cols = config.rows, config.cols
        latency = config.result_read_latency
        step = self.step
        job = step.job

        colmap = memory.Memory(shape=unsigned(channel_bits(params)), depth=params.colmap_depth,
                               init=[])
        m.submodules.colmap = colmap
        write = colmap.write_port()
        m.d.comb += [write.en.eq(self.colmap_write.en), write.addr.eq(self.colmap_write.addr),
                     write.data.eq(self.colmap_write.data)]
        colmap_read = read_port(m, colmap, name="colmap")

        busy, done = Signal(), Signal()
        m.d.comb += [self.busy.eq(busy), self.done.eq(done)]
        addr_bits = params.map_addr_bits
        c = Signal(range(cols + 1))
        lane_map = Signal(bits_for(params.colmap_depth + 1))   # the lane's first map word
        j = Signal(config.result_addr_bits)                   # the word's first result address
        jj = Signal(config.pointer_addr_bits)                 # column of the lane
        t = Signal(config.tile_bits)                          # M-tile
        tile_addr = Signal(addr_bits)                         # tile t's first pixel, channel 0
        channel = Signal(channel_bits(params))
        row_addr = Signal(addr_bits)
        r = Signal(range(rows + 1))
        columns = Signal(config.pointer_addr_bits)
        m.d.comb += columns.eq(job.lane_columns[c[:max(1, (cols - 1).bit_length())]]
                               if cols > 1 else job.lane_columns[0])
        valid_rows = Signal(range(rows + 1))

        # Elements are read one a cycle (a result word again per row without column_results)
        # and reach the stream through a queue `latency` cycles later, with what the read was
        # for. A read is issued only while the queue has room for it and every read in
        # flight, so a stalled stream loses nothing and a flowing one takes an element a cycle.
        element = data.StructLayout({"r": range(rows), "channel": channel_bits(params),
                                     "row_addr": addr_bits})
        depth = latency + 2
        m.submodules.queue = queue = fifo.SyncFIFO(
            width=len(self.o.payload.as_value()), depth=depth)
        issue = Signal()
        inflight = [Signal(name=f"inflight{i}") for i in range(latency)]
        carried = [Signal(element, name=f"carried{i}") for i in range(latency)]
        m.d.sync += [inflight[0].eq(issue), carried[0].r.eq(r), carried[0].channel.eq(channel),
                     carried[0].row_addr.eq(row_addr)]
        for i in range(1, latency):
            m.d.sync += [inflight[i].eq(inflight[i - 1]), carried[i].eq(carried[i - 1])]
        room = Signal()
        m.d.comb += room.eq(queue.level + sum(inflight) < depth)
        arrived = carried[-1]
        word = self.result_read.data
        acc = (word[0] if rows == 1 or config.column_results else
               word[arrived.r[:max(1, (rows - 1).bit_length())]])
        payload = Signal.like(self.o.payload)
        m.d.comb += [payload.acc.eq(acc),
                     payload.channel.eq(step.param_base + arrived.channel),
                     payload.tag.eq(Cat(arrived.row_addr, arrived.channel)),
                     queue.w_en.eq(inflight[-1]), queue.w_data.eq(payload),
                     self.o.valid.eq(queue.r_rdy), self.o.payload.eq(queue.r_data),
                     queue.r_en.eq(self.o.ready)]

        # the colmap's next word's address goes out while a word's elements are issued, so
        # that it is latched right after the last of them (no READ cycle between words); the
        # column select follows the lane a cycle late, after the last read of the lane before
        lane = Signal(range(cols))
        jj_next = Signal.like(jj)
        issuing = Signal()
        m.d.comb += [jj_next.eq(Mux(jj == columns - 1, 0, jj + 1)),
                     self.result_read.addr.eq(j + r if config.column_results else j),
                     self.result_column.eq(lane),
                     colmap_read.addr.eq(lane_map + Mux(issuing, jj_next, jj)),
                     issue.eq(issuing & room)]
        word_step = rows if config.column_results else 1

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [busy.eq(1), done.eq(0), c.eq(0), lane_map.eq(step.colmap_base),
                                 j.eq(0), jj.eq(0), t.eq(0), tile_addr.eq(step.pixel_first)]
                    m.next = "LANE"
            with m.State("LANE"):
                m.d.sync += lane.eq(c[:len(lane)])
                with m.If(c == cols):
                    m.next = "FLUSH"
                with m.Elif(columns == 0):
                    m.d.sync += [c.eq(c + 1), lane_map.eq(lane_map + step.lane_stride)]
                with m.Else():
                    m.next = "READ"
            with m.State("READ"):           # the map word's address is out
                m.next = "LATCH"
            with m.State("LATCH"):
                m.d.sync += [channel.eq(colmap_read.data),
                             row_addr.eq(tile_addr + colmap_read.data), r.eq(0),
                             valid_rows.eq(Mux(t == job.m_tiles - 1, job.rows_last, rows))]
                m.next = "ISSUE"
            with m.State("ISSUE"):
                with m.If(room):
                    m.d.sync += [r.eq(r + 1), row_addr.eq(row_addr + step.channels)]
                    with m.If(r + 1 == valid_rows):
                        last_column = jj == columns - 1
                        m.d.sync += j.eq(j + word_step)
                        with m.If(last_column):
                            m.d.sync += [jj.eq(0), t.eq(t + 1),
                                         tile_addr.eq(tile_addr + step.tile_step)]
                        with m.Else():
                            m.d.sync += jj.eq(jj + 1)
                        with m.If(last_column & (t == job.m_tiles - 1)):
                            m.d.sync += [c.eq(c + 1), lane_map.eq(lane_map + step.lane_stride),
                                         j.eq(0), jj.eq(0), t.eq(0),
                                         tile_addr.eq(step.pixel_first)]
                            m.next = "LANE"
                        with m.Else():
                            m.next = "LATCH"    # its map address is out now
            with m.State("FLUSH"):          # the last elements reach the stream
                with m.If(~sum(inflight).bool() & ~queue.r_rdy):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "IDLE"
        m.d.comb += issuing.eq(fsm.ongoing("ISSUE"))
        return m
