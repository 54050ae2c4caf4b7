"""Fuzzing the host's front door: random bytes and random arrays to the loaders and the CLI never
give a traceback or a hang; whatever is not a valid operand is bad input (exit 2)."""

import subprocess
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, scalar_dtypes

from zeroskip.sim.loaders import BadInput, load_int8_matrix


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400), st.booleans())
def test_loader_on_random_bytes(tmp_path, payload, with_header):
    path = tmp_path / "x.npy"
    path.write_bytes((b"\x93NUMPY" if with_header else b"") + payload)
    try:
        load_int8_matrix(path, "--acts")
    except BadInput as exc:
        assert "\n" not in str(exc)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays(scalar_dtypes(), array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
def test_loader_on_random_arrays(tmp_path, array):
    path = tmp_path / "x.npy"
    np.save(path, array)
    try:
        loaded = load_int8_matrix(path, "--acts")
    except BadInput as exc:
        assert "\n" not in str(exc)
    else:
        # accepted only if it really is a 2-D integer matrix within int8
        assert array.ndim == 2 and array.dtype.kind in "iu" and array.size
        np.testing.assert_array_equal(loaded, array)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200),
       st.lists(st.sampled_from(["--rows", "--cols", "--mode", "--format", "--nm", "--sim",
                                 "-1", "0", "99", "2:4", "x", "skip", "nm", "--report", ""]),
                max_size=4))
def test_cli_on_random_input(tmp_path, payload, options):
    (tmp_path / "A.npy").write_bytes(payload)
    np.save(tmp_path / "W.npy", np.ones((3, 3), np.int8))
    proc = subprocess.run([sys.executable, "-m", "zeroskip.cli", "gemm", "--acts",
                           str(tmp_path / "A.npy"), "--weights", str(tmp_path / "W.npy"),
                           "--out", str(tmp_path / "C.npy"), *options],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "C.npy").exists()
