"""A board around a board-independent core: the board's PLL, the ``sync`` domain, the UART
pins and LEDs (:class:`BoardWrapper`), what :mod:`zeroskip.platforms.flow` builds."""

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from zeroskip.platforms.pll import ecp5_pll, ice40_pll

__all__ = ["BoardWrapper"]


class BoardWrapper(Elaboratable):
    """The board's PLL, the ``sync`` domain, the UART pins and LEDs around ``core``.

    ``sync`` is held in reset until the PLL locks. ``core`` must have ``rx: In(1)`` and
    ``tx: Out(1)`` (the host link, idle high) and may have ``leds: Out(n)``.
    """

    def __init__(self, board, core):
        self.board = board
        self.core = core

    def elaborate(self, platform):
        board = self.board
        m = Module()
        m.domains.sync = ClockDomain("sync")
        clk = Signal(attrs={"keep": 1})   # named net for the clock constraint
        locked = Signal()

        if board.family == "ice40":
            # The PLL's input must come straight from the PLL-capable pad (no input buffer).
            pad = platform.request("clk12", dir="-")
            p = ice40_pll(12, board.clock_mhz)
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                io_PACKAGEPIN=pad.io, i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=clk, o_LOCK=locked)
        else:
            m.submodules.clk25 = clk25 = io.Buffer("i", platform.request("clk25", dir="-"))
            p = ecp5_pll(25, board.clock_mhz)
            m.submodules.pll = Instance(
                "EHXPLLL",
                # loop settings as ecppll writes them
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                **{f"p_{name}": value for name, value in p.items()},
                i_CLKI=clk25.i, i_CLKFB=clk, o_CLKOP=clk, o_LOCK=locked,
                i_RST=Const(0), i_STDBY=Const(0), i_PHASESEL0=Const(0), i_PHASESEL1=Const(0),
                i_PHASEDIR=Const(1), i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1),
                i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0))
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")
        platform.add_clock_constraint(clk, board.clock_mhz * 1e6)

        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.core = core = self.core
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        if hasattr(core, "leds"):
            for i in range(len(core.leds)):
                m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
                m.d.comb += led.o.eq(core.leds[i])
        return m
