"""The sparsity benchmark: speedup and fraction of ideal against weight sparsity, on the RTL;
energy and energy-delay product of skip, gate and dense mode; the same GEMMs on this machine's
CPU.

Every cycle figure comes from the hardware counters of a Verilator run; the analytical model's
prediction is printed next to it. Energies are estimates: the RTL's event counts priced by the
energy table (:mod:`zeroskip.sim.energy`). CPU times are wall-clock times of NumPy (dense) and
scipy.sparse (CSR) on the same operands, best of several runs; no CPU power is assumed.
"""

import csv
import datetime
import json
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeroskip.apps.readme import bench_section, rewritten_section
from zeroskip.config import ArrayConfig, Mode
from zeroskip.markdown import table
from zeroskip.sim import energy, golden, model
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.patterns import PATTERNS, sparse_weights
from zeroskip.sim.rtl.runner import run_programs

__all__ = ["BenchCase", "default_cases", "run_bench", "write_outputs", "cpu_times"]

#: The clock the accelerator's time is given at: the ULX3S build's (platforms/boards.py).
ULX3S_MHZ = 100
MODES = (Mode.SKIP, Mode.GATE, Mode.DENSE)


@dataclass(frozen=True)
class BenchCase:
    pattern: str
    density: float  # requested density (the measured one is reported)
    fmt: str = "csc"
    nm: tuple = (2, 4)

    def config(self, rows, cols, shape):
        # double-buffered, for the end-to-end counter (compute is the same either way)
        m, k, n = shape
        return ArrayConfig.for_capacity(rows, cols, m=m, k=k, n=n, fmt=self.fmt,
                                        nm_n=self.nm[0], nm_m=self.nm[1],
                                        double_buffer=True)


def default_cases():
    cases = [BenchCase("uniform", d) for d in (1.0, 0.5, 0.25, 0.1, 0.05)]
    cases += [BenchCase("2:4", 0.5), BenchCase("1:4", 0.25)]
    cases += [BenchCase("2:4", 0.5, "nm", (2, 4)), BenchCase("1:4", 0.25, "nm", (1, 4))]
    cases += [BenchCase("block4x4", d) for d in (0.5, 0.25, 0.1)]
    cases += [BenchCase("heavy_tailed", d) for d in (0.15, 0.05)]
    return cases


def cpu_times(acts, weights, repeats=5):
    """Seconds (best of ``repeats``) of A·W on this machine's CPU: NumPy on dense int32
    matrices, and scipy.sparse with W in CSR (both give the exact int32 result)."""
    import scipy.sparse

    a, w = acts.astype(np.int32), weights.astype(np.int32)
    csr = scipy.sparse.csr_matrix(w)

    def best(function):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        return min(times)
    assert np.array_equal(a @ csr, a @ w)  # the sparse product is the same GEMM
    return {"cpu_numpy_s": best(lambda: a @ w), "cpu_scipy_csr_s": best(lambda: a @ csr)}


