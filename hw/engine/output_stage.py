"""The output stage: a layer's int32 accumulators to the next layer's int8 activations.

Each GEMM result (the accumulator of output channel ``n``) gets the channel's int32 bias, is
requantized to int8 by one of the project's two rules, and is clamped to the layer's activation
range, bit for bit as the host paths compute it:

``Rule.ONNX``
    :func:`zeroskip.frontend.lowering.requantize` on ``acc + bias`` (the bias is added to the
    exact integer accumulator, as :mod:`zeroskip.frontend.graph` does):
    ``saturate(round_half_even(float32(acc + bias) · scale) + zero_point)``, the float32
    conversion and the float32 product each rounded to nearest even. In integers: the sum is
    normalized to a 24-bit significand (rounded), multiplied by the scale's 24-bit significand,
    the 48-bit product rounded to 24 bits, and that float32 value rounded half-even to an
    integer. Results too large for int8 saturate; a zero or subnormal scale gives the zero
    point (``|acc · scale| < 2**-94`` rounds to 0).
``Rule.TFLITE``
    :func:`zeroskip.sim.requantize.requantize` with ``rounding="double"`` (gemmlowp's rules, as
    LiteRT's reference CONV_2D and DEPTHWISE_CONV_2D) on ``acc + bias`` wrapped to int32: the
    left shift, the saturating rounding doubling high multiply, the rounding divide by a power
    of two, the output offset, the fused activation's clamp.
``Rule.TFLITE_FLOAT`` (a stage built with ``float_rule``)
    :func:`zeroskip.sim.requantize.requantize_float` (LiteRT's reference FULLY_CONNECTED) on
    ``acc + bias`` (exact): the float64 product ``acc · real`` rounded to nearest even, then
    half away from zero to an integer, the output offset, the clamp. In integers as ONNX, with
    the sum's 33 bits exact and the multiplier's 53-bit significand.

The rules share the datapath: one normalizing left shifter (the ONNX significand, TFLite's left
shift), one 32 × 32 unsigned multiplier of four 16 × 16 products (one DSP each: ECP5
``MULT18X18D``, iCE40 ``SB_MAC16``), one rounding of the product and one rounding right shift.

The outputs are always int8. A uint8 output (ONNX ``QuantizeLinear`` to uint8) is its code
minus 128, which is the int8 value the next layer's activations hold (``c = 128`` in
:mod:`zeroskip.frontend.lowering`): set the zero point to ``zero_point - 128`` and the clamp
bounds likewise (:func:`onnx_settings` does).

Not covered: TFLite's single-rounding build, negative gemmlowp multipliers
(:func:`zeroskip.sim.requantize.quantize_multiplier` never gives one) and non-finite scales
(:func:`onnx_params` and :func:`tflite_float_params` refuse them).

The pipeline never stalls: every accepted element leaves it a fixed number of cycles later
(:data:`STAGES` register stages, or half or a third of them for a slower clock) into an output
queue, and the input is ready only while the queue has room for every element in flight
(credits), so ``o.ready`` reaches no register enable and no combinational path joins
``o.ready`` to ``i.ready``.
"""

from __future__ import annotations

import enum

import numpy as np
from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from zeroskip.hw.layouts import write_signature

__all__ = ["Rule", "OutputStage", "STAGES", "latency", "params_layout",
           "settings_layout", "input_layout", "output_layout", "onnx_params", "tflite_params",
           "tflite_float_params", "onnx_settings", "tflite_settings"]


class Rule(enum.IntEnum):
    """The requantization rule of a layer."""
    ONNX = 0          #: float32 scale, round half to even (:mod:`zeroskip.frontend.lowering`)
    TFLITE = 1        #: gemmlowp double rounding (:mod:`zeroskip.sim.requantize`)
    TFLITE_FLOAT = 2  #: double precision, half away from zero (LiteRT's FULLY_CONNECTED)


