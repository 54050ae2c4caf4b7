"""The `zeroskip` command as a user runs it: real RTL runs, bad input, Verilog output."""

import json
import subprocess
import sys

import numpy as np
import pytest

from zeroskip.config import MAX_K
from zeroskip.sim import golden
from zeroskip.sim.rtl.build import verilator_environment

from .rtl import simulators
from .weights import fit_n_of_m, random_weights

REPORT_FIELDS = {"cycles", "load_cycles", "ideal_cycles", "macs_total", "macs_effectual",
                 "macs_executed", "macs_gated", "pe_count", "rows", "cols", "mode", "format",
                 "simulator", "weight_bits", "fraction_of_ideal"}


def zeroskip(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "zeroskip.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def operands(tmp_path, rng):
    acts = rng.integers(-128, 128, (13, 40)).astype(np.int8)
    weights = random_weights(rng, 40, 11, density=0.3)
    np.save(tmp_path / "A.npy", acts)
    np.save(tmp_path / "W.npy", weights)
    return tmp_path, acts, weights


@pytest.mark.rtl
@pytest.mark.parametrize("sim", simulators())
@pytest.mark.parametrize("mode", ["skip", "gate", "dense"])
def test_gemm_is_bit_exact_and_reports_counters(operands, sim, mode):
    path, acts, weights = operands
    proc = zeroskip("gemm", "--acts", path / "A.npy", "--weights", path / "W.npy",
                    "--out", path / "C.npy", "--report", path / "r.json", "--mode", mode,
                    "--sim", sim, "--rows", 4, "--cols", 2)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(path / "C.npy"), golden.gemm(acts, weights))
    assert np.load(path / "C.npy").dtype == np.int32
    report = json.loads((path / "r.json").read_text())
    assert REPORT_FIELDS <= set(report)
    assert (report["mode"], report["simulator"], report["pe_count"]) == (mode, sim, 8)
    assert report["cycles"] == report["predicted_cycles"]
    assert report["macs_total"] == 13 * 40 * 11


@pytest.mark.parametrize("sim,name", [("verilator", "trace.vcd"), ("icarus", "trace.fst"),
                                      ("icarus", "trace.vcd")])
@pytest.mark.rtl
def test_waves(operands, sim, name):
    path, _, _ = operands
    proc = zeroskip("gemm", "--acts", path / "A.npy", "--weights", path / "W.npy",
                    "--out", path / "C.npy", "--rows", 2, "--cols", 2, "--sim", sim,
                    "--waves", path / name)
    assert proc.returncode == 0, proc.stderr
    head = (path / name).read_bytes()[:200]
    assert (path / name).stat().st_size > 1000
    if name.endswith(".vcd"):
        assert b"$date" in head or b"$version" in head or b"$timescale" in head


def bad_inputs(path, rng):
    good_a = rng.integers(-128, 128, (4, 8)).astype(np.int8)
    good_w = rng.integers(-128, 128, (8, 3)).astype(np.int8)
    files = {
        "A": good_a, "W": good_w,
        "float": good_w.astype(np.float32), "nan": np.full((8, 3), np.nan),
        "big": np.full((8, 3), 200), "small": np.full((8, 3), -129),
        "rank3": np.zeros((2, 8, 3), np.int8), "rank1": np.zeros(8, np.int8),
        "k_mismatch": np.zeros((9, 3), np.int8), "empty": np.zeros((8, 0), np.int8),
        "bool": np.ones((8, 3), bool), "complex": np.ones((8, 3), complex),
        "k_limit": np.zeros((MAX_K + 1, 3), np.int8),
    }
    for name, array in files.items():
        np.save(path / f"{name}.npy", array)
    np.save(path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(path / "archive.npz", W=good_w)
    (path / "garbage.npy").write_bytes(b"not a numpy file at all")
    (path / "truncated.npy").write_bytes((path / "W.npy").read_bytes()[:60])
    np.save(path / "k_limit_a.npy", np.zeros((4, MAX_K + 1), np.int8))
    a, w = path / "A.npy", path / "W.npy"
    cases = {name: ["--acts", a, "--weights", path / f"{name}.npy"] for name in files
                 if name not in ("A", "W", "k_limit")}
    cases.update({
        "k_limit": ["--acts", path / "k_limit_a.npy", "--weights", path / "k_limit.npy"],
        "objects": ["--acts", a, "--weights", path / "objects.npy"],
        "npz": ["--acts", a, "--weights", path / "archive.npz"],
        "garbage": ["--acts", path / "garbage.npy", "--weights", w],
        "truncated": ["--acts", a, "--weights", path / "truncated.npy"],
        "missing": ["--acts", path / "nope.npy", "--weights", w],
        "directory": ["--acts", path, "--weights", w],
        "rows": ["--acts", a, "--weights", w, "--rows", 0],
        "cols": ["--acts", a, "--weights", w, "--cols", "x"],
        "mode": ["--acts", a, "--weights", w, "--mode", "turbo"],
        "sim": ["--acts", a, "--weights", w, "--sim", "modelsim"],
        "format": ["--acts", a, "--weights", w, "--format", "zip"],
        "unknown": ["--acts", a, "--weights", w, "--frobnicate"],
        "no_weights": ["--acts", a],
        "nm_violation": ["--acts", a, "--weights", w, "--format", "nm", "--nm", "1:4"],
        "nm_pattern": ["--acts", a, "--weights", w, "--format", "nm", "--nm", "4:2"],
        "out_below_a_file": ["--acts", a, "--weights", w, "--out", a / "C.npy"],
        "board_and_cols": ["--acts", a, "--weights", w, "--board", "icebreaker", "--cols", 2],
        "port_without_board": ["--acts", a, "--weights", w, "--port", path / "ttyUSB9"],
        "no_such_board": ["--acts", a, "--weights", w, "--port", path / "ttyUSB9",
                          "--board", "arty"],
    })
    return cases


def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, rng):
    for name, args in bad_inputs(tmp_path, rng).items():
        out = tmp_path / f"C_{name}.npy"
        if "--out" not in args:
            args = args + ["--out", out]
        proc = zeroskip("gemm", *args, "--report", tmp_path / f"r_{name}.json")
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert not out.exists() and not (tmp_path / f"r_{name}.json").exists(), name
    assert zeroskip("frobnicate").returncode == 2
    assert zeroskip().returncode == 2


