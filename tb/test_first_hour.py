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
    """Paths that no one, root included, can write: below a file, in /proc. (A missing folder
    is created: one rule for every command's outputs.)"""
    (tmp_path / "afile").write_text("x")
    return {"below_a_file": tmp_path / "afile" / "x", "proc": Path("/proc/zeroskip-x")}


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

    from zeroskip.sim.rtl import build
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path))
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    handler = Keep()
    build.progress.addHandler(handler)
    build.progress.setLevel(logging.INFO)
    try:
        def verilog():
            return ("module tiny(input clk, output reg q);\n"
                    "  always @(posedge clk) q <= ~q;\nendmodule\n")
        first = build.build("icarus", "tiny", verilog, "tiny")
        assert [(r.step, r.kind) for r in records] == [("start", "build"), ("end", "build")]
        assert "building the icarus simulation of tiny" in records[0].getMessage()
        assert records[1].build_dir == str(first)
        records.clear()
        assert build.build("icarus", "tiny", verilog, "tiny") == first
        assert records == []
        # another process building the same design: this one says it waits
        import threading
        with open(first / ".lock") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            waiter = threading.Thread(target=build.build,
                                      args=("icarus", "tiny", verilog, "tiny"))
            waiter.start()
            time.sleep(0.5)
            fcntl.flock(lock, fcntl.LOCK_UN)
        waiter.join(30)
        assert [(r.step, r.kind) for r in records] == [("start", "wait"), ("end", "wait")]
        assert "waiting for another process building" in records[0].getMessage()
    finally:
        build.progress.removeHandler(handler)


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


# -- 6. issue 35: one error voice, what was found, one folder rule, notes, headers --------------

@pytest.mark.parametrize("args, needles", [
    ([], ["no command given"]),
    (["gemn"], ["invalid choice: 'gemn'", "did you mean gemm?"]),
    (["gemm", "--acst", "A.npy", "--weights", "W.npy", "--out", "C.npy"],
     ["gemm: unrecognized arguments: --acst", "did you mean --acts?"]),
    (["gemm", "--acts", "A.npy", "--weights", "W.npy", "--out", "C.npy", "--mode", "skp"],
     ["gemm: argument --mode", "did you mean skip?"]),
    (["verilog", "-o", "a.v", "--bsu", "axi"], ["did you mean --bus?"]),
    (["cache", "--limt", "2G"], ["did you mean --limit?"]),
    (["gemm", "--acts", "A.npy", "--weights"], ["gemm: argument --weights: expected"]),
    (["formats", "--size", "0"], ["--size must be between 1 and 4096"]),
])
def test_one_error_voice_with_did_you_mean(tmp_path, args, needles):
    """Usage errors (argparse's), bad input: all `zeroskip: error: ...`, one line."""
    line = one_line_error(zeroskip(*args, cwd=tmp_path), *needles)
    assert line.startswith("zeroskip: error: ") and line.count("zeroskip: ") == 1, line


def test_device_and_internal_errors_speak_the_same_voice(monkeypatch, capsys):
    from zeroskip import api, cli
    from zeroskip.apps import formats_table

    def fail(exc):
        def table(size):
            raise exc
        return table
    monkeypatch.setattr(formats_table, "formats_table", fail(api.DeviceFailure("port gone")))
    assert cli.main(["formats"]) == cli.EXIT_DEVICE
    assert capsys.readouterr().err == "zeroskip: error: port gone\n"
    monkeypatch.setattr(formats_table, "formats_table", fail(RuntimeError("boom\nmore")))
    assert cli.main(["formats"]) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert err.startswith("zeroskip: error: internal error (RuntimeError): boom") and \
        err.count("\n") == 1, err
    monkeypatch.setattr(formats_table, "formats_table", fail(KeyboardInterrupt()))
    assert cli.main(["formats"]) == cli.EXIT_FAILURE
    assert capsys.readouterr().err == "zeroskip: error: interrupted\n"


