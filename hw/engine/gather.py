"""The gather unit: a convolution's activation matrix, gathered from a feature map on chip.

In the resident engine (issue 31) a layer's int8 outputs land in a feature-map memory; the next
layer, a convolution, needs its im2col matrix ``A`` (M = output pixels × K = patch length) in
the PE array's activation memories, laid out exactly as the host compiler lays it out
(:mod:`zeroskip.sim.compiler`): row ``r`` of M-tile ``t`` (output pixel ``t * rows + r``) in PE
row ``r`` at address ``act_base + t * K + k``, one write beat = one column ``k`` of a tile, one
activation per PE row. Column ``k`` is ``(channel, kernel row, kernel column)`` in that order,
as :func:`zeroskip.frontend.lowering.im2col` flattens a patch; the padding holds ``pad_value``.

A K beyond what the accumulators hold is split by the host compiler into K-chunks, each a GEMM
of its own: the unit gathers a chunk (``k_first``, ``k_count``: columns of A) alone, its tiles
``k_count`` words apart. Groups and depthwise convolutions gather a channel window
(``c_first``, ``c_count``) of the
feature map: a group of a grouped convolution is its ``per_in`` channels, and a depthwise
convolution's block-diagonal GEMM of ``pack`` channels (:mod:`zeroskip.frontend.tflite.array_ops`)
has the im2col of those channels side by side, which is the im2col of the window.

The feature map is stored HWC, one activation per address: pixel ``(y, x)``, channel ``c`` at
``fm_base + (y * width + x) * channels + c``. :class:`GatherLayer` is a layer as the front end
describes it; :meth:`GatherLayer.descriptor` compiles it into the fields the hardware takes
(address steps and the first pixel's position precomputed, so the hardware needs no multiplier
and no divider).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import bits_for
from zeroskip.frontend.lowering import conv_output_shape
from zeroskip.hw.layouts import write_signature
from zeroskip.hw.memories import read_port

__all__ = ["GatherLayer", "GatherParams", "Gather", "OUTPUT_LATENCY"]

#: Cycles from a beat's first read to its write on ``act_write``: the address register, the
#: memory's read register and the output register.
OUTPUT_LATENCY = 3


def _pair(value, name) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, not {value!r}")
    return pair[0], pair[1]


@dataclass(frozen=True)
class GatherLayer:
    """One convolution's gather, as the front end describes it (ONNX's attribute order).

    Parameters
    ----------
    height, width, channels : int
        The stored feature map (HWC).
    kernel, strides, dilations : (int, int)
        (rows, columns); an int is taken as both.
    pads : (int, int, int, int)
        Padding (top, left, bottom, right), as ONNX's ``pads``.
    c_first, c_count : int
        The channel window gathered (a group, or a depthwise pack); ``c_count`` 0: every
        channel from ``c_first``.
    pad_value : int
        What the padding holds: the input's zero point, in the stored representation.
    k_first, k_count : int
        The columns of A gathered, a K-chunk of the host compiler (``k_count`` 0: to K).
    tile_first, tiles : int
        The M-tiles gathered (``tiles`` 0: to the last one).
    fm_base : int
        Address of the feature map's first activation.
    act_base : int
        Activation-memory address of the first tile's column 0 (within a bank).
    bank : int
        The activation memories' bank (with double buffering).
    """
    height: int
    width: int
    channels: int
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    c_first: int = 0
    c_count: int = 0
    pad_value: int = 0
    k_first: int = 0
    k_count: int = 0
    tile_first: int = 0
    tiles: int = 0
    fm_base: int = 0
    act_base: int = 0
    bank: int = 0

    def __post_init__(self):
        for name in ("kernel", "strides", "dilations"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        pads = tuple(self.pads)
        if len(pads) != 4 or not all(isinstance(p, int) for p in pads):
            raise TypeError(f"pads must be 4 ints (top, left, bottom, right), not {self.pads!r}")
        object.__setattr__(self, "pads", pads)
        if self.c_count == 0:
            object.__setattr__(self, "c_count", self.channels - self.c_first)
        for name in ("height", "width", "channels", "c_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if min(*self.kernel, *self.strides, *self.dilations) < 1:
            raise ValueError(f"kernel, strides and dilations must be at least 1, not "
                             f"{self.kernel}, {self.strides}, {self.dilations}")
        if min(pads) < 0 or min(self.c_first, self.tile_first, self.fm_base,
                                self.act_base, self.bank) < 0:
            raise ValueError("pads, c_first, tile_first, fm_base, act_base and bank must not "
                             "be negative")
        if self.c_first + self.c_count > self.channels:
            raise ValueError(f"channels {self.c_first} .. {self.c_first + self.c_count - 1} "
                             f"are not all in a feature map of {self.channels}")
        if self.k_count == 0:
            object.__setattr__(self, "k_count", self.k - self.k_first)
        if self.k_first < 0 or self.k_count < 1 or self.k_first + self.k_count > self.k:
            raise ValueError(f"columns {self.k_first} .. {self.k_first + self.k_count - 1} "
                             f"are not all among the {self.k} of A")
        if min(self.out_shape) < 1:
            raise ValueError(f"the kernel {self.kernel} (dilations {self.dilations}) does not "
                             f"fit the padded {self.height}×{self.width} feature map")

    @property
    def out_shape(self) -> tuple[int, int]:
        """(output rows, output columns), as the front end computes them."""
        oh, ow = conv_output_shape([self.height, self.width], list(self.kernel),
                                   list(self.strides), list(self.pads), list(self.dilations))
        return oh, ow

    @property
    def m(self) -> int:
        """Rows of A: output pixels."""
        oh, ow = self.out_shape
        return oh * ow

    @property
    def k(self) -> int:
        """Columns of A: the patch length."""
        return self.c_count * self.kernel[0] * self.kernel[1]

    def m_tiles(self, rows: int) -> int:
        """M-tiles of the whole layer for ``rows`` PE rows."""
        return -(-self.m // rows)

    def tile_count(self, rows: int) -> int:
        """M-tiles this gather writes."""
        return self.tiles or self.m_tiles(rows) - self.tile_first

    def descriptor(self, gather: GatherParams) -> dict:
        """The fields of ``gather.descriptor_layout`` for this layer (checked first).

        Raises
        ------
        ValueError
            If the layer does not fit ``gather``: its feature map beyond ``fm_depth``, a
            dimension beyond the descriptor's fields, the tiles beyond the layer's or the
            activation memory's depth.
        """
        gather.check(self)
        rows = gather.rows
        kh, kw = self.kernel
        sh, sw = self.strides
        dh, dw = self.dilations
        top, left, _, _ = self.pads
        oh, ow = self.out_shape
        tiles = self.tile_count(rows)
        oy, ox = divmod(self.tile_first * rows, ow)
        # the chunk's first column: (channel, kernel row, kernel column)
        c0, rest = divmod(self.k_first, kh * kw)
        ky0, kx0 = divmod(rest, kw)
        iy, ix = oy * sh - top, ox * sw - left
        c, w = self.channels, self.width
        wrap = (1 << gather.fm_addr_bits) - 1           # address arithmetic is modular
        origin = self.fm_base + self.c_first
        fields = {
            "height": self.height, "width": self.width,
            "kh": kh, "kw": kw, "dil_h": dh, "dil_w": dw, "stride_h": sh, "stride_w": sw,
            "kx_step": dw * c & wrap, "ky_step": dh * w * c & wrap,
            "x_step": sw * c & wrap, "y_step": sh * w * c & wrap,
            "out_last": ow - 1, "pad_left": left, "ox_first": ox, "iy_first": iy,
            "ix_first": ix, "base_first": origin + (iy * w + ix) * c & wrap,
            "row_base_first": origin + (iy * w - left) * c & wrap,
            "c_start": c0, "ky_start": ky0, "kx_start": kx0, "dy_start": ky0 * dh,
            "dx_start": kx0 * dw, "off_row_start": c0 + ky0 * dh * w * c & wrap,
            "off_start": c0 + (ky0 * dh * w + kx0 * dw) * c & wrap,
            "k": self.k_count, "tiles": tiles,
            "rows_last": min(rows, self.m - (self.tile_first + tiles - 1) * rows),
            "act_base": self.act_base, "pad_value": self.pad_value,
        }
        if gather.bank_bits:
            fields["bank"] = self.bank
        return fields


@dataclass(frozen=True)
class GatherParams:
    """The widths and depths of a gather unit: what the compiler needs to compile a layer
    (:meth:`GatherLayer.descriptor`) and predict its cycles, without building the hardware.

    Parameters
    ----------
    rows : int
        PE rows: activations per ``act_write`` word.
    fm_depth : int
        Activations the feature-map memory holds.
    act_depth : int
        Words of one bank of the activation memories (``ArrayConfig.act_depth``).
    act_width : int
        Bits of an activation.
    bank_bits : int
        Bank-select bits above the activation address (1 with double buffering).
    ports : int
        Read ports of the feature-map memory, a divisor of ``rows`` (0: ``rows``). Each
        reads one activation per cycle; a memory with ``ports`` read ports is ``ports`` block
        RAMs of the same contents on an FPGA.
    dim_bits, kernel_bits : int
        Widths of the descriptor's dimensions (height, width, padding, channels, output
        columns; 0: enough for ``fm_depth``) and of its kernel sizes, strides and
        dilations.
    """
    rows: int
    fm_depth: int
    act_depth: int
    act_width: int = 8
    bank_bits: int = 0
    ports: int = 0
    dim_bits: int = 0
    kernel_bits: int = 4

    def __post_init__(self):
        for name in ("rows", "fm_depth", "act_depth", "act_width", "kernel_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        if self.bank_bits not in (0, 1):
            raise ValueError(f"bank_bits must be 0 or 1, not {self.bank_bits!r}")
        if self.ports == 0:
            object.__setattr__(self, "ports", self.rows)
        if not isinstance(self.ports, int) or self.ports < 1 or self.rows % self.ports:
            raise ValueError(f"ports must be a positive divisor of rows ({self.rows}), not "
                             f"{self.ports!r}")
        if self.dim_bits == 0:
            object.__setattr__(self, "dim_bits", bits_for(self.fm_depth + 1))

    @classmethod
    def for_config(cls, config, fm_depth: int, **kwargs) -> GatherParams:
        """The gather unit feeding an accelerator of ``config`` (an ``ArrayConfig``)."""
        return cls(config.rows, fm_depth, config.act_depth, act_width=config.act_width,
                   bank_bits=config.bank_bits, **kwargs)

    @property
    def fm_addr_bits(self) -> int:
        return bits_for(self.fm_depth)

    @property
    def act_addr_bits(self) -> int:
        return bits_for(self.act_depth)

    @property
    def groups(self) -> int:
        """Read cycles per ``act_write`` beat: ``rows / ports``."""
        return self.rows // self.ports

    @property
    def descriptor_layout(self) -> data.StructLayout:
        """The compiled layer (see :meth:`GatherLayer.descriptor`).

        Members
        -------
        height, width : the feature map
        kh, kw, dil_h, dil_w, stride_h, stride_w : the kernel's geometry
        kx_step, ky_step : address step of a kernel column, a kernel row (modular)
        x_step, y_step : address step of an output column, an output row (modular)
        out_last : output columns - 1; pad_left : left padding
        ox_first, iy_first, ix_first : the first pixel's output column and its window's
            top-left input coordinates (signed: in the padding)
        base_first, row_base_first : addresses of that window's origin and of its row's
            first window's origin (channel ``c_first`` included; modular)
        k : K; tiles : tiles written; rows_last : valid rows in the last tile (the rest are
            written as zeros, as the host compiler pads)
        act_base : where the first tile starts; bank (double buffering); pad_value
        """
        dim, kern, addr = self.dim_bits, self.kernel_bits, self.fm_addr_bits
        fields = {
            "height": unsigned(dim), "width": unsigned(dim),
            "kh": unsigned(kern), "kw": unsigned(kern),
            "dil_h": unsigned(kern), "dil_w": unsigned(kern),
            "stride_h": unsigned(kern), "stride_w": unsigned(kern),
            "kx_step": unsigned(addr), "ky_step": unsigned(addr),
            "x_step": unsigned(addr), "y_step": unsigned(addr),
            "out_last": unsigned(dim), "pad_left": unsigned(dim), "ox_first": unsigned(dim),
            "iy_first": signed(dim + 1), "ix_first": signed(dim + 1),
            "base_first": unsigned(addr), "row_base_first": unsigned(addr),
            "c_start": unsigned(dim), "ky_start": unsigned(kern), "kx_start": unsigned(kern),
            "dy_start": unsigned(dim + 1), "dx_start": unsigned(dim + 1),
            "off_row_start": unsigned(addr), "off_start": unsigned(addr),
            "k": unsigned(bits_for(self.act_depth + 1)),
            "tiles": unsigned(bits_for(self.act_depth + 1)),
            "rows_last": unsigned(bits_for(self.rows + 1)),
            "act_base": unsigned(self.act_addr_bits),
            "pad_value": signed(self.act_width),
        }
        if self.bank_bits:
            fields["bank"] = unsigned(1)
        return data.StructLayout(fields)

    def check(self, layer: GatherLayer) -> None:
        """Raise ValueError naming the first field of ``layer`` this unit cannot gather."""
        dim_limit, kern_limit = (1 << self.dim_bits) - 1, (1 << self.kernel_bits) - 1
        if layer.fm_base + layer.height * layer.width * layer.channels > self.fm_depth:
            raise ValueError(f"the feature map ({layer.height}×{layer.width}×{layer.channels} "
                             f"from address {layer.fm_base}) does not fit fm_depth "
                             f"{self.fm_depth}")
        top, left, bottom, right = layer.pads
        for name, value in (("height + top and bottom padding", layer.height + top + bottom),
                            ("width + left and right padding", layer.width + left + right),
                            ("c_count", layer.c_count)):
            if value > dim_limit:
                raise ValueError(f"{name} is {value}; dim_bits {self.dim_bits} hold at most "
                                 f"{dim_limit}")
        for name, pair in (("kernel", layer.kernel), ("strides", layer.strides),
                           ("dilations", layer.dilations)):
            if max(pair) > kern_limit:
                raise ValueError(f"{name} {pair}: kernel_bits {self.kernel_bits} hold at most "
                                 f"{kern_limit}")
        low, high = -(1 << (self.act_width - 1)), (1 << (self.act_width - 1)) - 1
        if not low <= layer.pad_value <= high:
            raise ValueError(f"pad_value {layer.pad_value} is not a signed "
                             f"{self.act_width}-bit activation")
        tiles, total = layer.tile_count(self.rows), layer.m_tiles(self.rows)
        if tiles < 1 or layer.tile_first + tiles > total:
            raise ValueError(f"tiles {layer.tile_first} .. {layer.tile_first + tiles - 1} are "
                             f"not all among the layer's {total} M-tiles")
        if layer.act_base + tiles * layer.k_count > self.act_depth:
            raise ValueError(f"{tiles} tiles of {layer.k_count} columns from address "
                             f"{layer.act_base} do not fit act_depth {self.act_depth}")
        if layer.bank >= 1 << self.bank_bits:
            raise ValueError(f"bank {layer.bank} with bank_bits {self.bank_bits}")

    def cycles(self, layer: GatherLayer) -> int:
        """Cycles from the cycle ``start`` is taken to the first cycle ``done`` is up."""
        beat = layer.k_count * self.groups
        tiles = layer.tile_count(self.rows)
        return self.rows + 2 + OUTPUT_LATENCY + beat + (tiles - 1) * max(beat, self.rows)


class Gather(wiring.Component):
    """A feature-map memory and the address generator that gathers im2col tiles from it.

    Parameters
    ----------
    params : GatherParams

    Members
    -------
    fm_write : In(write_signature(fm_addr_bits, signed(act_width)))
        Writes one activation of the feature map (where the output stage's results land).
    start : In(1)
        Pulse to gather with ``layer``; ignored while busy. ``layer`` is taken at start.
    layer : In(descriptor_layout)
        The compiled layer (:meth:`GatherLayer.descriptor`).
    busy, done : Out(1)
        ``busy`` from the cycle after start until the last beat is written; ``done`` then
        rises and stays until the next start.
    act_write : Out(write_signature(act_addr_bits + bank_bits, rows × signed(act_width)))
        The activation memories' write port (:class:`zeroskip.hw.accelerator.Accelerator`'s
        ``act_write``), written without ready: one beat per column of a tile.

    Throughput
    ----------
    A tile of K columns (``k_count``) takes ``K * rows / ports`` read cycles; the next tile's
    ``rows`` output pixels are walked into a shadow register meanwhile, one a cycle: a tile costs
    ``max(K * rows / ports, rows)`` cycles, and a gather of T tiles
    (:meth:`GatherParams.cycles`) ``rows + 5 + K * rows / ports + (T - 1) * max(K * rows /
    ports, rows)`` from the cycle start is taken to the first cycle ``done`` is up (the first
    tile's walk, :data:`OUTPUT_LATENCY` and one for ``done``). The unit never waits: the
    feature map is read every cycle of a tile and ``act_write`` has no ready.
    """

    def __init__(self, params: GatherParams):
        if not isinstance(params, GatherParams):
            raise TypeError(f"params must be a GatherParams, not {params!r}")
        self._params = params
        super().__init__({
            "fm_write": In(write_signature(params.fm_addr_bits, signed(params.act_width))),
            "start": In(1),
            "layer": In(params.descriptor_layout),
            "busy": Out(1),
            "done": Out(1),
            "act_write": Out(write_signature(
                params.act_addr_bits + params.bank_bits,
                data.ArrayLayout(signed(params.act_width), params.rows))),
        })

    @property
    def params(self) -> GatherParams:
        return self._params

    def elaborate(self, platform):
        m = Module()
        params = self._params
        rows, ports, groups = params.rows, params.ports, params.groups
        addr_bits, coord = params.fm_addr_bits, signed(params.dim_bits + 2)

        fm = memory.Memory(shape=signed(params.act_width), depth=params.fm_depth, init=[])
        m.submodules.fm = fm
        fm_write = fm.write_port()
        m.d.comb += [fm_write.en.eq(self.fm_write.en), fm_write.addr.eq(self.fm_write.addr),
                     fm_write.data.eq(self.fm_write.data)]

        desc = Signal(params.descriptor_layout)
        busy, done = Signal(), Signal()
        m.d.comb += [self.busy.eq(busy), self.done.eq(done)]
        take = self.start & ~busy

        # The walker: the next output pixel's window origin, one pixel per shift.
        w_ox = Signal(params.dim_bits)
        w_iy, w_ix = Signal(coord), Signal(coord)
        w_base, w_row_base = Signal(addr_bits), Signal(addr_bits)

        def pixel_regs(name):
            return [{"iy": Signal(coord, name=f"{name}{r}_iy"),
                     "ix": Signal(coord, name=f"{name}{r}_ix"),
                     "base": Signal(addr_bits, name=f"{name}{r}_base"),
                     "valid": Signal(name=f"{name}{r}_valid")} for r in range(rows)]
        # shadow: the next tile's pixels, shifted in at the top; active: the tile being read
        shadow, active = pixel_regs("shadow"), pixel_regs("active")
        tile_bits = bits_for(params.act_depth + 2)
        prep = Signal(tile_bits)                  # the tile the shadow is filling
        fill = Signal(range(rows + 1))            # its pixels in the shadow so far

        gathering = Signal()
        g = Signal(range(groups))
        c = Signal(params.dim_bits)
        ky, kx = Signal(params.kernel_bits), Signal(params.kernel_bits)
        dy, dx = Signal(params.dim_bits + 1), Signal(params.dim_bits + 1)
        off_row, off = Signal(addr_bits), Signal(addr_bits)
        k_index = Signal(params.act_addr_bits)
        tile_base, next_base = Signal(params.act_addr_bits), Signal(params.act_addr_bits)

        last_beat = k_index == desc.k - 1
        last_issue = gathering & (g == groups - 1) & last_beat
        switch = busy & (fill == rows) & (~gathering | last_issue)
        shift = Signal()
        m.d.comb += shift.eq(busy & ((switch & (prep + 1 < desc.tiles)) |
                                     (~switch & (fill < rows) & (prep < desc.tiles))))
        filling_tile = Signal(tile_bits)
        filling_row = Signal(range(rows + 1))
        m.d.comb += [filling_tile.eq(prep + switch), filling_row.eq(Mux(switch, 0, fill))]

        with m.If(take):
            m.d.sync += [
                desc.eq(self.layer), busy.eq(1), done.eq(0), prep.eq(0), fill.eq(0),
                gathering.eq(0),
                w_ox.eq(self.layer.ox_first), w_iy.eq(self.layer.iy_first),
                w_ix.eq(self.layer.ix_first), w_base.eq(self.layer.base_first),
                w_row_base.eq(self.layer.row_base_first), next_base.eq(self.layer.act_base),
            ]

        with m.If(shift):
            with m.If(w_ox == desc.out_last):
                m.d.sync += [w_ox.eq(0), w_iy.eq(w_iy + desc.stride_h), w_ix.eq(-desc.pad_left),
                             w_row_base.eq(w_row_base + desc.y_step),
                             w_base.eq(w_row_base + desc.y_step)]
            with m.Else():
                m.d.sync += [w_ox.eq(w_ox + 1), w_ix.eq(w_ix + desc.stride_w),
                             w_base.eq(w_base + desc.x_step)]
            beyond = (filling_tile == desc.tiles - 1) & (filling_row >= desc.rows_last)
            entering = {"iy": w_iy, "ix": w_ix, "base": w_base, "valid": ~beyond}
            for r in range(rows):
                source = shadow[r + 1] if r + 1 < rows else entering
                m.d.sync += [shadow[r][name].eq(source[name]) for name in entering]
        with m.If(switch):
            m.d.sync += [prep.eq(prep + 1), fill.eq(shift), gathering.eq(1),
                         tile_base.eq(next_base), next_base.eq(next_base + desc.k)]
            m.d.sync += [active[r][name].eq(shadow[r][name]) for r in range(rows)
                         for name in shadow[r]]
        with m.Elif(shift):
            m.d.sync += fill.eq(fill + 1)

        # The read loop: for each column k = (channel, kernel row, kernel column), the rows of
        # the tile in groups of `ports`, one group per cycle.
        with m.If(switch):
            m.d.sync += [g.eq(0), c.eq(desc.c_start), ky.eq(desc.ky_start),
                         kx.eq(desc.kx_start), dy.eq(desc.dy_start), dx.eq(desc.dx_start),
                         off_row.eq(desc.off_row_start), off.eq(desc.off_start), k_index.eq(0)]
        with m.Elif(gathering):
            with m.If(last_issue):
                m.d.sync += gathering.eq(0)
            with m.If(g != groups - 1):
                m.d.sync += g.eq(g + 1)
            with m.Else():
                m.d.sync += [g.eq(0), k_index.eq(k_index + 1)]
                with m.If(kx != desc.kw - 1):
                    m.d.sync += [kx.eq(kx + 1), dx.eq(dx + desc.dil_w), off.eq(off + desc.kx_step)]
                with m.Elif(ky != desc.kh - 1):
                    m.d.sync += [kx.eq(0), dx.eq(0), ky.eq(ky + 1), dy.eq(dy + desc.dil_h),
                                 off_row.eq(off_row + desc.ky_step),
                                 off.eq(off_row + desc.ky_step)]
                with m.Else():
                    m.d.sync += [kx.eq(0), dx.eq(0), ky.eq(0), dy.eq(0), c.eq(c + 1),
                                 off_row.eq(c + 1), off.eq(c + 1)]

        # Stage 1: each port's address and whether its pixel is inside the feature map.
        s1_en, s1_final, s1_last_group = Signal(), Signal(), Signal()
        s1_g = Signal(range(groups))
        s1_addr = Signal(params.act_addr_bits)
        s1_read = [Signal(addr_bits, name=f"s1_read{p}") for p in range(ports)]
        s1_row = [Signal(name=f"s1_row{p}") for p in range(ports)]         # a pixel of M
        s1_inside = [Signal(name=f"s1_inside{p}") for p in range(ports)]   # not padding
        m.d.sync += [s1_en.eq(gathering), s1_final.eq(last_issue & (prep == desc.tiles)),
                     s1_last_group.eq(g == groups - 1), s1_g.eq(g),
                     s1_addr.eq(tile_base + k_index)]
        for p in range(ports):
            def pick(name):
                # a chain of Mux, not an Array: Yosys writes an Array as an `always @*` case
                # that Icarus leaves X until an operand changes
                value = active[p][name]
                for q in range(1, groups):
                    value = Mux(g == q, active[q * ports + p][name], value)
                return value
            iy = pick("iy") + dy
            ix = pick("ix") + dx
            inside = (iy >= 0) & (iy < desc.height) & (ix >= 0) & (ix < desc.width)
            m.d.sync += [s1_read[p].eq(pick("base") + off), s1_row[p].eq(pick("valid")),
                         s1_inside[p].eq(inside)]

        # Stage 2: the memory's read data, the padding's value substituted (and zero in the
        # rows of the last tile beyond M, as the host compiler pads).
        reads = []
        for p in range(ports):
            port = read_port(m, fm, name=f"fm_read{p}")
            m.d.comb += port.addr.eq(s1_read[p])
            reads.append(port.data)
        s2_en, s2_final, s2_last_group = Signal(), Signal(), Signal()
        s2_g = Signal(range(groups))
        s2_addr = Signal(params.act_addr_bits)
        s2_row = [Signal(name=f"s2_row{p}") for p in range(ports)]
        s2_inside = [Signal(name=f"s2_inside{p}") for p in range(ports)]
        m.d.sync += [s2_en.eq(s1_en), s2_final.eq(s1_final), s2_last_group.eq(s1_last_group),
                     s2_g.eq(s1_g), s2_addr.eq(s1_addr)]
        m.d.sync += [s2_row[p].eq(s1_row[p]) for p in range(ports)]
        m.d.sync += [s2_inside[p].eq(s1_inside[p]) for p in range(ports)]
        values = [Signal(signed(params.act_width), name=f"value{p}") for p in range(ports)]
        m.d.comb += [values[p].eq(Mux(s2_row[p], Mux(s2_inside[p], reads[p], desc.pad_value), 0))
                     for p in range(ports)]

        # Stage 3: a beat's earlier groups wait in registers; its last group completes it.
        held = [[Signal(signed(params.act_width), name=f"held{q}_{p}") for p in range(ports)]
                for q in range(groups - 1)]
        with m.If(s2_en & ~s2_last_group):
            for q in range(groups - 1):
                with m.If(s2_g == q):
                    m.d.sync += [held[q][p].eq(values[p]) for p in range(ports)]
        out_bank = desc.bank if params.bank_bits else None
        m.d.sync += [self.act_write.en.eq(s2_en & s2_last_group),
                     self.act_write.addr.eq(s2_addr if out_bank is None
                                            else Cat(s2_addr, out_bank)),
                     self.act_write.data.eq(Cat(*(v for q in held for v in q), *values))]
        final_beat = Signal()        # the beat on act_write now is the gather's last
        m.d.sync += final_beat.eq(s2_en & s2_last_group & s2_final)
        with m.If(self.act_write.en & final_beat):
            m.d.sync += [busy.eq(0), done.eq(1)]
        return m
