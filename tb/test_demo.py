"""The end-to-end demo on the RTL (Verilator): a pruned MLP and a user's own int8 layers."""

import json
import subprocess
import sys

import numpy as np
import pytest

from zeroskip.apps.demo import run_demo


@pytest.mark.rtl
def test_pruned_mlp_end_to_end(tmp_path):
    summary = run_demo(tmp_path, sparsity=0.9, show_progress=False)
    assert summary["logits_match"]
    assert summary["accelerator_accuracy"] >= 0.90
    assert abs(summary["int8_accuracy"] - summary["float_accuracy"]) <= 0.01
    assert summary["weight_sparsity"] >= 0.85
    assert summary["speedup"] >= 4
    # energy per image (an estimate) in both modes, measured from each mode's RTL events
    assert 0 < summary["energy_per_inference_skip_pj"] < summary["energy_per_inference_dense_pj"]
    assert summary["onchip_edp_ratio_dense_vs_skip"] > summary["edp_ratio_dense_vs_skip"] > 1
    assert json.loads((tmp_path / "summary.json").read_text())["cycles_skip"] > 0
    assert (tmp_path / "demo.png").stat().st_size > 10_000


@pytest.mark.rtl
def test_user_weights(tmp_path):
    rng = np.random.default_rng(3)
    layers = {"w0": rng.integers(-20, 20, (64, 32)), "w1": rng.integers(-20, 20, (32, 10)),
              "b1": rng.integers(-100, 100, 10)}
    layers["w0"][rng.random((64, 32)) < 0.8] = 0
    np.savez(tmp_path / "model.npz", **layers)
    proc = subprocess.run([sys.executable, "-m", "zeroskip.cli", "demo", "--weights",
                           str(tmp_path / "model.npz"), "--out", str(tmp_path / "out"),
                           "--rows", "4", "--cols", "4"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["logits_match"] and summary["float_accuracy"] is None


def test_bad_user_weights(tmp_path):
    np.savez(tmp_path / "wrong.npz", w0=np.zeros((64, 8)), w1=np.zeros((9, 10), np.int8))
    np.savez(tmp_path / "nolayers.npz", x=np.zeros(3))
    np.save(tmp_path / "single.npy", np.zeros((64, 10), np.int8))
    for name in ("wrong.npz", "nolayers.npz", "single.npy", "missing.npz"):
        proc = subprocess.run([sys.executable, "-m", "zeroskip.cli", "demo", "--weights",
                               str(tmp_path / name), "--out", str(tmp_path / name / "out")],
                              capture_output=True, text=True)
        assert proc.returncode == 2, (name, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "zeroskip.cli", "demo", "--sparsity", "1.5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2


def test_user_biases_outside_int32_are_refused(tmp_path):
    """A bias is added in int32 on the accelerator's results; int64 values beyond that range
    used to be cast (wrapped) silently."""
    from zeroskip.apps.demo import load_user_model
    from zeroskip.sim.loaders import BadInput
    w0, w1 = np.ones((64, 8), np.int8), np.ones((8, 10), np.int8)
    calibration = np.ones((4, 64), np.int8)
    np.savez(tmp_path / "ok.npz", w0=w0, w1=w1, b0=np.full(8, 2**31 - 1, np.int64))
    load_user_model(tmp_path / "ok.npz", calibration)
    np.savez(tmp_path / "big.npz", w0=w0, w1=w1, b1=np.full(10, 2**31, np.int64))
    with pytest.raises(BadInput, match=r"b1 value 2147483648 is outside int32"):
        load_user_model(tmp_path / "big.npz", calibration)
