"""The board top: the host link behind a UART, with nothing board-specific in it.

:mod:`zeroskip.platforms.wrapper` wraps it with a board's PLL and pins; the cocotb board test
simulates it as is, its UART pins driven by the same host runtime that talks to a real board.
"""

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from zeroskip.hw.link.device import engine_device
from zeroskip.hw.link.host_link import HostLink
from zeroskip.hw.uart import UARTRx, UARTTx

__all__ = ["BoardTop", "DEFAULT_BAUD", "uart_divisor", "default_idle_timeout"]

#: The rate the boards' USB-serial parts carry (3 Mbaud: the iCEBreaker's FTDI FT2232H and the
#: ULX3S's FT231X both reach it): a divisor of 10 at the iCEBreaker's 30 MHz, 33 at the
#: ULX3S's 100 MHz (1% fast, well inside a UART's tolerance), 30 at its dense build's 90 MHz.
DEFAULT_BAUD = 3_000_000


def uart_divisor(clock_hz, baud):
    """Clock cycles per UART bit at ``baud`` (within 2%, or ValueError)."""
    divisor = round(clock_hz / baud)
    if abs(clock_hz / divisor - baud) > 0.02 * baud:
        raise ValueError(f"{clock_hz} Hz cannot make {baud} baud within 2%")
    return divisor


def default_idle_timeout(clock_hz):
    """20 ms of line silence, in cycles: far longer than any gap a USB-serial adapter leaves
    inside a frame."""
    return clock_hz // 50


class BoardTop(wiring.Component):
    """Accelerator (or network engine), protocol engine and UART.

    Parameters
    ----------
    config : ArrayConfig
    clock_hz : int
        The ``sync`` clock.
    baud : int
    max_payload : int
        Largest request payload (bytes).
    idle_timeout : int or None
        Cycles of line silence that end a broken frame; by default 20 ms, far longer than any
        gap a USB-serial adapter leaves inside a frame.
    engine : EngineParams or None
        Put a network engine of these parameters (around ``config``'s array with resident
        weights: ``engine.config``) behind the link instead of the accelerator.

    Members
    -------
    rx : In(1)
        UART from the host.
    tx : Out(1)
        UART to the host.
    leds : Out(2)
        Running, and "the last frame was rejected".
    """

    def __init__(self, config, *, clock_hz, baud=DEFAULT_BAUD, max_payload=512,
                 idle_timeout=None, engine=None):
        self._config = config if engine is None else engine.config
        self._engine = engine
        self._clock_hz = clock_hz
        self._divisor = uart_divisor(clock_hz, baud)
        self._max_payload = max_payload
        self._idle_timeout = idle_timeout or default_idle_timeout(clock_hz)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(2)})

    @property
    def config(self):
        return self._config

    @property
    def divisor(self):
        """Clock cycles per UART bit."""
        return self._divisor

    @property
    def idle_timeout(self):
        """Cycles of line silence that end a broken frame."""
        return self._idle_timeout

    def link(self):
        device = None if self._engine is None else engine_device(self._engine)
        return HostLink(self._config, clock_hz=self._clock_hz, max_payload=self._max_payload,
                        idle_timeout=self._idle_timeout, device=device)

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link()
        m.submodules.uart_rx = rx = UARTRx(self._divisor)
        m.submodules.uart_tx = tx = UARTTx(self._divisor)
        m.d.comb += rx.rx.eq(self.rx)
        m.d.comb += self.tx.eq(tx.tx)
        wiring.connect(m, rx.o, link.rx)
        wiring.connect(m, link.tx, tx.i)

        m.d.comb += self.leds.eq(Cat(link.busy, link.error))
        return m
