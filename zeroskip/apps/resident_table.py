"""The network resident on chip against the host-sequenced path and the CPU, per bundled model
(``make resident``): docs/resident.json and docs/resident.md, the README's ``resident``
section.

Per model (the digits CNN and MLP, the first ``images`` test images):

- **resident, ULX3S board top through its UART**: ``zeroskip.run(..., resident=True,
  board="ulx3s-85f")``: the board's engine in its simulated top, the program loaded once over
  the UART at 3 Mbaud, then each image; cycles per inference from the engine's counters, the
  link's bytes per inference from the board's own counters, latency and inferences/s at
  100 MHz with and without the UART; outputs bit-exact against the model's definition.
- **host-sequenced, ULX3S board top through its UART**: the same model's GEMMs for one image
  (each layer's operands sent, the run, the results read, as ``zeroskip run --board ulx3s-85f
  --port`` does) through the simulated board top of the ULX3S configuration: the cycles from
  the first request to the last reply at 100 MHz. The host's own nodes between the GEMMs
  (requantization, im2col, pooling) are not timed.
- **energy (estimate)**: per inference on the default 8×8 array with its energy counters,
  resident against host-sequenced over the same images, priced by the default table.
- **CPU**: onnxruntime (default session) on this machine, batch 1, the median over the
  images.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from zeroskip.markdown import table

__all__ = ["measure_model", "resident_markdown", "main"]

MODELS = Path(__file__).resolve().parents[2] / "models"
BOARD = "ulx3s-85f"


def _host_gemms(model, x):
    """The host-sequenced path's GEMMs for ``x`` (int8 operand pairs, in order)."""
    from zeroskip.frontend.graph import Executor
    from zeroskip.sim import golden

    class Recorder:
        from zeroskip.config import ArrayConfig, Mode
        config, mode = ArrayConfig(), Mode.SKIP

        def __init__(self):
            self.pairs = []

        def run(self, pairs):
            self.pairs += pairs
            report = {name: 0 for name in ("cycles", "dense_cycles", "ideal_cycles",
                                           "macs_executed", "load_cycles",
                                           "mapped_ideal_cycles")}
            provenance = {"dense_cycles": "model", "speedup": "model"}
            return [(golden.gemm(a, w), dict(report, provenance=provenance)) for a, w in pairs]

    recorder = Recorder()
    Executor(model, recorder).run({"x": x})
    return recorder.pairs


def _host_sequenced_on_board(model, x) -> dict:
    """One image's GEMMs through the ULX3S board top's UART, end to end."""
    from zeroskip.config import Mode
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.platforms.link_time import board_timing
    from zeroskip.platforms.top import DEFAULT_BAUD
    from zeroskip.sim import golden
    from zeroskip.sim.compiler import assemble, compile_gemm
    board = BOARDS[BOARD]
    pairs = _host_gemms(model, x[:1])
    programs = [compile_gemm(a, w, board.config, Mode.SKIP) for a, w in pairs]
    out = board_timing(BOARD, programs, DEFAULT_BAUD)
    for (a, w), program, result in zip(pairs, programs, out["results"]):
        golden.check_result(assemble(program, result.results), a, w, "host-sequenced GEMM")
    clock_hz = board.clock_mhz * 1e6
    return {"gemms": len(pairs), "requests": out["requests"], "bytes_sent": out["bytes_sent"],
            "cycles": out["cycles"], "seconds": out["cycles"] / clock_hz,
            "compute_cycles": sum(r.total("cycles") for r in out["results"])}


def _cpu(path, x) -> dict:
    """onnxruntime's default session, batch 1: the median seconds per image."""
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: x[:1]})     # warm-up
    times = []
    for image in x:
        started = time.perf_counter()
        session.run(None, {name: image[None]})
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return {"seconds": seconds, "inferences_per_s": 1 / seconds,
            "cpu": platform.processor() or platform.machine(),
            "onnxruntime": ort.__version__}


