"""Payload layouts shared by the gateware and the host harness.

The harness packs and unpacks the flat Verilog ports with these same layouts, so the bit order is
defined once.
"""

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["token_layout", "result_layout", "csc_entry_layout", "job_layout", "resident_bases",
           "counters_layout", "COUNTERS",
           "ENERGY_COUNTERS", "SINCE_RESET", "TOTAL_COUNTER", "counter_names",
           "pack", "unpack", "shape_width", "write_signature", "read_signature",
           "result_read_signature"]


def token_layout(config):
    """One step of work for a PE column: a weight and where its activation lives.

    Members
    -------
    act_addr : unsigned
        Address of the activation in every PE's activation memory (M-tile base + k).
    weight : signed(8)
        The weight (zero only in dense/gate modes or in a bubble).
    first : 1
        First step of an output: the accumulator restarts.
    last : 1
        Last step of an output: the result is written to the PE's output memory.
    bubble : 1
        No multiply at all (an empty column in skip mode still writes its zero result).
    out_addr : unsigned
        Where the result goes in each PE's output memory.
    rows : unsigned
        Rows of the M-tile that hold real data; PEs below are idle (M not a multiple of rows).
    """
    return data.StructLayout({
        "act_addr": unsigned(config.act_addr_bits),
        "weight": signed(config.weight_width),
        "first": 1,
        "last": 1,
        "bubble": 1,
        "out_addr": unsigned(config.out_addr_bits),
        "rows": unsigned(config.row_count_bits),
    })


def result_layout(config):
    """A result on its way from a PE to its column's result memory
    (:attr:`~zeroskip.config.ArrayConfig.column_results`): its output address and value."""
    return data.StructLayout({
        "addr": unsigned(config.out_addr_bits),
        "data": signed(config.acc_width),
    })


def csc_entry_layout(config):
    """One stored CSC nonzero: its row in W and its value."""
    return data.StructLayout({
        "row": unsigned(config.k_bits),
        "value": signed(config.weight_width),
    })


def job_layout(config):
    """What the host sets before pulsing start.

    Members
    -------
    mode : 2
        :class:`zeroskip.config.Mode`.
    m_tiles : unsigned
        M-tiles in this run.
    k : unsigned
        Reduction length K (1 .. max_k).
    rows_last : unsigned
        Valid rows in the last M-tile (1 .. rows).
    lane_columns : array
        Output columns assigned to each decoder lane.
    bank : 1
        With ``double_buffer``: the bank of every memory the run reads and writes.
    column_base, entry_base, mask_base : unsigned
        With ``resident``: where the run's layer starts in every lane's memories
        (:func:`resident_bases`).
    """
    fields = {
        "mode": 2,
        "m_tiles": unsigned(config.tile_bits),
        "k": unsigned(config.k_bits + 1),
        "rows_last": unsigned(config.row_count_bits),
        "lane_columns": data.ArrayLayout(unsigned(config.pointer_addr_bits), config.cols),
    }
    if config.double_buffer:
        fields["bank"] = 1
    fields.update(resident_bases(config))
    return data.StructLayout(fields)


def resident_bases(config):
    """With :attr:`~zeroskip.config.ArrayConfig.resident`, the job's bases (none without it):
    ``{name: shape}``, the same for every lane.

    ``column_base``
        The layer's first column in the lane's column-indexed memories (``pointers``, whose
        word ``column_base`` holds the layer's first entry address and ``column_base + j + 1``
        the end of its column ``j``; ``summaries``). Formats with such memories.
    ``entry_base``
        The layer's first word in ``entries`` (``values`` for bitmap).
    ``mask_base``
        ``bitmap``: the layer's first word in ``masks``.
    """
    if not config.resident:
        return {}
    bases = {}
    if config.fmt != "nm":
        bases["column_base"] = unsigned(config.pointer_addr_bits)
    bases["entry_base"] = unsigned(config.weight_addr_bits)
    if config.fmt == "bitmap":
        bases["mask_base"] = unsigned(max(1, config.mask_depth.bit_length()))
    return bases


