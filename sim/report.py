"""The GEMM report: hardware counters plus the figures DESIGN.md defines from them."""

import numpy as np

from . import formats, model

__all__ = ["gemm_report"]


def gemm_report(program, weights, rtl, simulator):
    """Report of one GEMM run.

    Parameters
    ----------
    program : :class:`zeroskip.sim.compiler.Program`
    weights : ndarray
        W, for the work and storage figures.
    rtl : :class:`zeroskip.sim.runner.RunResult`
        What the RTL counted.
    simulator : str
    """
    config = program.config
    m, k, n = program.shape
    counters = rtl.counters

    nnz = int(np.count_nonzero(weights))
    cycles = rtl.total("cycles")
    macs_effectual = m * nnz
    ideal = -(-macs_effectual // config.pe_count)
    compressed = formats.encode_for(config, weights)
    lane_cycles = config.cols * cycles
    busy, decoder, imbalance = (rtl.total(x) for x in ("lane_busy", "stall_decoder",
                                                    "stall_imbalance"))
    return {
        "cycles": cycles,
        # a write-beat counter that runs since reset: its last value covers every run
        "load_cycles": int(counters[-1]["load_cycles"]),
        "ideal_cycles": ideal,
        "fraction_of_ideal": round(ideal / cycles, 4) if cycles else None,
        "macs_total": m * k * n,
        "macs_effectual": macs_effectual,
        "macs_executed": rtl.total("macs_executed"),
        "macs_gated": rtl.total("macs_gated"),
        "pe_count": config.pe_count,
        "rows": config.rows,
        "cols": config.cols,
        "mode": program.mode.name.lower(),
        "format": config.fmt,
        **({"nm": f"{config.nm_n}:{config.nm_m}"} if config.fmt == "nm" else {}),
        "simulator": simulator,
        "weight_bits": int(formats.size_bits(config.fmt, compressed)),
        "dense_weight_bits": 8 * k * n,
        "weight_density": round(nnz / (k * n), 6),
        "shape": {"m": m, "k": k, "n": n},
        "runs": len(program.runs),
        "predicted_cycles": program.predicted_cycles,
        # Where the lane-cycles went (each sums over the lanes of every run):
        "lane_cycles": {
            "busy": busy,
            "stall_decoder": decoder,
            "stall_imbalance": imbalance,
            "fill_drain": lane_cycles - busy - decoder - imbalance,
        },
        "fill_drain_cycles_per_run": model.fill_drain_cycles(config),
        "sim_cycles_per_second": round(cycles / rtl.wall_seconds) if rtl.wall_seconds else None,
    }