def measure_model(name: str, images: int) -> dict:
    """Every figure of one model (see the module's docstring)."""
    import onnx

    import zeroskip
    path = MODELS / f"{name}.onnx"
    x = np.load(MODELS / "digits_test_x.npy")[:images].astype(np.float32)
    labels = np.load(MODELS / "digits_test_y.npy")[:images]
    _, board = zeroskip.run(path, x, labels=labels, resident=True, board=BOARD)
    total = board["total"]
    _, resident = zeroskip.run(path, x, labels=labels, resident=True)
    _, host = zeroskip.run(path, x, labels=labels)
    host_energy = host["total"]["energy_pj"] / len(x)
    resident_energy = resident["total"]["energy_per_inference_pj"]
    return {
        "model": name, "images": len(x),
        "bit_exact": board["reference"]["unoptimized"]["bit_exact"],
        "accuracy": board["reference"]["unoptimized"].get("accuracy"),
        "resident": {key: total[key] for key in (
            "cycles_per_inference", "array_cycles_per_inference", "clock_hz",
            "inferences_per_s", "link_bytes_per_inference", "offchip_words_per_inference",
            "link_seconds_per_inference", "inferences_per_s_with_uart")},
        "host_sequenced": _host_sequenced_on_board(onnx.load(path), x),
        "energy_pj": {"resident": resident_energy, "host_sequenced": host_energy,
                      "ratio": host_energy / resident_energy,
                      "array": f"{resident['array']['rows']}×{resident['array']['cols']}",
                      "table": resident["total"]["energy_table"]},
        "cpu": _cpu(path, x),
    }


def resident_markdown(results: list[dict]) -> str:
    """The table of docs/resident.md (and the README's section) and its note."""
    rows = []
    for r in results:
        res, host, cpu, energy = r["resident"], r["host_sequenced"], r["cpu"], r["energy_pj"]
        compute_ms = res["cycles_per_inference"] / res["clock_hz"] * 1e3
        uart_ms = compute_ms + res["link_seconds_per_inference"] * 1e3
        rows.append([
            r["model"], f"{res['cycles_per_inference']:,}", f"{compute_ms:.3f}",
            f"{res['inferences_per_s']:,.0f}", f"{res['link_bytes_per_inference']:,}",
            f"{uart_ms:.3f}", f"{res['inferences_per_s_with_uart']:,.0f}",
            f"{host['seconds'] * 1e3:.2f}", f"{host['bytes_sent']:,}",
            f"{cpu['seconds'] * 1e3:.3f}",
            f"{energy['resident'] / 1e3:,.1f} vs {energy['host_sequenced'] / 1e3:,.1f} "
            f"({energy['ratio']:.1f}×)"])
    head = ["model", "resident cycles (RTL)", "resident ms (compute)", "inferences/s",
            "link bytes/inference", "resident ms with UART", "inferences/s with UART",
            "host-sequenced ms with UART", "host-sequenced bytes sent", "CPU ms (onnxruntime)",
            "energy nJ: resident vs host-sequenced"]
    first = results[0]
    note = (
        f"The bundled models on the ULX3S's network engine (`make resident`), "
        f"{first['images']} test images each, every output bit-exact against the model's "
        f"definition (onnxruntime, graph as written). Resident: the engine in the simulated "
        f"ULX3S board top (Verilator), the program loaded once through its UART at 3 Mbaud, "
        f"then per image its input written, a RUN, its output read; cycles from the engine's "
        f"counters, link bytes from the board link's own counters (frames included), "
        f"milliseconds at the board's 100 MHz (with the UART: plus the bytes' time on the "
        f"line). Host-sequenced: one image's GEMMs through the same board top of the ULX3S "
        f"configuration (operands sent, run, results read per layer), from the first request "
        f"to the last reply; the host's own nodes between them are not timed. CPU: "
        f"onnxruntime {first['cpu']['onnxruntime']} (default session, batch 1, median) on "
        f"this machine ({first['cpu']['cpu']}). Energy: an estimate per inference on the "
        f"default {first['energy_pj']['array']} array with its energy counters, resident "
        f"against host-sequenced (batched: {first['images']} images a GEMM), priced by the "
        f"{first['energy_pj']['table']['name']} table ({first['energy_pj']['table']['source']}).")
    return table(head, rows, "lrrrrrrrrrl") + "\n\n" + note


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zeroskip.apps.resident_table",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for resident.{json,md}")
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args(argv)
    results = [measure_model(name, args.images) for name in ("digits_cnn", "digits_mlp")]
    out = Path(args.out)
    (out / "resident.json").write_text(json.dumps({"models": results}, indent=2) + "\n")
    (out / "resident.md").write_text(resident_markdown(results) + "\n")
    print(resident_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
