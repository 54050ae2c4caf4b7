"""The dense baseline: a conventional output-stationary systolic array, with the same ports,
job, counters and host side as :class:`zeroskip.hw.accelerator.Accelerator`.

It exists so that zero skipping can be measured against what a user with only dense networks
would build on the same FPGA (``--arch dense``): no decoder lanes, no per-PE activation copies,
no tokens. Activations flow across the rows and weights down the columns, one step of K per
cycle; every PE keeps its output in its accumulator.

Dataflow of one run (``m_tiles`` M-tiles × ``J`` = the most columns any lane has)::

    corner counters (tile t, slot j, k) ──► w address, skewed one cycle per column ─► W_c ─┐
         │                                                                                 ▼
         └► act address, skewed one cycle per row ─► A_r ─► PE(r,0) ─► PE(r,1) ─► ...  (w ↓)

PE (r, c) sees A[t·R + r, k] and W[k, column j of lane c] at the same cycle. A step (t, j) is
``max(K, 2·R - 1)`` cycles: each PE closes one output per step, and the outputs leave a column
upwards, one row per cycle, through a register per PE, into the column's result memory at the
top. A column's closes are a cycle apart row after row, so two results of one step reach the
top two cycles apart and the next step's first result after the last (``2·R - 1``).

For 100 MHz-class fabrics the array takes the zeroskip design's timing measures
(:class:`~zeroskip.config.ArrayConfig`): ``pipelined`` registers every block-RAM read and
product; ``column_results`` keeps a column's results in one memory of one result per word
(output ``j`` of row ``r`` at ``j * R + r``, a block RAM, written a cycle after the result
reaches the top) instead of a word of R results; ``fanout_registers`` registers the load
ports before they spread over the edge memories; ``act_memories="ecp5_outreg"`` reads each
row's activations through a DP16KD's own output register.

The memories hold what the zeroskip design's do, in the same layout, so the host compiler and
runtimes are shared: ``act_write`` writes row r's activations (M-tile × K) into that row's
one buffer (not into every PE of the row); the ``weights`` memory of lane c holds its columns
of W uncompressed, column after column; ``result_read`` reads, for a column, the R results of
one (tile, column) word, as the zeroskip result memories do.
"""

import operator

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring

from zeroskip.config import bits_for
from zeroskip.hw.accelerator import AcceleratorBase
from zeroskip.hw.memories import read_port
from zeroskip.hw.pe import ecp5_outreg_memory

__all__ = ["DenseColumns", "DenseAccelerator", "DensePE"]


class DenseColumns:
    """What a dense PE column is fed from: one memory of uncompressed weights (the dense
    counterpart of a decoder lane's memories, :meth:`zeroskip.hw.decoders.LaneDecoder.memories`).
    """

    @classmethod
    def memories(cls, config):
        return {"weights": (signed(config.weight_width), config.weight_depth)}