def measure(case, config, shape, seed=0, sim="verilator", table=None):
    """Run one case in skip, gate and dense mode; returns a flat dict of figures."""
    m, k, n = shape
    table = table or energy.EnergyTable.default()
    rng = np.random.default_rng(seed)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    weights = sparse_weights(rng, k, n, case.pattern, case.density)
    programs = [compile_gemm(acts, weights, config, mode) for mode in MODES]
    started = time.perf_counter()
    skip, gate, dense = (r.check(p) for r, p in zip(run_programs(programs, sim), programs))
    wall = time.perf_counter() - started
    energies = {mode.name.lower(): energy.estimate(energy.events(program, rtl),
                                                   rtl.total("cycles"), table)
                for mode, program, rtl in zip(MODES, programs, (skip, gate, dense))}
    for program, rtl in zip(programs, (skip, gate, dense)):
        golden.check_result(assemble(program, rtl.results), acts, weights,
                            f"bench {case}: the RTL result in {program.mode.name.lower()} mode")

    nnz = int(np.count_nonzero(weights))
    cycles = skip.total("cycles")
    dense_cycles = dense.total("cycles")
    ideal = model.ideal_cycles(m * nnz, config.pe_count)
    dense_ideal = model.ideal_cycles(m * k * n, config.pe_count)
    lane_cycles = config.cols * cycles
    busy, decoder, imbalance = (skip.total(x) for x in
                                ("lane_busy", "stall_decoder", "stall_imbalance"))
    fill_drain = lane_cycles - busy - decoder - imbalance
    simulated = cycles + dense_cycles + gate.total("cycles")
    figures = {
        "format": f"nm {config.nm_n}:{config.nm_m}" if config.fmt == "nm" else config.fmt,
        "pattern": case.pattern,
        "density": round(nnz / weights.size, 4),
        "sparsity": round(1 - nnz / weights.size, 4),
        "cycles_skip": cycles,
        "cycles_dense": dense_cycles,
        "ideal_cycles": ideal,
        "dense_ideal_cycles": dense_ideal,
        "speedup": round(dense_cycles / cycles, 3),
        "ideal_speedup": round(dense_cycles / max(ideal, 1), 3),
        "fraction_of_ideal": round(ideal / cycles, 4),
        "dense_fraction": round(dense_ideal / dense_cycles, 4),
        # the gap to ideal, in cycles: lane-cycles lost, averaged over the lanes
        "gap_imbalance": round(imbalance / config.cols, 1),
        "gap_decoder": round(decoder / config.cols, 1),
        "gap_fill_drain": round(fill_drain / config.cols, 1),
        "predicted_cycles": programs[0].predicted_cycles,
        "model_error": round(abs(programs[0].predicted_cycles - cycles) / cycles, 5),
        "sim_cycles_per_s": round(simulated / (skip.wall_seconds + dense.wall_seconds +
                                               gate.wall_seconds)),
        "wall_s": round(wall, 2),
        "cycles_gate": gate.total("cycles"),
        # end to end (the RTL's total_cycles), and what bounds the skip-mode GEMM
        "load_cycles": skip.total("load_cycles"),
        "readback_cycles": skip.readback_cycles,
        "total_skip": skip.total_cycles,
        "total_dense": dense.total_cycles,
        "speedup_end_to_end": (round(dense.total_cycles / skip.total_cycles, 3)
                               if config.double_buffer else None),
        "bound": "load" if skip.total("load_cycles") > cycles else "compute",
        "operand_bytes": m * k + programs[0].weight_bits_loaded // 8,
        "macs_effectual": m * nnz,
    }
    for mode, figures_ in energies.items():
        figures[f"energy_{mode}_pj"] = figures_["energy_pj"]
        figures[f"onchip_energy_{mode}_pj"] = figures_["energy_pj"] - \
            figures_["energy_breakdown_pj"]["offchip"]
        figures[f"onchip_edp_{mode}"] = figures_["onchip_edp_pj_cycles"]
    figures["offchip_energy_pj"] = energies["skip"]["energy_breakdown_pj"]["offchip"]
    figures["onchip_edp_ratio"] = round(figures["onchip_edp_dense"] /
                                        figures["onchip_edp_skip"], 2)
    figures["energy_table"] = table.name
    figures.update(cpu_times(acts, weights))
    figures["accelerator_s"] = cycles / (ULX3S_MHZ * 1e6)
    return figures


def run_bench(cases=None, *, rows=8, cols=8, shape=(256, 256, 256), progress=True,
              table=None):
    cases = default_cases() if cases is None else cases
    config = cases[0].config(rows, cols, shape)
    rows_out = []
    iterator = cases
    if progress:
        from tqdm import tqdm
        iterator = tqdm(cases, desc="bench", unit="case")
    for case in iterator:
        if progress:
            iterator.set_postfix_str(f"{case.pattern} d={case.density}")
        rows_out.append(measure(case, case.config(rows, cols, shape), shape, table=table))
    return config, rows_out