def test_build_parser_has_no_side_effects(tmp_path, monkeypatch):
    """The Sphinx CLI reference calls build_parser(): it must only build the parser."""
    import argparse
    import logging

    from zeroskip.cli.parser import build_parser, subcommands
    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("zeroskip.progress")
    before = (list(logger.handlers), logger.level)
    parsers = [build_parser(), build_parser()]
    assert all(isinstance(parser, argparse.ArgumentParser) for parser in parsers)
    assert set(subcommands(parsers[0])) == set(COMMANDS) | {"run", "sweep"}
    assert (list(logger.handlers), logger.level) == before and list(tmp_path.iterdir()) == []
    assert parsers[0].format_help() == parsers[1].format_help()


def test_npy_errors_say_what_was_found_once(tmp_path):
    """No nested messages: one line naming the file once, what it is and what was expected."""
    from zeroskip.sim.loaders import load_int8_matrix
    np.save(tmp_path / "ok.npy", np.ones((8, 3), np.int64))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    files = {"garbage.npy": b"not a numpy file at all", "empty.npy": b"",
             "truncated.npy": (tmp_path / "ok.npy").read_bytes()[:140],
             "header.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x"}
    for name, payload in files.items():
        (tmp_path / name).write_bytes(payload)
    expected = {"garbage.npy": "without a NumPy header; expected a .npy file",
                "empty.npy": "is an empty file; expected a .npy file",
                "truncated.npy": "is truncated: 140 bytes where its header (shape (8, 3), "
                                 "int64) needs 320",
                "header.npy": "damaged NumPy header; expected a .npy file",
                "objects.npy": "holds Python objects (dtype object); expected an integer"}
    for name, words in expected.items():
        with pytest.raises(BadInput) as info:
            load_int8_matrix(tmp_path / name, "--acts")
        message = str(info.value)
        assert words in message and message.count(name) == 1, message
        assert message.count("--acts") == 1 and "(--acts" not in message, message
    proc = zeroskip("gemm", "--acts", tmp_path / "garbage.npy", "--weights", tmp_path / "ok.npy",
                    "--out", tmp_path / "C.npy")
    line = one_line_error(proc, "--acts", "garbage.npy", "expected a .npy file")
    assert line.count("npy file") == 1, line


def test_outputs_create_missing_folders_and_take_them_back(tmp_path):
    """One rule: missing folders on an output's path are created when it is written (never by
    a check); a failure removes the ones it created; a file on the way is refused."""
    deep = tmp_path / "a" / "b" / "C.npy"
    check_file(deep, "--out")
    check_folder(tmp_path / "x" / "y", "--out")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with Outputs() as outputs:
            outputs.write_text(deep, "c")
            raise RuntimeError("simulation failed")
    assert list(tmp_path.iterdir()) == []
    with Outputs() as outputs:
        outputs.write_text(deep, "c")
        outputs.write_text(tmp_path / "a" / "r.json", "{}")
        outputs.commit()
    assert deep.read_text() == "c" and (tmp_path / "a" / "r.json").exists()
    (tmp_path / "file").write_text("x")
    for check in (check_file, check_folder):
        with pytest.raises(BadInput, match="file is a file, not a folder"):
            check(tmp_path / "file" / "sub" / "C.npy", "--out")


def test_every_command_creates_missing_output_folders(tmp_path, operands):
    proc = zeroskip("verilog", "--rows", 2, "--cols", 2, "-o", tmp_path / "new" / "deep" / "a.v")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "new" / "deep" / "a.v").stat().st_size > 1000
    # a gemm whose input is bad leaves no folder behind: its outputs' folders are made only
    # when they are written
    (operands / "bad.npy").write_bytes(b"junk")
    proc = zeroskip("gemm", "--acts", operands / "bad.npy", "--weights", operands / "W.npy",
                    "--out", tmp_path / "g" / "C.npy", "--report", tmp_path / "g" / "r.json")
    one_line_error(proc, "--acts")
    assert not (tmp_path / "g").exists()
    source = (REPO / "zeroskip" / "cli" / "__init__.py").read_text()
    assert "missing folders on an output's path" in source  # the rule, documented


