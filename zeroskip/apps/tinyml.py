"""MLPerf Tiny's reference int8 models on a board's configuration: ``make tinyml``.

Each model found in ``--models`` (the mlcommons/tiny repository's reference ``.tflite`` files,
which zeroskip does not ship) runs as given and pruned by magnitude to each ``--sparsity``, on
one random int8 sample (batch 1: the latency of one inference), in skip mode on the board's
exact array configuration in Verilator, every output checked bit for bit against LiteRT's
reference kernels. Writes ``OUT/tinyml.json`` and ``OUT/tinyml.md``. The simulated array is
the board's configuration with its energy counters on (they count; they change no cycle).

Figures: ``cycles`` (RTL counters, the array layers), ``dense_cycles`` (the exact cycle model
of dense mode on the same array), ``fraction_of_ideal`` (the array layers'), the latency of the
array layers at the board's clock, and the energy estimate per inference. Host operators
(pooling, residual adds, softmax) run on the host in this flow and are not in the latency;
the resident network (issue 31) moves them on chip.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from zeroskip.markdown import table

__all__ = ["MODELS", "PUBLISHED", "measure", "markdown", "main"]

#: The four MLPerf Tiny v1.x reference int8 models: file name -> (task, benchmark)
MODELS = {"ad01_int8.tflite": ("AD", "anomaly detection, FC autoencoder (ToyADMOS)"),
          "kws_ref_model.tflite": ("KWS", "keyword spotting, DS-CNN (Speech Commands)"),
          "pretrainedResnet_quant.tflite": ("IC", "image classification, ResNet-8 (CIFAR-10)"),
          "vww_96_int8.tflite": ("VWW", "visual wake words, MobileNetV1 0.25 (96×96)")}

#: Published MLPerf Tiny latencies (ms) quoted for comparison (closed division results, as
#: the issue lists them): fpgaConvNet on a ZedBoard, and a Cortex-M4 at 120 MHz.
PUBLISHED: dict[str, dict[str, float | None]] = {
    "IC": {"fpgaconvnet_zedboard_ms": 0.411, "cortex_m4_ms": 166.0},
    "KWS": {"fpgaconvnet_zedboard_ms": 0.324, "cortex_m4_ms": 43.0},
    "VWW": {"fpgaconvnet_zedboard_ms": 9.49, "cortex_m4_ms": 89.0},
    "AD": {"fpgaconvnet_zedboard_ms": None, "cortex_m4_ms": 4.8}}


def measure(path: Path, sparsity: float, board: str, seed: int = 0) -> dict[str, Any]:
    """One model at one sparsity: its report's figures, or an exception if it is not
    bit-exact."""
    from zeroskip.frontend.reference import check_definition
    from zeroskip.frontend.tflite.executor import check_input
    from zeroskip.frontend.tflite.infer import infer
    from zeroskip.frontend.tflite.model import load
    from zeroskip.frontend.tflite.prune import prune
    from zeroskip.gemm_runner import GemmRunner
    from zeroskip.platforms.boards import BOARDS
    model = load(path)
    if sparsity:
        model = load(prune(model, sparsity)[0])
    shape = model.tensors[model.inputs[0]].shape[1:]
    x = check_input(model, np.random.default_rng(seed).integers(-128, 128, (1, *shape)))
    # The board's configuration with the energy counters its bitstream leaves out: the same
    # array, the same cycles (the counters only count), and the events the estimate prices.
    config = BOARDS[board].config.with_(energy_counters=True)
    runner = GemmRunner(config=config, mode="skip")
    started = time.monotonic()
    outputs, report = infer(model, x, runner, name=path.name)
    check_definition(outputs, report)
    total = report["total"]
    clock_mhz = BOARDS[board].clock_mhz
    layers = [layer for layer in report["layers"] if layer["on"] == "accelerator"]
    task = MODELS.get(path.name, (path.stem, ""))[0]
    return {
        "model": path.name, "task": task, "sparsity": sparsity, "board": board,
        "array": f"{runner.config.rows}×{runner.config.cols}", "clock_mhz": clock_mhz,
        "bit_exact": report["reference"]["definition"]["bit_exact"],
        "array_layers": len(layers), "host_layers": total["host_layers"],
        "weight_sparsity": _weight_sparsity(model),
        "cycles": total["cycles"], "dense_cycles": total["dense_cycles"],
        "speedup": total["speedup"], "fraction_of_ideal": total["fraction_of_ideal"],
        "latency_ms": round(total["cycles"] / (clock_mhz * 1e3), 4),
        "dense_latency_ms": round(total["dense_cycles"] / (clock_mhz * 1e3), 4),
        "energy_per_inference_pj": total.get("energy_per_inference_pj"),
        "layer_fraction_of_ideal": [layer["fraction_of_ideal"] for layer in layers],
        "simulation_seconds": round(time.monotonic() - started, 1),
        "provenance": {"cycles": "rtl", "dense_cycles": total["provenance"]["dense_cycles"],
                       "fraction_of_ideal": "derived", "latency_ms": "derived",
                       "energy_per_inference_pj": total["provenance"].get("energy_pj"),
                       "published": "quoted (MLPerf Tiny results)"},
        **PUBLISHED.get(task, {}),
    }


def _weight_sparsity(model) -> float:
    """The zeros among the array layers' weights (every weight tensor once)."""
    from zeroskip.frontend.tflite.model import ARRAY_OPS
    tensors = {op.inputs[1] for op in model.ops if op.code in ARRAY_OPS}
    sizes = [model.tensors[t].data for t in sorted(tensors)]
    total = sum(w.size for w in sizes)
    return round(1 - sum(int(np.count_nonzero(w)) for w in sizes) / total, 4)