COLUMNS = [("format", "format"), ("pattern", "pattern"), ("sparsity", "sparsity"), ("cycles_dense", "dense cycles"),
           ("cycles_skip", "skip cycles"), ("ideal_cycles", "ideal"),
           ("speedup", "speedup"), ("ideal_speedup", "ideal speedup"),
           ("total_skip", "skip end to end"), ("speedup_end_to_end", "speedup end to end"),
           ("bound", "bound by"),
           ("fraction_of_ideal", "fraction of ideal"), ("gap_imbalance", "gap: imbalance"),
           ("gap_decoder", "gap: decoder"), ("gap_fill_drain", "gap: fill/drain"),
           ("predicted_cycles", "model"), ("sim_cycles_per_s", "sim cycles/s")]


def markdown_table(rows):
    return table([title for _, title in COLUMNS],
                 ([_cell(key, row[key]) for key, _ in COLUMNS] for row in rows),
                 align="l" + "r" * (len(COLUMNS) - 1))


def _cell(key, value):
    if key in ("sparsity",):
        return f"{100 * value:.1f}%"
    if value is None:
        return "—"
    if key in ("speedup", "ideal_speedup", "speedup_end_to_end"):
        return f"{value:.2f}×"
    if isinstance(value, float):
        return f"{value:g}"
    return value


#: The energy and CPU figures of a bench row (besides :data:`COLUMNS`).
ENERGY_FIELDS = [f"{kind}_{mode}{unit}" for mode in ("skip", "gate", "dense")
                 for kind, unit in (("energy", "_pj"), ("onchip_energy", "_pj"),
                                    ("onchip_edp", ""))] + [
    "offchip_energy_pj", "onchip_edp_ratio", "cpu_numpy_s", "cpu_scipy_csr_s",
    "accelerator_s"]


def energy_markdown(rows, shape):
    """Energy per MAC (on chip, per dense-equivalent MAC of the GEMM) of the three modes, the
    off-chip energy they share, on-chip EDP dense/skip, and the CPU against the accelerator."""
    macs = int(np.prod(shape))
    head = ["format", "pattern", "sparsity", "on-chip pJ/MAC dense", "gate", "skip",
            "off-chip µJ (all modes)", "energy µJ dense / gate / skip", "on-chip EDP dense/skip",
            "CPU NumPy ms", "CPU scipy CSR ms", f"accelerator ms at {ULX3S_MHZ} MHz"]
    lines = []
    for row in rows:
        per_mac = [f"{row[f'onchip_energy_{mode}_pj'] / macs:.3f}"
                   for mode in ("dense", "gate", "skip")]
        total = " / ".join(f"{row[f'energy_{mode}_pj'] / 1e6:.2f}"
                           for mode in ("dense", "gate", "skip"))
        lines.append([
            row["format"], row["pattern"], f"{100 * row['sparsity']:.1f}%", *per_mac,
            f"{row['offchip_energy_pj'] / 1e6:.2f}", total, f"{row['onchip_edp_ratio']:.1f}×",
            f"{1e3 * row['cpu_numpy_s']:.2f}", f"{1e3 * row['cpu_scipy_csr_s']:.2f}",
            f"{1e3 * row['accelerator_s']:.3f}"])
    return table(head, lines, align="ll" + "r" * (len(head) - 2))