def test_gemm_summary_names_dense_cycles_and_speedup():
    from zeroskip.cli.gemm import summary_line
    report = {"mode": "skip", "arch": "zeroskip", "cycles": 100, "dense_cycles": 250,
              "speedup": 2.5, "ideal_cycles": 80, "fraction_of_ideal": 0.8,
              "macs_executed": 640, "macs_gated": 0, "energy_pj": None}
    line = summary_line(report, "C.npy")
    assert line.startswith("skip: 100 cycles (dense mode 250, speedup 2.5x; ideal 80, "
                           "fraction of ideal 0.8)"), line
    assert line.endswith("result matches NumPy -> C.npy") and "\n" not in line


def test_size_note_for_large_work():
    from zeroskip import array_config
    from zeroskip.cli.gemm import LARGE_WORK_CYCLES, size_note
    from zeroskip.sim.compiler import compile_gemm
    program = compile_gemm(np.ones((64, 32), np.int8), np.ones((32, 16), np.int8),
                           array_config(rows=4, cols=4))
    assert program.predicted_cycles < LARGE_WORK_CYCLES
    assert size_note(program, "verilator") is None
    note = size_note(program, "icarus", threshold=1)
    assert note.startswith("zeroskip: 64x32x16 GEMM, 32,768 MACs on 4x4 PEs: ") and "\n" not in note
    runs, tiles = len(program.runs), sum(run.m_tiles for run in program.runs)
    assert f"{runs} run" in note and f"of {tiles} M-tile" in note
    assert f"{program.predicted_cycles:,} cycles predicted" in note
    assert "of icarus simulation" in note and "cycles/s" in note
    assert "simulation" not in size_note(program, None, threshold=1)  # a board: no time


def test_gemm_prints_the_size_note_before_simulating(tmp_path, operands, monkeypatch, capsys):
    """The note comes on stderr after compiling, before the simulator runs."""
    from zeroskip import cli
    from zeroskip.cli import gemm as gemm_cli
    from zeroskip.sim.rtl import runner

    def no_simulator(*args, **kwargs):
        raise KeyboardInterrupt  # stands for the user giving up during the long simulation
    monkeypatch.setattr(gemm_cli, "LARGE_WORK_CYCLES", 1)
    monkeypatch.setattr(runner, "run_programs", no_simulator)
    status = cli.main(["gemm", "--acts", operands / "A.npy", "--weights", operands / "W.npy",
                       "--out", tmp_path / "C.npy", "--rows", 2, "--cols", 2])
    lines = capsys.readouterr().err.splitlines()
    assert status == cli.EXIT_FAILURE and lines[-1] == "zeroskip: error: interrupted"
    assert len(lines) == 2 and lines[0].startswith("zeroskip: 4x8x3 GEMM, 96 MACs on 2x2 PEs")
    assert "of verilator simulation" in lines[0] and not (tmp_path / "C.npy").exists()


@pytest.mark.parametrize("bus", ["native", "axi"])
def test_native_verilog_names_its_configuration_command_and_ports(tmp_path, bus):
    from zeroskip import array_config
    from zeroskip.cli.verilog import top_ports
    from zeroskip.hw.verilog import generate
    out = tmp_path / "a.v"
    proc = zeroskip("verilog", "--rows", 2, "--cols", 3, "--bus", bus, "-o", out)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    config = array_config(rows=2, cols=3)
    verilog = generate(config, bus)
    header, rest = text[:len(text) - len(verilog)], text[len(text) - len(verilog):]
    assert rest == verilog  # the hardware is untouched: the header is only comments
    lines = header.splitlines()
    assert lines and all(line.startswith("//") and len(line) <= 100 for line in lines)
    from zeroskip import __version__
    assert lines[0].startswith(f"// zeroskip {__version__}: module ") and config.name() in lines[0]
    assert "ArrayConfig(rows=2, cols=3, fmt='csc'" in header
    assert "arch='zeroskip', resident=False)" in " ".join(header.replace("//", "").split())
    assert f"--bus {bus} -o {out}" in " ".join(header.replace("//", "").split())
    top = "zeroskip_accel" if bus == "native" else "zeroskip_axi"
    ports = top_ports(verilog, top)
    assert ("clk", "input", 1) in ports and len(ports) > 5
    for name, direction, width in ports:
        assert any(line.split()[1:] == [name, direction, str(width)] for line in lines), name
