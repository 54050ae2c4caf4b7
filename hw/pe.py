"""The processing element: one output-stationary multiply-accumulate with its own activation
buffer and result memory."""

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import Mode
from zeroskip.hw.layouts import read_signature, result_layout, token_layout, write_signature
from zeroskip.hw.memories import Banked, read_port

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """One PE of a column.

    Tokens (a weight and the address of its activation) arrive from the PE above and leave,
    one cycle later, to the PE below: weights are systolic down the column, outputs stationary.
    Each PE reads the activation a token needs from its own activation buffer, which holds this
    PE row's rows of A for every M-tile, so the columns never have to agree on which k they work
    on. When a token closes an output, the result goes to the PE's own output memory.

    Parameters
    ----------
    config : :class:`zeroskip.config.ArrayConfig`
    row : int
        Row of this PE in the array; rows at or beyond a token's ``rows`` are idle.
    multiplier : str
        ``"infer"``: a ``*`` that synthesis maps to a DSP block. ``"logic"``: shifts and adds,
        so synthesis does not spend a DSP block on it. ``"external"``: the operands leave
        through ``mul_a``/``mul_w`` and the product comes back on ``mul_p`` (from a
        DSP block instantiated by the array, see :mod:`zeroskip.hw.array`), after
        ``config.multiplier_latency`` cycles.

    Members
    -------
    i : In(stream.Signature(token_layout, always_ready=True))
        Tokens from the PE above (or the column's decoder).
    o : Out(stream.Signature(token_layout, always_ready=True))
        The same tokens, one cycle later.
    mode : In(2)
        :class:`zeroskip.config.Mode`; held stable during a run.
    act_write : In(write_signature)
        Loads the activation buffer.
    result_read : In(read_signature)
        Reads the output memory (none with ``config.column_results``).
    result : Out(stream.Signature(result_layout, always_ready=True))
        With ``config.column_results``: the result this PE closed in the previous cycle (held
        in its accumulator for this cycle only) and its output address, for the column's
        result memory.
    executed, gated : Out(1)
        The multiplier fired / a valid MAC was gated because an operand was zero, one cycle
        after the fact.
    """

    def __init__(self, config, row, *, multiplier="infer"):
        self._config = config
        self._row = row
        self._multiplier = multiplier
        token = token_layout(config)
        members = {}
        if multiplier == "external":
            members = {"mul_a": Out(signed(config.act_width)),
                       "mul_w": Out(signed(config.weight_width)),
                       "mul_p": In(signed(config.act_width + config.weight_width))}
        elif multiplier not in ("infer", "logic"):
            raise ValueError(f"unknown multiplier {multiplier!r}")
        super().__init__({
            **members,
            "i": In(stream.Signature(token, always_ready=True)),
            "o": Out(stream.Signature(token, always_ready=True)),
            "mode": In(2),
            "act_write": In(write_signature(config.act_addr_bits + config.bank_bits,
                                            signed(config.act_width))),
            **({"result": Out(stream.Signature(result_layout(config), always_ready=True))}
               if config.column_results else
               {"result_read": In(read_signature(config.out_addr_bits + config.bank_bits,
                                                 signed(config.acc_width)))}),
            "executed": Out(1),
            "gated": Out(1),
            **({"bank": In(1)} if config.double_buffer else {}),
        })

    @property
    def config(self):
        return self._config

    @property
    def row(self):
        return self._row

    def elaborate(self, platform):
        config = self._config
        m = Module()

        if config.act_memories == "ecp5_outreg":
            # the activation arrives from the block RAM's own output register, a cycle after
            # a synchronous read: it is the first of the two registers below
            activation_registered = ecp5_outreg_memory(m, self.act_write,
                                                       self.i.payload.act_addr, name="acts")
        else:
            m.submodules.acts = acts = memory.Memory(
                shape=signed(config.act_width), depth=config.banked_depth(config.act_depth),
                init=[])

            act_wr = acts.write_port()
            m.d.comb += [
                act_wr.en.eq(self.act_write.en),
                act_wr.addr.eq(self.act_write.addr),
                act_wr.data.eq(self.act_write.data),
            ]

            # Stage 0: the token is at `i`; fetch its activation and pass the token down.
            # with double buffering the run reads its bank (`bank`, fixed for the run)
            act_rd = read_port(m, Banked(acts, config.act_depth, self.bank)
                               if config.double_buffer else acts, name="acts")
            m.d.comb += act_rd.addr.eq(self.i.payload.act_addr)
        m.d.sync += [
            self.o.valid.eq(self.i.valid),
            self.o.payload.eq(self.i.payload),
        ]

        # Stage 1: the activation is here. A pipelined PE first registers it twice with the
        # token, so the zero test starts from flip-flops, not from the memory's slow
        # clock-to-out: the first register can sit by the block RAM, the second by the logic.
        if config.act_memories == "ecp5_outreg":
            valid1, token1 = _delayed(m, self.o.valid, self.o.payload)
            valid1, token1, activation = _delayed(m, valid1, token1, activation_registered)
        else:
            valid1, token1, activation = self.o.valid, self.o.payload, act_rd.data

        # Decide whether the multiplier fires; when it does not, its operand registers hold
        # their value so it does not toggle.
        def decide(valid, token, activation):
            active = valid & ~token.bubble & (self._row < token.rows)
            zero_operand = (activation == 0) | (token.weight == 0)
            return active, active & ((self.mode == Mode.DENSE) | ~zero_operand)

        if config.pipelined:
            # ... decided after the two registers, and registered once more: the operand
            # registers' enable comes from a flip-flop, not from the mode (a signal across the
            # chip) and the zero tests. The first register only feeds the second, so it can sit
            # by the block RAM (whose clock-to-out is 5.8 ns on an ECP5), or be its own.
            for _ in range(2 if config.act_memories == "infer" else 0):
                valid1, token1, activation = _delayed(m, valid1, token1, activation)
            valid1, token1, activation, *decision = _delayed(
                m, valid1, token1, activation, *decide(valid1, token1, activation))
            active, fire = decision
        else:
            active, fire = decide(valid1, token1, activation)
        # registered (a cycle late) so the array-wide popcount of these flags starts from
        # flip-flops, not from the activation memories' read data
        m.d.sync += [
            self.executed.eq(fire),
            self.gated.eq(active & ~fire),
        ]

        # The operand registers have no reset (their value matters only when `fired`), which
        # lets synthesis pack them into a DSP block's input registers.
        a_operand = Signal(signed(config.act_width), reset_less=True)
        w_operand = Signal(signed(config.weight_width), reset_less=True)
        with m.If(fire):
            m.d.sync += [a_operand.eq(activation), w_operand.eq(token1.weight)]
        control = _delayed(m, fire, valid1, token1.first, token1.last, token1.out_addr)

        # Stage 2: multiply. An external multiplier may take cycles of its own (the registers
        # inside an ECP5 DSP block); a pipelined PE registers the product before the add.
        product = Signal(signed(config.act_width + config.weight_width))
        if self._multiplier == "logic":
            m.d.comb += product.eq(_shift_add_product(a_operand, w_operand))
        elif self._multiplier == "external":
            m.d.comb += [self.mul_a.eq(a_operand), self.mul_w.eq(w_operand),
                         product.eq(self.mul_p)]
            for _ in range(config.multiplier_latency):
                control = _delayed(m, *control)
        else:
            m.d.comb += product.eq(a_operand * w_operand)
        if config.pipelined:
            product, *control = _delayed(m, product, *control)
        fired, valid2, first2, last2, out_addr2 = control

        # Stage 3: accumulate; a closing token writes its result.
        accumulator = Signal(signed(config.acc_width))
        total = Signal(signed(config.acc_width))
        m.d.comb += total.eq(Mux(first2, 0, accumulator) + Mux(fired, product, 0))
        with m.If(valid2):
            m.d.sync += accumulator.eq(total)

        if config.column_results:
            # the accumulator holds the closed result for one cycle, until the next column's
            # first token: the column's memory takes it from there (no register per PE)
            closed, out_addr3 = _delayed(m, valid2 & last2, out_addr2)
            m.d.comb += [self.result.valid.eq(closed), self.result.payload.addr.eq(out_addr3),
                         self.result.payload.data.eq(accumulator)]
            return m
        if config.out_depth == 1:
            # One output per PE and run: the accumulator holds it once the run is done, so a
            # copy in a result register would only cost flip-flops (they are scarce on iCE40).
            m.d.comb += self.result_read.data.eq(accumulator)
            return m
        m.submodules.results = results = memory.Memory(
            shape=signed(config.acc_width), depth=config.banked_depth(config.out_depth), init=[])
        result_rd = read_port(m, results, name="results")
        result_wr = results.write_port()
        m.d.comb += [
            result_rd.addr.eq(self.result_read.addr),
            self.result_read.data.eq(result_rd.data),
        ]
        if config.double_buffer:
            out_addr2 = Cat(out_addr2, self.bank)   # the run's bank
        if config.pipelined:
            # the result is written from the accumulator a cycle later, so the add ends in a
            # register and not in the memory's write data
            closing, out_addr3 = _delayed(m, valid2 & last2, out_addr2)
            m.d.comb += [result_wr.en.eq(closing), result_wr.addr.eq(out_addr3),
                         result_wr.data.eq(accumulator)]
        else:
            m.d.comb += [result_wr.en.eq(valid2 & last2), result_wr.addr.eq(out_addr2),
                         result_wr.data.eq(total)]
        return m


