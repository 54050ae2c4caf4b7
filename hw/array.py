"""The PE array: ``cols`` independent columns of ``rows`` processing elements."""

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import read_signature, token_layout, write_signature
from .pe import ProcessingElement

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """``rows × cols`` PEs. Column ``c`` is a chain of PEs fed by token stream ``columns[c]``.

    The columns share nothing but the activation load path (every PE of a row holds the same
    activations) and the result read path, so each consumes its token stream at its own pace.
    Columns are always ready: a PE never stalls.

    Members
    -------
    columns : In(array of stream.Signature(token_layout))
    mode : In(2)
    act_write : In(write_signature)
        ``data[r]`` is written to every PE of row ``r``.
    result_read : In(read_signature), result_column : In
        ``data[r]`` is the result of PE (r, result_column) at ``addr``, one cycle later.
    executed, gated : Out(rows * cols)
        Per-PE multiplier activity this cycle.
    """

    @staticmethod
    def latency(config):
        """Cycles from a token entering a column to its result being in the output memory of
        the column's last PE."""
        return config.rows - 1 + ProcessingElement.LATENCY

    def __init__(self, config):
        self._config = config
        rows, cols = config.rows, config.cols
        self.LATENCY = self.latency(config)
        super().__init__({
            "columns": In(stream.Signature(token_layout(config))).array(cols),
            "mode": In(2),
            "act_write": In(write_signature(
                config.act_addr_bits, data.ArrayLayout(signed(config.act_width), rows))),
            "result_read": In(read_signature(
                config.out_addr_bits, data.ArrayLayout(signed(config.acc_width), rows))),
            "result_column": In(range(cols)),
            "executed": Out(rows * cols),
            "gated": Out(rows * cols),
        })

    def elaborate(self, platform):
        config = self._config
        rows, cols = config.rows, config.cols
        m = Module()

        selected = Signal.like(self.result_column)
        m.d.sync += selected.eq(self.result_column)  # aligned with the read latency

        executed, gated = [], []
        for c in range(cols):
            m.d.comb += self.columns[c].ready.eq(1)
            upstream = self.columns[c]
            for r in range(rows):
                index = r * cols + c
                pe = ProcessingElement(
                    config, r,
                    logic_multiplier=index >= config.pe_count - config.logic_multipliers)
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [
                    pe.i.valid.eq(upstream.valid),
                    pe.i.payload.eq(upstream.payload),
                    pe.mode.eq(self.mode),
                    pe.act_write.en.eq(self.act_write.en),
                    pe.act_write.addr.eq(self.act_write.addr),
                    pe.act_write.data.eq(self.act_write.data[r]),
                    pe.result_read.addr.eq(self.result_read.addr),
                ]
                with m.If(selected == c):
                    m.d.comb += self.result_read.data[r].eq(pe.result_read.data)
                executed.append(pe.executed)
                gated.append(pe.gated)
                upstream = pe.o
        m.d.comb += [self.executed.eq(Cat(*executed)), self.gated.eq(Cat(*gated))]
        return m
