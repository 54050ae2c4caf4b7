"""Hypothesis draws fresh examples in every session, from one seed that the header prints and
that reproduces the session's examples: on every xdist worker, from ``HYPOTHESIS_SEED`` and
from ``--hypothesis-seed`` (tb/conftest.py)."""

import os
import re
import subprocess
import sys

PROBE = '''
import os
from hypothesis import given, strategies as st

def _log(name, x):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(os.environ["PROBE_OUT"], f"{name}-{worker}"), "a") as f:
        f.write(f"{x}\\n")

@given(st.integers(0, 10 ** 9))
def test_a(x):
    _log("a", x)

@given(st.integers(0, 10 ** 9))
def test_b(x):
    _log("b", x)
'''


def _session(tmp_path, name, *options, seed=None):
    """Run the probe under this project's conftest; the seed its header printed and the
    examples each test drew, by test and worker."""
    out = tmp_path / name
    out.mkdir()
    # not this session's seed, nor its xdist worker's identity (under `make test` this test runs
    # on a worker, whose variables the probe would take for its own)
    env = {key: value for key, value in os.environ.items()
           if key != "HYPOTHESIS_SEED" and not key.startswith("PYTEST_XDIST")}
    env["PROBE_OUT"] = str(out)
    if seed is not None:
        env["HYPOTHESIS_SEED"] = seed
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "zeroskip.tb.conftest",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c",
                           str(tmp_path / "pytest.ini"), str(tmp_path / "test_probe.py"),
                           *options], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed = re.findall(r"hypothesis seed (\S+) .*HYPOTHESIS_SEED=(\S+) make test",
                         proc.stdout)
    assert len(printed) == 1 and printed[0][0] == printed[0][1], proc.stdout
    return printed[0][0], {path.name: path.read_text() for path in out.iterdir()}


def test_fresh_examples_from_a_printed_seed_on_every_worker(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    seed, drawn = _session(tmp_path, "first", "-n", "2")
    # the two tests ran on two workers (their draws are not compared: Hypothesis mixes in
    # constants it finds in the modules a process has imported, and one CI run under load drew
    # different examples on the two workers from the same seed)
    assert sorted(drawn) == ["a-gw0", "b-gw1"] or sorted(drawn) == ["a-gw1", "b-gw0"], drawn
    # a fresh seed next session (two 32-bit draws agree once in four billion)
    other, again = _session(tmp_path, "second")
    assert other != seed
    # the printed seed reproduces a session, from the variable (`make test`) or the option
    by_variable = _session(tmp_path, "variable", seed=seed)
    by_option = _session(tmp_path, "option", f"--hypothesis-seed={seed}")
    assert by_variable[0] == by_option[0] == seed
    assert by_variable[1] == by_option[1] and set(by_option[1]) == {"a-main", "b-main"}
