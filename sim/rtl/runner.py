"""Simulator runs: a cocotb module on a build (:func:`run_cocotb`), and compiled programs on
the accelerator's RTL through the harness (:func:`run_programs`), with their results, counters
and the checks against the cycle model (:class:`RunResult`).

The simulation of a run reports its start and end on the ``zeroskip.progress`` logger
(:mod:`zeroskip.sim.rtl`). The builds it runs on are :mod:`zeroskip.sim.rtl.build`'s, the
operands and results are packed by :mod:`zeroskip.sim.rtl.packing`.
"""

import logging
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from zeroskip.sim.rtl.build import (TIMESCALE, build_accelerator, check_wave_support, failure,
                                    prepare, wave_format)
from zeroskip.sim.rtl.packing import act_beats, bank_bases, result_words_to_array, weight_beats


__all__ = ["DecoderFault", "CycleMismatch", "RunResult", "run_cocotb", "run_program",
           "run_programs", "LoadCounter"]

HARNESS = "zeroskip.sim.rtl.harness"

#: Progress of the slow steps (:mod:`zeroskip.sim.rtl`): here, a simulation's start and end.
progress = logging.getLogger("zeroskip.progress")


def run_cocotb(sim, build_dir, toplevel, test_module, job, *, waves=None, testcase=None):
    """Run cocotb ``test_module`` on a build, handing it ``job`` (pickled, ``ZEROSKIP_JOB``);
    returns what it pickled to ``ZEROSKIP_RESULT``. ``testcase``: one test of the module. A
    failing test raises RuntimeError naming, in its first line, where the whole simulator log is
    kept (:func:`zeroskip.sim.rtl.cache.keep_log`), and ending with the log's tail."""
    runner = prepare(sim)
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
            raise failure(f"simulation of {test_module} failed", exc, log, name) from None
        if failed:
            raise failure(f"{failed} of {tests} cocotb tests of {test_module} failed", None,
                           log, name)
        if not (tmp / "out.pkl").exists():
            raise failure(f"{test_module} passed but returned no result", None, log, name)
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


def run_program(program, sim="verilator", *, waves=None):
    """Run ``program`` (from :func:`zeroskip.sim.compiler.compile_gemm`) on the RTL.

    Parameters
    ----------
    waves : path or None
        Write a waveform of the whole simulation there (FST).
    """
    return run_programs([program], sim, waves=waves)[0]


def run_programs(programs, sim="verilator", *, waves=None, timeout_factor=4, abort_after=None,
                 resident=None):
    """Run several programs of one configuration in a single simulation, one after another
    (a simulator start costs more than a small GEMM).

    ``resident``: a :class:`zeroskip.sim.resident.ResidentNetwork` of the configuration, whose
    lane memories are loaded once, after the first reset; the programs are its layers' runs
    (:meth:`~zeroskip.sim.resident.ResidentNetwork.program`), which load activations only.
    Its write beats count in the first run's ``load_cycles`` (and ``lane_writes``).

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
    if resident is not None and resident.config != config:
        raise ValueError("the resident network's configuration is not the programs'")
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
    preload = weight_beats(config, resident) if resident is not None else {}
    out = run_cocotb(sim, build_dir, TOP_NAME, HARNESS,
                     {"runs": runs, "double_buffer": config.double_buffer, "preload": preload},
                     waves=waves)
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
