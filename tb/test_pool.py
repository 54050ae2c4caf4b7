"""The pooling unit (:mod:`zeroskip.hw.engine.pool`) in the Amaranth simulator against the
front end's own TFLite host kernels (:func:`zeroskip.frontend.tflite.host_ops.max_pool_2d`,
``average_pool_2d``: LiteRT's reference rules, rounding half away from zero), with its cycles
against :meth:`PoolParams.cycles`. On Verilator and Icarus: tb/test_pool_rtl.py."""

import numpy as np
import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from zeroskip.frontend.tflite import host_ops
from zeroskip.frontend.tflite.host_common import fused_range
from zeroskip.frontend.tflite.model import OpInfo, TensorInfo, TfliteModel
from zeroskip.hw.engine.pool import Pool, PoolLayer, PoolParams
from zeroskip.hw.layouts import write_signature
from zeroskip.hw.memories import read_port

PARAMS = PoolParams(fm_depth=512, kernel_bits=3)


class PoolBench(wiring.Component):
    """The pooling unit reading a source memory of its own (written through ``src_write``);
    its destination writes are the bench's output."""

    def __init__(self, params):
        self._params = params
        self._pool = Pool(params)
        super().__init__({
            "src_write": In(write_signature(params.addr_bits, signed(8))),
            "start": In(1),
            "layer": In(params.descriptor_layout),
            "busy": Out(1),
            "done": Out(1),
            "dst": Out(write_signature(params.addr_bits, signed(8))),
        })

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        m.submodules.pool = pool = self._pool
        m.submodules.src = src = memory.Memory(shape=signed(8), depth=self._params.fm_depth,
                                               init=[])
        write = src.write_port()
        m.d.comb += [write.en.eq(self.src_write.en), write.addr.eq(self.src_write.addr),
                     write.data.eq(self.src_write.data)]
        read = read_port(m, src, name="src_read")
        m.d.comb += [read.addr.eq(pool.src.addr), pool.src.data.eq(read.data),
                     pool.start.eq(self.start), pool.layer.eq(self.layer),
                     self.busy.eq(pool.busy), self.done.eq(pool.done)]
        wiring.connect(m, pool.dst, wiring.flipped(self.dst))
        return m


def tflite_pool(rng, kind, shape, filt, strides, padding, activation="none"):
    """A TFLite pooling operator on a random int8 input: (input HWC, op, model)."""
    scale, zero = float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 128))
    tensors = [TensorInfo(0, "x", (1, *shape), np.int8, scale=np.array([scale], np.float32),
                          zero_point=np.array([zero])),
               TensorInfo(1, "y", (1, 1, 1, shape[2]), np.int8,
                          scale=np.array([scale], np.float32), zero_point=np.array([zero]))]
    op = OpInfo(0, kind, [0], [1], {"filter_height": filt[0], "filter_width": filt[1],
                                    "stride_h": strides[0], "stride_w": strides[1],
                                    "padding": padding,
                                    "fused_activation_function": activation})
    x = rng.integers(-128, 128, shape).astype(np.int8)
    x.flat[:2] = [-128, 127]
    return x, op, TfliteModel(tensors, [op], [0], [1])


def case(rng, kind, shape, filt, strides, padding, activation="none", src_base=0,
         dst_base=0):
    """(input, layer, expected output HWC by the host kernel)."""
    x, op, model = tflite_pool(rng, kind, shape, filt, strides, padding, activation)
    kernel = host_ops.HOST_KERNELS[kind]
    (expected,) = kernel(op, model, [x[None]])
    oh, top = host_ops.pool_geometry(shape[0], filt[0], strides[0], padding)
    ow, left = host_ops.pool_geometry(shape[1], filt[1], strides[1], padding)
    low, high = fused_range(op, model)
    layer = PoolLayer(*shape, filter=filt, strides=strides, out_shape=(oh, ow), pad_top=top,
                      pad_left=left, average=kind == "AVERAGE_POOL_2D", low=low, high=high,
                      src_base=src_base, dst_base=dst_base)
    return x, layer, expected[0]


def cases(rng):
    out = []
    for kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        out += [
            case(rng, kind, (6, 6, 3), (2, 2), (2, 2), "valid"),
            case(rng, kind, (7, 5, 2), (3, 3), (2, 2), "same", src_base=40, dst_base=300),
            case(rng, kind, (5, 6, 2), (3, 2), (1, 2), "same", "relu"),
            case(rng, kind, (4, 4, 4), (4, 4), (1, 1), "valid", "relu6"),   # global
            case(rng, kind, (5, 3, 1), (2, 3), (3, 1), "same"),
        ]
    return out


