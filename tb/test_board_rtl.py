"""cocotb (Verilator and Icarus): GEMMs through the board top's UART with the host runtime,
against NumPy, with damaged frames the link rejects and the driver retries."""

import numpy as np
import pytest

from zeroskip.config import ArrayConfig, Mode
from zeroskip.hw.link.protocol import Reply, byte_count, write_targets
from zeroskip.platforms.top import BoardTop
from zeroskip.sim import golden
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.rtl.runner import run_cocotb

from .rtl import build_component, simulators
from .weights import random_weights

DIVISOR = 8          # cycles per UART bit: fast to simulate, and what the UART must handle
IDLE_TIMEOUT = 400   # cycles: five bytes of silence end a broken frame
CLOCK_HZ = 100_000_000


def run_board(sim, config, programs, faults, seed=1, divisor=DIVISOR, host_bit_ns=None):
    """The board top of ``config`` at ``divisor`` cycles a bit of a 100 MHz clock (the host's
    bit time ``host_bit_ns``, by default exactly the board's)."""
    idle_timeout = IDLE_TIMEOUT * divisor // DIVISOR

    def board_top(config):
        return BoardTop(config, clock_hz=CLOCK_HZ, baud=round(CLOCK_HZ / divisor),
                        max_payload=64, idle_timeout=idle_timeout)
    name = "board" if divisor == DIVISOR else f"board-divisor{divisor}"
    build_dir = build_component(sim, name, config, board_top, "board_top")
    _, act_bits, _, act_depth = write_targets(config)[0]
    return run_cocotb(sim, build_dir, "board_top", "zeroskip.tb.cocotb_board", {
        "config": config, "programs": programs, "faults": faults, "seed": seed,
        "divisor": divisor, "host_bit_ns": host_bit_ns, "idle_timeout": idle_timeout,
        "act_depth": act_depth, "act_word_bytes": byte_count(act_bits),
    }, testcase="board_link")   # the module's other test times a GEMM (link_time)


# Small memories: the GEMMs below need several runs, so loads, runs and reads repeat.
CONFIG = ArrayConfig(rows=2, cols=2, max_k=64, act_depth=128, weight_depth=96, pointer_depth=9,
                     out_depth=4)


@pytest.mark.parametrize("sim", simulators())
def test_gemm_through_the_uart_survives_damaged_frames(sim, rng):
    shapes = [(9, 24, 7, Mode.SKIP), (3, 64, 3, Mode.DENSE)]
    cases = []
    for m, k, n, mode in shapes:
        acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
        weights = random_weights(rng, k, n, density=0.3)
        cases.append((acts, weights, compile_gemm(acts, weights, CONFIG, mode)))
    faults = {3: "corrupt", 8: "drop", 13: "stall", 18: "reply", 24: "corrupt"}
    out = run_board(sim, CONFIG, [p for _, _, p in cases], faults)

    assert out["checks"] == {
        "info": Reply.OK, "bad_crc": Reply.BAD_CRC, "unknown_command": Reply.BAD_FRAME,
        "write_past_end": Reply.BAD_FRAME, "bad_target": Reply.BAD_FRAME,
        "read_nothing": Reply.BAD_FRAME, "cut_short": Reply.TIMEOUT, "noise_then_info": Reply.OK,
    }
    assert len(cases[0][2].runs) > 1
    for (acts, weights, program), result in zip(cases, out["results"]):
        result.check(program)  # lane faults, and cycles against the model
        np.testing.assert_array_equal(assemble(program, result.results),
                                      golden.gemm(acts, weights))
        assert result.total("cycles") > 0
    # every fault was noticed and retried: no request was lost, none answered twice
    assert sorted(out["injected"]) == sorted(faults.values())
    assert out["retries"] == len(faults), out["causes"]


@pytest.mark.parametrize("board,arch", [("icebreaker", "zeroskip"), ("ulx3s-85f", "zeroskip"),
                                        ("icebreaker", "dense"), ("ulx3s-85f", "dense")])
def test_board_configuration_through_the_uart(board, arch):
    """Each board's own configurations, with the FPGA primitive models they instantiate: the
    iCEBreaker's 16×1 (two PEs per SB_MAC16, Yosys' model; 24-bit accumulators; a result
    memory per column), the ULX3S's pipelined 16×8 (registered MULT18X18D, our model; column
    result memories read in two cycles; the accelerator's reset from a flip-flop), and the
    dense baselines of both, behind the same host link. The nasty values, bit-exact."""
    from zeroskip.platforms.boards import BOARDS
    config = BOARDS[board].for_arch(arch).config
    rng = np.random.default_rng(5)
    k = config.max_k
    m, n = config.rows + 2, config.cols + 2
    acts = np.full((m, k), -128, np.int8)                  # -128 × -128 everywhere ...
    acts[config.rows:] = rng.integers(-128, 128, (2, k))
    weights = np.full((k, n), -128, np.int8)
    weights[:, 1] = random_weights(rng, k, 1, density=0.1)[:, 0]
    weights[:, 2] = 0                                      # ... an empty column, K at the limit
    program = compile_gemm(acts, weights, config,
                           Mode.DENSE if arch == "dense" else Mode.SKIP)
    out = run_board("verilator", config, [program], {2: "corrupt"})
    (result,) = out["results"]
    result.check(program)
    np.testing.assert_array_equal(assemble(program, result.results), golden.gemm(acts, weights))
    assert out["retries"] == 1


@pytest.mark.parametrize("sim", simulators())
def test_the_ulx3s_rate_one_percent_off_the_hosts_3_mbaud(sim, rng):
    """The ULX3S's 100 MHz makes 3 Mbaud with a divisor of 33, 3.03 Mbaud: the host sends and
    samples at 3.00 Mbaud (333 ns a bit against the board's 330), and a GEMM still goes
    through bit-exact, a damaged frame rejected and retried."""
    acts = rng.integers(-128, 128, (5, 24)).astype(np.int8)
    weights = random_weights(rng, 24, 5, density=0.3)
    program = compile_gemm(acts, weights, CONFIG, Mode.SKIP)
    out = run_board(sim, CONFIG, [program], {4: "corrupt"}, divisor=33, host_bit_ns=333)
    assert out["checks"]["info"] == Reply.OK and out["checks"]["bad_crc"] == Reply.BAD_CRC
    (result,) = out["results"]
    result.check(program)
    np.testing.assert_array_equal(assemble(program, result.results), golden.gemm(acts, weights))
    assert out["retries"] == 1


def test_link_time_measures_a_board_gemm_end_to_end():
    """`python -m zeroskip.platforms.link_time`: the iCEBreaker's board top at 3 Mbaud, a GEMM
    bit-exact (checked inside) and its end-to-end cycles at least the bytes' time on the wire."""
    from zeroskip.platforms.link_time import measure
    r = measure("icebreaker", 3_000_000, shape=(16, 64, 2), sparsity=0.5)
    divisor = r["clock_hz"] // r["baud"]
    assert r["cycles"] >= r["bytes_sent"] * 10 * divisor > 0
    assert 0 < r["compute_cycles"] < r["cycles"]
    assert r["seconds"] == r["cycles"] / r["clock_hz"]
