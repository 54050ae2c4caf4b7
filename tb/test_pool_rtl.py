"""cocotb (Verilator and Icarus): the pooling unit's Verilog against the TFLite host kernels,
every case (max and average, SAME and VALID, ties, clamps) on one build per simulator. The
cases and their checks: tb/test_pool.py."""

import numpy as np
import pytest

from zeroskip.hw.layouts import pack
from zeroskip.hw.verilog import convert
from zeroskip.sim.rtl import build
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import simulators
from .test_pool import PARAMS, PoolBench, cases, check, ties

TOP = "zeroskip_pool"


@pytest.mark.parametrize("sim", simulators())
def test_pool_rtl(sim):
    rng = np.random.default_rng(34)
    runs = cases(rng) + [ties(rng)]
    name = f"pool-fm{PARAMS.fm_depth}-d{PARAMS.dim_bits}-k{PARAMS.kernel_bits}"
    build_dir = build.build(sim, name, lambda: convert(PoolBench(PARAMS), TOP), TOP)
    job = {"cases": [{"src_beats": [(layer.src_base + i, int(v) & 0xff)
                                    for i, v in enumerate(x.reshape(-1))],
                      "layer": pack(PARAMS.descriptor_layout, layer.descriptor(PARAMS)),
                      "timeout": PARAMS.cycles(layer) + 10} for x, layer, _ in runs]}
    results = run_cocotb(sim, build_dir, TOP, "zeroskip.tb.cocotb_pool", job)
    assert len(results) == len(runs)
    for (writes, cycles), (_, layer, expected) in zip(results, runs):
        check(writes, cycles, layer, expected)
