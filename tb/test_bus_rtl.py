"""cocotb (Verilator and Icarus): the AXI and Wishbone tops driven by verification IP
(:mod:`zeroskip.tb.cocotb_bus`), random GEMMs bit-exact against NumPy through each bus."""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.bus.regmap import ID_VALUE, version_word
from zeroskip.hw.bus.tops import AxiTop, WishboneTop
from zeroskip.hw.link.protocol import Reply, byte_count, info_layout, write_targets
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.rtl.cache import bus_digest
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import build_component, simulators
from .weights import random_weights

pytestmark = pytest.mark.rtl

CLOCK_HZ = 100_000_000
IDLE_TIMEOUT = 400
# small memories: the GEMMs take several runs, so loads, runs and reads repeat back to back
CONFIG = ArrayConfig(rows=2, cols=2, max_k=64, act_depth=128, weight_depth=96, pointer_depth=9,
                     out_depth=4)


def axi_top(config):
    return AxiTop(config, clock_hz=CLOCK_HZ, max_payload=64, idle_timeout=IDLE_TIMEOUT)


def wishbone_top(config):
    return WishboneTop(config, clock_hz=CLOCK_HZ)


def _cases(rng, config):
    cases = []
    for m, k, n, mode in [(9, 24, 7, Mode.SKIP), (3, 64, 3, Mode.DENSE), (5, 40, 6, Mode.GATE)]:
        acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
        weights = random_weights(rng, k, n, density=0.3)
        cases.append((acts, weights, compile_gemm(acts, weights, config, mode)))
    return cases


def _check(cases, results):
    for (acts, weights, program), result in zip(cases, results):
        result.check(program)
        np.testing.assert_array_equal(assemble(program, result.results),
                                      golden.gemm(acts, weights))


def _run(sim, bus, config, cases, seed):
    make = {"axi": axi_top, "wishbone": wishbone_top}[bus]
    build_dir = build_component(sim, f"bus-{bus}-{bus_digest()}", config, make,
                                f"zeroskip_{bus}")
    _, act_bits, _, _ = write_targets(config)[0]
    return run_cocotb(sim, build_dir, f"zeroskip_{bus}", "zeroskip.tb.cocotb_bus", {
        "config": config, "programs": [p for *_, p in cases], "seed": seed,
        "clock_hz": CLOCK_HZ, "idle_timeout": IDLE_TIMEOUT,
        "act_word_bytes": byte_count(act_bits), "info_bytes": byte_count(info_layout().size),
    }, testcase=f"{bus}_top")


@pytest.mark.parametrize("sim", simulators())
def test_axi_streams_and_registers(sim, rng):
    cases = _cases(rng, CONFIG)
    out = _run(sim, "axi", CONFIG, cases, seed=3)
    assert out["ident"] == [ID_VALUE, version_word(), CONFIG.rows, CONFIG.cols, CLOCK_HZ]
    assert len(cases[0][2].runs) > 1
    _check(cases, out["frames"])          # RUN frames
    _check(cases, out["registers"])       # runs started through AXI4-Lite
    assert out["counters_match"]
    assert out["bad_frame"] == {"reply": Reply.BAD_CRC, "frame_error": 1, "rejects": 1,
                                "last_reply": Reply.BAD_CRC}
    assert out["tlast_error"] == 1
    assert out["cleared"] == (0, 0, 0)
    _check(cases[:1], out["after_reset"])
    assert out["after_reset_retries"] == 0
    # every reply came out as one frame with TLAST on its last byte
    assert out["bad_reply_frames"] == 0 and out["reply_frames"] > 50


@pytest.mark.parametrize("sim", simulators())
def test_wishbone_loads_and_stores(sim, rng):
    cases = _cases(rng, CONFIG)
    out = _run(sim, "wishbone", CONFIG, cases, seed=4)
    assert out["ident"] == [ID_VALUE, version_word(), CONFIG.rows, CONFIG.cols, CLOCK_HZ]
    _check(cases, out["registers"])
    assert out["busy_before_reset"] == 1
    assert out["after_reset_status"]["BUSY"] == 0 and out["after_reset_status"]["DONE"] == 0
    _check(cases[:1], out["after_reset"])


def test_job_timing_diagram_comes_from_the_simulation():
    """`make soc`'s timing diagram: one run, bit-exact (checked inside), every reply framed by
    TLAST, irq up once the run is done."""
    from zeroskip.apps.soc_waves import simulate
    from zeroskip.tb.cocotb_bus import TRACE_SIGNALS
    out, result = simulate()
    samples = np.array(out["samples"])
    column = {name: i for i, name in enumerate(TRACE_SIGNALS)}
    handshakes = samples[:, column["m_axis_tvalid"]] & samples[:, column["m_axis_tready"]]
    requests = samples[:, column["s_axis_tvalid"]] & samples[:, column["s_axis_tready"]]
    # as many reply frames as request frames: WRITEs, the RUN and the READs
    assert (handshakes & samples[:, column["m_axis_tlast"]]).sum() == \
        (requests & samples[:, column["s_axis_tlast"]]).sum() >= 4
    assert samples[-1, column["irq"]] == 1 and result.counters[0]["cycles"] > 0
