"""The PE array: ``cols`` independent columns of ``rows`` processing elements."""

import operator

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.hw.layouts import result_read_signature, token_layout, write_signature
from zeroskip.hw.memories import read_port
from zeroskip.hw.pe import ProcessingElement

__all__ = ["PEArray", "tree_reduce", "multiplier_kind", "add_multipliers",
           "ecp5_registered_multiplier", "ice40_dual_multiplier"]


class PEArray(wiring.Component):
    """``rows × cols`` PEs. Column ``c`` is a chain of PEs fed by token stream ``columns[c]``.

    The columns share nothing but the activation load path (every PE of a row holds the same
    activations) and the result read path, so each consumes its token stream at its own pace.
    Columns are always ready: a PE never stalls. A token's result is in the output memory of
    its column's last PE :attr:`~zeroskip.config.ArrayConfig.array_latency` cycles after the
    token enters the column.

    Members
    -------
    columns : In(array of stream.Signature(token_layout))
    mode : In(2)
    act_write : In(write_signature)
        ``data[r]`` is written to every PE of row ``r``.
    result_read : In(read_signature), result_column : In
        ``data[r]`` is the result of PE (r, result_column) at ``addr``,
        ``config.result_read_latency`` cycles later. With
        ``config.column_results``, ``data[0]`` is the result of PE row ``addr % rows`` at
        ``addr // rows``: each column keeps its PEs' results in one memory.
    executed, gated : Out(rows * cols)
        Per-PE multiplier activity this cycle.
    """

    def __init__(self, config):
        self._config = config
        rows, cols = config.rows, config.cols
        super().__init__({
            "columns": In(stream.Signature(token_layout(config))).array(cols),
            "mode": In(2),
            "act_write": In(write_signature(config.act_addr_bits + config.bank_bits,
                                            data.ArrayLayout(signed(config.act_width), rows))),
            "result_read": In(result_read_signature(config)),
            "result_column": In(range(cols)),
            "executed": Out(rows * cols),
            "gated": Out(rows * cols),
            # double buffering: the bank the run reads and writes
            **({"bank": In(1)} if config.double_buffer else {}),
        })

    def elaborate(self, platform):
        config = self._config
        rows, cols = config.rows, config.cols
        m = Module()

        # one-hot, aligned with the read latency: the column select is an AND-OR, not a chain
        # of comparisons
        selected = Signal(cols)
        m.d.sync += selected.eq(1 << self.result_column)
        results = [[] for _ in range(config.result_rows)]

        act_write = self.act_write
        if config.fanout_registers:
            # registered before it reaches every PE's block RAM
            act_write = write_signature(len(self.act_write.addr),
                                        self.act_write.data.shape()).create(
                path=("act_write_registered",))
            m.d.sync += [act_write.en.eq(self.act_write.en),
                         act_write.addr.eq(self.act_write.addr),
                         act_write.data.eq(self.act_write.data)]
        executed, gated = [], []
        pes = {}
        for c in range(cols):
            m.d.comb += self.columns[c].ready.eq(1)
            upstream = self.columns[c]
            if config.pipelined:
                # registered on the way in: the lane's registers sit by its memories, not by
                # the PE column, and its decisions do not travel across the chip
                upstream = _registered_stream(m, upstream, name=f"column{c}")
            for r in range(rows):
                pe = ProcessingElement(config, r, multiplier=multiplier_kind(config, r, c))
                pes[r, c] = pe
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [
                    pe.i.valid.eq(upstream.valid),
                    pe.i.payload.eq(upstream.payload),
                    pe.mode.eq(self.mode),
                    pe.act_write.en.eq(act_write.en),
                    pe.act_write.addr.eq(act_write.addr),
                    pe.act_write.data.eq(act_write.data[r]),
                ]
                if config.double_buffer:
                    m.d.comb += pe.bank.eq(self.bank)
                if not config.column_results:
                    m.d.comb += pe.result_read.addr.eq(self.result_read.addr)
                    results[r].append(_select(selected, c, pe.result_read.data))
                executed.append(pe.executed)
                gated.append(pe.gated)
                upstream = pe.o
            if config.column_results:
                data_ = _column_results(m, config, [pes[r, c] for r in range(rows)],
                                        self.result_read.addr, name=f"results{c}")
                results[0].append(_select(selected, c, data_))
        m.d.comb += [self.executed.eq(Cat(*executed)), self.gated.eq(Cat(*gated))]
        for r in range(config.result_rows):
            m.d.comb += self.result_read.data[r].eq(tree_reduce(operator.or_, results[r]))
        add_multipliers(m, config, pes)
        return m