def ties(rng):
    """Average pooling whose sums are exact halves of the count, of both signs: the rounding
    rule decides every output."""
    x, layer, _ = case(rng, "AVERAGE_POOL_2D", (4, 4, 2), (2, 2), (2, 2), "valid")
    x = np.empty((4, 4, 2), np.int8)
    x[..., 0] = [[1, 1, -1, -1], [0, 0, 0, 0], [3, 3, -3, -3], [-128, -128, 127, 127]]
    x[..., 1] = [[2, 0, -2, 0], [0, 0, 0, 0], [1, 0, -1, 0], [0, 0, 0, 0]]
    x[3, :, 1] = [-128, -127, 127, 126]
    zero, scale = 0, np.array([0.1], np.float32)
    tensors = [TensorInfo(0, "x", (1, 4, 4, 2), np.int8, scale=scale,
                          zero_point=np.array([zero])),
               TensorInfo(1, "y", (1, 2, 2, 2), np.int8, scale=scale,
                          zero_point=np.array([zero]))]
    op = OpInfo(0, "AVERAGE_POOL_2D", [0], [1], {"filter_height": 2, "filter_width": 2,
                                                 "stride_h": 2, "stride_w": 2,
                                                 "padding": "valid"})
    (expected,) = host_ops.average_pool_2d(op, TfliteModel(tensors, [op], [0], [1]), [x[None]])
    return x, layer, expected[0]


async def _pool(ctx, dut, x, layer, timeout=100000):
    for addr, value in enumerate(x.reshape(-1)):
        ctx.set(dut.src_write.en, 1)
        ctx.set(dut.src_write.addr, layer.src_base + addr)
        ctx.set(dut.src_write.data, int(value))
        await ctx.tick()
    ctx.set(dut.src_write.en, 0)
    ctx.set(dut.layer, dut.layer.shape().const(layer.descriptor(dut.params)))
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    writes, cycles = [], 1
    while not ctx.get(dut.done):
        if ctx.get(dut.dst.en):
            writes.append((ctx.get(dut.dst.addr), ctx.get(dut.dst.data)))
        await ctx.tick()
        cycles += 1
        assert cycles < timeout
    return writes, cycles


def simulate(runs):
    dut = PoolBench(PARAMS)
    out = []

    async def bench(ctx):
        for x, layer, _ in runs:
            out.append(await _pool(ctx, dut, x, layer))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def check(writes, cycles, layer, expected):
    """One write per output activation, HWC from ``dst_base``, equal to the host kernel's."""
    addresses = [addr for addr, _ in writes]
    assert addresses == list(range(layer.dst_base, layer.dst_base + layer.outputs))
    assert [value for _, value in writes] == [int(v) for v in expected.reshape(-1)]
    assert cycles == PARAMS.cycles(layer)


def test_pool_matches_the_tflite_host_kernels(rng):
    runs = cases(rng) + [ties(rng)]
    for (writes, cycles), (_, layer, expected) in zip(simulate(runs), runs):
        check(writes, cycles, layer, expected)


@pytest.mark.parametrize("kwargs,match", [
    (dict(height=30, width=30, channels=1), "source"),
    (dict(height=4, width=4, channels=1, dst_base=510), "destination"),
    (dict(height=4, width=4, channels=1, filter=(8, 8), out_shape=(1, 1), pad_top=4,
          pad_left=4), "kernel_bits"),
])
def test_pool_descriptor_refuses_what_does_not_fit(kwargs, match):
    layer = PoolLayer(**{"filter": (2, 2), "strides": (2, 2), "out_shape": (2, 2), **kwargs})
    with pytest.raises(ValueError, match=match):
        layer.descriptor(PARAMS)


def test_pool_layer_refuses_windows_in_the_padding():
    with pytest.raises(ValueError, match="padding"):
        PoolLayer(4, 4, 1, filter=(2, 2), strides=(1, 1), out_shape=(4, 4), pad_top=2)
    with pytest.raises(ValueError, match="int8 range"):
        PoolLayer(4, 4, 1, filter=(2, 2), strides=(2, 2), out_shape=(2, 2), low=5, high=4)
