"""The array configuration: the single source of truth for the gateware, the host compiler, the
simulator runners and the tests.

Every width, depth and limit that the hardware and the host must agree on is derived here, so a
change of configuration can never leave the two disagreeing.
"""

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["Mode", "DecodeStatus", "ARCHS", "FORMATS", "LANE_KINDS", "MULTIPLIERS", "ACT_MEMORIES",
           "ArrayConfig", "DEPTH_OPTIONS", "RUN_M_TILES", "RUN_K", "RUN_LANE_COLUMNS",
           "DEFAULT_MAX_K", "INT8_MIN", "INT8_MAX", "MAX_K", "bits_for"]

INT8_MIN, INT8_MAX = -128, 127

#: Largest K the tool accepts for any configuration: K products of -128 × -128 (2**14 each)
#: still fit an int32 result. A K beyond a configuration's ``max_k`` (its accumulators) is split
#: into K-chunks by the host compiler.
MAX_K = (2 ** 31 - 1) // 2 ** 14

#: What one run of a configuration sized by :meth:`ArrayConfig.for_capacity` holds by default,
#: per PE row and per decoder lane, so that each PE's memories have the same depth whatever the
#: array's size: M-tiles, K, and output columns per lane (an 8×8 array: a 256×256×256 GEMM).
RUN_M_TILES, RUN_K, RUN_LANE_COLUMNS = 32, 256, 32

#: The default ``max_k`` of :meth:`ArrayConfig.for_capacity` (a longer K is split into K-chunks).
DEFAULT_MAX_K = 4096

#: The limits and memory depths a user may set in :meth:`ArrayConfig.for_capacity` instead of
#: taking them derived from the capacity.
DEPTH_OPTIONS = ("max_k", "act_depth", "weight_depth", "pointer_depth", "out_depth",
                 "mask_depth")

#: Architectures: the zero-skipping array, and the dense output-stationary systolic array it is
#: measured against (:mod:`zeroskip.hw.dense`).
ARCHS = ("zeroskip", "dense")

#: Compressed-weight formats this generator has hardware decoders for.
FORMATS = ("csc", "bitmap", "rle", "nm")

#: The decoder lanes the proofs, the regression and the tests cover, as ArrayConfig
#: parameters: every format, and the csc lane that reads through prefetch queues.
LANE_KINDS: dict[str, dict[str, Any]] = {**{fmt: {"fmt": fmt} for fmt in FORMATS},
                                         "csc-pipelined": {"fmt": "csc", "pipelined": True}}

#: How the PEs multiply (see :attr:`ArrayConfig.multipliers`).
MULTIPLIERS = ("infer", "ice40_pairs", "ecp5_registered")

#: How the PEs keep their activations (see :attr:`ArrayConfig.act_memories`).
ACT_MEMORIES = ("infer", "ecp5_outreg")


class Mode(enum.IntEnum):
    """Run-time execution mode of the array (one array, one switch).

    DENSE
        Every multiply-accumulate executes, zero operands included: the baseline.
    GATE
        The same cycles as DENSE, but a MAC with a zero operand does not toggle the multiplier.
    SKIP
        Zero weights cost no cycle (and zero activations are gated).
    """
    DENSE = 0
    GATE = 1
    SKIP = 2


class DecodeStatus(enum.IntEnum):
    """Why a decoder lane stopped: the status the host reads after a run."""
    OK = 0
    ROW_OUT_OF_RANGE = 1     # a stored row index (or a run past the column end) at or beyond K
    ROWS_NOT_INCREASING = 2  # rows of a column out of order or repeated (e.g. an N:M position)
    ENTRY_LEFT_OVER = 3      # a nonzero left unconsumed when its column was complete
    TRUNCATED = 4            # a column needs words beyond those the host loaded