def _select(selected, c, value):
    """``value`` of column ``c`` where ``selected`` (one-hot) picks it, else 0. One column:
    nothing to select (a register that is always 1 after reset is not a constant to
    synthesis, and its AND would cost a LUT per result bit)."""
    return value if len(selected) == 1 else Mux(selected[c], value, 0)


def _column_results(m, config, pes, read_addr, *, name):
    """The result memory of one PE column (``config.column_results``): written with the
    result of whichever of ``pes`` closed (at most one a cycle, see
    :attr:`~zeroskip.config.ArrayConfig.min_column_tokens`), read at ``read_addr``; returns
    the read data (``config.result_read_latency`` cycles after the address).

    The closing PE is chosen by an AND-OR of the PEs' flags, registered before the write: the
    accumulators' flip-flops feed a few LUT levels and the block RAM's write port has a
    cycle to itself. A pipelined array also registers the AND-OR after every four PEs
    (:attr:`~zeroskip.config.ArrayConfig.result_write_cycles`): a column spans the chip."""
    mem = memory.Memory(shape=signed(config.acc_width), depth=config.result_depth, init=[])
    m.submodules[name] = mem
    write = mem.write_port()
    rows = config.rows
    # per PE (valid, row, output address, result), all zero unless it closed
    items = [(pe.result.valid, Mux(pe.result.valid, r, 0),
              Mux(pe.result.valid, pe.result.payload.addr, 0),
              Mux(pe.result.valid, pe.result.payload.data, 0)) for r, pe in enumerate(pes)]
    level = 0
    while config.pipelined and len(items) > 4:
        groups = [items[i:i + 4] for i in range(0, len(items), 4)]
        items = [tuple(_delayed_or(m, [item[f] for item in group], f"{name}_l{level}_{g}_{f}")
                       for f in range(4)) for g, group in enumerate(groups)]
        level += 1
    valid, row, out_addr, value = (tree_reduce(operator.or_, [item[f] for item in items])
                                   for f in range(4))
    m.d.sync += [
        write.en.eq(valid),
        # out_addr * rows + row (a concatenation when rows is a power of two)
        write.addr.eq(Cat(row[:(rows - 1).bit_length()], out_addr) if rows & (rows - 1) == 0 else
                      out_addr * rows + row),
        write.data.eq(value),
    ]
    read = read_port(m, mem, name=name)
    m.d.comb += read.addr.eq(read_addr)
    data_ = read.data
    for _ in range(config.result_read_latency - 1):
        registered = Signal.like(data_, name=f"{name}_data_registered")
        m.d.sync += registered.eq(data_)
        data_ = registered
    return data_


def _delayed_or(m, values, name):
    """The OR of ``values``, registered."""
    value = tree_reduce(operator.or_, values)
    registered = Signal(value.shape(), name=name)
    m.d.sync += registered.eq(value)
    return registered


def multiplier_kind(config, r, c):
    """How PE (r, c) multiplies: ``"external"`` (a DSP block :func:`add_multipliers`
    instantiates), ``"logic"`` (the last ``logic_multipliers`` PEs, row by row) or
    ``"infer"``."""
    if config.multipliers in ("ice40_pairs", "ecp5_registered"):
        return "external"
    if r * config.cols + c >= config.pe_count - config.logic_multipliers:
        return "logic"
    return "infer"


def add_multipliers(m, config, pes):
    """The DSP blocks of ``config.multipliers`` for the PEs ``{(r, c): pe}`` whose multiplier
    is external (their ``mul_a``/``mul_w``/``mul_p``)."""
    if config.multipliers == "ice40_pairs":
        for c in range(config.cols):
            for r in range(0, config.rows, 2):
                m.submodules[f"mac_{r}_{c}"] = ice40_dual_multiplier(pes[r, c], pes[r + 1, c])
    if config.multipliers == "ecp5_registered":
        for (r, c), pe in pes.items():
            m.submodules[f"mul_{r}_{c}"] = ecp5_registered_multiplier(pe)


def _registered_stream(m, stream_, *, name):
    """``stream_`` (always ready) one cycle later."""
    registered = stream.Signature(stream_.payload.shape()).create(path=(name,))
    m.d.sync += [registered.valid.eq(stream_.valid), registered.payload.eq(stream_.payload)]
    return registered


