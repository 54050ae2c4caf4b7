"""A new user's first hour (issue 22), as a user runs it: options that would be ignored, output
paths checked before any work and written all together, progress on a terminal only, the
simulator cache, help texts and names."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest

from zeroskip.apps import cache as cache_mod
from zeroskip.apps.outputs import Outputs, check_file, check_folder
from zeroskip.sim.loaders import BadInput

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ("gemm", "build", "verilog", "bench", "demo", "formats", "cache")


def zeroskip(*args, env=None, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "zeroskip.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env}, **kw)


def one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def operands(tmp_path):
    np.save(tmp_path / "A.npy", np.ones((4, 8), np.int8))
    np.save(tmp_path / "W.npy", np.ones((8, 3), np.int8))
    return tmp_path


# -- 1. options that would be ignored are bad input --------------------------------------------

def test_nm_without_format_nm_is_bad_input(operands):
    a, w = operands / "A.npy", operands / "W.npy"
    for extra in ([], ["--format", "csc"], ["--format", "rle"]):
        proc = zeroskip("gemm", "--acts", a, "--weights", w, "--out", operands / "C.npy",
                        "--nm", "3:4", *extra)
        one_line_error(proc, "--nm 3:4", "--format nm")
        assert not (operands / "C.npy").exists()
    proc = zeroskip("verilog", "--nm", "1:4", "-o", operands / "a.v")
    one_line_error(proc, "--nm 1:4", "--format nm")
    assert not (operands / "a.v").exists()


def test_nm_with_format_nm_takes_effect(tmp_path):
    proc = zeroskip("verilog", "--rows", 2, "--cols", 2, "--format", "nm", "--nm", "1:4",
                    "-o", tmp_path / "a.v")
    assert proc.returncode == 0, proc.stderr
    assert "1:4 nm decoders" in proc.stdout and (tmp_path / "a.v").stat().st_size > 1000


def test_api_array_config_refuses_nm_without_nm_format():
    from zeroskip import array_config
    with pytest.raises(ValueError, match="nm 3:4 applies only to format nm"):
        array_config(nm="3:4")
    with pytest.raises(ValueError, match="nm 2:4 applies only to format nm, not format csc"):
        array_config(format="csc", nm=(2, 4))
    assert (array_config(format="nm", nm="3:4").nm_n, array_config(format="nm").nm_m) == (3, 4)


def test_demo_sparsity_with_user_weights_is_bad_input(tmp_path):
    np.savez(tmp_path / "model.npz", w0=np.ones((64, 10), np.int8))
    proc = zeroskip("demo", "--weights", tmp_path / "model.npz", "--sparsity", 0.5,
                    "--out", tmp_path / "out")
    one_line_error(proc, "--sparsity", "--weights")
    assert not (tmp_path / "out").exists()


# -- 2. output paths: checked before any work, written all together ----------------------------

def unwritable(tmp_path):
    """Paths that no one, root included, can write: below a file, in a missing folder, in
    /proc."""
    (tmp_path / "afile").write_text("x")
    return {"below_a_file": tmp_path / "afile" / "x", "missing_folder": tmp_path / "no" / "x",
            "proc": Path("/proc/zeroskip-x")}


@pytest.mark.parametrize("option", ["--out", "--report", "--waves"])
def test_gemm_outputs_checked_first(operands, option):
    a, w = operands / "A.npy", operands / "W.npy"
    for name, bad in unwritable(operands).items():
        paths = {"--out": operands / "C.npy", "--report": operands / "r.json",
                 "--waves": operands / "t.vcd"}
        paths[option] = bad.with_suffix(".vcd" if option == "--waves" else ".npy")
        args = [x for pair in paths.items() for x in pair]
        started = time.monotonic()
        proc = zeroskip("gemm", "--acts", a, "--weights", w, *args)
        one_line_error(proc, option)
        assert time.monotonic() - started < 30, name  # before any build or simulation
        assert not any(p.exists() for p in paths.values()), name  # nothing written: ok.npy too


def test_gemm_out_is_a_folder_or_shared(operands):
    a, w = operands / "A.npy", operands / "W.npy"
    one_line_error(zeroskip("gemm", "--acts", a, "--weights", w, "--out", operands),
                   "is a directory")
    one_line_error(zeroskip("gemm", "--acts", a, "--weights", w, "--out", operands / "C.npy",
                            "--report", operands / "C.npy"), "same file")


@pytest.mark.parametrize("command", [
    ["verilog", "-o", "{bad}"],
    ["demo", "--out", "{bad}"],
    ["bench", "--out", "{bad}"],
    ["build", "--board", "icebreaker", "--out", "{bad}"],
])
def test_every_command_checks_its_outputs_first(tmp_path, command):
    for name, bad in unwritable(tmp_path).items():
        if name == "missing_folder" and command[0] != "verilog":
            continue  # a folder output's missing parents are created
        args = [str(bad) if arg == "{bad}" else arg for arg in command]
        started = time.monotonic()
        proc = zeroskip(*args, timeout=60)
        one_line_error(proc, "-o" if command[0] == "verilog" else "--out")
        assert time.monotonic() - started < 30, name  # no training, build or simulation
        assert not bad.exists()


def test_bench_readme_checked_first(tmp_path):
    proc = zeroskip("bench", "--out", tmp_path / "b", "--readme", "/proc/cpuinfo")
    one_line_error(proc, "--readme")
    assert not (tmp_path / "b").exists()


def test_outputs_all_or_nothing(tmp_path, monkeypatch):
    (tmp_path / "old.json").write_text("old\n")
    # a write that fails: nothing staged reaches its name
    with pytest.raises(RuntimeError):
        with Outputs() as outputs:
            outputs.write_text(tmp_path / "C.npy", "c")
            outputs.write(tmp_path / "old.json", lambda tmp: (_ for _ in ()).throw(
                RuntimeError("disk full")))
            outputs.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    # a move that fails halfway: the first file is taken back, the old one restored
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        with Outputs() as outputs:
            outputs.write_text(tmp_path / "old.json", "new\n")
            outputs.write_text(tmp_path / "C.npy", "c")
            outputs.commit()
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    assert (tmp_path / "old.json").read_text() == "old\n"
    # and when all goes well, all of them, with an ordinary file mode
    with Outputs() as outputs:
        outputs.write_text(tmp_path / "old.json", "new\n")
        outputs.write_text(tmp_path / "C.npy", "c")
        outputs.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C.npy", "old.json"]
    assert (tmp_path / "old.json").read_text() == "new\n"
    assert (tmp_path / "C.npy").stat().st_mode & 0o044  # not private like a temporary file


def test_output_checks():
    with pytest.raises(BadInput, match="cannot write"):
        check_file("/proc/x.npy", "--out")
    with pytest.raises(BadInput, match="is a file"):
        check_folder("/proc/cpuinfo/x", "--out")
    check_folder("/tmp/zeroskip-not-yet/a/b", "--out")  # creatable: fine, nothing made
    assert not Path("/tmp/zeroskip-not-yet").exists()


# -- 3. progress on a terminal only ------------------------------------------------------------

def test_progress_display_on_a_terminal():
    import io
    import logging

    from zeroskip.cli.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    stream = Terminal()
    handler = Progress(stream, delay=0.0)
    log = logging.getLogger("zeroskip.progress.test")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("building the icarus simulation of x", extra={"step": "start"})
        time.sleep(1.3)
        log.info("built", extra={"step": "end", "build_dir": "/tmp/x"})
        log.info("simulating 1 run", extra={"step": "start"})
    finally:
        log.removeHandler(handler)
        handler.close()
    text = stream.getvalue()
    assert "zeroskip: building the icarus simulation of x ... 1 s" in text
    assert "building the icarus simulation of x ... done in 1 s\n" in text
    assert text.endswith("\n")  # a step over at once shows nothing, or its whole line
    # under the demo's and bench's progress bars: a build's two lines, nothing of the runs
    stream = Terminal()
    handler = Progress(stream, ticker=False)
    log.addHandler(handler)
    try:
        log.info("building b", extra={"step": "start", "kind": "build"})
        log.info("built b in 3 s", extra={"step": "end", "kind": "build", "build_dir": "/x"})
        log.info("simulating 2 runs", extra={"step": "start", "kind": "simulation"})
        log.info("simulated", extra={"step": "end", "kind": "simulation"})
    finally:
        log.removeHandler(handler)
        handler.close()
    assert stream.getvalue() == "zeroskip: building b\nzeroskip: built b in 3 s\n"


@pytest.mark.rtl
def test_build_reports_only_a_real_build(tmp_path, monkeypatch):
    """The runner's hook: a build reports its start and end, a cached one nothing."""
    import logging

    from zeroskip.sim.rtl import runner
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path))
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    handler = Keep()
    runner.progress.addHandler(handler)
    runner.progress.setLevel(logging.INFO)
    try:
        def verilog():
            return ("module tiny(input clk, output reg q);\n"
                    "  always @(posedge clk) q <= ~q;\nendmodule\n")
        first = runner.build("icarus", "tiny", verilog, "tiny")
        assert [(r.step, r.kind) for r in records] == [("start", "build"), ("end", "build")]
        assert "building the icarus simulation of tiny" in records[0].getMessage()
        assert records[1].build_dir == str(first)
        records.clear()
        assert runner.build("icarus", "tiny", verilog, "tiny") == first
        assert records == []
        # another process building the same design: this one says it waits
        import threading
        with open(first / ".lock") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            waiter = threading.Thread(target=runner.build,
                                      args=("icarus", "tiny", verilog, "tiny"))
            waiter.start()
            time.sleep(0.5)
            fcntl.flock(lock, fcntl.LOCK_UN)
        waiter.join(30)
        assert [(r.step, r.kind) for r in records] == [("start", "wait"), ("end", "wait")]
        assert "waiting for another process building" in records[0].getMessage()
    finally:
        runner.progress.removeHandler(handler)


