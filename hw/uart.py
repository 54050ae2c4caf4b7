"""An 8N1 UART: the host link of the board tops.

amaranth-stdio, which has one, is not on PyPI; this is the minimum the link needs.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


class UARTRx(wiring.Component):
    """Receiver. ``divisor`` is clock cycles per bit.

    A UART cannot be stalled, so the byte stream is ``always_ready``: ``o.valid`` is up for the
    one cycle a byte with a good stop bit completes. A byte whose stop bit is low (a framing
    error or a break) is dropped and pulses ``framing_error``; the receiver then waits for the
    line to go idle before it looks for the next start bit.
    """

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"UART divisor must be at least 4 cycles per bit, not {divisor}")
        self._divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8, always_ready=True)),
            "framing_error": Out(1),
        })

    def elaborate(self, platform):
        divisor = self._divisor
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(divisor))
        bits = Signal(range(9))
        shift = Signal(8)
        m.d.sync += [self.o.valid.eq(0), self.framing_error.eq(0)]
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    # sample the middle of the start bit: a glitch shorter than half a bit
                    # is not a byte
                    with m.If(~rx):
                        m.d.sync += [timer.eq(divisor - 1), bits.eq(0)]
                        m.next = "DATA"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), timer.eq(divisor - 1),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.framing_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter: sends each byte of ``i`` as start bit, 8 data bits LSB first, stop bit."""

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"UART divisor must be at least 4 cycles per bit, not {divisor}")
        self._divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        divisor = self._divisor
        m = Module()
        timer = Signal(range(divisor))
        bits = Signal(range(11))
        shift = Signal(10)
        m.d.comb += self.i.ready.eq((bits == 0) & (timer == 0))
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(bits != 0):
            m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1), bits.eq(bits - 1),
                         timer.eq(divisor - 1)]
        with m.Elif(self.i.valid):
            # start bit, data, stop bit: shifted out from the bottom; the stop bit lasts until
            # the next byte's start bit
            m.d.sync += [shift.eq(Cat(0, self.i.payload, 1)), bits.eq(10)]
        return m