def tree_reduce(op, values):
    """``values`` combined with the binary ``op`` as a balanced tree: log2(n) levels deep, where
    ``sum()`` or ``functools.reduce`` would chain n."""
    values = list(values)
    while len(values) > 1:
        values = [op(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def ecp5_registered_multiplier(pe):
    """One ECP5 MULT18X18D for ``pe``, its input and output registers in use: the product of
    the operands ``pe`` presents comes back two cycles later.

    Yosys maps an inferred ``*`` to this block with every register bypassed, and nextpnr does
    not pack fabric flip-flops into it, so the 3.9 ns multiply and the routes to and from the
    DSP row (4-5 ns each) would share one cycle. Simulations use our model of the block
    (:data:`zeroskip.hw.verilog.MULT18X18D_MODEL`); Yosys' ECP5 library has only a blackbox.
    """
    width = 18
    a = pe.mul_a.as_signed()
    b = pe.mul_w.as_signed()
    product = Signal(36)
    ports = {
        **{f"i_A{i}": a[min(i, len(a) - 1)] for i in range(width)},   # sign-extended
        **{f"i_B{i}": b[min(i, len(b) - 1)] for i in range(width)},
        **{f"i_C{i}": 0 for i in range(width)},
        **{f"o_P{i}": product[i] for i in range(36)},
    }
    m = Module()
    m.submodules.dsp = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
        p_REG_PIPELINE_CLK="NONE", p_REG_INPUTC_CLK="NONE",
        p_CLK0_DIV="ENABLED", p_GSR="DISABLED", p_RESETMODE="SYNC",
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0,
        **{f"i_{port}{n}": 0 for port in ("CLK", "CE", "RST") for n in (1, 2, 3)},
        **ports)
    m.d.comb += pe.mul_p.eq(product[:len(pe.mul_p)])
    return m


def ice40_dual_multiplier(low, high):
    """One iCE40 SB_MAC16 in 8×8 mode: two independent signed 8×8 products, for two PEs.

    The UP5K has 8 DSP blocks; used this way they serve 16 PEs. With ``MODE_8x8`` set and both
    operands signed, the block multiplies the high bytes of A and B and, separately, their low
    bytes, both signed (Yosys' ``cells_sim.v`` model, which the simulation tests run), and
    outputs the two unregistered 16-bit products side by side.
    """
    zero = Const(0, 1)
    out = Signal(32)
    instance = Instance(
        "SB_MAC16",
        p_MODE_8x8=1, p_A_SIGNED=1, p_B_SIGNED=1,
        p_TOPOUTPUT_SELECT=2, p_BOTOUTPUT_SELECT=2,  # the 8×8 products, unregistered
        p_NEG_TRIGGER=0, p_C_REG=0, p_A_REG=0, p_B_REG=0, p_D_REG=0,
        p_TOP_8x8_MULT_REG=0, p_BOT_8x8_MULT_REG=0,
        p_PIPELINE_16x16_MULT_REG1=0, p_PIPELINE_16x16_MULT_REG2=0,
        p_TOPADDSUB_LOWERINPUT=0, p_TOPADDSUB_UPPERINPUT=0, p_TOPADDSUB_CARRYSELECT=0,
        p_BOTADDSUB_LOWERINPUT=0, p_BOTADDSUB_UPPERINPUT=0, p_BOTADDSUB_CARRYSELECT=0,
        i_CLK=ClockSignal(), i_CE=1,
        i_A=Cat(low.mul_a, high.mul_a), i_B=Cat(low.mul_w, high.mul_w),
        i_C=Const(0, 16), i_D=Const(0, 16),
        i_AHOLD=zero, i_BHOLD=zero, i_CHOLD=zero, i_DHOLD=zero,
        i_IRSTTOP=zero, i_IRSTBOT=zero, i_ORSTTOP=zero, i_ORSTBOT=zero,
        i_OLOADTOP=zero, i_OLOADBOT=zero, i_ADDSUBTOP=zero, i_ADDSUBBOT=zero,
        i_OHOLDTOP=zero, i_OHOLDBOT=zero, i_CI=zero, i_ACCUMCI=zero, i_SIGNEXTIN=zero,
        o_O=out)
    m = Module()
    m.submodules.mac = instance
    m.d.comb += [low.mul_p.eq(out[:16]), high.mul_p.eq(out[16:])]
    return m
