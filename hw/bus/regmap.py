"""The register map of the bus wrappers, generated from the configuration.

One description serves the gateware (:class:`zeroskip.hw.bus.registers.Registers` decodes
these offsets), the host drivers, the C header and the Markdown table
(``zeroskip verilog --bus axi --header regs.h``). Offsets are in bytes, registers 32 bits wide.

* ``axi``: identification, control, status, the job, the counters and the lane status. The
  operands and results move through AXI4-Stream as :mod:`zeroskip.hw.link` frames, so the
  map has no memory windows; its status adds what the stream framing saw.
* ``wishbone``: the same registers, and a window per memory, so a soft CPU needs nothing
  but loads and stores. A memory word wider than 32 bits takes ``stride`` bytes: its 32-bit
  slots are written lowest first, and writing the last slot writes the word. Result words
  read slot by slot the same way.
"""

from dataclasses import dataclass

from amaranth.lib import data

from zeroskip.config import FORMATS, DecodeStatus
from zeroskip.hw.layouts import counter_names, job_layout, shape_width
from zeroskip.hw.link.protocol import Reply, write_targets

__all__ = ["Register", "Window", "RegisterMap", "ID_VALUE", "BUSES", "version_word"]

BUSES = ("native", "axi", "wishbone")

#: The ID register: "zskp" in ASCII.
ID_VALUE = 0x7A736B70

#: CONTROL's bits (write 1; they read as 0)
CONTROL_FIELDS = (("START", 0, "run the job in JOB_*"),
                  ("RESET", 1, "reset the accelerator (memories keep their contents)"),
                  ("CLEAR", 2, "clear STATUS.FRAME_ERROR, STATUS.TLAST_ERROR and REJECTS"))
#: STATUS's bits
STATUS_FIELDS = (("BUSY", 0, "a run is in progress"),
                 ("DONE", 1, "the last run has finished (until the next START)"),
                 ("LANE_FAULT", 2, "a lane stopped on malformed memory (LANE_STATUS_*)"),
                 ("PENDING", 3, "a START or RESET not taken yet"))
AXI_STATUS_FIELDS = (("FRAME_ERROR", 4, "a request frame was rejected (sticky)"),
                     ("TLAST_ERROR", 5, "TLAST was not on a request frame's last byte "
                                        "(sticky)"))

LANES_PER_REGISTER = 8     # lane status: a nibble per lane


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str            # "R", "W" or "RW"
    doc: str
    value: int | None = None                     # constant registers
    fields: tuple[tuple[str, int, str], ...] = ()  # single-bit fields: (name, bit, doc)