#: Hardware counters, in port order. All count clock cycles or events of one run, except
#: ``load_cycles``, which counts memory write beats since reset (the host runners turn two
#: readings into the loads of one run: :class:`zeroskip.sim.rtl.runner.LoadCounter`).
COUNTERS = (
    "cycles",           # start to done
    "macs_executed",    # multiplier activations (PE-cycles)
    "macs_gated",       # valid MACs whose multiplier was held because an operand was zero
    "lane_busy",        # lane-cycles that delivered a token to a column
    "stall_decoder",    # lane-cycles a column waited on its unfinished decoder
    "stall_imbalance",  # lane-cycles a finished column waited for the other columns
    "load_cycles",      # write beats on the memory load ports
)


#: The counters of :attr:`ArrayConfig.energy_counters`: the events the energy model prices
#: that the base counters do not give (:mod:`zeroskip.sim.energy`).
ENERGY_COUNTERS = (
    "lane_reads",       # words the decoder lanes read from their memories (a new address)
    "outputs",          # results closed (a last token): each writes one word in every PE of
                        # its column's result memories
    "act_writes",       # activation-buffer bytes written, every PE's copy counted (since reset)
    "lane_writes",      # lane-memory words written, each lane's counted (since reset)
)

#: Counters that count since reset, not per run (the host takes differences).
SINCE_RESET = ("load_cycles", "act_writes", "lane_writes")


#: With :attr:`ArrayConfig.double_buffer`: cycles since the first load beat after reset; read
#: after a GEMM's last result, the GEMM's end-to-end time (loads, runs and read-back, overlapped)
TOTAL_COUNTER = "total_cycles"


def counter_names(config):
    """The hardware counters of ``config``, in port order."""
    return (COUNTERS + (ENERGY_COUNTERS if config.energy_counters else ()) +
            ((TOTAL_COUNTER,) if config.double_buffer else ()))


def counters_layout(config):
    return data.StructLayout({name: unsigned(config.counter_width)
                              for name in counter_names(config)})


def pack(layout, value):
    """The bits (an int) of a nested dict/list/int ``value`` laid out as ``layout``: a
    ``lib.data`` layout (missing fields take their reset value) or a plain shape."""
    if isinstance(layout, data.Layout):
        return layout.const(value).as_bits()
    return int(value) & ((1 << Shape.cast(layout).width) - 1)


def unpack(layout, raw):
    """Inverse of :func:`pack` for a layout: the int ``raw`` to nested dicts/lists/ints."""
    layout = data.Layout.cast(layout)
    return _plain(layout.from_bits(raw & ((1 << layout.size) - 1)))


def _plain(value):
    # a data.Const of a struct or array layout, or a field's value (an int or an enum member)
    if not isinstance(value, data.Const):
        return int(value)
    layout = value.shape()
    if isinstance(layout, data.StructLayout):
        return {name: _plain(value[name]) for name, _ in layout}
    return [_plain(value[index]) for index in range(layout.length)]


def shape_width(shape):
    """Bits of a layout or a plain shape."""
    if isinstance(shape, data.Layout):
        return shape.size
    return Shape.cast(shape).width


def write_signature(addr_bits, shape, *, mask=0):
    """A memory write port as seen by the writer: ``en``, ``addr``, ``data`` (+ lane ``mask``).

    Not lib.memory's ``WritePort.Signature`` (a per-lane ``en`` by granularity would replace
    ``mask``): tried, and the ULX3S then missed 100 MHz (measured, see
    :func:`zeroskip.hw.link.protocol.crc16_step`)."""
    members = {"en": Out(1), "addr": Out(unsigned(addr_bits)), "data": Out(shape)}
    if mask:
        members["mask"] = Out(mask)
    return wiring.Signature(members)


def read_signature(addr_bits, shape):
    """A memory read port as seen by the reader: data follows ``addr`` one cycle later."""
    return wiring.Signature({"addr": Out(unsigned(addr_bits)), "data": In(shape)})


def result_read_signature(config, *, banked=True):
    """The result port of a PE column as seen by its reader: a word of
    ``config.result_rows`` results per address (``config.result_depth`` addresses per bank;
    ``banked``: with the bank bit of a double-buffered configuration above them)."""
    bits = config.result_addr_bits + (config.bank_bits if banked else 0)
    return read_signature(bits, data.ArrayLayout(signed(config.acc_width), config.result_rows))