#: The datapath's steps, each a register stage when every one is registered (``register_every``
#: 1): from an input transfer to the element's entry into the output queue; two more with
#: ``float_rule``.
STAGES = 17
#: Largest magnitude the rounding keeps before the zero point is added: anything at or beyond
#: it saturates int8 for every zero point in -128..127, so it may stand for any larger value.
_SATURATED = 511

_FLOAT_EXPONENT = slice(23, 31)


def params_layout(float_rule: bool = False) -> data.StructLayout:
    """One output channel's parameters, one word of the parameter memory (of an
    :class:`OutputStage` with ``float_rule`` or without).

    ``bias``
        int32, added to the accumulator.
    ``multiplier``
        ONNX: the float32 scale's bits (``x_scale · w_scale / y_scale`` as float32,
        :func:`zeroskip.frontend.lowering.dequantize_scale`). TFLite: the Q0.31 quantized
        multiplier, 0 .. 2**31 - 1. TFLite's float rule: the float64 multiplier's low bits.
    ``shift``
        TFLite only: the power-of-two exponent (positive: left shift).
    ``multiplier_high``
        With ``float_rule``: the float64 multiplier's high bits.
    """
    fields = {"bias": signed(32), "multiplier": unsigned(32), "shift": signed(8)}
    if float_rule:
        fields["multiplier_high"] = unsigned(32)
    return data.StructLayout(fields)


def settings_layout() -> data.StructLayout:
    """A layer's settings: ``rule`` (:class:`Rule`), the output ``zero_point`` and the clamp
    ``low`` .. ``high`` (int8, ``low <= high``) that also applies ReLU or ReLU6."""
    return data.StructLayout({"rule": Rule, "zero_point": signed(8), "low": signed(8),
                              "high": signed(8)})


def _int8(name, value):
    value = int(value)
    if not -128 <= value <= 127:
        raise ValueError(f"{name} must be in -128..127, not {value}")
    return value


def onnx_params(scale, bias=0) -> dict:
    """A channel's parameter word (a dict for :func:`zeroskip.hw.layouts.pack` with
    :func:`params_layout`) for the ONNX rule: ``scale`` a finite float32, ``bias`` an int32."""
    value = np.float32(scale)
    if not np.isfinite(value):
        raise ValueError(f"scale must be a finite float32, not {scale!r}")
    return {"bias": _int32("bias", bias), "multiplier": int(value.view(np.uint32)), "shift": 0}


def tflite_float_params(real, bias=0) -> dict:
    """A channel's parameter word for TFLite's float rule (an :class:`OutputStage` with
    ``float_rule``): ``real`` the finite float64 multiplier ``input_scale · weight_scale /
    output_scale`` (:func:`zeroskip.sim.requantize.requantize_float`), ``bias`` an int32."""
    value = np.float64(real)
    if not np.isfinite(value):
        raise ValueError(f"real must be a finite float64, not {real!r}")
    bits = int(value.view(np.uint64))
    return {"bias": _int32("bias", bias), "multiplier": bits & 0xFFFF_FFFF, "shift": 0,
            "multiplier_high": bits >> 32}


def tflite_params(multiplier, shift, bias=0) -> dict:
    """A channel's parameter word for the TFLite rule, from
    :func:`zeroskip.sim.requantize.quantize_multiplier` (``rounding="double"``): ``multiplier``
    in 0 .. 2**31 - 1, ``shift`` in -128..127, ``bias`` an int32."""
    multiplier, shift = int(multiplier), int(shift)
    if not 0 <= multiplier < 1 << 31:
        raise ValueError(f"multiplier must be in 0..2**31 - 1, not {multiplier}")
    if not -128 <= shift <= 127:
        raise ValueError(f"shift must be in -128..127, not {shift}")
    return {"bias": _int32("bias", bias), "multiplier": multiplier, "shift": shift}


def _int32(name, value):
    value = int(value)
    if not -(1 << 31) <= value < 1 << 31:
        raise ValueError(f"{name} must be an int32, not {value}")
    return value


