"""The report of ``zeroskip run`` for a reader: ``report.md`` (also the summary the command
prints), leading with the comparison against the model's definition, and ``layers.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zeroskip.frontend.reference import FUSED_KERNELS_DIFFER
from zeroskip.markdown import table

__all__ = ["format_report", "format_resident_report", "plot_layers"]


def _agreement(comparison: dict) -> str:
    parts = [f"max |diff| {comparison['max_abs_diff']:g}",
             "bit-exact" if comparison["bit_exact"] else "not bit-exact"]
    if "top1_agreement" in comparison:
        parts.append(f"top-1 agreement {comparison['top1_agreement']:.4f}")
    if "accuracy" in comparison:
        parts.append(f"accuracy {comparison['accuracy']:.4f} ({comparison['runtime']} "
                     f"{comparison['reference_accuracy']:.4f})")
    return ", ".join(parts)


def _comparisons(ref: dict) -> list[str]:
    """The comparison with the model's definition first, onnxruntime's fused kernels second
    (a TFLite model's definition is LiteRT's reference kernels: one comparison)."""
    if "definition" in ref:
        definition = ref["definition"]
        return [f"Against the model's definition ({definition['runtime']}, ai-edge-litert "
                f"{definition['version']}): {_agreement(definition)}."]
    literal = ref["unoptimized"]
    if literal["runtime"] != "onnxruntime":
        reason = literal.get("onnxruntime_error", "")
        return [f"Against the model's definition (ONNX's reference evaluator "
                f"{literal['version']}; onnxruntime cannot run this model"
                f"{': ' + reason if reason else ''}): {_agreement(literal)}."]
    return [f"Against the model's definition (onnxruntime {literal['version']} running the "
            f"graph as written, optimizations off): {_agreement(literal)}.", "",
            f"Against onnxruntime's default session (fused int8 kernels): {_agreement(ref)}. "
            f"{FUSED_KERNELS_DIFFER}"]


def format_report(report) -> str:
    """``report.md``: the comparisons, one row per accelerated layer, the host ops, what the
    figures are and the energy estimate."""
    ref = report["reference"]
    array = report["array"]
    lines = [f"# {Path(report['model']).name} on a {array['rows']}×{array['cols']} "
             f"{array['format']} array ({array['mode']} mode, {array['simulator']})", ""]
    lines += _comparisons(ref)
    if report.get("quantized_model"):
        lines += ["", f"The model that ran, quantized on the calibration inputs: "
                  f"{report['quantized_model']}."]
    if report.get("pruned_model"):
        lines += ["", f"The model that ran, its array weights pruned by magnitude: "
                  f"{report['pruned_model']}."]
    rows = []
    for layer in report["layers"]:
        if layer["on"] != "accelerator":
            continue
        gemms = f" ×{layer['gemms']}" if layer["gemms"] > 1 else ""
        rows.append([layer["name"], layer["op"], f"{layer['m']}×{layer['k']}×{layer['n']}{gemms}",
                     f"{layer['weight_sparsity']:.1%}", f"{layer['cycles']:,}",
                     f"{layer['dense_cycles']:,}", f"{layer['speedup']}×",
                     f"{layer['ideal_cycles']:,}", layer["fraction_of_ideal"],
                     f"{layer['mapped_ideal_cycles']:,}"])
    total = report["total"]
    if total["accelerator_layers"]:
        rows.append(["**total**", "", "", "", f"{total['cycles']:,}",
                     f"{total['dense_cycles']:,}", f"{total['speedup']}×",
                     f"{total['ideal_cycles']:,}", total["fraction_of_ideal"],
                     f"{total['mapped_ideal_cycles']:,}"])
    lines += ["", table(["node", "op", "M×K×N", "weight sparsity", "cycles (RTL)",
                         "dense cycles", "speedup", "ideal", "fraction of ideal",
                         "mapped ideal"], rows, "lllrrrrrrr")]
    host = [f"{layer['op']}" + (f" ({layer['reason']})" if layer.get("reason") else "")
            for layer in report["layers"] if layer["on"] == "host"]
    lines += ["", f"Host ops ({len(host)}): {', '.join(dict.fromkeys(host)) or 'none'}.",
              "", "Cycles are RTL counters; dense cycles come from the exact cycle model "
              "(checked against the RTL on every run) unless the run was in dense mode; ideal "
              "cycles = M × nonzero weights / PEs and mapped ideal = the bound of this array's "
              "mapping (a weight column never split over lanes), both computed on the host.", ""]
    if total.get("energy_pj") is not None:
        parts, energy_table = total["energy_breakdown_pj"], total["energy_table"]
        lines += [f"Energy (an estimate: RTL event counts × the {energy_table['name']} table, "
                  f"{energy_table['source']}): {total['energy_pj'] / 1e6:.4g} µJ in all, "
                  f"{total['energy_per_inference_pj'] / 1e6:.4g} µJ per inference (compute "
                  f"{parts['compute'] / 1e6:.3g}, on-chip memory "
                  f"{parts['onchip_memory'] / 1e6:.3g}, off-chip {parts['offchip'] / 1e6:.3g}, "
                  f"static {parts['static'] / 1e6:.3g} µJ); dense mode "
                  f"{total['dense_energy_pj'] / 1e6:.4g} µJ (model); on-chip EDP "
                  f"{total['onchip_edp_ratio_vs_dense']}× better than dense mode.", ""]
    return "\n".join(lines)


def format_resident_report(report) -> str:
    """``report.md`` of a run with ``--resident``: the comparisons, the layers the engine
    holds, its figures per inference (the engine's hardware counters) and its memories."""
    array, total = report["array"], report["total"]
    if array.get("port"):
        where = f"the {array['board']} at {array['port']}"
    elif array.get("board"):
        where = f"{array['simulator']}: {array['board']}'s board top, through its UART"
    else:
        where = f"{array['simulator']}: a simulation of the engine alone"
    lines = [f"# {Path(report['model']).name} resident on the network engine of a "
             f"{array['rows']}×{array['cols']} {array['format']} array ({where})", ""]
    lines += _comparisons(report["reference"])
    rows = [[layer["name"], f"{layer['m']}×{layer['k']}×{layer['n']}",
             "yes" if layer["pool"] else "", "yes" if layer["table"] else ""]
            for layer in report["layers"]]
    lines += ["", table(["engine layer", "M×K×N", "pooled", "lookup table"], rows, "lrll")]
    figures = [("cycles", "cycles_per_inference"), ("array", "array_cycles_per_inference"),
               ("gather", "gather_cycles_per_inference"),
               ("drain and output stage", "drain_cycles_per_inference"),
               ("pooling", "pool_cycles_per_inference"), ("array runs", "runs_per_inference")]
    lines += ["", table(["per inference (RTL counters)", "value"],
                        [[label, f"{total[key]:,}" if total[key] is not None else "n/a"]
                         for label, key in figures], "lr")]
    lines += ["", table(["per inference", "value", "provenance"], _resident_figures(total),
                        "lrl")]
    engine = report["engine"]
    lines += ["", f"{total['inferences']} inferences; the engine's memories: feature maps "
              f"{engine['fm_depth']:,} + {engine['aux_depth']:,} activations, "
              f"{engine['param_depth']:,} channel parameters, {engine['program_depth']:,} "
              f"program words ({engine['steps']} used), lookup table {engine['lut_depth']:,}. "
              f"The host quantizes the input and runs the nodes after the engine's output.",
              ""]
    return "\n".join(lines)


def _resident_figures(total) -> list[list[str]]:
    """The rows of a resident report's off-chip words, throughput and energy estimate."""
    provenance = total["provenance"]
    energy, rate = total.get("energy_per_inference_pj"), total.get("inferences_per_s")
    source = total.get("energy_table") or {}
    words, link = total["offchip_words_per_inference"], total.get("link_bytes_per_inference")
    rows = [[("off-chip words (input and output tensors)" if link is None and
              provenance["offchip_words_per_inference"] == "host" else
              "off-chip words (the board link's byte counts: input, output, frames)"),
             f"{words:,}" if words is not None else "n/a",
             provenance["offchip_words_per_inference"]],
            [f"inferences/s at {total['clock_hz'] / 1e6:g} MHz ({total['clock']}; no UART)",
             f"{rate:,.1f}" if rate is not None else "n/a", provenance["inferences_per_s"]]]
    if link is not None:
        baud = total["uart_baud"]
        rows += [[f"link bytes and seconds at {baud / 1e6:g} Mbaud",
                  f"{link:,} B, {total['link_seconds_per_inference'] * 1e3:.3f} ms",
                  provenance["link_seconds_per_inference"]],
                 ["inferences/s with the UART", f"{total['inferences_per_s_with_uart']:,.1f}",
                  provenance["inferences_per_s_with_uart"]]]
    rows += [
            [f"energy per inference (estimate, table {source.get('name', 'n/a')})",
             f"{energy:,.1f} pJ" if energy is not None else "n/a (no energy counters)",
             provenance["energy_per_inference_pj"]]]
    for category, value in (total.get("energy_breakdown_pj") or {}).items():
        rows.append([f"  of which {category.replace('_', ' ')}", f"{value:,.1f} pJ",
                     provenance["energy_breakdown_pj"]])
    return rows


def plot_layers(layers, path):
    """``layers.png``: RTL cycles of every accelerated layer beside its dense mode's."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    accel = [layer for layer in layers if layer["on"] == "accelerator"]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(accel) + 2), 3.5))
    x = np.arange(len(accel))
    ax.bar(x - 0.2, [layer["dense_cycles"] for layer in accel], 0.4, label="dense (model)")
    ax.bar(x + 0.2, [layer["cycles"] for layer in accel], 0.4, label="this run (RTL)")
    ax.set_xticks(x, [layer["name"] for layer in accel], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("cycles")
    ax.set_title("cycles per accelerated layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
