"""Board builds of a sweep's configurations: :func:`build_figures`, the Dask task that builds a
configuration for its board (resources and achieved Fmax), and :func:`with_build`, a row with
its configuration's figures and throughput at that Fmax."""

from __future__ import annotations

from typing import Any

from zeroskip.apps.sweep.columns import BUILD_FIGURES, UNFIT, number
from zeroskip.apps.sweep.errors import first_line

__all__ = ["build_figures", "with_build"]


def build_figures(board: str, config: dict[str, Any], gateware: str) -> dict[str, Any]:
    """A board build of one configuration (a Dask task): its board top (accelerator, host
    link, UART at the board's clock) through Yosys and nextpnr, one placement seed; the
    resources and the achieved Fmax, or ``error``. Kept under the worker's
    ``$ZEROSKIP_CACHE/builds``, so a configuration is built once per worker and sources."""
    import json
    from dataclasses import replace

    from zeroskip.config import ArrayConfig
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.platforms.flow import BuildFailed, build, design_digest
    from zeroskip.platforms.top import BoardTop
    from zeroskip.sim.rtl.cache import cache_root, gateware_digest
    figures: dict[str, Any] = {"error": ""}
    try:
        if gateware_digest() != gateware:
            raise RuntimeError(f"this worker's gateware sources (digest {gateware_digest()}) "
                               f"are not the sweep's ({gateware})")
        array = ArrayConfig.from_dict(config)
        target = replace(BOARDS[board], config=array)
        core = BoardTop(array, clock_hz=int(target.clock_mhz * 1e6))
        folder = cache_root() / "builds" / \
            f"{board}-{array.name()}-{design_digest(target, core, seeds=(1,))}"
        saved = folder / "report.json"
        if saved.exists():
            report = json.loads(saved.read_text())
        else:
            report = build(target, core, folder, seeds=(1,))
        figures.update({"luts": report["luts_used"], "ffs": report["ffs_used"],
                        "dsps": report["dsps_used"], "brams": report["brams_used"],
                        "fmax_mhz": report["fmax_mhz"], "timing_met": report["timing_met"]})
    except BuildFailed as exc:  # a design too large for the device is a result, not a fault
        # the tool's own line: the log it names is on the worker
        figures["error"] = (f"{UNFIT if exc.does_not_fit else f'build for {board}:'} "
                            f"{exc.tool_error}")
    except Exception as exc:  # recorded in the rows of this configuration
        figures["error"] = f"build for {board}: {first_line(exc)}"
    return figures


def with_build(row: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its configuration's build figures, and its throughput at that Fmax."""
    row = dict(row)
    for name in BUILD_FIGURES:
        row[name] = figures.get(name, "")
    if figures.get("error") and not row.get("error"):
        row["error"] = figures["error"]
    cycles, macs, fmax = (number(row.get(name)) for name in ("cycles", "dense_macs",
                                                             "fmax_mhz"))
    if cycles > 0 and macs > 0 and fmax > 0:
        row["gmacs"] = round(macs / cycles * fmax / 1000, 4)
    return row