def plot_energy(rows, shape, path):
    """Energy per dense-equivalent MAC and on-chip EDP against sparsity, the three modes, for
    the unstructured (uniform) csc cases."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    macs = int(np.prod(shape))
    pts = sorted((r for r in rows if r["pattern"] == "uniform" and r["format"] == "csc"),
                 key=lambda r: r["sparsity"])
    xs = [100 * r["sparsity"] for r in pts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, marker in (("dense", "s"), ("gate", "^"), ("skip", "o")):
        ax1.plot(xs, [r[f"energy_{mode}_pj"] / macs for r in pts], marker=marker,
                 label=f"{mode} (total)")
        ax1.plot(xs, [r[f"onchip_energy_{mode}_pj"] / macs for r in pts], marker=marker,
                 linestyle="--", label=f"{mode} (on chip)")
        ax2.plot(xs, [r[f"onchip_edp_{mode}"] for r in pts], marker=marker, label=mode)
    ax1.set(xlabel="weight sparsity (%)", ylabel="pJ per dense-equivalent MAC", yscale="log",
            title="Energy per MAC (estimate: RTL events × table)")
    ax2.set(xlabel="weight sparsity (%)", ylabel="on-chip energy × cycles (pJ·cycles)",
            yscale="log", title="On-chip energy-delay product")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roofline(rows, config, path):
    """The roofline of the skip-mode GEMMs: effectual MACs per cycle against effectual MACs per
    operand byte loaded, under the compute roof (every PE busy with a nonzero weight) and the
    load roof (the bytes the native ports took per load beat, the median of the cases), each
    GEMM twice: compute only and end to end."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intensity = [r["macs_effectual"] / r["operand_bytes"] for r in rows]
    bandwidth = float(np.median([r["operand_bytes"] / r["load_cycles"] for r in rows]))
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ridge = config.pe_count / bandwidth      # where the two roofs meet
    xs = np.logspace(np.log10(min(min(intensity) / 2, ridge / 4)),
                     np.log10(max(intensity) * 2), 100)
    ax.plot(xs, np.minimum(config.pe_count, bandwidth * xs), "k-", linewidth=1,
            label=f"roof: {config.pe_count} MAC/cycle, {bandwidth:.1f} B/load beat")
    for bound, color in (("compute", "tab:blue"), ("load", "tab:red")):
        pts = [(x, r) for x, r in zip(intensity, rows) if r["bound"] == bound]
        if not pts:
            continue
        ax.scatter([x for x, _ in pts], [r["macs_effectual"] / r["cycles_skip"] for _, r in pts],
                   color=color, marker="o", label=f"{bound}-bound: compute only")
        ends = [(x, r) for x, r in pts if r["total_skip"]]
        if ends:
            ax.scatter([x for x, _ in ends], [r["macs_effectual"] / r["total_skip"]
                                              for _, r in ends],
                       color=color, marker="x", label=f"{bound}-bound: end to end")
    ax.set(xscale="log", yscale="log", xlabel="effectual MACs per operand byte loaded",
           ylabel="effectual MACs per cycle",
           title="Roofline of the skip-mode GEMMs (RTL counters)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_note():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = re.findall(r"model name\s*:\s*(.+)", f.read())
            cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores"


def plot(rows, path):
    """Speedup and fraction of ideal against sparsity into ``path``; returns the legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    # one series per (format, pattern): csc 2:4 and nm 2:4 are different runs, told apart by
    # the legend and the marker
    markers = {}
    for fmt, pattern in dict.fromkeys((r["format"], r["pattern"]) for r in rows):
        pts = sorted((r for r in rows if r["pattern"] == pattern and r["format"] == fmt),
                     key=lambda r: r["sparsity"])
        xs = [100 * r["sparsity"] for r in pts]
        marker = markers.setdefault(fmt, "osD^v<>"[len(markers) % 7])
        label = PATTERNS[pattern][0] if pattern in PATTERNS else pattern
        style = dict(marker=marker, label=f"{label} ({fmt})", markersize=7)
        if fmt != "csc":  # hollow and larger: visible around a csc point at the same place
            style.update(linestyle="none", markersize=11, markerfacecolor="none",
                         markeredgewidth=2)
        ax1.plot(xs, [r["speedup"] for r in pts], **style)
        ax2.plot(xs, [r["fraction_of_ideal"] for r in pts], **style)
    xs = np.linspace(0, 96, 100)
    ax1.plot(xs, 1 / (1 - xs / 100), "k--", linewidth=0.8, label="ideal (1 / density)")
    ax1.set(xlabel="weight sparsity (%)", ylabel="speedup vs dense mode (cycles)",
            yscale="log", title="Speedup from the RTL's cycle counter")
    low = min(0.8, min(r["fraction_of_ideal"] for r in rows) - 0.05)
    ax2.set(xlabel="weight sparsity (%)", ylabel="fraction of ideal", ylim=(low, 1.01),
            title="ideal_cycles / cycles")
    ax2.axhline(0.9, color="gray", linewidth=0.6, linestyle=":")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    labels = [text.get_text() for text in ax1.get_legend().get_texts()]
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return labels


def write_outputs(config, rows, out_dir, shape, readme=None, command=None):
    """Write bench.md, bench.csv, bench.json, bench.png into ``out_dir`` and update the marked
    section of ``readme`` if given (``zeroskip.apps.readme``): all of them or, on a failure,
    none. ``command``: what was run, for the table's header (default: this function)."""
    from zeroskip.apps.outputs import Outputs
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Outputs() as outputs:
        text = _write_outputs(outputs, config, rows, out_dir, shape, readme, command)
        outputs.commit()
    return text


def _write_outputs(outputs, config, rows, out_dir, shape, readme, command):
    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    outputs.write(out_dir / "bench.csv", write_csv)
    outputs.write_text(out_dir / "bench.json", json.dumps(
        {"config": config.to_dict(), "shape": shape, "rows": rows}, indent=1) + "\n")
    outputs.write(out_dir / "bench.png", lambda tmp: plot(rows, tmp))
    outputs.write(out_dir / "bench_energy.png", lambda tmp: plot_energy(rows, shape, tmp))
    outputs.write(out_dir / "bench_roofline.png", lambda tmp: plot_roofline(rows, config, tmp))
    m, k, n = shape
    worst_model = max(r["model_error"] for r in rows)
    throughput = round(np.mean([r["sim_cycles_per_s"] for r in rows]))
    text = (f"{m}×{k}×{n} GEMM on a {config.rows}×{config.cols} array, "
            f"skip vs dense mode on Verilator; measured {machine_note()} by "
            f"`{command or 'zeroskip.apps.bench.write_outputs'}`.\n\n"
            f"{markdown_table(rows)}\n\n"
            f"End to end: the RTL's `total_cycles` (double-buffered array: first load beat to "
            f"last result read); the GEMM fits one run, so loading and read-back add to compute. "
            f"Bound by: whether loading the operands (`load_cycles`) or computing takes longer "
            f"in skip mode.\n\n"
            f"Gap columns: cycles lost to ideal, per lane on average (imbalance: lanes done "
            f"while others work; decoder: a lane with work but no token; fill/drain: pipeline "
            f"start and end). Cycle model vs RTL: worst error {100 * worst_model:.2f}%. "
            f"Simulation throughput of the {config.rows}×{config.cols} accelerator on "
            f"Verilator: {throughput:,} cycles/s on average.\n\n"
            f"Energy, an estimate: the RTL's event counters of each mode priced by the "
            f"{rows[0]['energy_table']} table (`sim/energy_table.json`: Horowitz, ISSCC 2014, "
            f"45 nm, and the assumptions it names); off-chip is the operands and results moved "
            f"to and from the host's DRAM, the same in every mode. CPU: the same GEMM on this "
            f"machine, int32 NumPy and scipy.sparse CSR, best of 5; the accelerator's time is "
            f"its skip-mode RTL cycles at the ULX3S clock.\n\n"
            f"{energy_markdown(rows, shape)}\n")
    outputs.write_text(out_dir / "bench.md", text)
    if readme is not None:
        images = os.path.relpath(out_dir, Path(readme).parent)
        content = rewritten_section(Path(readme).read_text(), "bench",
                                    bench_section(text.rstrip("\n"), Path(images).as_posix()))
        outputs.write_text(readme, content)
    return text

