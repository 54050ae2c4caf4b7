"""The accelerator's registered reset (:attr:`~zeroskip.config.ArrayConfig.fanout_registers`),
as the host link (:class:`zeroskip.hw.link.host_link.HostLink`) wraps it."""

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Instance, Signal

__all__ = ["with_registered_reset"]


def with_registered_reset(m, accel, accel_reset, platform):
    """``accel`` in a domain of the ``sync`` clock whose reset is one flip-flop: the link's
    ``accel_reset`` or the ``sync`` domain's own reset, a cycle late
    (:attr:`~zeroskip.config.ArrayConfig.fanout_registers`). On an ECP5 the flip-flop drives
    the reset pins through a global buffer (DCCA), as a clock would: nextpnr promotes only
    clocks to the global network by itself."""
    reset = Signal(init=1, name="accel_reset_registered")   # 1 while `sync` resets
    m.d.sync += reset.eq(accel_reset)
    m.domains.accel = domain = ClockDomain("accel", local=True)
    m.d.comb += domain.clk.eq(ClockSignal("sync"))
    if getattr(platform, "family", None) == "ecp5":
        m.submodules.reset_buffer = Instance("DCCA", i_CLKI=reset, i_CE=1, o_CLKO=domain.rst)
    else:
        m.d.comb += domain.rst.eq(reset)
    return DomainRenamer("accel")(accel)
