"""The accelerator as an IP core for an SoC bus (``zeroskip verilog --bus axi|wishbone``).

:class:`AxiTop`
    AXI4-Lite slave (``s_axil_*``) for the registers of :class:`~zeroskip.hw.bus.regmap.
    RegisterMap`, and the host link's frames (:mod:`zeroskip.hw.link`) over AXI4-Stream: requests
    in on ``s_axis_*``, replies out on ``m_axis_*``, one frame per TLAST. The same host runtime
    that drives a board's UART drives these streams (:class:`zeroskip.platforms.runtime.
    BoardLink`); the registers add starting a run, the counters and the status without a frame.
:class:`WishboneTop`
    Wishbone B4 pipelined slave (``wb_*``, LiteX's bus) mapping the registers and every memory,
    for a soft CPU's loads and stores.

Both run on one clock, ``clk``, with an active-high synchronous ``rst``, and raise ``irq`` while
the last run is done (STATUS.DONE: it falls when a run starts, by frame or register, and rises when
it ends).
"""

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from zeroskip.hw.accelerator import accelerator_for
from zeroskip.hw.bus.regmap import RegisterMap
from zeroskip.hw.bus.registers import Registers, wishbone_signature
from zeroskip.hw.link.host_link import HostLink
from zeroskip.hw.link.protocol import REPLY_SYNC, REQUEST_SYNC

__all__ = ["AxiTop", "WishboneTop", "bus_top"]


def _flat(prefix, signature):
    """The members of a slave of ``signature`` (a master's view) as flat ports
    ``prefix_name``: Verilog port names that tools and verification IP recognise."""
    return {f"{prefix}_{name}": (In(member.shape) if member.flow == Out else Out(member.shape))
            for name, member in signature.members.items()}


def _connect_flat(m, top, prefix, slave):
    """Connects ``top``'s flat ports ``prefix_*`` to the interface ``slave`` (an In member)."""
    for name, member in slave.signature.members.items():
        port, inner = getattr(top, f"{prefix}_{name}"), getattr(slave, name)
        m.d.comb += inner.eq(port) if member.flow == In else port.eq(inner)


