"""Memory depths are sized to the configuration (a PE of a 2×2 array is not 4× deeper than one
of an 8×8) or set by the caller (``ArrayConfig.for_capacity``; issue 35)."""

import numpy as np
import pytest

from zeroskip.config import (DEFAULT_MAX_K, DEPTH_OPTIONS, RUN_K, RUN_LANE_COLUMNS, RUN_M_TILES,
                             ArrayConfig)
from zeroskip.sim.compiler import compile_gemm

SIDES = [(1, 1), (2, 2), (4, 2), (4, 4), (8, 8), (16, 8), (16, 16)]


@pytest.mark.parametrize("rows,cols", SIDES, ids=[f"{r}x{c}" for r, c in SIDES])
def test_every_array_gets_the_same_memories_per_pe(rows, cols):
    config = ArrayConfig.for_capacity(rows, cols)
    eight = ArrayConfig()  # the field defaults: an 8×8's depths
    assert (config.max_k, config.act_depth, config.weight_depth, config.out_depth) == \
        (DEFAULT_MAX_K, eight.act_depth, eight.weight_depth, eight.out_depth) == \
        (4096, 8192, 8448, 2048)
    # a lane's pointers: the run's columns (twice the mean per lane, like out_depth)
    assert config.pointer_depth == RUN_LANE_COLUMNS * cols + 1
    assert config.mask_depth == (RUN_LANE_COLUMNS + 1) * RUN_K // 64


def test_the_default_8x8_is_unchanged():
    """The 8×8 the command line builds by default: a 256×256×256 GEMM per run, as before."""
    assert ArrayConfig.for_capacity(8, 8) == ArrayConfig.for_capacity(
        8, 8, m=256, k=256, n=256, max_k=4096) == ArrayConfig(mask_depth=132)


@pytest.mark.parametrize("rows,cols", [(2, 2), (4, 2)])
def test_a_run_holds_the_default_capacity_and_more_is_split(rows, cols):
    config = ArrayConfig.for_capacity(rows, cols)
    m, n = RUN_M_TILES * rows, RUN_LANE_COLUMNS * cols
    acts = np.ones((m, RUN_K), np.int8)
    weights = np.ones((RUN_K, n), np.int8)
    assert len(compile_gemm(acts, weights, config).runs) == 1
    more = compile_gemm(np.ones((m + 1, RUN_K), np.int8), weights, config)
    assert len(more.runs) == 2 and more.k_chunks == 1


def test_depths_given_win_and_max_k_follows_the_activations():
    config = ArrayConfig.for_capacity(2, 2, act_depth=1024, out_depth=64, weight_depth=3000,
                                      pointer_depth=9, mask_depth=100)
    assert (config.act_depth, config.out_depth, config.weight_depth, config.pointer_depth,
            config.mask_depth) == (1024, 64, 3000, 9, 100)
    assert config.max_k == 1024  # the longest K one M-tile of activations holds
    assert ArrayConfig.for_capacity(2, 2, max_k=256).max_k == 256
    # a max_k beyond the derived depths deepens the memories a K-chunk needs
    deep = ArrayConfig.for_capacity(2, 2, max_k=20000)
    assert deep.act_depth == deep.weight_depth == 20000
    k = 20000
    program = compile_gemm(np.ones((2, k), np.int8), np.ones((k, 2), np.int8), deep)
    assert program.k_chunks == 1 and len(program.runs) == 1
    # an accumulator narrower than the default max_k needs: the longest K it holds
    assert ArrayConfig.for_capacity(2, 2, acc_width=20).max_k == (2 ** 19 - 1) // 2 ** 14


def test_every_depth_option_is_a_for_capacity_argument():
    for name in DEPTH_OPTIONS:
        config = ArrayConfig.for_capacity(2, 2, **{name: 7 if name != "act_depth" else 4096})
        assert getattr(config, name) == (7 if name != "act_depth" else 4096)


@pytest.mark.parametrize("options,error,message", [
    (dict(act_depth=0), TypeError, "act_depth must be a positive integer, not 0"),
    (dict(out_depth="64"), TypeError, "out_depth must be a positive integer, not '64'"),
    (dict(max_k=True), TypeError, "max_k must be a positive integer, not True"),
    (dict(pointer_depth=1), TypeError, "pointer_depth must be an integer >= 2, not 1"),
    (dict(m=0), TypeError, "m must be a positive integer, not 0"),
    (dict(max_k=4096, act_depth=1024), ValueError, "max_k 4096 exceeds the activation depth "
                                                   "1024"),
    (dict(max_k=200000), ValueError, "max_k 200000 could overflow the 32-bit accumulators"),
])
def test_bad_depths_are_named_in_python_terms(options, error, message):
    with pytest.raises(error, match=message):
        ArrayConfig.for_capacity(2, 2, **options)


def test_bad_sides_are_named():
    with pytest.raises(TypeError, match="cols must be a positive integer, not 0"):
        ArrayConfig.for_capacity(2, 0)


def test_the_commands_set_depths_by_flag(tmp_path):
    """``--act-depth`` and friends reach the configuration (the Verilog header lists it);
    a bad one is exit 2 with one line spelling the flag."""
    from zeroskip import cli
    out = tmp_path / "a.v"
    assert cli.main(["verilog", "--rows", "2", "--cols", "2", "--act-depth", "512",
                     "--max-k", "256", "-o", str(out)]) == 0
    header = "".join(line for line in out.read_text().splitlines(True)
                     if line.startswith("//"))
    assert "act_depth=512" in header.replace(" ", "") or "act_depth: 512" in header, header


@pytest.mark.parametrize("flags, message", [
    (["--act-depth", "0"], "--act-depth: expected a positive integer, got 0"),
    (["--max-k", "4096", "--act-depth", "1024"], "--max-k"),
])
def test_bad_depth_flags_are_exit_2(tmp_path, capsys, flags, message):
    from zeroskip import cli
    assert cli.main(["verilog", *flags, "-o", str(tmp_path / "a.v")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zeroskip: error: ") and message in err[0], err
    assert not (tmp_path / "a.v").exists()


def test_the_python_api_takes_depths_by_name():
    from zeroskip.api import array_config
    assert array_config(2, 2, depths={"act_depth": 512, "max_k": 256}).act_depth == 512
    with pytest.raises(ValueError, match="depths: unknown act_size"):
        array_config(2, 2, depths={"act_size": 512})
    with pytest.raises(ValueError, match="board ulx3s-85f fixes the array configuration; "
                                         "drop act_depth"):
        array_config(board="ulx3s-85f", depths={"act_depth": 512})