@dataclass(frozen=True)
class Window:
    """A memory: ``depth`` words of ``bits`` bits, word ``i`` at ``base + i * stride`` (and,
    for the results, column ``c`` at ``base + c * column_stride``)."""
    name: str
    base: int
    size: int
    stride: int
    depth: int
    bits: int
    access: str
    doc: str
    target: int | None = None   # the write target (zeroskip.hw.link.protocol.write_targets)
    columns: int = 1
    column_stride: int = 0

    @property
    def slots(self):
        return -(-self.bits // 32)


def _pow2(n):
    return 1 << max(0, (n - 1).bit_length())


def version_word():
    """``major << 16 | minor << 8 | patch`` of the package version."""
    from zeroskip import __version__
    parts = [int(p) if p.isdigit() else 0 for p in __version__.split("+")[0].split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return major << 16 | minor << 8 | patch


class RegisterMap:
    """The registers (and, for ``wishbone``, memory windows) of ``config`` on ``bus``."""

    def __init__(self, config, bus, *, clock_hz=0):
        if bus not in ("axi", "wishbone"):
            raise ValueError(f"no register map for bus {bus!r}")
        if config.double_buffer:
            raise ValueError("double_buffer is not supported behind a bus yet")
        self.config, self.bus, self.clock_hz = config, bus, clock_hz
        digest = int.from_bytes(bytes.fromhex(config.digest()[:12]), "little")
        regs = []

        def const(name, offset, value, doc):
            regs.append(Register(name, offset, "R", doc, value=value))

        const("ID", 0x000, ID_VALUE, '"zskp": a zeroskip accelerator')
        const("VERSION", 0x004, version_word(), "zeroskip version: major << 16 | minor << 8 | "
                                                "patch")
        const("DIGEST_LO", 0x008, digest & 0xFFFFFFFF, "configuration digest, bits 31:0 "
                                                        "(as INFO reports it)")
        const("DIGEST_HI", 0x00C, digest >> 32, "configuration digest, bits 47:32")
        const("ROWS", 0x010, config.rows, "PE rows (outputs per result word)")
        const("COLS", 0x014, config.cols, "PE columns and decoder lanes")
        const("MAX_K", 0x018, config.max_k, "largest K of a run")
        const("ACT_DEPTH", 0x01C, config.act_depth, "activation words")
        const("OUT_DEPTH", 0x020, config.result_depth, "result words per column")
        const("FORMAT", 0x024, FORMATS.index(config.fmt),
              "weight format: " + ", ".join(f"{i} {f}" for i, f in enumerate(FORMATS)))
        const("NM", 0x028, config.nm_n | config.nm_m << 8, "N:M pattern: N | M << 8")
        const("COUNTER_WIDTH", 0x02C, config.counter_width, "bits per hardware counter")
        const("CLOCK_HZ", 0x030, clock_hz, "the clock the core was generated for (0: unknown)")
        regs.append(Register("CONTROL", 0x040, "W", "write 1 to a bit", fields=CONTROL_FIELDS))
        regs.append(Register("STATUS", 0x044, "R", "state of the core", fields=STATUS_FIELDS + (
            AXI_STATUS_FIELDS if bus == "axi" else ())))
        if bus == "axi":
            regs.append(Register("REJECTS", 0x048, "R", "request frames rejected since reset "
                                                        "or CONTROL.CLEAR"))
            regs.append(Register("LAST_REPLY", 0x04C, "R", "status of the last reply frame: " +
                                 ", ".join(f"{r.value} {r.name}" for r in Reply)))
        self.job_bits = job_layout(config).size
        for i in range(-(-self.job_bits // 32)):
            regs.append(Register(f"JOB_{i}", 0x080 + 4 * i, "RW",
                                 f"job bits {32 * i + 31}:{32 * i} (job fields: ZS_JOB_*)"))
        self.counter_regs = []
        halves = -(-config.counter_width // 32)
        for i, name in enumerate(counter_names(config)):
            for h in range(halves):
                suffix = ("_LO", "_HI")[h] if halves > 1 else ""
                top = min(32 * h + 31, config.counter_width - 1)
                reg = Register(f"{name.upper()}{suffix}", 0x100 + 8 * i + 4 * h, "R",
                               f"counter {name}, bits {top}:{32 * h}, of the last run")
                regs.append(reg)
                self.counter_regs.append((reg, name, h))
        self.lane_regs = []
        for i in range(-(-config.cols // LANES_PER_REGISTER)):
            first = i * LANES_PER_REGISTER
            last = min(config.cols, first + LANES_PER_REGISTER) - 1
            reg = Register(f"LANE_STATUS_{i}", 0x200 + 4 * i, "R",
                           f"lanes {first}..{last}, a nibble each: " +
                           ", ".join(f"{s.value} {s.name}" for s in DecodeStatus))
            regs.append(reg)
            self.lane_regs.append(reg)
        self.registers = regs
        assert regs[-1].offset < 0x1000 and len({r.offset for r in regs}) == len(regs)

        windows = []
        if bus == "wishbone":
            base = 0x1000
            for target, (name, bits, mask, depth) in enumerate(write_targets(config)):
                stride = 4 * _pow2(-(-(bits + mask) // 32))
                size = _pow2(depth * stride)
                base = -(-base // size) * size
                doc = ("activations: one int8 per PE row" if name == "act" else
                       f"decoder lanes' {name}: a slot per lane, then a lane mask bit per lane")
                windows.append(Window(f"MEM_{name.upper()}", base, size, stride, depth,
                                      bits + mask, "W", doc, target=target))
                base += size
            bits = config.result_rows * config.acc_width
            stride = 4 * _pow2(-(-bits // 32))
            column_stride = _pow2(config.result_depth * stride)
            size = _pow2(config.cols * column_stride)
            base = -(-base // size) * size
            windows.append(Window("RESULTS", base, size, stride, config.result_depth, bits, "R",
                                  "results: a word of rows int32 per output, column by column"
                                  if config.result_rows > 1 else
                                  "results: an int32 per output and PE row (output j of row r "
                                  "at index j * rows + r), column by column",
                                  columns=config.cols, column_stride=column_stride))
            base += size
        self.windows = windows
        self.size = _pow2(max([0x1000] + [w.base + w.size for w in windows]))
        self.addr_bits = (self.size - 1).bit_length()

    def __getitem__(self, name):
        for reg in self.registers + self.windows:
            if reg.name == name:
                return reg
        raise KeyError(name)

    def job_fields(self):
        """``[(NAME, lsb, width)]`` of the job, arrays by element."""
        fields = []
        for name, field in job_layout(self.config):
            shape = field.shape
            if isinstance(shape, data.ArrayLayout):
                width = shape_width(shape.elem_shape)
                fields += [(f"{name.upper()}_{i}", field.offset + i * width, width)
                           for i in range(shape.length)]
            else:
                fields.append((name.upper(), field.offset, shape_width(shape)))
        return fields

    # -- documents ---------------------------------------------------------------------

    def title(self):
        c = self.config
        return (f"zeroskip {c.rows}x{c.cols} {c.fmt} accelerator, configuration "
                f"{c.digest()[:12]}, {self.bus} bus")

    def header(self):
        """The map as a C header (offsets in bytes from the core's base address)."""
        guard = "ZEROSKIP_REGS_H"
        lines = [f"/* {self.title()}.", " * Generated by zeroskip (zeroskip verilog --header); "
                 "offsets in bytes from the core's base. */",
                 f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", ""]

        def define(name, value, comment=None):
            text = f"#define ZS_{name} 0x{value:X}u"
            lines.append(f"{text:<48}/* {comment} */" if comment else text)

        for reg in self.registers:
            define(reg.name, reg.offset, f"{reg.access}: {reg.doc}")
            if reg.value is not None:
                define(f"{reg.name}_VALUE", reg.value)
            for field, bit, doc in reg.fields:
                define(f"{reg.name}_{field}", 1 << bit, doc)
        lines.append("")
        for field, lsb, width in self.job_fields():
            define(f"JOB_{field}_LSB", lsb)
            define(f"JOB_{field}_WIDTH", width)
        define("JOB_BITS", self.job_bits)
        lines.append("")
        for window in self.windows:
            define(f"{window.name}_BASE", window.base, f"{window.access}: {window.doc}")
            define(f"{window.name}_STRIDE", window.stride, "bytes per word")
            define(f"{window.name}_DEPTH", window.depth, "words")
            define(f"{window.name}_BITS", window.bits, "bits per word")
            if window.columns > 1:
                define(f"{window.name}_COLUMN_STRIDE", window.column_stride, "bytes per column")
        define("MAP_SIZE", self.size, "bytes of address space the core decodes")
        lines += ["", "static inline uint32_t zs_read(volatile uint32_t *base, uint32_t offset)",
                  "{", "    return base[offset / 4];", "}", "",
                  "static inline void zs_write(volatile uint32_t *base, uint32_t offset, "
                  "uint32_t value)", "{", "    base[offset / 4] = value;", "}", "",
                  f"#endif /* {guard} */", ""]
        return "\n".join(lines)

    def markdown(self):
        """The map as a Markdown table."""
        out = [f"# Register map: {self.title()}", "",
               "| offset | name | access | description |", "|---:|---|---|---|"]
        for reg in self.registers:
            doc = reg.doc
            if reg.value is not None:
                doc += f" (value 0x{reg.value:X})"
            if reg.fields:
                doc += "; bits: " + ", ".join(f"{bit} {name} ({d})" for name, bit, d in
                                              reg.fields)
            doc = doc.replace("|", "\\|")
            out.append(f"| 0x{reg.offset:03X} | {reg.name} | {reg.access} | {doc} |")
        for w in self.windows:
            cols = (f", column c at +c×0x{w.column_stride:X}" if w.columns > 1 else "")
            out.append(f"| 0x{w.base:X} | {w.name} | {w.access} | {w.doc}: {w.depth} words "
                       f"of {w.bits} bits, word i at +i×{w.stride}{cols} |")
        out += ["", "Job fields (in JOB_0, JOB_1, ... as one little-endian bit vector):", "",
                "| field | lsb | width |", "|---|---:|---:|"]
        out += [f"| {name} | {lsb} | {width} |" for name, lsb, width in self.job_fields()]
        return "\n".join(out) + "\n"