@pytest.mark.rtl
def test_verilog_lints_clean(tmp_path):
    proc = zeroskip("verilog", "--rows", 8, "--cols", 8, "-o", tmp_path / "accel.v")
    assert proc.returncode == 0, proc.stderr
    verilator_environment()
    lint = subprocess.run(["verilator", "--lint-only", "-Wno-fatal", tmp_path / "accel.v"],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr[-2000:]
    assert "%Error" not in lint.stderr


def test_nm_violation_names_the_place(tmp_path):
    weights = np.zeros((8, 3), np.int8)
    weights[4:7, 2] = 5  # three nonzeros in rows 4..7 of column 2
    np.save(tmp_path / "W.npy", weights)
    np.save(tmp_path / "A.npy", np.ones((2, 8), np.int8))
    proc = zeroskip("gemm", "--acts", tmp_path / "A.npy", "--weights", tmp_path / "W.npy",
                    "--out", tmp_path / "C.npy", "--format", "nm", "--nm", "2:4")
    assert proc.returncode == 2
    assert "column 2, rows 4..7" in proc.stderr and "2:4" in proc.stderr


@pytest.mark.rtl
@pytest.mark.parametrize("fmt", ["bitmap", "rle", "nm"])
def test_gemm_every_format(tmp_path, rng, fmt):
    acts = rng.integers(-128, 128, (9, 24)).astype(np.int8)
    weights = random_weights(rng, 24, 10, density=0.25)
    if fmt == "nm":
        weights = fit_n_of_m(weights, 2, 4)
    np.save(tmp_path / "A.npy", acts)
    np.save(tmp_path / "W.npy", weights)
    proc = zeroskip("gemm", "--acts", tmp_path / "A.npy", "--weights", tmp_path / "W.npy",
                    "--out", tmp_path / "C.npy", "--report", tmp_path / "r.json",
                    "--format", fmt, *(["--nm", "2:4"] if fmt == "nm" else []),
                    "--rows", 4, "--cols", 4)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), golden.gemm(acts, weights))
    assert json.loads((tmp_path / "r.json").read_text())["format"] == fmt


def test_formats_table():
    proc = zeroskip("formats", "--size", 64)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") >= 9 and "| csc |" in proc.stdout


def test_a_missing_simulator_names_the_fix(operands):
    """Icarus comes from the system's packages, not from pip: say how to get it."""
    import os
    path, _, _ = operands
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # no iverilog on it
    proc = subprocess.run([sys.executable, "-m", "zeroskip.cli", "gemm", "--acts",
                           path / "A.npy", "--weights", path / "W.npy", "--out",
                           path / "C.npy", "--sim", "icarus"], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "zeroskip: error: Icarus Verilog (iverilog, vvp) is not installed; try `apt-get "
        "install iverilog`"]
    assert not (path / "C.npy").exists()


@pytest.mark.rtl
@pytest.mark.parametrize("sim", simulators())
def test_gemm_on_the_dense_architecture(operands, sim):
    """`--arch dense`: the baseline systolic array, dense mode by default, bit-exact."""
    path, acts, weights = operands
    proc = zeroskip("gemm", "--acts", path / "A.npy", "--weights", path / "W.npy",
                    "--out", path / "C.npy", "--report", path / "r.json", "--arch", "dense",
                    "--sim", sim, "--rows", 4, "--cols", 3)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(path / "C.npy"), golden.gemm(acts, weights))
    report = json.loads((path / "r.json").read_text())
    assert (report["arch"], report["mode"], report["format"]) == ("dense", "dense", "dense")
    assert report["cycles"] == report["predicted_cycles"]
    assert report["macs_executed"] >= report["macs_total"]
    assert report["weight_bits"] == 8 * weights.size


@pytest.mark.parametrize("args, message", [
    (["--mode", "skip"], "mode skip: the dense architecture"),
    (["--format", "rle"], "drop --format"),
    (["--double-buffer"], "drop --double-buffer"),
    (["--board", "ulx3s-85f", "--rows", "4"], "fixes the array configuration"),
])
def test_dense_architecture_bad_options(operands, args, message):
    path, _, _ = operands
    proc = zeroskip("gemm", "--acts", path / "A.npy", "--weights", path / "W.npy",
                    "--out", path / "C.npy", "--arch", "dense", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (path / "C.npy").exists()


def test_verilog_of_the_dense_architecture(tmp_path):
    proc = zeroskip("verilog", "--arch", "dense", "--rows", 3, "--cols", 2,
                    "-o", tmp_path / "d.v")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "d.v").read_text()
    assert "module zeroskip_accel" in text and "weights_write__mask" in text
    assert "dense systolic array" in proc.stdout