class DensePE(wiring.Component):
    """One multiply-accumulate of the systolic array.

    ``a``/``ctl`` come from the left and leave to the right one cycle later, ``w`` comes from
    above and leaves below one cycle later. A step's closing product writes the output into
    ``out`` (towards the top); otherwise ``out`` takes the word of the PE below (``below``).

    With ``multiplier="external"`` the operands leave through ``mul_a``/``mul_w`` (the
    incoming ones, for a DSP block with input registers: ``config.multiplier_latency``
    cycles; otherwise the registered ones, for a combinational block) and the product comes
    back on ``mul_p``.
    """

    def __init__(self, config, *, multiplier="infer"):
        self._config = config
        self._multiplier = multiplier
        ctl = data.StructLayout({"valid": 1, "first": 1, "last": 1})
        result = data.StructLayout({"valid": 1, "value": signed(config.acc_width)})
        members = {
            "a_in": wiring.In(signed(config.act_width)),
            "w_in": wiring.In(signed(config.weight_width)),
            "ctl_in": wiring.In(ctl),
            "a_out": wiring.Out(signed(config.act_width)),
            "w_out": wiring.Out(signed(config.weight_width)),
            "ctl_out": wiring.Out(ctl),
            "below": wiring.In(result),
            "out": wiring.Out(result),
        }
        if multiplier == "external":
            members.update({"mul_a": wiring.Out(signed(config.act_width)),
                            "mul_w": wiring.Out(signed(config.weight_width)),
                            "mul_p": wiring.In(signed(config.act_width + config.weight_width))})
        elif multiplier not in ("infer", "logic"):
            raise ValueError(f"unknown multiplier {multiplier!r}")
        super().__init__(members)

    def elaborate(self, platform):
        from zeroskip.hw.pe import _delayed, _shift_add_product
        config = self._config
        m = Module()
        # the operands and their control, one cycle on: they also go to the next PEs
        m.d.sync += [self.a_out.eq(self.a_in), self.w_out.eq(self.w_in),
                     self.ctl_out.eq(self.ctl_in)]
        ctl = self.ctl_out
        product = Signal(signed(config.act_width + config.weight_width))
        if self._multiplier == "external" and config.multiplier_latency:
            # a DSP block with its own input registers takes the incoming operands
            m.d.comb += [self.mul_a.eq(self.a_in), self.mul_w.eq(self.w_in),
                         product.eq(self.mul_p)]
            for _ in range(config.multiplier_latency - 1):
                ctl, = _delayed(m, ctl)
        elif self._multiplier == "external":
            m.d.comb += [self.mul_a.eq(self.a_out), self.mul_w.eq(self.w_out),
                         product.eq(self.mul_p)]
        elif self._multiplier == "logic":
            m.d.comb += product.eq(_shift_add_product(self.a_out, self.w_out))
        else:
            m.d.comb += product.eq(self.a_out * self.w_out)
        if config.pipelined:
            product, ctl = _delayed(m, product, ctl)

        accumulator = Signal(signed(config.acc_width))
        total = Signal(signed(config.acc_width))
        m.d.comb += total.eq(Mux(ctl.first, 0, accumulator) + product)
        with m.If(ctl.valid):
            m.d.sync += accumulator.eq(total)
        if config.pipelined:
            # the closing sum goes up from the accumulator a cycle later, so the add ends in a
            # register and not in the output multiplexer
            closing, = _delayed(m, ctl.valid & ctl.last)
            value = accumulator
        else:
            closing, value = ctl.valid & ctl.last, total
        with m.If(closing):
            m.d.sync += [self.out.valid.eq(1), self.out.value.eq(value)]
        with m.Else():
            m.d.sync += self.out.eq(self.below)
        return m


def dense_latency(config):
    """Cycles from a beat at the corner counters to its result written at the top of the
    first column by the first row (later rows and columns add 2 and 1 cycles each): the
    beat register, the memory read (and its register when pipelined), the operand
    registers, the multiplier's own registers, the product register (pipelined), the
    accumulator and the output register (plus the closing register, pipelined), and with
    ``column_results`` the register before the column's result memory."""
    pipelined = int(config.pipelined)
    mul = max(config.multiplier_latency, 1)
    return 1 + (1 + pipelined) + mul + 2 * pipelined + 1 + int(config.column_results)


def dense_drain_cycles(config):
    """Cycles after the last beat until every result is in a result memory."""
    return dense_latency(config) + (config.cols - 1) + 2 * (config.rows - 1) + 1


def dense_step_cycles(config, k):
    """Cycles of one (M-tile, column) step: K, but at least the ``2·R - 1`` cycles a column
    needs to send its R outputs up, and one more than the levels of the registered max tree
    that finds the most columns of a lane."""
    return max(k, 2 * config.rows - 1, (config.cols - 1).bit_length() + 1)


