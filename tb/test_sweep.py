"""`zeroskip sweep`: design-space sweeps on Dask, on a LocalCluster and on a real `dask
scheduler` with `dask worker` processes (one killed mid-sweep); bad input; resuming."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from zeroskip.apps import sweep
from zeroskip.cli import main

SHAPE = "16x32x8"  # the RTL tests' GEMM: about a second a point once the simulator is built
MODELS = Path(__file__).resolve().parents[1] / "models"


def zeroskip(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "zeroskip.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, **kw)


def results(folder):
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def keys(rows):
    return [sweep.key_of(row) for row in rows]


# --- planning (host only) --------------------------------------------------------------------

def test_plan_is_the_cartesian_product_interleaved_by_configuration():
    points = sweep.plan([4, 8], [4, 8], ["csc", "bitmap", "rle", "nm"], [0.5, 0.75, 0.9])
    assert len(points) == 2 * 2 * 4 * 3
    assert len(set(keys(p.params() for p in points))) == len(points)
    # every configuration's first point comes before any configuration's second
    configs = [p.config_key() for p in points]
    distinct = len(set(configs))
    assert len(set(configs[:distinct])) == distinct
    nm = {(p.sparsity, p.nm, p.pattern) for p in points if p.format == "nm"}
    assert nm == {(0.5, "2:4", "2:4"), (0.75, "1:4", "1:4"), (0.9, "1:10", "1:10")}


def test_fixed_density_patterns_take_their_own_sparsity_once():
    points = sweep.plan([4], [4], ["csc", "nm"], [0.5, 0.9], ["uniform", "2:4"])
    shown = sorted((p.format, p.pattern, p.sparsity, p.nm) for p in points)
    assert shown == [("csc", "2:4", 0.5, ""), ("csc", "uniform", 0.5, ""),
                     ("csc", "uniform", 0.9, ""), ("nm", "1:10", 0.9, "1:10"),
                     ("nm", "2:4", 0.5, "2:4")]


@pytest.mark.parametrize("sparsity, nm", [(0.5, (2, 4)), (0.75, (1, 4)), (0.9, (1, 10)),
                                          (0.875, (1, 8)), (0.0, (15, 16)), (0.6, (2, 5))])
def test_nm_for_sparsity(sparsity, nm):
    assert sweep.nm_for_sparsity(sparsity) == nm


def test_a_workload_is_the_same_on_every_array():
    a = sweep.Point(4, 4, "csc", "", "uniform", 0.75, 16, 32, 8, 3)
    b = sweep.Point(8, 2, "bitmap", "", "uniform", 0.75, 16, 32, 8, 3)
    for x, y in zip(sweep.operands(a), sweep.operands(b)):
        assert (x == y).all()
    other = sweep.Point(4, 4, "csc", "", "uniform", 0.75, 16, 32, 8, 4)
    assert not (sweep.operands(other)[1] == sweep.operands(a)[1]).all()


def test_pareto_flags_per_workload():
    def row(pes, cycles, sparsity="0.5", error=""):
        return {"pe_count": pes, "cycles": cycles, "error": error, "pattern": "uniform",
                "sparsity": sparsity, "m": 1, "k": 1, "n": 1, "seed": 0, "sim": "verilator"}
    rows = [row(16, 100), row(32, 60), row(32, 80), row(64, 60), row(64, 10, "0.9"),
            row(16, "", error="boom")]
    assert sweep.pareto_flags(rows) == [True, True, False, False, True, None]


def test_a_failing_point_is_a_row_with_its_error():
    # 2:4 hardware cannot take unstructured weights: the point fails before any simulation
    point = sweep.Point(4, 4, "nm", "2:4", "uniform", 0.5, 16, 32, 8, 0)
    row = sweep.run_point(point.params())
    assert row["error"].startswith("BadInput: weights:")
    assert row["cycles"] == "" and row["bit_exact"] == ""
    assert row["worker"] == "local" and row["seconds"] >= 0


def test_a_worker_on_other_gateware_runs_nothing():
    point = sweep.Point(4, 4, "csc", "", "uniform", 0.5, 16, 32, 8, 0)
    row = sweep.run_point(point.params(), gateware="0000000000")
    assert "not the sweep's (0000000000)" in row["error"] and row["cycles"] == ""


# --- bad input: exit 2, one line, nothing written --------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--rows", "4,"], "--rows: empty item"),
    (["--cols", ""], "--cols: empty item"),
    (["--format", "csc,,nm"], "--format: empty item"),
    (["--format", "csc,coo"], "--format: unknown format 'coo'"),
    (["--sparsity", "0.5,1"], "--sparsity: must be in [0, 1), got 1"),
    (["--sparsity", "-0.1"], "--sparsity: must be in [0, 1)"),
    (["--sparsity", "nan"], "--sparsity: must be in [0, 1)"),
    (["--sparsity", "half"], "--sparsity: expected a number"),
    (["--rows", "0"], "--rows: must be between 1 and 16, got 0"),
    (["--cols", "4,17"], "--cols: must be between 1 and 16, got 17"),
    (["--pattern", "zigzag"], "--pattern: unknown pattern 'zigzag'"),
    (["--shape", "16x32"], "--shape must look like MxKxN"),
    (["--shape", "16x0x8"], "--shape: each of M, K, N"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers sizes"),
    (["--workers", "0"], "--workers must be between 1 and 256"),
    (["--scheduler", "nowhere"], "--scheduler: ValueError"),
    (["--input", "x.npy"], "--input goes with --model"),
    (["--model", MODELS / "digits_mlp.onnx", "--shape", "8x8x8"], "--shape or --model"),
    (["--model", MODELS / "digits_mlp.onnx", "--pattern", "heavy_tailed"],
     "--pattern heavy_tailed with --model"),
    (["--model", MODELS / "digits_cnn_float.onnx"], "is float; run a quantized model"),
    (["--model", "nothing.onnx"], "nothing.onnx: no such file"),
    (["--builds", "ulx3s-85f", "--format", "bitmap"], "--builds ulx3s-85f: a 8x8 bitmap array"),
    (["--builds", "nowhere"], "--builds: invalid choice"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "sweep"
    assert main(["sweep", *args, "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_the_command_is_listed(capsys):
    assert main([]) == 2
    assert "sweep" in capsys.readouterr().err
    assert main(["sweep", "--rows", "4,8"]) == 2  # --out is required
    assert "--out" in capsys.readouterr().err


def test_out_that_is_a_file_or_not_a_sweep_is_bad_input(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["sweep", "--out", tmp_path / "file" / "sweep"]) == 2
    assert "--out" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("a,b\n1,2\n")
    assert main(["sweep", "--out", other]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a sweep's results.csv" in err
    assert sorted(os.listdir(other)) == ["results.csv"]


def test_an_unreachable_scheduler_is_a_cluster_failure(tmp_path):
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "sweep"
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    done = zeroskip("sweep", "--scheduler", f"tcp://127.0.0.1:{port}", "--out", out, env=env)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "cannot reach the Dask scheduler" in done.stderr
    assert not out.exists()


# --- on the RTL ------------------------------------------------------------------------------

@pytest.mark.rtl
def test_sweep_on_a_local_cluster_then_resumed(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--rows", "4", "--cols", "4", "--format", "csc,bitmap", "--shape", SHAPE,
            "--workers", "2", "--out", out]
    done = zeroskip(*args, "--sparsity", "0.5,0.9")
    assert done.returncode == 0, done.stderr
    assert "4 points: 4 run on 2 Dask workers" in done.stdout
    rows = results(out)
    assert sorted((r["format"], r["sparsity"]) for r in rows) == [
        ("bitmap", "0.5"), ("bitmap", "0.9"), ("csc", "0.5"), ("csc", "0.9")]
    for row in rows:
        assert row["error"] == "" and row["bit_exact"] == "True"
        assert row["worker"].startswith("tcp://") and float(row["seconds"]) > 0
        cycles, dense = int(row["cycles"]), int(row["dense_cycles"])
        assert 0 < cycles < dense and row["dense_cycles_source"] == "model"
        assert float(row["speedup"]) == pytest.approx(dense / cycles, abs=1e-3)
        assert 0 < float(row["fraction_of_ideal"]) <= 1
        assert row["pe_count"] == "16" and row["pareto"] == "True"
        assert 0 < int(row["weight_bits"]) and int(row["dense_weight_bits"]) == 32 * 8 * 8
        assert float(row["energy_pj"]) > 0 and float(row["onchip_edp_ratio_vs_dense"]) > 1
    # the same workload on both formats: the same measured sparsity
    by_sparsity = {r["sparsity"]: r["sparsity_measured"] for r in rows if r["format"] == "csc"}
    assert all(by_sparsity[r["sparsity"]] == r["sparsity_measured"] for r in rows)
    assert (out / "pareto.png").stat().st_size > 0

    # again with one more sparsity: the four points done are kept as they were
    done = zeroskip(*args, "--sparsity", "0.5,0.75,0.9")
    assert done.returncode == 0, done.stderr
    assert "6 points: 2 run" in done.stdout and "4 already done" in done.stdout
    again = results(out)
    assert len(again) == 6 and len(set(keys(again))) == 6
    assert [r for r in again if r["sparsity"] != "0.75"] == rows


@pytest.mark.rtl
def test_workers_share_one_build_of_a_configuration(tmp_path):
    # two workers start two points of one configuration at once in an empty cache: one
    # builds, the other waits for the build's lock and reuses it
    cache = tmp_path / "cache"
    env = dict(os.environ, ZEROSKIP_CACHE=str(cache))
    out = tmp_path / "sweep"
    done = zeroskip("sweep", "--rows", "2", "--cols", "2", "--sparsity", "0.5,0.9",
                    "--shape", SHAPE, "--workers", "2", "--out", out, env=env)
    assert done.returncode == 0, done.stderr
    rows = results(out)
    assert len(rows) == 2 and all(r["error"] == "" and r["bit_exact"] == "True" for r in rows)
    builds = [d.name for d in cache.iterdir() if d.name.startswith("verilator-")]
    assert len(builds) == 1 and (cache / builds[0] / "complete").exists()
    points = sweep.plan([2], [2], ["csc"], [0.5])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZEROSKIP_CACHE", str(cache))
        assert [d.name for d in sweep.build_dirs(points)] == builds


@pytest.mark.rtl
def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    good = sweep.Point(4, 4, "nm", "2:4", "2:4", 0.5, 16, 32, 8, 0)
    bad = sweep.Point(4, 4, "nm", "2:4", "uniform", 0.5, 16, 32, 8, 0)  # not 2:4 weights
    summary = sweep.run_sweep([good, bad], tmp_path, workers=1)
    assert (summary["ran"], summary["failed"]) == (2, 1)
    rows = {r["pattern"]: r for r in results(tmp_path)}
    assert rows["2:4"]["error"] == "" and rows["2:4"]["bit_exact"] == "True"
    assert rows["uniform"]["error"].startswith("BadInput: weights:")
    # a failed point runs again; a done one does not
    summary = sweep.run_sweep([good, bad], tmp_path, workers=1)
    assert (summary["skipped"], summary["ran"], summary["failed"]) == (1, 1, 1)
    assert len(results(tmp_path)) == 2


@pytest.mark.rtl
def test_a_model_sweep_prunes_the_model_at_every_point(tmp_path):
    x = tmp_path / "x.npy"
    y = tmp_path / "y.npy"
    np.save(x, np.load(MODELS / "digits_test_x.npy")[:8])
    np.save(y, np.load(MODELS / "digits_test_y.npy")[:8])
    out = tmp_path / "sweep"
    args = ["sweep", "--model", MODELS / "digits_mlp.onnx", "--input", x, "--labels", y,
            "--rows", "4", "--cols", "4", "--format", "csc,nm", "--workers", "2", "--out", out]
    done = zeroskip(*args, "--sparsity", "0.5,0.9375")
    assert done.returncode == 0, done.stderr
    rows = {(r["format"], r["sparsity"]): r for r in results(out)}
    assert sorted(rows) == [("csc", "0.5"), ("csc", "0.9375"), ("nm", "0.5"), ("nm", "0.9375")]
    for row in rows.values():
        assert row["error"] == "" and row["bit_exact"] == "True", row
        assert row["model"] == "digits_mlp.onnx" and row["m"] == row["k"] == row["n"] == ""
        assert int(row["cycles"]) < int(row["dense_cycles"])
        assert int(row["dense_macs"]) == 8 * (64 * 128 + 128 * 64 + 64 * 10)
        assert 0 <= float(row["accuracy"]) <= 1
        assert row["accuracy"] == row["reference_accuracy"]  # bit-exact outputs
    # the bundled MLP is 90% sparse: 0.5 leaves it as it is, 0.9375 prunes more and runs faster
    assert float(rows["csc", "0.5"]["sparsity_measured"]) == pytest.approx(0.9, abs=0.005)
    assert float(rows["csc", "0.9375"]["sparsity_measured"]) == pytest.approx(0.9375, abs=0.005)
    assert int(rows["csc", "0.9375"]["cycles"]) < int(rows["csc", "0.5"]["cycles"])
    assert rows["nm", "0.5"]["pattern"] == "2:4" and rows["nm", "0.9375"]["pattern"] == "1:16"
    again = zeroskip(*args, "--sparsity", "0.5,0.9375")
    assert again.returncode == 0 and "4 already done" in again.stdout, again.stderr


@pytest.mark.rtl
def test_builds_add_a_board_build_per_configuration(tmp_path):
    """The iCEBreaker builds in seconds (Yosys and nextpnr from YoWASP): the rows of one
    configuration share its build; resources, Fmax and GMAC/s join them."""
    cache = tmp_path / "cache"
    env = dict(os.environ, ZEROSKIP_CACHE=str(cache))
    out = tmp_path / "sweep"
    args = ["sweep", "--builds", "icebreaker", "--rows", "2", "--cols", "1", "--shape", SHAPE,
            "--workers", "2", "--out", out]
    done = zeroskip(*args, "--sparsity", "0.5,0.9", env=env)
    assert done.returncode == 0, done.stderr
    rows = results(out)
    assert len(rows) == 2
    for row in rows:
        assert row["error"] == "" and row["bit_exact"] == "True" and row["board"] == "icebreaker"
        assert int(row["luts"]) > 0 and int(row["dsps"]) == 1 and int(row["brams"]) > 0
        assert float(row["fmax_mhz"]) > 0 and row["timing_met"] in ("True", "False")
        macs = 16 * 32 * 8
        assert float(row["gmacs"]) == pytest.approx(
            macs / int(row["cycles"]) * float(row["fmax_mhz"]) / 1000, rel=1e-3)
    assert rows[0]["luts"] == rows[1]["luts"]  # one build
    assert len(list((cache / "builds").iterdir())) == 1
    assert (out / "pareto.png").stat().st_size > 0
    assert "| 16×32×8 | 2×1 | csc | " in (out / "results.md").read_text()


@pytest.mark.rtl
def test_a_configuration_too_large_for_the_board_is_a_result(tmp_path, monkeypatch):
    """16×2 needs 16 SB_MAC16 of the UP5K's 8: nextpnr's own message, marked as unfit."""
    from zeroskip.sim.rtl.cache import gateware_digest
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path))
    point = sweep.Point(16, 2, "csc", "", "uniform", 0.5, 16, 32, 8, 0, board="icebreaker")
    figures = sweep.build_figures("icebreaker", sweep.board_config(point).to_dict(),
                                  gateware_digest())
    assert figures["error"].startswith(sweep.UNFIT), figures
    assert "ICESTORM_DSP" in figures["error"]
    row = sweep.with_build({**point.params(), "error": "", "bit_exact": True,
                            "gateware": gateware_digest()}, figures)
    assert sweep.is_done(row, gateware_digest()) and sweep.pareto_flags([row]) == [None]


def _start(args, log):
    # its own process group: the worker and its nanny die together
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.rtl
def test_a_real_cluster_loses_no_point_when_a_worker_dies(tmp_path):
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    processes = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                         "--no-dashboard", "--scheduler-file", scheduler_file], log)]
    try:
        for _ in range(300):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = {name: _start(["distributed.cli.dask_worker", address, "--nthreads", "1",
                                 "--nworkers", "1", "--no-dashboard", "--name", name], log)
                   for name in ("survivor", "victim")}
        processes += workers.values()
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            names = {info["name"]: addr
                     for addr, info in client.scheduler_info()["workers"].items()}
            out = tmp_path / "sweep"
            run = subprocess.Popen(
                [sys.executable, "-m", "zeroskip.cli", "sweep", "--rows", "4", "--cols", "4",
                 "--format", "csc,bitmap", "--sparsity", "0.5,0.75,0.9", "--shape", "32x64x16",
                 "--scheduler", address, "--out", out],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # kill the victim while it runs a point, once the sweep has results
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and run.poll() is None:
                busy = client.processing().get(names["victim"], [])
                if busy and (out / "results.csv").exists() and len(results(out)) >= 1:
                    _stop(workers["victim"])
                    break
                time.sleep(0.05)
            killed = workers["victim"].poll() is not None
            stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
        rows = results(out)
        assert len(rows) == 6 and len(set(keys(rows))) == 6, rows
        assert all(r["error"] == "" and r["bit_exact"] == "True" for r in rows)
        if killed:  # the victim's unfinished point ran on the survivor
            assert any(r["worker"] == names["survivor"] for r in rows)
        else:
            pytest.skip("the sweep ended before the victim could be killed mid-point")
    finally:
        for process in reversed(processes):
            _stop(process)
        log.close()