def onnx_settings(zero_point, dtype=np.int8, relu=False) -> dict:
    """The settings (a dict for :func:`settings_layout`) of an ONNX layer whose output is
    ``dtype`` (int8 or uint8, whose code is then emitted minus 128) with ``zero_point``, and a
    fused ReLU (the clamp at the zero point, as :mod:`zeroskip.frontend.graph` applies it)."""
    if np.dtype(dtype) not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ValueError(f"dtype must be int8 or uint8, not {np.dtype(dtype)}")
    offset = 128 if np.dtype(dtype) == np.dtype(np.uint8) else 0
    zero = _int8("zero_point (less 128 for uint8)", int(zero_point) - offset)
    return {"rule": Rule.ONNX, "zero_point": zero, "low": zero if relu else -128, "high": 127}


def tflite_settings(zero_point, low=-128, high=127, rule=Rule.TFLITE) -> dict:
    """The settings of a TFLite layer: the output offset and the fused activation's range
    (:func:`zeroskip.sim.requantize.activation_range`); ``rule`` TFLITE (gemmlowp's, as
    CONV_2D) or TFLITE_FLOAT (as FULLY_CONNECTED)."""
    if rule not in (Rule.TFLITE, Rule.TFLITE_FLOAT):
        raise ValueError(f"rule must be TFLITE or TFLITE_FLOAT, not {rule!r}")
    low, high = _int8("low", low), _int8("high", high)
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    return {"rule": rule, "zero_point": _int8("zero_point", zero_point), "low": low,
            "high": high}


def input_layout(acc_width: int, channels: int, tag_width: int) -> data.StructLayout:
    """An element in: the accumulator, its output channel and the writer's ``tag``."""
    return data.StructLayout({"acc": signed(acc_width),
                              "channel": unsigned(_channel_bits(channels)),
                              "tag": unsigned(tag_width)})


def output_layout(tag_width: int) -> data.StructLayout:
    """An element out: the int8 activation and the ``tag`` it came in with."""
    return data.StructLayout({"value": signed(8), "tag": unsigned(tag_width)})


def latency(register_every: int = 1, float_rule: bool = False) -> int:
    """Cycles from an input transfer to the element's ``o.valid`` (the output queue empty) in
    an :class:`OutputStage` with ``register_every`` and ``float_rule``: the registered steps
    (the first always: the parameter memory's read), then the buffered queue's memory and its
    output register."""
    return len(range(0, _steps(float_rule), register_every)) + 2


def _steps(float_rule):
    return STAGES + 2 * bool(float_rule)


def _channel_bits(channels):
    return max(1, (channels - 1).bit_length())