class DenseAccelerator(AcceleratorBase):
    """A dense output-stationary systolic GEMM engine; the members are those of
    :class:`zeroskip.hw.accelerator.Accelerator` (the ``weights_write`` port is its one
    lane memory). ``job.mode`` is ignored (every MAC executes), ``status`` is always OK (there
    is nothing to decode), and the lane counters count what the columns were fed:
    ``lane_busy`` the column-cycles with a real beat, the stalls nothing."""

    def elaborate(self, platform):
        from zeroskip.hw.accelerator import _popcount
        from zeroskip.hw.array import add_multipliers, multiplier_kind, tree_reduce
        config = self._config
        rows, cols = config.rows, config.cols
        job = self.job
        m = Module()

        # Control at the corner: tile t, slot j, k; a beat per cycle while issuing.
        busy, done, issuing = Signal(), Signal(), Signal()
        m.d.comb += [self.busy.eq(busy), self.done.eq(done)]
        min_step = dense_step_cycles(config, 1)
        k_count = Signal(range(max(config.max_k, min_step) + 1))
        step_last = Signal.like(k_count)
        slot = Signal(config.pointer_addr_bits)
        tile = Signal(config.tile_bits)
        act_base = Signal(config.act_addr_bits + 1)
        w_base = Signal(bits_for(config.weight_depth) + 1)
        drain = Signal(range(dense_drain_cycles(config) + 1))
        # J, the most columns of any lane: a max tree with a register per level, so that it is
        # no path of its own (a chain of comparisons across the lanes limited the ECP5 build
        # to 50 MHz). The job is set with start; the first step ends after the tree's latency
        # (dense_step_cycles).
        counts = [job.lane_columns[c] for c in range(cols)]
        while len(counts) > 1:
            level = []
            for i in range(0, len(counts), 2):
                pair = counts[i:i + 2]
                value = Signal(config.pointer_addr_bits, name=f"lanes_max{len(counts)}_{i}")
                m.d.sync += value.eq(pair[0] if len(pair) == 1 else
                                     Mux(pair[0] > pair[1], pair[0], pair[1]))
                level.append(value)
            counts = level
        slots = counts[0]                                  # J (registered unless cols == 1)
        starting = self.start & ~busy
        with m.If(starting):
            m.d.sync += [busy.eq(1), done.eq(0),
                         issuing.eq(job.lane_columns.as_value().any() & (job.m_tiles != 0)),
                         k_count.eq(0), slot.eq(0), tile.eq(0), act_base.eq(0), w_base.eq(0),
                         drain.eq(dense_drain_cycles(config)),
                         step_last.eq(Mux(job.k > min_step, job.k - 1, min_step - 1))]
        with m.Elif(issuing):
            m.d.sync += k_count.eq(k_count + 1)
            with m.If(k_count == step_last):
                m.d.sync += [k_count.eq(0), slot.eq(slot + 1), w_base.eq(w_base + job.k)]
                with m.If(slot == slots - 1):
                    m.d.sync += [slot.eq(0), w_base.eq(0), tile.eq(tile + 1),
                                 act_base.eq(act_base + job.k)]
                    with m.If(tile == job.m_tiles - 1):
                        m.d.sync += issuing.eq(0)
        with m.Elif(busy):
            with m.If(drain == 0):
                m.d.sync += [busy.eq(0), done.eq(1)]
            with m.Else():
                m.d.sync += drain.eq(drain - 1)

        beat_valid = issuing & (k_count < job.k)
        beat = Signal(data.StructLayout({
            "valid": 1, "first": 1, "last": 1,
            "act_addr": unsigned(config.act_addr_bits),
            "w_addr": unsigned(bits_for(config.weight_depth))}))
        m.d.sync += [beat.valid.eq(beat_valid), beat.first.eq(k_count == 0),
                     beat.last.eq(k_count == job.k - 1),
                     beat.act_addr.eq(act_base + k_count), beat.w_addr.eq(w_base + k_count)]

        # Edge memories: an activation buffer per row, a weight memory per column; their read
        # addresses skewed a cycle per row / column, so PE (r, c) gets both operands of a
        # beat r + c cycles after PE (0, 0).
        act_port = self.act_write
        weights_port = weights_write = getattr(self, "weights_write")
        if config.fanout_registers:
            # the load ports registered before they spread over the edge memories
            act_port = _registered_port(m, act_port, "act_write_registered")
            weights_port = _registered_port(m, weights_port, "weights_write_registered")
        row_ctl, row_a = [], []
        ctl = beat
        for r in range(rows):
            if r:
                ctl = _delayed_value(m, ctl, f"beat_row{r}")
            if config.act_memories == "ecp5_outreg":
                # the block RAM's output register is the pipelined read's second register
                c_ctl = _delayed_value(m, ctl, f"row{r}_ctl")
                a = ecp5_outreg_memory(m, _RowWrite(act_port, r), ctl.act_addr,
                                       name=f"acts{r}")
                c_ctl = _delayed_value(m, c_ctl, f"row{r}_ctl_p")
            else:
                acts = memory.Memory(shape=signed(config.act_width), depth=config.act_depth,
                                     init=[])
                m.submodules[f"acts{r}"] = acts
                wr = acts.write_port()
                m.d.comb += [wr.en.eq(act_port.en), wr.addr.eq(act_port.addr),
                             wr.data.eq(act_port.data[r])]
                rd = read_port(m, acts, name=f"acts{r}")
                m.d.comb += rd.addr.eq(ctl.act_addr)
                a, c_ctl = rd.data, _delayed_value(m, ctl, f"row{r}_ctl")
                if config.pipelined:
                    a, c_ctl = _delayed_value(m, a, f"row{r}_a"), _delayed_value(
                        m, c_ctl, f"row{r}_ctl_p")
            row_a.append(a)
            row_ctl.append(c_ctl)
        col_w = []
        w_addr = beat.w_addr
        for c in range(cols):
            if c:
                w_addr = _delayed_value(m, w_addr, f"w_addr{c}")
            weights = memory.Memory(shape=signed(config.weight_width),
                                    depth=config.weight_depth, init=[])
            m.submodules[f"weights{c}"] = weights
            wr = weights.write_port()
            m.d.comb += [wr.en.eq(weights_port.en & weights_port.mask[c]),
                         wr.addr.eq(weights_port.addr), wr.data.eq(weights_port.data[c])]
            rd = read_port(m, weights, name=f"weights{c}")
            m.d.comb += rd.addr.eq(w_addr)
            w = rd.data
            if config.pipelined:
                w = _delayed_value(m, w, f"col{c}_w")
            col_w.append(w)

        # The PE grid.
        pes = {}
        for r in range(rows):
            for c in range(cols):
                pe = pes[r, c] = DensePE(config, multiplier=multiplier_kind(config, r, c))
                m.submodules[f"pe_{r}_{c}"] = pe
                if c == 0:
                    m.d.comb += [pe.a_in.eq(row_a[r]), pe.ctl_in.valid.eq(row_ctl[r].valid),
                                 pe.ctl_in.first.eq(row_ctl[r].first),
                                 pe.ctl_in.last.eq(row_ctl[r].last)]
                else:
                    m.d.comb += [pe.a_in.eq(pes[r, c - 1].a_out),
                                 pe.ctl_in.eq(pes[r, c - 1].ctl_out)]
                m.d.comb += pe.w_in.eq(col_w[c] if r == 0 else pes[r - 1, c].w_out)
        for r in range(rows):
            for c in range(cols):
                if r + 1 < rows:
                    m.d.comb += pes[r, c].below.eq(pes[r + 1, c].out)
        add_multipliers(m, config, pes)

        # Result memories at the top: as the zeroskip PEs' memories hold them, a word of R
        # results per (tile, column) of the lane, or with column_results one result per word
        # (row r of output j at j * R + r); results arrive row 0 first, two cycles apart.
        selected = Signal(cols)
        m.d.sync += selected.eq(1 << self.result_column)
        read_data = []
        closed = []
        for c in range(cols):
            # (the order in which the memories and signals are made keeps the Verilog of the
            # builds measured before column_results, and of the first one with it, unchanged)
            if not config.column_results:
                results = memory.Memory(shape=unsigned(rows * config.acc_width),
                                        depth=config.out_depth, init=[])
                m.submodules[f"results{c}"] = results
            arriving = pes[0, c].out
            row = Signal(range(rows), name=f"result_row{c}")
            slot_c = Signal(config.pointer_addr_bits, name=f"result_slot{c}")
            addr = Signal(config.out_addr_bits + 1, name=f"result_addr{c}")
            real = slot_c < job.lane_columns[c]
            if config.column_results:
                results = memory.Memory(shape=signed(config.acc_width),
                                        depth=config.result_depth, init=[])
                wr = results.write_port()
                # registered: the block RAM's write port has a cycle of its own
                m.d.sync += [wr.addr.eq(_word_address(config, addr, row)),
                             wr.data.eq(arriving.value),
                             wr.en.eq(arriving.valid & real)]
                m.submodules[f"results{c}"] = results
            else:
                wr = results.write_port(granularity=config.acc_width)
                m.d.comb += [wr.addr.eq(addr),
                             wr.data.eq(Cat(*[arriving.value] * rows)),
                             wr.en.eq(Mux(arriving.valid & real, 1 << row, 0))]
            # a (tile, column) word is complete with its last row's result
            closed.append(arriving.valid & real & (row == rows - 1))
            with m.If(starting):
                m.d.sync += [row.eq(0), slot_c.eq(0), addr.eq(0)]
            with m.Elif(arriving.valid):
                m.d.sync += row.eq(row + 1)
                with m.If(row == rows - 1):
                    m.d.sync += [row.eq(0), slot_c.eq(slot_c + 1), addr.eq(addr + real)]
                    with m.If(slot_c == slots - 1):
                        m.d.sync += slot_c.eq(0)
            rd = read_port(m, results, name=f"results{c}")
            m.d.comb += rd.addr.eq(self.result_read.addr)
            value = rd.data
            for _ in range(config.result_read_latency - 1):
                # registered before the column select (a block RAM's clock-to-out)
                value = _delayed_value(m, value, f"results{c}_data_registered")
            read_data.append(Mux(selected[c], value, 0))
        m.d.comb += self.result_read.data.eq(tree_reduce(operator.or_, read_data))
        m.d.comb += self.status.eq(0)

        # Counters: the same names as the zeroskip design's. Every beat executes R × C MACs
        # as it crosses the array; `executed` is counted at the corner.
        counters = self.counters
        with m.If(starting):
            m.d.sync += [getattr(counters, name).eq(0) for name in
                         ("cycles", "macs_executed", "macs_gated", "lane_busy",
                          "stall_decoder", "stall_imbalance")]
        with m.Else():
            with m.If(busy):
                m.d.sync += counters.cycles.eq(counters.cycles + 1)
            with m.If(beat_valid):
                m.d.sync += [counters.macs_executed.eq(counters.macs_executed + rows * cols),
                             counters.lane_busy.eq(counters.lane_busy + cols)]
        loading = self.act_write.en | weights_write.en
        with m.If(loading):
            m.d.sync += counters.load_cycles.eq(counters.load_cycles + 1)
        if config.energy_counters:
            n_closed = Signal(range(cols + 1))
            m.d.sync += n_closed.eq(_popcount(Cat(*closed)))
            with m.If(starting):
                m.d.sync += [counters.lane_reads.eq(0), counters.outputs.eq(0)]
            with m.Else():
                with m.If(beat_valid):
                    m.d.sync += counters.lane_reads.eq(counters.lane_reads + cols)
                with m.If(busy):
                    m.d.sync += counters.outputs.eq(counters.outputs + n_closed)
            # one copy per row: activations are not replicated across the columns
            with m.If(self.act_write.en):
                m.d.sync += counters.act_writes.eq(counters.act_writes + rows)
            with m.If(weights_write.en):
                m.d.sync += counters.lane_writes.eq(counters.lane_writes +
                                                    _popcount(weights_write.mask))
        return m


def _delayed_value(m, value, name):
    copy = Signal.like(value, name=name)
    m.d.sync += copy.eq(value)
    return copy


def _word_address(config, out_addr, row):
    """The result-memory word of output ``out_addr`` of PE row ``row`` (``column_results``):
    ``out_addr * rows + row``, a concatenation when ``rows`` is a power of two."""
    rows = config.rows
    if rows & (rows - 1) == 0:
        return Cat(row[:(rows - 1).bit_length()], out_addr[:config.out_addr_bits])
    return out_addr * rows + row


def _registered_port(m, port, name):
    """A write port's ``en``, ``addr``, ``data`` (and ``mask``) a cycle later, as a port."""
    copy = port.signature.flip().create(path=(name,))
    for member in ("en", "addr", "data", "mask"):
        if hasattr(port, member):
            m.d.sync += getattr(copy, member).eq(getattr(port, member))
    return copy


class _RowWrite:
    """Row ``r``'s part of the activation write port (its byte of ``data``), for
    :func:`zeroskip.hw.pe.ecp5_outreg_memory`."""

    def __init__(self, port, r):
        self.en, self.addr, self.data = port.en, port.addr, port.data[r]
