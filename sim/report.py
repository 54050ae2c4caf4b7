"""The GEMM report: hardware counters plus the figures defined from them (README, "Use": the
report's figures), each with its source in ``provenance`` (``events``: a source per event)."""

import numpy as np

from zeroskip.config import Mode
from zeroskip.sim import energy, formats, golden, model
from zeroskip.sim.compiler import compile_gemm

__all__ = ["gemm_report", "RTL", "HOST", "MODEL", "DERIVED", "ESTIMATE"]

#: Where a figure came from: a hardware counter of the RTL (or a figure derived only from such
#: counters and exact host figures, e.g. ``fraction_of_ideal``), a computation on the host from
#: the inputs, or the analytical cycle model.
RTL, HOST, MODEL = energy.RTL, energy.HOST, "model"
#: An energy event computed from hardware counters (``events`` only: its provenance is a dict,
#: one label per event, :data:`zeroskip.sim.energy.EVENT_SOURCES`).
DERIVED = energy.DERIVED
#: An energy figure: event counts priced by an energy table (:mod:`zeroskip.sim.energy`).
ESTIMATE = "estimate (energy table)"


def gemm_report(program, acts, weights, rtl, simulator, table=None):
    """Report of one GEMM run.

    Parameters
    ----------
    program : :class:`zeroskip.sim.compiler.Program`
    acts, weights : ndarray
        A and W, for the work and storage figures.
    rtl : :class:`zeroskip.sim.rtl.runner.RunResult`
        What the RTL counted (checked against the cycle model by ``rtl.check(program)``).
    simulator : str
    table : :class:`zeroskip.sim.energy.EnergyTable`, optional
        Prices the events (default: the bundled table).
    """
    config = program.config
    m, k, n = program.shape

    nnz = int(np.count_nonzero(weights))
    cycles = rtl.total("cycles")
    macs_effectual = m * nnz
    ideal = model.ideal_cycles(macs_effectual, config.pe_count)
    mapped = model.mapped_ideal_cycles(weights, m, config.rows, config.cols)
    # the same GEMM in dense mode on the same array: from the exact cycle model (which every
    # run's counter is checked against), unless this run was dense mode itself
    if program.mode == Mode.DENSE:
        dense_program, dense_cycles, dense_source = program, cycles, RTL
    else:
        dense_program = compile_gemm(acts, weights, config, Mode.DENSE)
        dense_cycles, dense_source = dense_program.predicted_cycles, MODEL
    # the dense array stores W uncompressed
    weight_bits = 8 * k * n if config.arch == "dense" else \
        int(formats.size_bits(config.fmt, formats.encode_for(config, weights)))
    lane_cycles = config.cols * cycles
    busy, decoder, imbalance = (rtl.total(x) for x in ("lane_busy", "stall_decoder",
                                                    "stall_imbalance"))
    figures = {
        "cycles": (cycles, RTL),
        # write beats of each run (the runtimes' LoadCounter over the hardware counter), summed
        "load_cycles": (rtl.total("load_cycles"), RTL),
        "ideal_cycles": (ideal, HOST),
        "fraction_of_ideal": (round(ideal / cycles, 4) if cycles else None, RTL),
        "dense_cycles": (dense_cycles, dense_source),
        "speedup": (round(dense_cycles / cycles, 3) if cycles else None, dense_source),
        "mapped_ideal_cycles": (mapped, HOST),
        "fraction_of_mapped_ideal": (round(mapped / cycles, 4) if cycles else None, RTL),
        "macs_total": (m * k * n, HOST),
        "macs_effectual": (macs_effectual, HOST),
        "macs_both_nonzero": (golden.macs_both_nonzero(acts, weights), HOST),
        "macs_executed": (rtl.total("macs_executed"), RTL),
        "macs_gated": (rtl.total("macs_gated"), RTL),
        "weight_bits": (weight_bits, HOST),
        "weight_bits_loaded": (program.weight_bits_loaded, HOST),
        "dense_weight_bits": (8 * k * n, HOST),
        "weight_density": (round(nnz / (k * n), 6), HOST),
        "runs": (len(program.runs), HOST),
        "k_chunks": (program.k_chunks, HOST),
        "predicted_cycles": (program.predicted_cycles, MODEL),
        # Where the lane-cycles went (each sums over the lanes of every run); fill/drain is
        # what the three counters leave of cols × cycles
        "lane_cycles": ({
            "busy": busy,
            "stall_decoder": decoder,
            "stall_imbalance": imbalance,
            "fill_drain": lane_cycles - busy - decoder - imbalance,
        }, RTL),
        "fill_drain_cycles_per_run": (model.fill_drain_cycles(config), MODEL),
        # simulated cycles (RTL) over the host's wall-clock time of the simulation
        "sim_cycles_per_second": (round(cycles / rtl.wall_seconds) if rtl.wall_seconds
                                  else None, HOST),
    }
    table = table or energy.EnergyTable.default()
    events = energy.events(program, rtl)
    estimated = energy.estimate(events, cycles, table)
    dense_events = None if events is None else energy.dense_events(dense_program, events)
    dense_estimated = energy.estimate(dense_events, dense_cycles, table)
    dense_energy_source = ESTIMATE if program.mode == Mode.DENSE else f"{ESTIMATE}, {MODEL}"
    figures.update({
        # one source per event: a hardware counter of it, computed from counters, or the host's
        "events": (events, dict(energy.EVENT_SOURCES)),
        **{name: (value, ESTIMATE) for name, value in estimated.items()},
        "dense_energy_pj": (dense_estimated["energy_pj"], dense_energy_source),
        "dense_edp_pj_cycles": (dense_estimated["edp_pj_cycles"], dense_energy_source),
        # skip (or gate) against dense mode, energy × cycles without off-chip movement
        "onchip_edp_ratio_vs_dense": (
            round(dense_estimated["onchip_edp_pj_cycles"] / estimated["onchip_edp_pj_cycles"], 3)
            if events is not None and estimated["onchip_edp_pj_cycles"] else None,
            dense_energy_source),
    })
    if rtl.total_cycles is not None:
        # double buffering: end to end, loads and read-back overlapped with compute; the dense
        # mode's from the same schedule's model (which the RTL's total is checked against)
        dense_total = model.overlapped_cycles(
            [model.run_cycles(config, run.tokens) for run in dense_program.runs],
            model.run_transfers(dense_program))
        dense_total_source = RTL if program.mode == Mode.DENSE else MODEL
        if program.mode == Mode.DENSE:
            dense_total = rtl.total_cycles
        figures.update({
            "total_cycles": (rtl.total_cycles, RTL),
            "readback_cycles": (rtl.readback_cycles, HOST),
            "dense_total_cycles": (dense_total, dense_total_source),
            "speedup_end_to_end": (round(dense_total / rtl.total_cycles, 3),
                                   dense_total_source),
        })
    report = {name: value for name, (value, _) in figures.items()}
    report.update({
        "pe_count": config.pe_count,
        "rows": config.rows,
        "cols": config.cols,
        "arch": config.arch,
        "mode": program.mode.name.lower(),
        "format": "dense" if config.arch == "dense" else config.fmt,
        **({"nm": f"{config.nm_n}:{config.nm_m}"} if config.fmt == "nm" else {}),
        "simulator": simulator,
        "shape": {"m": m, "k": k, "n": n},
        "provenance": {name: source for name, (_, source) in figures.items()},
    })
    return report