def markdown(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        energy = r["energy_per_inference_pj"]
        body.append([r["task"], f"{r['sparsity']:.0%}", f"{r['weight_sparsity']:.1%}",
                     f"{r['cycles']:,}", f"{r['dense_cycles']:,}", f"{r['speedup']}×",
                     r["fraction_of_ideal"], f"{r['latency_ms']:.3f}",
                     "—" if energy is None else f"{energy / 1e6:.2f}",
                     "—" if r.get("fpgaconvnet_zedboard_ms") is None
                     else r["fpgaconvnet_zedboard_ms"], r.get("cortex_m4_ms", "—")])
    board = rows[0]["board"] if rows else ""
    head = ["task", "pruned to", "weight sparsity", "cycles (RTL)", "dense cycles", "speedup",
            "fraction of ideal", f"array ms at {rows[0]['clock_mhz'] if rows else ''} MHz",
            "energy µJ (estimate)", "fpgaConvNet ZedBoard ms", "Cortex-M4 120 MHz ms"]
    note = (f"MLPerf Tiny's reference int8 models on the {board} configuration "
            f"({rows[0]['array'] if rows else ''} PEs), one random int8 sample each, skip mode "
            "in Verilator, every output bit-exact with LiteRT's reference kernels; pruned by "
            "magnitude in the integer domain (no fine-tuning, so accuracy is not claimed). "
            "Cycles and ms cover the array layers only: pooling, residual adds and softmax ran "
            "on the host and are not counted, and the UART is not counted; the published "
            "figures are whole-inference latencies, quoted for orientation, not a like-for-like "
            "comparison. Dense cycles: dense mode on the same GEMMs (the cycle model, checked "
            "against the RTL); a depthwise layer's GEMMs pack a channel per lane into a "
            "block-diagonal weight matrix, whose structural zeros dense mode pays for and skip "
            "mode does not, so part of the speedup of the depthwise networks (KWS, VWW) is "
            "that mapping, not pruning. Energy per inference: an estimate, the RTL's event "
            "counts (the board's configuration simulated with its energy counters, which its "
            "bitstream leaves out) priced by the default table (Horowitz, ISSCC 2014, 45 nm), "
            "off-chip traffic of every layer's operands included.")
    return table(head, body, "llrrrrrrrrr") + "\n\n" + note + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zeroskip.apps.tinyml",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, metavar="DIR",
                        help="a folder holding MLPerf Tiny's reference .tflite files")
    parser.add_argument("--out", default="docs", metavar="DIR")
    parser.add_argument("--board", default="ulx3s-85f")
    parser.add_argument("--sparsity", default="0,0.5,0.75,0.9", metavar="S,...")
    args = parser.parse_args(argv)
    folder = Path(args.models)
    found = [name for name in MODELS if (folder / name).exists()]
    if not found:
        parser.error(f"none of {', '.join(MODELS)} in {folder}")
    rows = []
    for name in found:
        for sparsity in (float(s) for s in args.sparsity.split(",")):
            row = measure(folder / name, sparsity, args.board)
            print(json.dumps({k: row[k] for k in ("model", "sparsity", "cycles", "speedup",
                                                  "fraction_of_ideal", "latency_ms",
                                                  "simulation_seconds")}), flush=True)
            rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tinyml.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    (out / "tinyml.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