class OutputStage(wiring.Component):
    """Bias, requantization to int8, zero point and activation clamp on a stream of
    accumulators, one element per cycle.

    Parameters
    ----------
    channels : int
        Output channels (words of the parameter memory), at least 1.
    acc_width : int
        Bits of the signed accumulators in, 2 .. 32.
    tag_width : int
        Bits of the tag passed through with each element (e.g. the write address), >= 0.
    register_every : int
        1, 2 or 3: a register after every step of the datapath (:data:`STAGES` of them: a
        100 MHz ECP5), or after every second or third (fewer flip-flops for a slower clock,
        e.g. a 30 MHz iCE40).
    float_rule : bool
        Also LiteRT's FULLY_CONNECTED rule, ``Rule.TFLITE_FLOAT``
        (:func:`zeroskip.sim.requantize.requantize_float`): a float64 multiplier in the
        parameter word, a 33 × 53-bit product (eight 16 × 16 products instead of four).

    Members
    -------
    i : In(stream.Signature(input_layout))
        ``acc``, ``channel`` (< ``channels``), ``tag``.
    o : Out(stream.Signature(output_layout))
        ``value`` (int8), ``tag``; in the order the elements came in.
    params_write : In(write_signature(channel bits, params_layout(float_rule)))
        Writes the parameter word of channel ``addr``.
    settings : In(settings_layout)
        The layer's settings (``Rule.TFLITE_FLOAT`` only in a stage with ``float_rule``).
    busy : Out(1)
        An element is in the pipeline or the output queue. ``settings`` and the parameter
        memory may change only while it is low (or while no element of that channel is in).

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to the element's ``o.valid`` with the queue empty.
    queue_depth : int
        Elements the output queue holds: the most that can be in flight.
    """

    def __init__(self, channels: int, *, acc_width: int = 32, tag_width: int = 0,
                 register_every: int = 1, float_rule: bool = False):
        problem = None
        if not isinstance(channels, int) or channels < 1:
            problem = f"channels must be a positive integer, not {channels!r}"
        elif not isinstance(acc_width, int) or not 2 <= acc_width <= 32:
            problem = f"acc_width must be an integer in 2..32, not {acc_width!r}"
        elif not isinstance(tag_width, int) or tag_width < 0:
            problem = f"tag_width must be a non-negative integer, not {tag_width!r}"
        elif register_every not in (1, 2, 3):
            problem = f"register_every must be 1, 2 or 3, not {register_every!r}"
        if problem:
            self._MustUse__silence = True  # never built: no "created but never used" warning
            raise TypeError(problem)
        self._channels = channels
        self._acc_width = acc_width
        self._tag_width = tag_width
        self._register_every = register_every
        self._float_rule = bool(float_rule)
        super().__init__({
            "i": In(stream.Signature(input_layout(acc_width, channels, tag_width))),
            "o": Out(stream.Signature(output_layout(tag_width))),
            "params_write": In(write_signature(_channel_bits(channels),
                                               params_layout(self._float_rule))),
            "settings": In(settings_layout()),
            "busy": Out(1),
        })

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def acc_width(self) -> int:
        return self._acc_width

    @property
    def tag_width(self) -> int:
        return self._tag_width

    @property
    def register_every(self) -> int:
        return self._register_every

    @property
    def float_rule(self) -> bool:
        return self._float_rule

    @property
    def latency(self) -> int:
        return latency(self._register_every, self._float_rule)

    @property
    def queue_depth(self) -> int:
        # one element per cycle needs a credit for each cycle of latency, and one for the
        # cycle the credit takes to come back
        return self.latency + 1

    def elaborate(self, platform):
        m = Module()
        floats = self._float_rule
        rule = self.settings.rule
        onnx = rule == Rule.ONNX
        flt = (rule == Rule.TFLITE_FLOAT) if floats else C(0, 1)
        # ONNX and the float rule: the sum exact, in sign and magnitude, normalized
        exact = onnx | flt

        params = memory.Memory(shape=params_layout(floats), depth=self._channels, init=[])
        m.submodules.params = params
        write = params.write_port()
        read = params.read_port()
        m.d.comb += [write.en.eq(self.params_write.en), write.addr.eq(self.params_write.addr),
                     write.data.eq(self.params_write.data),
                     read.addr.eq(self.i.payload.channel), read.en.eq(1)]

        queue = fifo.SyncFIFOBuffered(width=8 + self._tag_width, depth=self.queue_depth)
        m.submodules.queue = queue
        outstanding = Signal(range(self.queue_depth + 1))
        accept = self.i.valid & self.i.ready
        leave = self.o.valid & self.o.ready
        m.d.sync += outstanding.eq(outstanding + accept - leave)
        m.d.comb += [self.i.ready.eq(outstanding < self.queue_depth),
                     self.busy.eq(outstanding != 0),
                     self.o.valid.eq(queue.r_rdy), self.o.payload.eq(queue.r_data),
                     queue.r_en.eq(self.o.ready)]

        stages = _Stages(m, self._register_every, valid=accept, tag=self.i.payload.tag)

        # s0: the element registered; its channel's parameters read
        stages.next()
        acc = stages.reg("acc", self.i.payload.acc)

        # s1: the parameters registered (a block RAM's output is slow)
        stages.next()
        acc = stages.reg("acc", acc)
        bias, multiplier, shift = (stages.reg(name, read.data[name])
                                   for name in ("bias", "multiplier", "shift"))
        high_word = stages.reg("multiplier_high", read.data.multiplier_high) if floats else \
            C(0, 32)

        # s2: bias added (ONNX, float rule: exact, 33 bits; TFLite: wrapped to int32); scale
        # decoded
        stages.next()
        total = acc + bias
        value = stages.reg("value", Mux(exact, total, total[:32].as_signed()), signed(33))
        exponent = stages.reg("exponent", multiplier[_FLOAT_EXPONENT])
        scale_sign = stages.reg("scale_sign", Mux(flt, high_word[31], multiplier[31]))
        # the float64 multiplier: its exponent, the top 21 bits of its significand (with the
        # hidden bit; its low 32 are operand_b)
        real_exponent = stages.reg("real_exponent", high_word[20:31])
        b_top = stages.reg("b_top", Cat(high_word[:20], C(1, 1)))
        # the significand with its hidden bit (a subnormal scale counts as zero, see above)
        operand_b = stages.reg("operand_b", Mux(onnx, Cat(multiplier[:23], C(1, 1)),
                                                multiplier), 32)
        left = stages.reg("left", Mux(shift > 32, 32, Mux(shift < 0, 0, shift)), range(33))
        right = stages.reg("right", Mux(shift < -32, 32, Mux(shift > 0, 0, -shift)),
                           range(33))

        # s3: ONNX works on sign and magnitude; TFLite's left shift is of the two's complement
        stages.next()
        sign_x = stages.reg("sign_x", value < 0)
        bits = stages.reg("bits", Mux(exact & (value < 0), -value, value)[:33])
        exponent, scale_sign, operand_b, left, right, real_exponent, b_top = stages.carry(
            exponent=exponent, scale_sign=scale_sign, operand_b=operand_b, left=left,
            right=right, real_exponent=real_exponent, b_top=b_top)

        # s4 .. s6: the normalizing shifter, levels 32 and 16, 8 and 4, 2 and 1. ONNX: shift
        # while the top bits are zero (the leading one to bit 32); TFLite: shift by ``left``.
        zeros = C(0, 6)
        for levels in ((5, 4), (3, 2), (1, 0)):
            stages.next()
            for level in levels:
                k = 1 << level
                take = Mux(exact, bits[33 - k:] == 0, left[level])
                bits = Mux(take, (bits << k)[:33], bits)
                zeros = zeros | Mux(take, k, 0)
            bits = stages.reg("bits", bits, 33)
            zeros = stages.reg("zeros", zeros, 6)
            sign_x, exponent, scale_sign, operand_b, left, right, real_exponent, b_top = \
                stages.carry(sign_x=sign_x, exponent=exponent, scale_sign=scale_sign,
                             operand_b=operand_b, left=left, right=right,
                             real_exponent=real_exponent, b_top=b_top)

        # s7: ONNX: float32(acc + bias), its significand rounded to 24 bits, half to even (a
        # carry out gives 2**24, still exact); TFLite: sign and magnitude of the shifted int32
        stages.next()
        significand = bits[9:33]
        up = bits[8] & ((bits[:8] != 0) | significand[0])
        shifted = bits[:32].as_signed()
        # the float rule: the exact sum's 33 bits, the top one (bit 32) added in s10
        operand_a = stages.reg("operand_a", Mux(onnx, significand + up,
                                                Mux(flt, bits[:32],
                                                    Mux(shifted < 0, -shifted, shifted)[:32])),
                               32)
        a_top = stages.reg("a_top", bits[32])
        operand_b, right, b_top = stages.carry(operand_b=operand_b, right=right, b_top=b_top)
        sign = stages.reg("sign", Mux(exact, sign_x ^ scale_sign, shifted < 0))
        zero = stages.reg("zero", (onnx & ((bits == 0) | (exponent == 0))) |
                          (flt & ((bits == 0) | (real_exponent == 0))))
        # ONNX: value = significand · 2**(9 - zeros), scale = significand · 2**(exponent - 150);
        # the rounded product's LSB weighs 2**-(n_base - P[47]) (see s11). The float rule:
        # value = bits · 2**-zeros, real = significand · 2**(real_exponent - 1075), the
        # rounded product's LSB 2**-(n_base - P[85]).
        n_base = stages.reg("n_base", Mux(flt, zeros - real_exponent + 1043,
                                          zeros - exponent + 118), signed(13))

        # s8: four 16 x 16 products; s9: the middle ones summed; s10: the 64-bit product
        stages.next()
        a_lo, a_hi, b_lo, b_hi = operand_a[:16], operand_a[16:], operand_b[:16], operand_b[16:]
        ll, lh, hl, hh = (stages.reg(name, product, 32) for name, product in (
            ("ll", a_lo * b_lo), ("lh", a_lo * b_hi), ("hl", a_hi * b_lo), ("hh", a_hi * b_hi)))
        if floats:  # operand_a times the multiplier's top 21 bits
            t_lo, t_hi = b_top[:16], b_top[16:]
            ll_top, lh_top, hl_top, hh_top = (stages.reg(name, product, 32) for name, product in (
                ("ll_top", a_lo * t_lo), ("lh_top", a_lo * t_hi), ("hl_top", a_hi * t_lo),
                ("hh_top", a_hi * t_hi)))
            operand_b, b_top, a_top = stages.carry(operand_b=operand_b, b_top=b_top,
                                                   a_top=a_top)
        sign, zero, n_base, right = stages.carry(sign=sign, zero=zero, n_base=n_base,
                                                 right=right)
        stages.next()
        middle = stages.reg("middle", lh + hl, 33)
        ends = stages.reg("ends", Cat(ll, hh), 64)
        if floats:
            middle_top = stages.reg("middle_top", lh_top + hl_top, 33)
            ends_top = stages.reg("ends_top", Cat(ll_top, hh_top[:21]), 53)
            # the top bit of the float rule's operand a times the whole significand
            whole = stages.reg("whole", Mux(a_top, Cat(operand_b, b_top), 0), 53)
        sign, zero, n_base, right = stages.carry(sign=sign, zero=zero, n_base=n_base,
                                                 right=right)
        stages.next()
        product = stages.reg("product", ends + (middle << 16), 64)
        if floats:
            # s10b, s10c: the 86-bit product: (operand_a · top bits + whole) · 2**32 + product
            top = stages.reg("top", ends_top + (middle_top << 16), 54)
            whole, = stages.carry(whole=whole)
            sign, zero, n_base, right = stages.carry(sign=sign, zero=zero, n_base=n_base,
                                                     right=right)
            stages.next()
            top = stages.reg("top", top + whole, 55)
            product, sign, zero, n_base, right = stages.carry(
                product=product, sign=sign, zero=zero, n_base=n_base, right=right)
            stages.next()
            full = stages.reg("full", product + (top << 32), 87)
            product, = stages.carry(product=product)
        sign, zero, n_base, right = stages.carry(sign=sign, zero=zero, n_base=n_base,
                                                 right=right)

        # s11: the product's window, guard bit and sticky bit. ONNX: the float32 product's 24
        # bits below the leading one (bit 47 or 46). TFLite: the doubling high multiply's bits
        # 31..61. The float rule: the float64 product's 53 bits below bit 85 or 84.
        stages.next()
        high = product[47]
        window = Mux(onnx, Mux(high, product[24:48], product[23:47]), product[31:62])
        guard = Mux(onnx, Mux(high, product[23], product[22]), product[30])
        sticky = Mux(onnx, Mux(high, product[:23] != 0, product[:22] != 0), product[:30] != 0)
        if floats:
            high = Mux(flt, full[85], high)
            window = Mux(flt, Mux(full[85], full[33:86], full[32:85]), window)
            guard = Mux(flt, Mux(full[85], full[32], full[31]), guard)
            sticky = Mux(flt, Mux(full[85], full[:32] != 0, full[:31] != 0), sticky)
        window = stages.reg("window", window, 53 if floats else 31)
        guard = stages.reg("guard", guard, 1)
        sticky = stages.reg("sticky", sticky, 1)
        n_exact = stages.reg("n_exact", n_base - high, signed(13))
        sign, zero, right = stages.carry(sign=sign, zero=zero, right=right)

        # s12: rounded. ONNX: to nearest even (the float32 product). TFLite: gemmlowp's nudge,
        # half up for a positive product, half down for a negative one (in magnitude: up only
        # past the half).
        # The float rule as ONNX, its float64 value then kept from bit 44 of the window only:
        # a window shifted right by 44 or fewer bits is at least 2**8 (saturated), and the
        # rounding half away from zero that follows needs no sticky bit.
        stages.next()
        round_up = guard & Mux(exact, sticky | window[0], ~sign | sticky)
        rounded = window[:31] + round_up
        if floats:
            rounded = Mux(flt, window[44:53] + (round_up & (window[:44] == (1 << 44) - 1)),
                          rounded)
        magnitude = stages.reg("magnitude", rounded, 32)
        # bits to shift right: ONNX the float32 value's LSB weight; TFLite the right shift
        amount = Mux(onnx, n_exact, Mux(flt, n_exact - 44, right))
        big = stages.reg("big", ~zero & ((onnx & (n_exact <= 0)) | (flt & (n_exact <= 44))))
        amount = stages.reg("amount", Mux(amount <= 0, 0, Mux(amount > 32, 32, amount)),
                            range(33))
        sign, zero = stages.carry(sign=sign, zero=zero)

        # s13: the rounding right shift: integer part, guard bit, sticky bit
        stages.next()
        spread = Cat(C(0, 1), magnitude) >> amount
        below = Cat(*(amount > i + 1 for i in range(32)))  # the bits under the guard bit
        integer = stages.reg("integer", spread[1:], 32)
        guard = stages.reg("guard", spread[0], 1)
        sticky = stages.reg("sticky", (magnitude & below) != 0)
        big, sign, zero = stages.carry(big=big, sign=sign, zero=zero)

        # s14: rounded (ONNX half to even, TFLite half away from zero) in the low bits, the
        # higher ones only telling saturation
        stages.next()
        low_bits = stages.reg("low_bits", integer[:9] + (guard & (~onnx | sticky |
                                                                   integer[0])), 10)
        over = stages.reg("over", big | (integer[9:] != 0))
        sign, zero = stages.carry(sign=sign, zero=zero)

        # s15: saturated, signed, the zero point added
        stages.next()
        kept = Mux(over | low_bits[9], _SATURATED, low_bits[:9])
        zero_point = self.settings.zero_point
        result = stages.reg("result", Mux(zero, zero_point, Mux(sign, zero_point - kept,
                                                                zero_point + kept)),
                            signed(11))

        # s16: the clamp
        stages.next()
        low, high = self.settings.low, self.settings.high
        out = stages.reg("out", Mux(result < low, low, Mux(result > high, high, result))[:8],
                         signed(8))
        assert stages.count == _steps(floats)

        m.d.comb += [queue.w_en.eq(stages.riders["valid"]),
                     queue.w_data.eq(Cat(out, stages.riders["tag"]))]
        return m


class _Stages:
    """The pipeline's registers, step by step: :meth:`next` opens a step (and registers the
    riders, the signals every step passes on), :meth:`reg` registers a value in it,
    :meth:`carry` passes signals on unchanged; only every ``every``-th step (the first
    included) has registers, the others pass their values on combinationally."""

    def __init__(self, m, every, **riders):
        self._m = m
        self._every = every
        self.count = 0
        self.riders = riders

    def next(self):
        self.count += 1
        self.riders = {name: self.reg(name, value) for name, value in self.riders.items()}

    def reg(self, name, value, shape=None):
        # only the valid bits need a reset: data registers without one are cheaper to route
        register = Signal(value.shape() if shape is None else shape,
                          name=f"s{self.count - 1}_{name}", reset_less=name != "valid")
        # a step without registers: the same signal, driven combinationally
        domain = self._m.d.comb if (self.count - 1) % self._every else self._m.d.sync
        domain += register.eq(value)
        return register

    def carry(self, **signals):
        return tuple(self.reg(name, value) for name, value in signals.items())