def _axil_signature(addr_bits):
    """AXI4-Lite, 32-bit data, as seen by the master."""
    return wiring.Signature({
        "awaddr": Out(addr_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


def _axis_signature():
    """AXI4-Stream of bytes with TLAST, as seen by the source."""
    return wiring.Signature({"tdata": Out(8), "tvalid": Out(1), "tready": In(1),
                             "tlast": Out(1)})


class _FrameTracker:
    """Follows the frames of a byte stream (``sync``, a code byte, a little-endian length, the
    payload, two CRC bytes): ``last`` is up while the byte offered is a frame's last, ``code``
    while it is the code byte."""

    def __init__(self, m, sync, valid_byte, fire):
        self.active = Signal()
        self.pos = Signal(17)
        self.length = Signal(16)
        self.last = Signal()
        self.code = Signal()
        m.d.comb += [self.last.eq(self.active & (self.pos >= 4) &
                                  (self.pos == self.length + 5)),
                     self.code.eq(self.active & (self.pos == 1))]
        with m.If(fire):
            with m.If(~self.active):
                with m.If(valid_byte == sync):
                    m.d.sync += [self.active.eq(1), self.pos.eq(1)]
            with m.Elif(self.last):
                m.d.sync += [self.active.eq(0), self.pos.eq(0)]
            with m.Else():
                m.d.sync += self.pos.eq(self.pos + 1)
                with m.If(self.pos == 2):
                    m.d.sync += self.length[:8].eq(valid_byte)
                with m.If(self.pos == 3):
                    m.d.sync += self.length[8:].eq(valid_byte)

    def end(self, m):
        """Forget the frame (the source marked its end)."""
        m.d.sync += [self.active.eq(0), self.pos.eq(0)]


class AxiTop(wiring.Component):
    """AXI4-Lite registers and AXI4-Stream frames in front of the host link and accelerator.

    Parameters
    ----------
    config : ArrayConfig
    clock_hz : int
        Reported by INFO and the CLOCK_HZ register.
    max_payload : int
        Largest request payload (bytes).
    idle_timeout : int
        Cycles without a byte that end a broken request frame (an AXI4-Stream master leaves
        no long gaps inside a frame).
    """

    def __init__(self, config, *, clock_hz=100_000_000, max_payload=512, idle_timeout=1024):
        self._config = config
        self._clock_hz = clock_hz
        self._max_payload = max_payload
        self._idle_timeout = idle_timeout
        self.regmap = RegisterMap(config, "axi", clock_hz=clock_hz)
        super().__init__({**_flat("s_axil", _axil_signature(self.regmap.addr_bits)),
                          **_flat("s_axis", _axis_signature()),
                          **_flat("m_axis", _axis_signature().flip()), "irq": Out(1)})

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = HostLink(
            self._config, clock_hz=self._clock_hz, max_payload=self._max_payload,
            idle_timeout=self._idle_timeout, bus=True)
        m.submodules.registers = regs = Registers(self.regmap)
        m.d.comb += [link.ext_job.eq(regs.job), link.ext_start.eq(regs.start),
                     link.ext_reset.eq(regs.reset), regs.accepted.eq(link.ext_accepted),
                     regs.busy.eq(link.busy), regs.done.eq(link.done),
                     regs.counters.eq(link.counters), regs.lanes.eq(link.status)]
        m.d.comb += self.irq.eq(regs.irq)
        self._axil_bridge(m, regs.bus)

        # requests: TLAST is checked against each frame's own length
        m.d.comb += [link.rx.payload.eq(self.s_axis_tdata), link.rx.valid.eq(self.s_axis_tvalid),
                     self.s_axis_tready.eq(link.rx.ready)]
        fire_in = self.s_axis_tvalid & self.s_axis_tready
        request = _FrameTracker(m, REQUEST_SYNC, self.s_axis_tdata, fire_in)
        with m.If(fire_in):
            with m.If(request.active & (request.last != self.s_axis_tlast) |
                      ~request.active & (self.s_axis_tdata == REQUEST_SYNC) & self.s_axis_tlast):
                m.d.comb += regs.tlast_error.eq(1)
            with m.If(self.s_axis_tlast):
                request.end(m)

        # replies: TLAST on each frame's last byte, the status byte into the registers
        m.d.comb += [self.m_axis_tdata.eq(link.tx.payload), self.m_axis_tvalid.eq(link.tx.valid),
                     link.tx.ready.eq(self.m_axis_tready)]
        fire_out = link.tx.valid & link.tx.ready
        reply = _FrameTracker(m, REPLY_SYNC, link.tx.payload, fire_out)
        m.d.comb += [self.m_axis_tlast.eq(reply.last), regs.reply_code.eq(link.tx.payload),
                     regs.reply_valid.eq(fire_out & reply.code)]
        return m

    def _axil_bridge(self, m, wb):
        """AXI4-Lite to the register block's Wishbone: one access at a time, a write once both
        its address and data are there (AXI lets a slave wait for both), writes first.
        Registers, no FSM: see :meth:`zeroskip.hw.bus.registers.Registers.elaborate`."""
        active = Signal()    # an access taken and not yet answered
        stb = Signal()       # its Wishbone request not yet taken
        we, bvalid, rvalid = Signal(), Signal(), Signal()
        addr, wdata, wstrb, rdata = Signal(30), Signal(32), Signal(4), Signal(32)
        take_write = ~active & self.s_axil_awvalid & self.s_axil_wvalid
        take_read = ~active & ~(self.s_axil_awvalid & self.s_axil_wvalid) & self.s_axil_arvalid
        m.d.comb += [
            self.s_axil_awready.eq(take_write), self.s_axil_wready.eq(take_write),
            self.s_axil_arready.eq(take_read),
            wb.cyc.eq(active & ~bvalid & ~rvalid), wb.stb.eq(stb), wb.adr.eq(addr),
            wb.dat_w.eq(wdata), wb.sel.eq(wstrb), wb.we.eq(we),
            self.s_axil_bvalid.eq(bvalid), self.s_axil_bresp.eq(0),
            self.s_axil_rvalid.eq(rvalid), self.s_axil_rresp.eq(0), self.s_axil_rdata.eq(rdata),
        ]
        with m.If(take_write):
            m.d.sync += [active.eq(1), stb.eq(1), we.eq(1), addr.eq(self.s_axil_awaddr[2:]),
                         wdata.eq(self.s_axil_wdata), wstrb.eq(self.s_axil_wstrb)]
        with m.If(take_read):
            m.d.sync += [active.eq(1), stb.eq(1), we.eq(0), addr.eq(self.s_axil_araddr[2:])]
        with m.If(stb & ~wb.stall):
            m.d.sync += stb.eq(0)
        with m.If(active & ~stb & wb.ack):
            m.d.sync += rdata.eq(wb.dat_r)
            with m.If(we):
                m.d.sync += bvalid.eq(1)
            with m.Else():
                m.d.sync += rvalid.eq(1)
        with m.If(bvalid & self.s_axil_bready | rvalid & self.s_axil_rready):
            m.d.sync += [bvalid.eq(0), rvalid.eq(0), active.eq(0)]


class WishboneTop(wiring.Component):
    """A Wishbone B4 pipelined slave (``wb_*``): the registers, and a window per memory."""

    def __init__(self, config, *, clock_hz=0):
        self._config = config
        self.regmap = RegisterMap(config, "wishbone", clock_hz=clock_hz)
        super().__init__({**_flat("wb", wishbone_signature(self.regmap.addr_bits - 2)),
                          "irq": Out(1)})

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        m.submodules.registers = regs = Registers(self.regmap)
        accel_reset = Signal()
        m.submodules.accelerator = accel = ResetInserter(accel_reset)(
            accelerator_for(self._config))
        _connect_flat(m, self, "wb", regs.bus)
        m.d.comb += self.irq.eq(regs.irq)
        for name in ["act", *accel.memory_names]:
            wiring.connect(m, getattr(regs, f"{name}_write"), getattr(accel, f"{name}_write"))
        wiring.connect(m, regs.result_read, accel.result_read)
        m.d.comb += [accel.result_column.eq(regs.result_column), accel.job.eq(regs.job),
                     accel.start.eq(regs.start), accel_reset.eq(regs.reset),
                     regs.accepted.eq(regs.reset | ~accel.busy),
                     regs.busy.eq(accel.busy), regs.done.eq(accel.done),
                     regs.counters.eq(accel.counters), regs.lanes.eq(accel.status)]
        return m


def bus_top(config, bus, **kwargs):
    """The top of ``config`` for ``bus`` ("axi" or "wishbone")."""
    return {"axi": AxiTop, "wishbone": WishboneTop}[bus](config, **kwargs)