def run_on_pty(args, env):
    """Run the command with stderr on a pseudo-terminal; returns (rc, stdout, terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))  # 200 columns
    proc = subprocess.Popen([sys.executable, "-m", "zeroskip.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=slave, text=True,
                            env={**os.environ, **env})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read()
    proc.wait(timeout=600)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


@pytest.mark.rtl
def test_gemm_shows_its_build_on_a_terminal_only(operands, tmp_path):
    """A first run builds: on a terminal stderr says so; through a pipe stderr stays empty and
    stdout is the one result line."""
    env = {"ZEROSKIP_CACHE": str(tmp_path / "cache")}
    args = ["gemm", "--acts", operands / "A.npy", "--weights", operands / "W.npy",
            "--out", operands / "C.npy", "--rows", 2, "--cols", 1, "--sim", "icarus"]
    rc, out, terminal = run_on_pty(args, env)
    assert rc == 0, terminal
    assert "zeroskip: building the icarus simulation of 2x1" in terminal
    assert "(once per configuration)" in terminal and "done in" in terminal
    assert out.count("\n") == 1 and "result matches NumPy" in out
    proc = zeroskip(*args, env=env)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.count("\n") == 1
    rc, out, terminal = run_on_pty(args, env)  # cached: no build message
    assert rc == 0 and "building" not in terminal


# -- 4. the simulator cache --------------------------------------------------------------------

def fake_cache(root):
    """Three builds (1, 2, 3 MiB; used 3, 2 and 0.5 hours ago), a Verilog file and a log."""
    now = time.time()
    for i, name in enumerate(("verilator-8x8-csc-aaa-111", "icarus-2x2-csc-bbb-111",
                              "verilator-4x4-nm-ccc-111")):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "sim.so").write_bytes(b"\0" * (1 << 20) * (i + 1))
        (folder / ".lock").write_text("")
        (folder / "complete").write_text("ok\n")
        os.utime(folder / "complete", (now - 3600 * (3, 2, 0.5)[i],) * 2)
    (root / "verilog").mkdir()
    (root / "verilog" / "8x8-csc-aaa-111.v").write_text("module x; endmodule\n")
    (root / "logs").mkdir()
    (root / "logs" / "build-x.log").write_text("error\n")
    return root


def test_cache_list_limit_clear(tmp_path):
    root = fake_cache(tmp_path / "cache")
    env = {"ZEROSKIP_CACHE": str(root)}
    proc = zeroskip("cache", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 6 and "6.0 MiB in 5 entries under" in lines[-1]
    builds = [line.split()[-1] for line in lines if "-111" in line and "/" not in line]
    assert builds == ["verilator-8x8-csc-aaa-111", "icarus-2x2-csc-bbb-111",
                      "verilator-4x4-nm-ccc-111"]  # least recently used first
    # a limit evicts the least recently used first
    proc = zeroskip("cache", "--limit", "5.5M", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "removed verilator-8x8-csc-aaa-111" in proc.stdout
    assert not (root / "verilator-8x8-csc-aaa-111").exists()
    assert (root / "icarus-2x2-csc-bbb-111").exists()  # 5 MiB left: enough
    # a build in progress (its lock held) is never removed
    with open(root / "icarus-2x2-csc-bbb-111" / ".lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = zeroskip("cache", "clear", env=env)
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in root.iterdir()) == ["icarus-2x2-csc-bbb-111", "logs",
                                                      "verilog"]
    proc = zeroskip("cache", "clear", env=env)
    assert "removed 1 entries" in proc.stdout
    assert "0 B in 0 entries" in zeroskip("cache", env=env).stdout
    one_line_error(zeroskip("cache", "--limit", "lots", env=env), "--limit")


def test_cache_limit_after_a_build(tmp_path, monkeypatch):
    """After a command built a simulator, the cache is kept to $ZEROSKIP_CACHE_LIMIT: never the
    new build, never anything used in the last hour."""
    from zeroskip.cli.cache import limit_cache
    root = fake_cache(tmp_path / "cache")
    monkeypatch.setenv("ZEROSKIP_CACHE", str(root))
    monkeypatch.setenv("ZEROSKIP_CACHE_LIMIT", "1M")
    new = root / "verilator-8x8-csc-aaa-111"
    limit_cache([str(new)])
    left = {e.name for e in cache_mod.entries(root)}
    # the new one kept although oldest; the half hour old one kept; the 2 hours old gone
    assert "verilator-8x8-csc-aaa-111" in left and "verilator-4x4-nm-ccc-111" in left
    assert "icarus-2x2-csc-bbb-111" not in left
    monkeypatch.setenv("ZEROSKIP_CACHE_LIMIT", "0")
    limit_cache([])
    assert "verilator-8x8-csc-aaa-111" in {e.name for e in cache_mod.entries(root)}


def test_cache_sizes():
    assert cache_mod.parse_size("2G") == 2 * 1024**3
    assert cache_mod.parse_size("500M") == 500 * 1024**2
    assert cache_mod.parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert cache_mod.parse_size("123") == 123
    with pytest.raises(ValueError):
        cache_mod.parse_size("-1G")


def test_make_clean_names_the_cache():
    proc = subprocess.run(["make", "-n", "clean"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "zeroskip cache clear" in proc.stdout
    assert "ZEROSKIP_CACHE" in proc.stdout and ".cache/zeroskip" in proc.stdout
    assert "rm -rf ~/.cache" not in proc.stdout


# -- 5. help and names -------------------------------------------------------------------------

def test_bare_command_lists_the_commands():
    proc = zeroskip()
    line = one_line_error(proc, "no command")
    for command in COMMANDS:
        assert command in line
    help_text = zeroskip("--help").stdout
    for command in COMMANDS:
        assert f"    {command} " in help_text


def test_help_texts_have_defaults_and_limits():
    gemm = " ".join(zeroskip("gemm", "--help").stdout.split())
    assert "skip (default)" in gemm and "verilator (default)" in gemm
    assert "PE rows, 1 to 16 (default 8)" in gemm and "1 to 16 (default 8)" in gemm
    for command in ("demo", "bench"):
        text = " ".join(zeroskip(command, "--help").stdout.split())
        assert "PE rows of the array, 1 to 16 (default 8)" in text, command
        assert "PE columns of the array, 1 to 16 (default 8)" in text, command
    assert "verilator (default)" in " ".join(zeroskip("demo", "--help").stdout.split())
    one_line_error(zeroskip("bench", "--rows", 17), "between 1 and 16")


def test_one_name_for_the_dense_weight_bits():
    from zeroskip.apps.demo import format_summary
    summary = json.loads((REPO / "docs" / "demo" / "summary.json").read_text())
    assert "dense_weight_bits" in summary and "weight_bits_dense" not in json.dumps(summary)
    assert all("dense_weight_bits" in layer for layer in summary["layers"])
    assert "KiB dense int8" in format_summary(summary)
    source = (REPO / "zeroskip" / "apps" / "demo.py").read_text()
    assert "weight_bits_dense" not in source


def fake_bench_rows():
    from zeroskip.apps.bench import COLUMNS, ENERGY_FIELDS
    rows = []
    for fmt, pattern, sparsity in (("csc", "uniform", 0.0), ("csc", "uniform", 0.5),
                                   ("csc", "2:4", 0.5), ("nm 2:4", "2:4", 0.5)):
        row = {key: 1 for key, _ in COLUMNS}
        row.update(format=fmt, pattern=pattern, sparsity=sparsity, speedup=1 / (1 - sparsity),
                   fraction_of_ideal=0.99, model_error=0.0, sim_cycles_per_s=1000,
                   energy_table="t", bound="compute", macs_effectual=100, operand_bytes=10,
                   load_cycles=5, cycles_skip=10, total_skip=20,
                   **{name: 1.0 for name in ENERGY_FIELDS})
        rows.append(row)
    return rows


def test_bench_header_and_legend(tmp_path):
    from zeroskip.apps.bench import plot, write_outputs
    from zeroskip.config import ArrayConfig
    labels = plot(fake_bench_rows(), tmp_path / "p.png")
    assert "2:4 structured (csc)" in labels and "2:4 structured (nm 2:4)" in labels
    assert len(labels) == len(set(labels))
    text = write_outputs(ArrayConfig.for_capacity(2, 2), fake_bench_rows(), tmp_path / "out",
                         (8, 8, 8), command="zeroskip bench --size 8 --out out")
    assert "by `zeroskip bench --size 8 --out out`" in text and "make bench" not in text
    assert (tmp_path / "out" / "bench.md").read_text() == text


def test_formats_table_speaks_sparsity():
    proc = zeroskip("formats", "--size", 64)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("| weight sparsity |") and "density" not in proc.stdout
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    sparsities = [float(row[0].rstrip("%")) for row in rows]
    assert sparsities == sorted(sparsities) and sparsities[0] < 10 < 90 < sparsities[-1]
    csc = [float(row[2]) for row in rows]
    assert csc == sorted(csc, reverse=True)  # sparser: fewer bits
    assert "(2:4 = 50.0%)" in proc.stdout and "(1:4 = 75.0%)" in proc.stdout


def test_npz_errors_say_it_once(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "text.npz").write_text("hello")
    np.savez(tmp_path / "objects.npz", w0=np.array([{"a": 1}], dtype=object))
    for name in ("dir.npz", "text.npz", "objects.npz"):
        proc = zeroskip("demo", "--weights", tmp_path / name, "--out", tmp_path / "out")
        line = one_line_error(proc, "--weights")
        assert line.count(name) == 1, line
        assert "pickled" not in line or name == "objects.npz", line


def test_demo_accuracy_axis_shows_a_poor_model():
    from zeroskip.apps.demo import accuracy_limits
    low, high = accuracy_limits([0.11])
    assert low <= 11 and high >= 100
    assert accuracy_limits([0.95, 0.98]) == (80.0, 100.5)
