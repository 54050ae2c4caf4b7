"""One point on the RTL: :func:`run_point`, the Dask task that runs a point's GEMM (or its
pruned model) on the generated array and returns its row of results.csv, and
:func:`failed_row`, the row of a task that never returned."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from zeroskip.apps.sweep.arrays import accelerator
from zeroskip.apps.sweep.columns import COLUMNS
from zeroskip.apps.sweep.errors import first_line
from zeroskip.apps.sweep.points import Point
from zeroskip.apps.sweep.workloads import ModelWorkload, operands

__all__ = ["run_point", "failed_row"]


def run_point(params: dict[str, Any], gateware: str | None = None,
              workload: ModelWorkload | None = None) -> dict[str, Any]:
    """One point on the RTL (a Dask task; also callable directly): its row of results.csv.

    ``gateware``: the digest of the gateware sources the sweep runs (``gateware_digest()``);
    a worker whose sources differ (another zeroskip, or a checkout edited during the sweep)
    runs nothing and says so in ``error``. Never raises for a failure of the point itself:
    the row's ``error`` says what failed."""
    from zeroskip.sim.rtl.cache import gateware_digest
    started = time.perf_counter()
    row: dict[str, Any] = {name: "" for name in COLUMNS}
    row.update(params)
    point = Point.from_params(params)
    row["pe_count"] = point.rows * point.cols
    try:
        from distributed import get_worker
        row["worker"] = get_worker().address
    except (ImportError, ValueError):
        row["worker"] = "local"
    try:
        row["gateware"] = gateware_digest()
        if gateware is not None and row["gateware"] != gateware:
            raise RuntimeError(f"this worker's gateware sources (digest {row['gateware']}) "
                               f"are not the sweep's ({gateware}): the same zeroskip on every "
                               f"worker, unchanged during the sweep")
        if point.model:
            if workload is None:
                raise RuntimeError("a model point needs its workload (the model and inputs)")
            row.update(_run_model(point, workload))
            row["seconds"] = round(time.perf_counter() - started, 2)
            return row
        acts, weights = operands(point)
        (result, report), = accelerator(point).run([(acts, weights)])
        exact = bool(np.array_equal(result, acts.astype(np.int64) @ weights.astype(np.int64)))
        row.update({
            "sparsity_measured": round(1 - report["weight_density"], 4),
            "cycles": report["cycles"],
            "dense_cycles": report["dense_cycles"],
            "dense_cycles_source": report["provenance"]["dense_cycles"],
            "ideal_cycles": report["ideal_cycles"],
            "fraction_of_ideal": report["fraction_of_ideal"],
            "speedup": report["speedup"],
            # the format's cost: bits of the compressed weights (int8 dense: 8 per weight)
            "weight_bits": report["weight_bits"],
            "dense_weight_bits": report["dense_weight_bits"],
            "dense_macs": point.m * point.k * point.n,
            "energy_pj": _blank(report["energy_pj"]),
            "onchip_edp_ratio_vs_dense": _blank(report["onchip_edp_ratio_vs_dense"]),
            "bit_exact": exact,
            "error": "" if exact else "the result differs from NumPy's",
        })
    except Exception as exc:  # recorded; the sweep goes on
        row["error"] = first_line(exc)
        if "differs from the golden model" in str(exc):
            row["bit_exact"] = False
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def _run_model(point: Point, workload: ModelWorkload) -> dict[str, Any]:
    """A model point's figures: the model pruned to the point's sparsity or N:M pattern (a
    float model pruned before its quantization on the calibration data, as ``zeroskip run
    --calibrate --prune`` does), run on the array and compared with onnxruntime."""
    import onnx

    from zeroskip.frontend.infer import infer
    from zeroskip.frontend.quantize import prepare_model
    from zeroskip.frontend.prune import prune_quantized, weight_sparsity
    from zeroskip.sim.patterns import nm_pattern
    nm = nm_pattern(point.pattern)
    model = prepare_model(onnx.ModelProto.FromString(workload.model), workload.calibration,
                          None if nm else point.sparsity)
    if nm:  # after quantization: the pattern holds on the integers the array gets
        model = prune_quantized(model, nm=nm)
    _, report = infer(model, workload.feeds, accelerator(point), labels=workload.labels,
                      name=workload.name)
    total, reference = report["total"], report["reference"]
    # bit-exact against the graph's own arithmetic: onnxruntime's default fuses some QDQ
    # patterns into kernels that round differently (the report keeps both comparisons)
    exact = bool(reference["bit_exact"] or reference.get("unoptimized", {}).get("bit_exact"))
    accel = [layer for layer in report["layers"] if layer["on"] == "accelerator"]
    return {
        "sparsity_measured": round(weight_sparsity(model), 4),
        "cycles": total["cycles"], "dense_cycles": total["dense_cycles"],
        "dense_cycles_source": total.get("provenance", {}).get("dense_cycles", ""),
        "ideal_cycles": total["ideal_cycles"], "fraction_of_ideal": total["fraction_of_ideal"],
        "speedup": total["speedup"],
        "dense_macs": sum(layer["m"] * layer["k"] * layer["n"] * layer["gemms"]
                          for layer in accel),
        "bit_exact": exact,
        "energy_pj": _blank(total.get("energy_pj")),
        "onchip_edp_ratio_vs_dense": _blank(total.get("onchip_edp_ratio_vs_dense")),
        "accuracy": reference.get("accuracy", ""),
        "reference_accuracy": reference.get("reference_accuracy", ""),
        "error": "" if exact else f"outputs differ from {reference['runtime']}'s "
                                  f"(max |diff| {reference['max_abs_diff']:g})",
    }


def _blank(value: Any) -> Any:
    """A report's missing figure (None) as an empty cell."""
    return "" if value is None else value


def failed_row(point: Point, exc: BaseException) -> dict[str, Any]:
    """The row of a task that did not return (its worker died too often, a cluster failure)."""
    row: dict[str, Any] = {name: "" for name in COLUMNS}
    row.update(point.params())
    row["pe_count"] = point.rows * point.cols
    row["error"] = first_line(exc)
    return row

