"""The register block of the bus wrappers: a Wishbone B4 pipelined slave decoding
:class:`zeroskip.hw.bus.regmap.RegisterMap`.

The Wishbone top exposes it as it is; the AXI top puts an AXI4-Lite bridge in front of it.
One access at a time: ``stall`` is up from the cycle a request is taken until its ``ack``.
"""

from amaranth.hdl import Cat, Const, Module, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import DecodeStatus, bits_for
from zeroskip.hw.bus.regmap import LANES_PER_REGISTER
from zeroskip.hw.decoders import decoder_class
from zeroskip.hw.layouts import counters_layout, job_layout, result_read_signature, write_signature

__all__ = ["wishbone_signature", "Registers"]


def wishbone_signature(addr_bits):
    """Wishbone B4 pipelined, 32-bit data, word addresses, as seen by the master."""
    return wiring.Signature({
        "cyc": Out(1), "stb": Out(1), "we": Out(1), "adr": Out(addr_bits), "dat_w": Out(32),
        "sel": Out(4), "dat_r": In(32), "ack": In(1), "stall": In(1),
    })


class Registers(wiring.Component):
    """Registers (and memory windows) of ``regmap`` on a Wishbone slave.

    Members
    -------
    bus : In(wishbone_signature)
    job : Out(job_layout)
    start, reset : Out(1)
        Requests, held until ``accepted`` (``reset`` first when both are up).
    accepted : In(1)
    busy, done, counters, lanes : In
        The accelerator's.
    irq : Out(1)
        STATUS.DONE.
    reply_valid, reply_code, tlast_error : In  (``axi``)
        A reply frame's status went out; TLAST was misplaced in a request frame.
    <memory>_write, result_read, result_column : Out  (``wishbone``)
        To the accelerator's memory ports.
    """

    def __init__(self, regmap):
        self._map = regmap
        config = regmap.config
        members = {
            "bus": In(wishbone_signature(regmap.addr_bits - 2)),
            "job": Out(job_layout(config)), "start": Out(1), "reset": Out(1),
            "accepted": In(1), "busy": In(1), "done": In(1),
            "counters": In(counters_layout(config)),
            "lanes": In(data.ArrayLayout(DecodeStatus, config.cols)),
            "irq": Out(1),
        }
        if regmap.bus == "axi":
            members.update({"reply_valid": In(1), "reply_code": In(8), "tlast_error": In(1)})
        self._memories = {}
        if regmap.windows:
            memories = decoder_class(config).memories(config)
            members["act_write"] = Out(write_signature(
                config.act_addr_bits, data.ArrayLayout(signed(config.act_width), config.rows)))
            for name, (shape, depth) in memories.items():
                members[f"{name}_write"] = Out(write_signature(
                    bits_for(depth), data.ArrayLayout(shape, config.cols), mask=config.cols))
            members["result_read"] = Out(result_read_signature(config, banked=False))
            members["result_column"] = Out(range(config.cols))
            self._memories = ["act", *memories]
        super().__init__(members)

    def elaborate(self, platform):
        regmap, bus = self._map, self.bus
        m = Module()
        # No FSM: `stall` and `ack` come from registers. (An output an FSM drives only in some
        # states sits in an `always @*` block that Icarus never evaluates until the state
        # first changes, so a master would see X from time zero.)
        pending = Signal()   # a RESULTS read between its request and its data
        # ... whose data is not on the result port yet: cycles left
        wait = Signal(range(self._map.config.result_read_latency + 1))
        ack = Signal()
        r_data = Signal(32)
        m.d.comb += [bus.stall.eq(pending | ack), bus.ack.eq(ack), bus.dat_r.eq(r_data)]
        take = bus.cyc & bus.stb & ~bus.stall

        flags = self._control(m, take, bus)
        read_values = self._read_values(flags)
        result = self._windows(m, take, bus) if regmap.windows else None

        m.d.sync += ack.eq(0)
        with m.If(take):
            m.d.sync += r_data.eq(0)
            with m.If(~bus.we):
                with m.Switch(bus.adr):
                    for offset, value in read_values.items():
                        with m.Case(offset >> 2):
                            m.d.sync += r_data.eq(value)
            if result is not None:
                with m.If(~bus.we & result["inside"]):
                    m.d.sync += [pending.eq(1), wait.eq(self._map.config.result_read_latency)]
                with m.Else():
                    m.d.sync += ack.eq(1)
            else:
                m.d.sync += ack.eq(1)
        if result is not None:
            # the result port's address is registered at the request; its data follows
            # result_read_latency cycles later
            with m.If(pending & (wait != 0)):
                m.d.sync += wait.eq(wait - 1)
            with m.Elif(pending):
                data_word = self.result_read.data.as_value()
                for i in range(-(-len(data_word) // 32)):
                    with m.If(result["slot"] == i):
                        m.d.sync += r_data.eq(data_word[32 * i:32 * i + 32])
                m.d.sync += [pending.eq(0), ack.eq(1)]
        return m

    def _is(self, adr, name):
        """``adr`` (a word address) is register ``name``."""
        return adr == self._map[name].offset >> 2

    def _control(self, m, take, bus):
        """CONTROL, STATUS, the JOB registers and the sticky frame flags."""
        regmap = self._map
        write = take & bus.we
        start, reset, launched = Signal(), Signal(), Signal()
        m.d.comb += [self.start.eq(start & ~reset), self.reset.eq(reset)]
        # `launched`: a START was taken and the run has not shown `busy` yet
        with m.If(self.busy):
            m.d.sync += launched.eq(0)
        with m.If(self.accepted & reset):
            m.d.sync += [reset.eq(0), launched.eq(0)]
        with m.Elif(self.accepted & start):
            m.d.sync += [start.eq(0), launched.eq(1)]
        clear = Signal()
        with m.If(write & self._is(bus.adr, "CONTROL")):
            with m.If(bus.dat_w[0]):
                m.d.sync += start.eq(1)
            with m.If(bus.dat_w[1]):
                m.d.sync += reset.eq(1)
            m.d.comb += clear.eq(bus.dat_w[2])

        job = Signal(32 * -(-regmap.job_bits // 32))
        m.d.comb += self.job.eq(job[:regmap.job_bits])
        for i in range(len(job) // 32):
            with m.If(write & self._is(bus.adr, f"JOB_{i}")):
                for b in range(4):
                    with m.If(bus.sel[b]):
                        m.d.sync += job[32 * i + 8 * b:32 * i + 8 * b + 8].eq(
                            bus.dat_w[8 * b:8 * b + 8])

        lane_fault = Cat(lane != DecodeStatus.OK for lane in self.lanes).any()
        status = {"BUSY": self.busy | launched,
                  "DONE": self.done & ~self.busy & ~start & ~reset & ~launched,
                  "LANE_FAULT": lane_fault, "PENDING": start | reset}
        m.d.comb += self.irq.eq(status["DONE"])
        flags = {"job": job, "STATUS": status}
        if regmap.bus == "axi":
            frame_error, tlast_error = Signal(), Signal()
            rejects, last_reply = Signal(32), Signal(8)
            with m.If(self.reply_valid):
                m.d.sync += last_reply.eq(self.reply_code)
                with m.If(self.reply_code != 0):
                    m.d.sync += [frame_error.eq(1), rejects.eq(rejects + 1)]
            with m.If(self.tlast_error):
                m.d.sync += tlast_error.eq(1)
            with m.If(clear):
                m.d.sync += [frame_error.eq(0), tlast_error.eq(0), rejects.eq(0)]
            status.update({"FRAME_ERROR": frame_error, "TLAST_ERROR": tlast_error})
            flags.update({"REJECTS": rejects, "LAST_REPLY": last_reply})
        return flags

    def _read_values(self, flags):
        """Offset → the value a read returns, for every readable register."""
        regmap = self._map
        values = {}
        for reg in regmap.registers:
            if reg.value is not None:
                values[reg.offset] = Const(reg.value, 32)
        status = regmap["STATUS"]
        bits = [Const(0, 1)] * 32
        for name, bit, _ in status.fields:
            bits[bit] = flags["STATUS"][name]
        values[status.offset] = Cat(*bits)
        for name in ("REJECTS", "LAST_REPLY"):
            if name in flags:
                values[regmap[name].offset] = flags[name]
        for i in range(len(flags["job"]) // 32):
            values[regmap[f"JOB_{i}"].offset] = flags["job"][32 * i:32 * i + 32]
        for reg, name, half in regmap.counter_regs:
            values[reg.offset] = self.counters[name][32 * half:32 * half + 32]
        for i, reg in enumerate(regmap.lane_regs):
            lanes = [self.lanes[c] for c in range(i * LANES_PER_REGISTER,
                                                   min(len(self.lanes), (i + 1) *
                                                       LANES_PER_REGISTER))]
            nibbles = [Value.cast(lane) for lane in lanes]
            values[reg.offset] = Cat(*(Cat(n, Const(0, 4 - len(n))) for n in nibbles))
        return values

    def _windows(self, m, take, bus):
        """The memory windows: writes assemble a word slot by slot in ``stage`` and write it
        a cycle after its last slot; a read of RESULTS sets the result port's address."""
        regmap, config = self._map, self._map.config
        windows = {w.name: w for w in regmap.windows}
        ports = [getattr(self, f"{name}_write") for name in self._memories]
        stage = Signal(32 * max(w.slots for w in regmap.windows))
        commit, commit_target = Signal(), Signal(range(len(ports)))
        commit_addr = Signal(16)
        m.d.sync += commit.eq(0)
        for index, port in enumerate(ports):
            window = [w for w in windows.values() if w.target == index][0]
            bits = len(port.data.as_value())
            m.d.comb += [port.en.eq(commit & (commit_target == index)),
                         port.addr.eq(commit_addr), port.data.eq(stage[:bits])]
            if hasattr(port, "mask"):
                m.d.comb += port.mask.eq(stage[bits:window.bits])

        def inside(window):
            size_bits = (window.size - 1).bit_length()
            return bus.adr[size_bits - 2:] == window.base >> size_bits

        def field(window, stride, size):
            lo = (stride - 1).bit_length() - 2
            return bus.adr[lo:(size - 1).bit_length() - 2]

        slot = Signal(range(max(w.slots for w in regmap.windows) + 1))
        for window in regmap.windows:
            if window.target is None:
                continue
            with m.If(take & bus.we & inside(window)):
                word_slot = bus.adr[:(window.stride - 1).bit_length() - 2]
                for i in range(window.slots):
                    with m.If(word_slot == i):
                        m.d.sync += stage[32 * i:32 * i + 32].eq(bus.dat_w)
                word = field(window, window.stride, window.size)
                # words past the memory's depth (the window is a power of two) are dropped
                with m.If((word_slot == window.slots - 1) & (word < window.depth)):
                    m.d.sync += [commit.eq(1), commit_target.eq(window.target),
                                 commit_addr.eq(word)]

        results = windows["RESULTS"]
        is_result = Signal()
        m.d.comb += is_result.eq(inside(results))
        with m.If(take & ~bus.we & is_result):
            m.d.sync += [
                slot.eq(bus.adr[:(results.stride - 1).bit_length() - 2]),
                self.result_read.addr.eq(field(results, results.stride, results.column_stride)),
                self.result_column.eq(bus.adr[(results.column_stride - 1).bit_length() - 2:
                                              (results.size - 1).bit_length() - 2]),
            ]
        return {"inside": is_result, "slot": slot}
