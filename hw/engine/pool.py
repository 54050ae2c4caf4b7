"""The pooling unit: max and average pooling from one feature-map memory into another.

Bit-exact with the front end's host kernels for TFLite's int8 pooling
(:func:`zeroskip.frontend.tflite.host_ops.max_pool_2d` and ``average_pool_2d``, LiteRT's
``reference_integer_ops``): a window's elements outside the input are left out (not padded);
max pooling takes the largest element inside, average pooling the int32 sum of the elements
inside divided by their count, rounded half away from zero; both clamped to the fused
activation's range. ONNX's MaxPool between a DequantizeLinear and a QuantizeLinear of the same
parameters is the same integer maximum.

Both feature maps are HWC, one activation per address (as :mod:`zeroskip.hw.engine.gather`
stores them); the unit reads the source through a read port and writes the destination
through a write port, so it can sit between any two memories. :class:`PoolLayer` describes a
layer; :meth:`PoolLayer.descriptor` compiles it into the fields the hardware takes (address
steps precomputed: no multiplier, and a serial divider for the average).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.config import bits_for
from zeroskip.hw.layouts import read_signature, write_signature

__all__ = ["PoolLayer", "PoolParams", "Pool", "DIVIDE_CYCLES"]

#: Cycles of the average's serial division: one per quotient bit (|average| <= 128 < 2**8).
DIVIDE_CYCLES = 8


@dataclass(frozen=True)
class PoolLayer:
    """One pooling layer (TFLite's geometry: dilation 1, the padding before each axis).

    Parameters
    ----------
    height, width, channels : int
        The source feature map (HWC).
    filter, strides : (int, int)
        (rows, columns).
    out_shape : (int, int)
        Output rows and columns (:func:`zeroskip.frontend.tflite.host_ops.pool_geometry`).
    pad_top, pad_left : int
        Padding before each axis; windows over the edge leave those places out.
    average : bool
        Average pooling (else max).
    low, high : int
        The fused activation's clamp (the full int8 range without one).
    src_base, dst_base : int
        Addresses of the source's and the destination's first activation.
    """
    height: int
    width: int
    channels: int
    filter: tuple[int, int]
    strides: tuple[int, int]
    out_shape: tuple[int, int]
    pad_top: int = 0
    pad_left: int = 0
    average: bool = False
    low: int = -128
    high: int = 127
    src_base: int = 0
    dst_base: int = 0

    def __post_init__(self):
        for name in ("height", "width", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if min(*self.filter, *self.strides, *self.out_shape) < 1:
            raise ValueError(f"filter, strides and out_shape must be at least 1, not "
                             f"{self.filter}, {self.strides}, {self.out_shape}")
        if min(self.pad_top, self.pad_left, self.src_base, self.dst_base) < 0:
            raise ValueError("pads and base addresses must not be negative")
        if not -128 <= self.low <= self.high <= 127:
            raise ValueError(f"the clamp [{self.low}, {self.high}] is not an int8 range")
        for axis, size, out, stride, pad, f in (
                (0, self.height, self.out_shape[0], self.strides[0], self.pad_top,
                 self.filter[0]),
                (1, self.width, self.out_shape[1], self.strides[1], self.pad_left,
                 self.filter[1])):
            # every window must hold an element of the input (TFLite's count is never 0)
            if pad >= f or (out - 1) * stride - pad >= size:
                raise ValueError(f"a window of axis {axis} lies wholly in the padding")

    @property
    def outputs(self) -> int:
        """Activations written: output pixels × channels."""
        return self.out_shape[0] * self.out_shape[1] * self.channels

    def descriptor(self, params: PoolParams) -> dict:
        """The fields of ``params.descriptor_layout`` (checked first: ValueError naming what
        does not fit)."""
        params.check(self)
        wrap = (1 << params.addr_bits) - 1
        c, w = self.channels, self.width
        return {
            "height": self.height, "width": self.width, "c_last": c - 1,
            "fh": self.filter[0], "fw": self.filter[1],
            "stride_h": self.strides[0], "stride_w": self.strides[1],
            "oh_last": self.out_shape[0] - 1, "ow_last": self.out_shape[1] - 1,
            "pad_top": self.pad_top, "pad_left": self.pad_left,
            "x_step": c & wrap, "row_step": w * c & wrap,
            "ox_step": self.strides[1] * c & wrap, "oy_step": self.strides[0] * w * c & wrap,
            "win_first": self.src_base - (self.pad_top * w + self.pad_left) * c & wrap,
            "dst_base": self.dst_base, "average": int(self.average),
            "low": self.low, "high": self.high,
        }


@dataclass(frozen=True)
class PoolParams:
    """The widths of a pooling unit.

    Parameters
    ----------
    fm_depth : int
        Addresses of each feature-map memory (source and destination).
    dim_bits, kernel_bits : int
        Widths of the dimensions (0: enough for ``fm_depth``) and of filter sizes and strides.
    """
    fm_depth: int
    dim_bits: int = 0
    kernel_bits: int = 4

    def __post_init__(self):
        for name in ("fm_depth", "kernel_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        if self.dim_bits == 0:
            object.__setattr__(self, "dim_bits", bits_for(self.fm_depth + 1))

    @property
    def addr_bits(self) -> int:
        return bits_for(self.fm_depth)

    @property
    def sum_bits(self) -> int:
        """A window's sum: up to ``(2**kernel_bits - 1)**2`` int8 values, signed."""
        return 8 + 2 * self.kernel_bits + 1

    @property
    def descriptor_layout(self) -> data.StructLayout:
        """The compiled layer (:meth:`PoolLayer.descriptor`): the geometry as counts and
        ``_last`` bounds, address steps of a filter column (``x_step``) and row
        (``row_step``) and of an output column and row (modular), the first window's origin
        ``win_first`` (modular: it may lie in the padding), ``dst_base``, ``average`` and the
        clamp ``low``/``high``."""
        dim, kern, addr = self.dim_bits, self.kernel_bits, self.addr_bits
        return data.StructLayout({
            "height": unsigned(dim), "width": unsigned(dim), "c_last": unsigned(dim),
            "fh": unsigned(kern), "fw": unsigned(kern),
            "stride_h": unsigned(kern), "stride_w": unsigned(kern),
            "oh_last": unsigned(dim), "ow_last": unsigned(dim),
            "pad_top": unsigned(dim), "pad_left": unsigned(dim),
            "x_step": unsigned(addr), "row_step": unsigned(addr),
            "ox_step": unsigned(addr), "oy_step": unsigned(addr),
            "win_first": unsigned(addr), "dst_base": unsigned(addr),
            "average": 1, "low": signed(8), "high": signed(8),
        })

    def check(self, layer: PoolLayer) -> None:
        """Raise ValueError naming the first field of ``layer`` this unit cannot pool."""
        if layer.src_base + layer.height * layer.width * layer.channels > self.fm_depth:
            raise ValueError(f"the source ({layer.height}×{layer.width}×{layer.channels} from "
                             f"{layer.src_base}) does not fit fm_depth {self.fm_depth}")
        if layer.dst_base + layer.outputs > self.fm_depth:
            raise ValueError(f"the destination ({layer.outputs} activations from "
                             f"{layer.dst_base}) does not fit fm_depth {self.fm_depth}")
        limit = (1 << self.dim_bits) - 1
        if max(layer.height + layer.pad_top, layer.width + layer.pad_left,
               layer.channels, *layer.out_shape) > limit:
            raise ValueError(f"a dimension of the layer exceeds dim_bits {self.dim_bits} "
                             f"(at most {limit})")
        if max(*layer.filter, *layer.strides) > (1 << self.kernel_bits) - 1:
            raise ValueError(f"filter {layer.filter} or strides {layer.strides}: kernel_bits "
                             f"{self.kernel_bits} hold at most {(1 << self.kernel_bits) - 1}")

    def cycles(self, layer: PoolLayer) -> int:
        """Cycles from the cycle ``start`` is taken to the first cycle ``done`` is up: per
        output, its window's reads, one to accumulate the last, one to write (average: and
        :data:`DIVIDE_CYCLES` to divide)."""
        per = layer.filter[0] * layer.filter[1] + 2
        if layer.average:
            per += DIVIDE_CYCLES + 1
        return 2 + layer.outputs * per


class Pool(wiring.Component):
    """Max or average pooling of an HWC feature map, one output activation at a time.

    Members
    -------
    start : In(1)
        Pulse to pool with ``layer`` (taken at start); ignored while busy.
    layer : In(descriptor_layout)
    busy, done : Out(1)
        ``done`` rises after the last write and stays until the next start.
    src : Out(read_signature(addr_bits, signed(8)))
        The source memory's read port: data one cycle after the address.
    dst : Out(write_signature(addr_bits, signed(8)))
        The destination memory's write port (no ready), written in HWC order from
        ``dst_base``.

    Throughput: :meth:`PoolParams.cycles`, ``FH * FW + 2`` cycles per output activation
    (``FH * FW + 11`` averaging).
    """

    def __init__(self, params: PoolParams):
        if not isinstance(params, PoolParams):
            raise TypeError(f"params must be a PoolParams, not {params!r}")
        self._params = params
        super().__init__({
            "start": In(1),
            "layer": In(params.descriptor_layout),
            "busy": Out(1),
            "done": Out(1),
            "src": Out(read_signature(params.addr_bits, signed(8))),
            "dst": Out(write_signature(params.addr_bits, signed(8))),
        })

    @property
    def params(self) -> PoolParams:
        return self._params

    def elaborate(self, platform):
        m = Module()
        params = self._params
        addr_bits, dim, kern = params.addr_bits, params.dim_bits, params.kernel_bits
        coord = signed(dim + 2)
        desc = Signal(params.descriptor_layout)
        busy, done = Signal(), Signal()
        m.d.comb += [self.busy.eq(busy), self.done.eq(done)]

        oy, ox, c = Signal(dim), Signal(dim), Signal(dim)
        fy, fx = Signal(kern), Signal(kern)
        iy0, ix0 = Signal(coord), Signal(coord)          # the window's top-left coordinates
        row_win, win = Signal(addr_bits), Signal(addr_bits)  # window origins, channel 0
        chan, elem_row, elem = Signal(addr_bits), Signal(addr_bits), Signal(addr_bits)
        dst = Signal(addr_bits)

        # read stage -> accumulate stage
        s_en, s_first, s_inside = Signal(), Signal(), Signal()
        total = Signal(signed(params.sum_bits))
        count = Signal(2 * kern + 1)
        largest = Signal(signed(8))
        quotient, remainder = Signal(8), Signal(params.sum_bits)
        bit = Signal(range(DIVIDE_CYCLES))
        negative = Signal()
        value = Signal(signed(10))

        m.d.comb += self.src.addr.eq(elem)
        m.d.sync += [s_en.eq(0), self.dst.en.eq(0)]
        with m.If(s_en):
            element = self.src.data
            with m.If(s_first):
                m.d.sync += [total.eq(Mux(s_inside, element, 0)), count.eq(s_inside),
                             largest.eq(Mux(s_inside, element, -128))]
            with m.Else():
                m.d.sync += [total.eq(total + Mux(s_inside, element, 0)),
                             count.eq(count + s_inside)]
                with m.If(s_inside & (element > largest)):
                    m.d.sync += largest.eq(element)

        def write(result):
            clamped = Mux(result < desc.low, desc.low, Mux(result > desc.high, desc.high, result))
            m.d.sync += [self.dst.en.eq(1), self.dst.addr.eq(dst), self.dst.data.eq(clamped),
                         dst.eq(dst + 1), fy.eq(0), fx.eq(0)]
            # the next output: channel, then output column, then output row
            with m.If(c != desc.c_last):
                m.d.sync += [c.eq(c + 1), chan.eq(chan + 1), elem_row.eq(chan + 1),
                             elem.eq(chan + 1)]
                m.next = "READ"
            with m.Elif(ox != desc.ow_last):
                m.d.sync += [c.eq(0), ox.eq(ox + 1), ix0.eq(ix0 + desc.stride_w),
                             win.eq(win + desc.ox_step), chan.eq(win + desc.ox_step),
                             elem_row.eq(win + desc.ox_step), elem.eq(win + desc.ox_step)]
                m.next = "READ"
            with m.Elif(oy != desc.oh_last):
                origin = row_win + desc.oy_step
                m.d.sync += [c.eq(0), ox.eq(0), oy.eq(oy + 1), iy0.eq(iy0 + desc.stride_h),
                             ix0.eq(-desc.pad_left), row_win.eq(origin), win.eq(origin),
                             chan.eq(origin), elem_row.eq(origin), elem.eq(origin)]
                m.next = "READ"
            with m.Else():
                m.next = "LAST"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    first = self.layer.win_first
                    m.d.sync += [desc.eq(self.layer), busy.eq(1), done.eq(0), oy.eq(0),
                                 ox.eq(0), c.eq(0), fy.eq(0), fx.eq(0),
                                 iy0.eq(-self.layer.pad_top), ix0.eq(-self.layer.pad_left),
                                 row_win.eq(first), win.eq(first), chan.eq(first),
                                 elem_row.eq(first), elem.eq(first),
                                 dst.eq(self.layer.dst_base)]
                    m.next = "READ"
            with m.State("READ"):
                iy, ix = iy0 + fy, ix0 + fx
                m.d.sync += [s_en.eq(1), s_first.eq((fy == 0) & (fx == 0)),
                             s_inside.eq((iy >= 0) & (iy < desc.height) & (ix >= 0) &
                                         (ix < desc.width))]
                with m.If(fx != desc.fw - 1):
                    m.d.sync += [fx.eq(fx + 1), elem.eq(elem + desc.x_step)]
                with m.Elif(fy != desc.fh - 1):
                    m.d.sync += [fx.eq(0), fy.eq(fy + 1), elem_row.eq(elem_row + desc.row_step),
                                 elem.eq(elem_row + desc.row_step)]
                with m.Else():
                    m.next = "ACCUMULATE"
            with m.State("ACCUMULATE"):                    # the window's last element
                m.next = "RESULT"
            with m.State("RESULT"):
                with m.If(desc.average):
                    magnitude = Mux(total < 0, -total, total)
                    m.d.sync += [remainder.eq(magnitude + (count >> 1)), quotient.eq(0),
                                 bit.eq(DIVIDE_CYCLES - 1), negative.eq(total < 0)]
                    m.next = "DIVIDE"
                with m.Else():
                    write(largest)
            with m.State("DIVIDE"):                        # restoring division, a bit a cycle
                shifted = count << bit
                with m.If(remainder >= shifted):
                    m.d.sync += [remainder.eq(remainder - shifted),
                                 quotient.eq(quotient | (Const(1, 8) << bit))]
                with m.If(bit == 0):
                    m.next = "ROUNDED"
                with m.Else():
                    m.d.sync += bit.eq(bit - 1)
            with m.State("ROUNDED"):
                m.d.comb += value.eq(Mux(negative, -quotient, quotient))
                write(value)
            with m.State("LAST"):                          # the last write is out
                m.d.sync += [busy.eq(0), done.eq(1)]
                m.next = "IDLE"
        return m
