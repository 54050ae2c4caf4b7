"""What a board build's tools wrote, read back: the resource and Fmax figures of a build from
nextpnr's report and Yosys' cell statistics (:func:`board_report`), and a failed build's own
error line from its log (:func:`first_error`)."""

import json

__all__ = ["board_report", "first_error"]


def first_error(log_text):
    """The first ``ERROR`` line of a failed build's log (else its last line), and whether it
    says the design does not fit the device: ``(line, does_not_fit)``."""
    lines = log_text.splitlines()
    errors = [line.strip() for line in lines if line.strip().startswith("ERROR")]
    first = errors[0] if errors else (lines[-1].strip() if lines else "no output")
    # nextpnr's placer, out of sites for a cell type (DSP, block RAM, LUTs)
    full = any("no BELs remaining" in line for line in errors)
    return first, full


def board_report(board, out_dir):
    """The report of the build in ``out_dir`` of ``board`` (figures against the device's
    totals, the achieved Fmax of the `sync` clock, whether it meets the board's clock)."""
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