def ecp5_outreg_memory(m, write, read_addr, *, name):
    """An ECP5 DP16KD in its 2048 x 9 mode: written through ``write`` (port A), read at
    ``read_addr`` (port B) with the block's output register in use, so the word comes out of a
    register inside the block two cycles after its address. Returns the read data (signed,
    the width of ``write.data``). Simulations use our model of the block
    (:data:`zeroskip.hw.verilog.DP16KD_MODEL`); Yosys' ECP5 library has only a blackbox."""
    width = len(write.data)
    data = Signal(signed(width), name=f"{name}_data")
    out = Signal(18)

    def address(value):   # 2048 x 9: the word address in bits 13..3
        return {i: (value[i - 3] if i - 3 < len(value) else 0) if i >= 3 else 0
                for i in range(14)}

    m.submodules[name] = Instance(
        "DP16KD",
        p_DATA_WIDTH_A=9, p_DATA_WIDTH_B=9, p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
        p_RESETMODE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
        p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
        i_CLKA=ClockSignal(), i_CEA=1, i_OCEA=1, i_WEA=write.en, i_RSTA=0,
        i_CLKB=ClockSignal(), i_CEB=1, i_OCEB=1, i_WEB=0, i_RSTB=0,
        **{f"i_CS{port}{i}": 0 for port in "AB" for i in range(3)},
        **{f"i_ADA{i}": bit for i, bit in address(write.addr).items()},
        **{f"i_ADB{i}": bit for i, bit in address(read_addr).items()},
        **{f"i_DIA{i}": write.data[i] if i < width else 0 for i in range(18)},
        **{f"i_DIB{i}": 0 for i in range(18)},
        **{f"o_DOB{i}": out[i] for i in range(18)})
    m.d.comb += data.eq(out[:width])
    return data


def _delayed(m, *values):
    """Registered copies of ``values`` (one cycle later), in order."""
    copies = []
    for value in values:
        copy = Signal.like(value, name=f"{getattr(value, 'name', 'value')}_d")
        m.d.sync += copy.eq(value)
        copies.append(copy)
    return copies


def _shift_add_product(a, b):
    """``a * b`` (both signed) as a sum of shifted partial products: logic that synthesis does
    not recognise as a multiplication and so never maps to a DSP block."""
    width = len(a) + len(b)
    partial = [Mux(b[i], a.as_signed() << i, 0) for i in range(len(b) - 1)]
    total = sum(partial[1:], partial[0])
    # two's complement: the top bit of b weighs -2**(n-1)
    return (total - Mux(b[-1], a.as_signed() << (len(b) - 1), 0))[:width].as_signed()