def _positive(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def bits_for(count):
    """Bits needed to hold the values ``0 .. count - 1`` (at least 1)."""
    return max(1, (int(count) - 1).bit_length())


@dataclass(frozen=True)
class ArrayConfig:
    """Parameters of one generated accelerator.

    Memory depths are per PE (activations, results) or per decoder lane (compressed weights,
    pointers, masks), so that an array's memory grows with its PE count. The field defaults
    below are those of an 8×8 array; :meth:`for_capacity` (which the command line and
    :func:`zeroskip.api.array_config` use) derives them from a run's capacity, by default
    :data:`RUN_M_TILES` M-tiles × :data:`RUN_K` × :data:`RUN_LANE_COLUMNS` output columns per
    lane, so every PE of any array gets the 8×8's depths (act_depth 8192, out_depth 2048,
    weight_depth 8448 per lane; pointer_depth grows with ``cols``), and any of
    :data:`DEPTH_OPTIONS` can be set instead. A GEMM larger than a run still runs: the host
    compiler splits it into runs (and a K beyond ``max_k`` into K-chunks).

    Parameters
    ----------
    rows : int
        PE rows. Each row holds a different output row (M dimension) of the current M-tile.
    cols : int
        PE columns, one compressed-weight decoder lane each. Each column works through its own
        list of output columns (N dimension) at its own pace.
    fmt : str
        Compressed-weight format of the decoders (one of :data:`FORMATS`).
    max_k : int
        Largest reduction length K the tool accepts. Bounded so the accumulators never overflow.
    act_depth : int
        Activation words per PE (M-tiles × K of one run).
    weight_depth : int
        Compressed entries per decoder lane.
    pointer_depth : int
        Column pointers per decoder lane (output columns per lane + 1).
    out_depth : int
        Results per PE (M-tiles × output columns per lane of one run).
    mask_depth : int
        ``bitmap`` format: mask words per decoder lane.
    nm_n, nm_m : int
        ``nm`` format: at most N nonzeros in every M consecutive weights of a column.
    bitmap_width : int
        ``bitmap`` format: mask bits per memory word.
    rle_run_bits : int
        ``rle`` format: width of a zero-run field.
    acc_width : int
        Accumulator and result width (17..32 bits; results are read back as int32). Must hold
        ``max_k`` products of -128 × -128.
    counter_width : int
        Width of each hardware counter.
    multipliers : str
        ``"infer"``: each PE multiplies with ``*`` and synthesis maps it to a DSP block.
        ``"ice40_pairs"``: every two PEs of a column share one iCE40 SB_MAC16 in its 8×8 mode
        (the UP5K has 8 DSP blocks; this serves 16 PEs with them). Needs an even ``rows``.
        ``"ecp5_registered"``: each PE instantiates an ECP5 MULT18X18D with its input and
        output registers in use (Yosys never sets them for an inferred ``*``), so the multiply
        is a cycle of its own, inside the DSP block. Adds :attr:`multiplier_latency` cycles.
    logic_multipliers : int
        PEs (the last ones, counting row by row) whose multiplier is built from logic instead of
        a ``*`` that synthesis maps to a DSP block: for FPGAs with fewer DSPs than PEs.
    pipelined : bool
        Register every block-RAM read before logic decides anything from it, for 100 MHz-class
        fabrics (ECP5): the decoder lanes read through prefetch queues; the PEs register the
        activation twice (the first register can sit by the block RAM, the second by the
        logic that uses it), the decision to multiply, the product, and the accumulator before
        the result memory. Costs :attr:`lane_refill_cycles` per M-tile per lane,
        :attr:`column_advance_cycles` per column and five more cycles of PE latency.
        ``csc`` only.
    energy_counters : bool
        Hardware counters for the energy model's events besides the base ones (lane-memory
        reads and writes, activation-buffer writes, results closed:
        :data:`zeroskip.hw.layouts.ENERGY_COUNTERS`). Off for the boards' builds, whose
        figures were measured without them (a counter costs flip-flops, scarce on the iCE40,
        and the ULX3S meets its clock with little slack).
    double_buffer : bool
        Two banks of every memory a run reads or writes (activations, the decoder lanes'
        memories, results): the depths above are per bank, and the job names the bank a run
        uses, so the host loads run i+1 into one bank and reads run i-1's results from it
        while run i computes in the other. Adds the ``total_cycles`` counter (first load beat
        to the last result read). Needs ``out_depth`` > 1; not (yet) behind the host link.
    act_memories : str
        ``"infer"``: each PE's activations are a memory synthesis maps to a block RAM.
        ``"ecp5_outreg"``: each PE instantiates an ECP5 DP16KD (2048 x 9) with its output
        register in use (Yosys never uses it), which takes the place of the first of a
        pipelined PE's two activation registers: the block RAM's 5.8 ns clock-to-out no longer
        starts a path through the fabric. Pipelined, not double buffered, ``act_depth`` up to
        2048.
    column_results : bool
        The PEs keep no results: each PE column writes its PEs' results into one memory of the
        column (``out_depth`` results per PE; output ``j`` of PE row ``r`` at word
        ``j * rows + r``), from the accumulators, one result a cycle. For FPGAs with too few
        block RAMs for a result memory per PE (the iCE40UP5K has 30), so that a run still
        computes many outputs per PE instead of one (``out_depth = 1``) and amortises its fill
        and drain. One write a cycle is enough because no two PEs of a column ever close in
        the same cycle: the closes of a column walk down it a PE per cycle, and every column a
        lane emits has at least ``rows`` tokens (:attr:`min_column_tokens`; the host pads a
        shorter column with stored zeros, which the PEs gate), so the next column's closes
        come after them. The result port reads one result per address (:attr:`result_rows`
        = 1). ``csc`` lanes, not double buffered. The dense array (``arch="dense"``) takes it
        too: its results reach the top of a column one a cycle at most, and each column's go
        into one block RAM of one result per word instead of a word of ``rows`` results.
    arch : str
        ``"zeroskip"``: decoder lanes feed the PE columns with nonzeros. ``"dense"``: the
        baseline, a conventional output-stationary systolic array with no decoders
        (:mod:`zeroskip.hw.dense`): activations cross the rows, uncompressed weights go down
        the columns, every MAC executes. Its ``weight_depth`` is uncompressed weights per
        column; ``fmt``, ``pointer_depth``'s pointers and the format parameters do not apply
        (``pointer_depth - 1`` still bounds the columns of a lane).
    resident : bool
        A network's weights stay in the decoder lanes' memories: the host loads every
        layer's compressed columns once, each layer in a region starting at the same
        addresses in every lane, and a run's job names its layer's region
        (:func:`zeroskip.hw.layouts.job_layout`'s bases), so runs of different layers change
        only the job and the activations (:mod:`zeroskip.sim.resident` lays the regions
        out). The lanes latch the bases at start with the other settings and restart their
        readers there: no cycle is added. Not double buffered, in the zeroskip
        architecture.
    """
    rows: int = 8
    cols: int = 8
    fmt: str = "csc"
    max_k: int = 4096
    act_depth: int = 8192
    weight_depth: int = 8448
    pointer_depth: int = 257
    out_depth: int = 2048
    mask_depth: int = 1028
    nm_n: int = 2
    nm_m: int = 4
    bitmap_width: int = 64
    rle_run_bits: int = 4
    acc_width: int = 32
    counter_width: int = 48
    multipliers: str = "infer"
    logic_multipliers: int = 0
    pipelined: bool = False
    energy_counters: bool = True
    double_buffer: bool = False
    act_memories: str = "infer"
    column_results: bool = False
    arch: str = "zeroskip"
    resident: bool = False

    act_width = 8     # int8 activations
    weight_width = 8  # int8 weights

    def __post_init__(self):
        for name in ("rows", "cols", "max_k", "act_depth", "weight_depth", "out_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(self.pointer_depth, int) or self.pointer_depth < 2:
            raise TypeError(f"pointer_depth must be an integer >= 2, not {self.pointer_depth!r}")
        if self.fmt not in FORMATS:
            raise ValueError(f"Format must be one of {', '.join(FORMATS)}, not {self.fmt!r}")
        if not 1 <= self.nm_n < self.nm_m <= 16:
            raise ValueError(f"N:M needs 1 <= N < M <= 16, not {self.nm_n}:{self.nm_m}")
        if self.bitmap_width not in (8, 16, 32, 64, 128, 256):
            raise ValueError(f"bitmap_width must be a power of two from 8 to 256, not "
                             f"{self.bitmap_width}")
        if self.multipliers not in MULTIPLIERS:
            raise ValueError(f"multipliers must be one of {', '.join(MULTIPLIERS)}, not "
                             f"{self.multipliers!r}")
        if self.multipliers == "ice40_pairs" and self.rows % 2:
            raise ValueError("multipliers='ice40_pairs' pairs PE rows: rows must be even")
        if not 0 <= self.logic_multipliers <= self.rows * self.cols:
            raise ValueError(f"logic_multipliers must be 0..{self.rows * self.cols}, not "
                             f"{self.logic_multipliers}")
        if self.logic_multipliers and self.multipliers != "infer":
            raise ValueError("logic_multipliers replace inferred multipliers; they cannot be "
                             f"mixed with multipliers={self.multipliers!r}")
        if self.energy_counters not in (False, True):
            raise TypeError(f"energy_counters must be a bool, not {self.energy_counters!r}")
        if self.double_buffer not in (False, True):
            raise TypeError(f"double_buffer must be a bool, not {self.double_buffer!r}")
        if self.double_buffer and self.out_depth == 1:
            raise ValueError("double_buffer needs result memories (out_depth > 1): with "
                             "out_depth 1 the accumulators hold the results")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        if self.arch == "dense" and self.fmt != "csc":
            raise ValueError(f"a dense array has no decoders: format {self.fmt!r} does not "
                             f"apply")
        if self.arch == "dense" and self.double_buffer:
            raise ValueError("double buffering is built for the zeroskip architecture only")
        if self.act_memories not in ACT_MEMORIES:
            raise ValueError(f"act_memories must be one of {', '.join(ACT_MEMORIES)}, not "
                             f"{self.act_memories!r}")
        if self.act_memories == "ecp5_outreg" and (not self.pipelined or self.double_buffer or
                                                   self.act_depth > 2048):
            raise ValueError("act_memories='ecp5_outreg' is for pipelined arrays without double "
                             "buffering, with act_depth up to 2048")
        if self.column_results not in (False, True):
            raise TypeError(f"column_results must be a bool, not {self.column_results!r}")
        if self.column_results and (self.fmt != "csc" or self.double_buffer):
            raise ValueError("column_results is built for csc lanes (or the dense array) "
                             "without double buffering")
        if self.resident not in (False, True):
            raise TypeError(f"resident must be a bool, not {self.resident!r}")
        if self.resident and (self.arch != "zeroskip" or self.double_buffer):
            raise ValueError("resident weights are built for the zeroskip architecture's lanes, "
                             "not double buffered")
        if self.pipelined not in (False, True):
            raise TypeError(f"pipelined must be a bool, not {self.pipelined!r}")
        if self.pipelined and self.fmt != "csc":  # (a dense array's pipeline has no lanes)
            raise ValueError(f"pipelined decoder lanes exist for the csc format only, not "
                             f"{self.fmt!r}")
        if not 2 <= self.rle_run_bits <= 8:
            raise ValueError(f"rle_run_bits must be 2..8, not {self.rle_run_bits}")
        if not 17 <= self.acc_width <= 32:
            raise ValueError(f"acc_width must be 17..32, not {self.acc_width}")
        if not 16 <= self.counter_width <= 64:
            raise ValueError(f"counter_width must be 16..64, not {self.counter_width}")
        # |-128 * -128| = 2**14 per product: K products must fit a signed accumulator.
        if self.max_k * 2 ** 14 > 2 ** (self.acc_width - 1) - 1:
            raise ValueError(f"max_k {self.max_k} could overflow the {self.acc_width}-bit "
                             f"accumulators")
        if self.max_k > self.act_depth:
            raise ValueError(f"max_k {self.max_k} exceeds the activation depth "
                             f"{self.act_depth}")

    @classmethod
    def for_capacity(cls, rows=8, cols=8, *, m=None, k=RUN_K, n=None, fmt="csc", max_k=None,
                     act_depth=None, weight_depth=None, pointer_depth=None, out_depth=None,
                     mask_depth=None, **params):
        """A configuration whose memories hold an ``m × k × n`` GEMM in a single run.

        Larger GEMMs still run: the host splits them into several runs.

        Parameters
        ----------
        rows, cols : int
            The array.
        m, k, n : int, optional
            The capacity of one run. Defaults: ``m`` = :data:`RUN_M_TILES` × ``rows``, ``k`` =
            :data:`RUN_K`, ``n`` = :data:`RUN_LANE_COLUMNS` × ``cols``, so that each PE's
            memories are as deep whatever the array's size.
        fmt : str
            The compressed-weight format.
        max_k : int, optional
            Default: :data:`DEFAULT_MAX_K`, or less where ``act_depth`` or ``acc_width`` (given
            in ``params``) cannot hold it.
        act_depth, weight_depth, pointer_depth, out_depth, mask_depth : int, optional
            Set a depth instead of deriving it from the capacity:

            - ``act_depth`` = M-tiles × ``k``, at least ``max_k`` (one M-tile of a full
              K-chunk);
            - ``weight_depth`` = (columns per lane + 1) × ``k`` (a balanced schedule exceeds
              the mean lane load by at most one column), at least ``max_k`` (a dense column of
              a full K-chunk);
            - ``pointer_depth`` = ``n`` + 1, ``out_depth`` = M-tiles × 2 × columns per lane
              (skewed columns can put up to about twice the mean column count on a lane);
            - ``mask_depth`` (bitmap) = (columns per lane + 1) × ``ceil(k / bitmap_width)``.
        **params
            Any other :class:`ArrayConfig` field (``nm_n``, ``pipelined``, ...).

        Raises
        ------
        TypeError
            A capacity or depth that is not a positive integer (``pointer_depth``: >= 2).
        ValueError
            A combination the configuration refuses (e.g. ``max_k`` above ``act_depth``).
        """
        for name, value in (("rows", rows), ("cols", cols)):
            if not _positive(value):
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        m = RUN_M_TILES * rows if m is None else m
        n = RUN_LANE_COLUMNS * cols if n is None else n
        for name, value in (("m", m), ("k", k), ("n", n)):
            if not _positive(value):
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        given = {"max_k": max_k, "act_depth": act_depth, "weight_depth": weight_depth,
                 "pointer_depth": pointer_depth, "out_depth": out_depth,
                 "mask_depth": mask_depth}
        for name, value in given.items():
            if value is not None and not _positive(value):
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        if pointer_depth is not None and pointer_depth < 2:
            raise TypeError(f"pointer_depth must be an integer >= 2, not {pointer_depth!r}")
        if max_k is None:
            # the longest K the accumulators (and a given activation depth) hold, up to the
            # default
            acc_width = params.get("acc_width", cls.acc_width)
            max_k = min(DEFAULT_MAX_K, max(1, (2 ** (acc_width - 1) - 1) // 2 ** 14),
                        act_depth or DEFAULT_MAX_K)
        m_tiles = -(-m // rows)
        lane_columns = -(-n // cols)
        width = params.get("bitmap_width", cls.bitmap_width)
        derived = {"act_depth": max(m_tiles * k, max_k),
                   "weight_depth": max(lane_columns * k + k, max_k),
                   "pointer_depth": n + 1,
                   "out_depth": m_tiles * 2 * lane_columns,
                   "mask_depth": (lane_columns + 1) * -(-k // width)}
        depths = {name: derived[name] if given[name] is None else given[name]
                  for name in derived}
        return cls(rows=rows, cols=cols, fmt=fmt, max_k=max_k, **params, **depths)

    # Derived timing -------------------------------------------------------------------------

    @property
    def multiplier_latency(self):
        """Cycles between a PE's operand registers and its product: the registers inside an
        ECP5 DSP block (``multipliers="ecp5_registered"``: input, output), else none."""
        return 2 if self.multipliers == "ecp5_registered" else 0

    @property
    def pe_latency(self):
        """Cycles from a token at a PE's input to its result in the PE's output memory:
        activation fetch, operand registers, accumulate (a pipelined PE adds two activation
        registers, a register for the decision to multiply, the product register and the
        result write register), plus the multiplier's own registers and, with
        :attr:`column_results`, the write into the column's memory."""
        return (8 if self.pipelined else 3) + self.multiplier_latency + self.result_write_cycles

    @property
    def result_write_cycles(self):
        """Cycles from a PE's closing accumulate to its result in memory beyond the PE's own:
        with :attr:`column_results`, the column's choice of the closing PE is registered and
        the memory written a cycle after that."""
        if not self.column_results:
            return 0
        # the PE's flag, the AND-OR's register(s): a pipelined array registers it after every
        # four PEs (hw/array.py)
        levels, span = 1, 4
        while self.pipelined and span < self.rows:
            levels, span = levels + 1, span * 4
        return 1 + levels

    @property
    def min_column_tokens(self):
        """Fewest tokens a lane emits for a column (the host pads a shorter one with stored
        zeros): ``rows`` with :attr:`column_results`, so no two PEs close in one cycle."""
        return self.rows if self.column_results else 1

    @property
    def array_latency(self):
        """Cycles from a token leaving a decoder lane to its result in the output memory of the
        column's last PE. A pipelined array registers the tokens once more on their way in, so
        that a lane's registers need not sit next to its PE column."""
        return self.rows - 1 + self.pe_latency + (1 if self.pipelined else 0)

    @property
    def prefetch_latency(self):
        """Cycles from a pipelined lane's prefetch read to the word in its queue
        (:class:`~zeroskip.hw.decoders.lane.Prefetch`): the block RAM's read and the register
        after it, so that even a word arriving at an empty queue comes from a flip-flop."""
        return 2

    @property
    def lane_refill_cycles(self):
        """Cycles a decoder lane spends at the start of every M-tile before its first token:
        a pipelined lane refills its prefetch queues from address 0 (the reads'
        :attr:`prefetch_latency`, and a cycle to present the queue's head from a register)."""
        return self.prefetch_latency + 1 if self.pipelined else 0

    @property
    def column_advance_cycles(self):
        """Cycles a decoder lane spends between a column's last token and the next column's
        first (also before an M-tile's refill): a pipelined lane registers that its column is
        done and moves its reader on in the next cycle, so that the decision to emit a token
        does not also load the reader's hundreds of flip-flops (at 100 MHz on an ECP5 that
        fanout, not the logic, was the critical path). Not counted after the lane's last
        column."""
        return 1 if self.pipelined else 0

    # Derived widths -------------------------------------------------------------------------

    @property
    def pe_count(self):
        return self.rows * self.cols

    @property
    def k_bits(self):
        """Width of a row index into W (0 .. max_k - 1)."""
        return bits_for(self.max_k)

    @property
    def act_addr_bits(self):
        return bits_for(self.act_depth)

    @property
    def weight_addr_bits(self):
        # one more value than the depth: a lane pointer may point one past the last entry
        return bits_for(self.weight_depth + 1)

    @property
    def pointer_addr_bits(self):
        return bits_for(self.pointer_depth)

    @property
    def out_addr_bits(self):
        return bits_for(self.out_depth)

    @property
    def result_rows(self):
        """Results in one word of the result port: every PE row's, or one with
        :attr:`column_results`."""
        return 1 if self.column_results else self.rows

    @property
    def fanout_registers(self):
        """Signals that reach every PE start from a flip-flop of their own: the accelerator
        behind the host link is reset from one (the link's reset command or the clock domain's
        reset, a cycle late; on the global network on an ECP5), not from a LUT combining them,
        and the activation write port is registered before it spreads over the array (a write
        lands a cycle later). With 128 PEs at 100 MHz the combined reset's fanout to 20,000
        flip-flops took 8 to 15 ns of routing, and the link's write enable, decoded from its
        state, 5 ns to reach the farthest of 128 block RAMs. For pipelined arrays with column
        result memories (the ULX3S's 16 x 8); the 8 x 8 builds were measured without them."""
        return self.pipelined and self.column_results

    @property
    def result_read_latency(self):
        """Cycles from an address at the result port to its data: 1, or 2 for a pipelined
        array's column result memories (their read data is registered before the column
        select: at 100 MHz on an ECP5 a block RAM's 5.8 ns clock-to-out and the route from a
        column at the edge of the chip left no time for it)."""
        return 2 if self.pipelined and self.column_results else 1

    @property
    def result_depth(self):
        """Words of a column's result port (per bank): with :attr:`column_results`, the
        result of PE row ``r`` for output ``j`` is at ``j * rows + r``."""
        return self.result_words(self.out_depth)

    @property
    def result_addr_bits(self):
        return bits_for(self.result_depth)

    def result_words(self, jobs):
        """Result-port words that hold ``jobs`` outputs of every PE row of a column (from
        address 0)."""
        return jobs * self.rows if self.column_results else jobs

    @property
    def bank_bits(self):
        """Address bits that select a bank (1 with :attr:`double_buffer`, else 0)."""
        return int(self.double_buffer)

    def banked_depth(self, depth):
        """Words a memory of ``depth`` words per bank has: with :attr:`double_buffer`, bank 1
        starts at ``bank_offset(depth)``, a power of two (the bank bit is the address MSB)."""
        return self.bank_offset(depth) + depth if self.double_buffer else depth

    def bank_offset(self, depth):
        """The address of bank 1's first word in a memory of ``depth`` words per bank."""
        return 1 << bits_for(depth)

    @property
    def tile_bits(self):
        """Width of an M-tile count (1 .. act_depth)."""
        return bits_for(self.act_depth + 1)

    @property
    def row_count_bits(self):
        return bits_for(self.rows + 1)

    # Identity -------------------------------------------------------------------------------

    def to_dict(self):
        # energy_counters appears only when on, so that a configuration without them keeps
        # the digest it had before they existed (the boards' gateware embeds its digest)
        d = asdict(self)
        if not self.energy_counters:
            del d["energy_counters"]
        if not self.double_buffer:
            del d["double_buffer"]     # likewise: digests from before it existed still hold
        if not self.column_results:
            del d["column_results"]    # likewise
        if self.act_memories == "infer":
            del d["act_memories"]      # likewise
        if self.arch == "zeroskip":
            del d["arch"]              # likewise
        if not self.resident:
            del d["resident"]          # likewise
        return d

    @classmethod
    def from_dict(cls, d):
        # a dict without energy_counters is of a configuration without them (see to_dict)
        return cls(**{"energy_counters": False, **d})

    def digest(self):
        """A short stable hash naming this configuration (build caches key on it)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def name(self):
        kind = "dense" if self.arch == "dense" else self.fmt
        return f"{self.rows}x{self.cols}-{kind}-{self.digest()}"

    def with_(self, **changes):
        return replace(self, **changes)
