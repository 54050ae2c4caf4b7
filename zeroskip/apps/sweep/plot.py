"""``pareto.png``: a sweep's rows as one panel per workload, a colour and marker per format,
the Pareto front joined and ringed."""

from __future__ import annotations

import os
from typing import Any, Sequence

from zeroskip.apps.sweep.columns import format_label, number
from zeroskip.apps.sweep.pareto import pareto_flags, tradeoff, workload_of

__all__ = ["plot"]


def plot(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """One panel per workload (sparsity and shape or model, board), a colour per format: cycles
    against PE count, or for points built for a board dense-equivalent GMAC/s at the achieved
    Fmax against LUTs; the Pareto front joined and ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [row for row in rows if tradeoff(row) is not None]
    workloads = sorted({workload_of(row) for row in good},
                       key=lambda w: tuple((number(x), x) for x in w))
    panels = max(len(workloads), 1)
    across = min(panels, 3)
    down = -(-panels // across)
    fig, axes = plt.subplots(down, across, figsize=(4.6 * across, 3.8 * down), squeeze=False)
    labels = sorted({format_label(row) for row in good})
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    flags = pareto_flags(good)
    # formats on one point (same PEs, same cycles) stay visible: each a marker and a size
    markers = {label: ("o", "s", "D", "^", "v", "P")[i % 6] for i, label in enumerate(labels)}
    sizes = {label: max(90 - 22 * i, 14) for i, label in enumerate(labels)}
    for ax, workload in zip(axes.flat, workloads):
        board, sparsity, m, k, n, model = workload[:6]
        if board:
            def xy(row):
                return number(row["luts"]), number(row["gmacs"])
            xlabel, ylabel = f"LUTs ({board})", "dense-equivalent GMAC/s at Fmax"
        else:
            def xy(row):
                return number(row["pe_count"]), number(row["cycles"])
            xlabel, ylabel = "PEs (rows × cols)", "cycles (RTL)"
        mine = [(row, flag) for row, flag in zip(good, flags) if workload_of(row) == workload]
        for label in labels:
            pts = [xy(row) for row, _ in mine if format_label(row) == label]
            if pts:
                ax.scatter(*zip(*pts), color=colours[label], marker=markers[label],
                           label=label, s=sizes[label], zorder=3)
        front = sorted(xy(row) for row, flag in mine if flag)
        if front:
            xs, ys = zip(*front)
            ax.step(xs, ys, where="post", color="k", linewidth=1, zorder=2,
                    label="Pareto front")
            ax.scatter(xs, ys, s=200, facecolors="none", edgecolors="k", linewidths=1.2,
                       zorder=4)
        ax.set(xlabel=xlabel, ylabel=ylabel,
               title=f"sparsity {float(sparsity):g}, {model or f'{m}×{k}×{n}'}")
        if board:  # which array each point is
            for row, _ in mine:
                ax.annotate(f"{row['rows']}×{row['cols']}", xy(row), fontsize=7,
                            xytext=(4, -10), textcoords="offset points")
        else:
            ax.set(xscale="log", yscale="log")
            ticks = sorted({xy(row)[0] for row, _ in mine})
            ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
            ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    if not workloads:
        axes.flat[0].text(0.5, 0.5, "no point ran", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
