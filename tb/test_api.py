"""The Python API is the command: same validation, same RTL run, same report."""

import json

import numpy as np
import pytest

import zeroskip
from zeroskip.sim import golden
from zeroskip.sim.loaders import BadInput

from .test_cli import zeroskip as command
from .weights import random_weights


@pytest.mark.rtl
def test_gemm_from_python_matches_the_command(tmp_path, rng):
    acts = rng.integers(-128, 128, (11, 30)).astype(np.int8)
    weights = random_weights(rng, 30, 9, density=0.3)
    result, report = zeroskip.gemm(acts, weights, rows=4, cols=2, format="rle", mode="gate")
    np.testing.assert_array_equal(result, golden.gemm(acts, weights))
    assert result.dtype == np.int32

    np.save(tmp_path / "A.npy", acts)
    np.save(tmp_path / "W.npy", weights)
    proc = command("gemm", "--acts", tmp_path / "A.npy", "--weights", tmp_path / "W.npy",
                   "--out", tmp_path / "C.npy", "--report", tmp_path / "r.json", "--rows", 4,
                   "--cols", 2, "--format", "rle", "--mode", "gate")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"), result)
    from_command = json.loads((tmp_path / "r.json").read_text())
    for wall_clock in ("sim_cycles_per_second",):
        del from_command[wall_clock], report[wall_clock]
    assert json.loads(json.dumps(report)) == from_command


@pytest.mark.parametrize("kwargs,message", [
    ({"rows": 17}, "rows must be an integer from 1 to 16"),
    ({"format": "zip"}, "format must be one of"),
    ({"format": "nm", "nm": "4:2"}, "nm: "),
    ({"nm": "1:4"}, "nm"),
    ({"mode": "fast"}, "mode must be one of"),
    ({"sim": "xsim"}, "sim must be one of"),
    ({"board": "icebreaker", "cols": 2}, "board icebreaker fixes the array configuration"),
    ({"port": "/dev/ttyUSB1"}, "port needs board"),
])
def test_gemm_from_python_rejects_bad_options(kwargs, message):
    with pytest.raises(BadInput, match=message):
        zeroskip.gemm(np.ones((2, 3), np.int8), np.ones((3, 2), np.int8), **kwargs)


def test_gemm_from_python_rejects_bad_operands():
    with pytest.raises(ValueError, match="^weights: value 128"):
        zeroskip.gemm(np.ones((2, 3)).astype(int), np.full((3, 2), 128))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        zeroskip.gemm(np.ones((2, 3), np.int8), np.ones((4, 2), np.int8))


def test_version():
    proc = command("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"zeroskip {zeroskip.__version__}"
    assert zeroskip.__version__[0].isdigit()


def _imports(path):
    import ast
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_api_and_the_run_command_do_not_import_each_other():
    """api.py is the public layer over the front end; the command is its own room."""
    from pathlib import Path
    package = Path(zeroskip.__file__).parent
    api = _imports(package / "api.py")
    assert not any(name.startswith("zeroskip.apps") for name in api), api
    for module in ("apps/run.py", "apps/run_report.py", "gemm_runner.py", "array_options.py",
                   *(f"frontend/{p.name}" for p in (package / "frontend").glob("*.py"))):
        assert "zeroskip.api" not in _imports(package / module), module


def test_the_names_the_command_imports_stay_in_the_api():
    from zeroskip.api import (MAX_ARRAY_SIDE, DeviceFailure, GemmRunner, OutputsDiffer,  # noqa
                              array_config, array_side)
    assert zeroskip.DeviceFailure is DeviceFailure and zeroskip.OutputsDiffer is OutputsDiffer
    assert array_side("16") == MAX_ARRAY_SIDE == 16
