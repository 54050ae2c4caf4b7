"""The end-to-end demo: a pruned, quantized MLP classifying handwritten digits on the simulated
accelerator, every layer a GEMM over the whole test batch on the RTL."""

import json
from pathlib import Path

import numpy as np

from zeroskip.config import ArrayConfig, Mode
from zeroskip.sim import energy, formats, golden
from zeroskip.sim.model import ideal_cycles
from zeroskip.sim.compiler import assemble, compile_gemm
from zeroskip.sim.loaders import BadInput, check_int8_matrix
from zeroskip.apps.outputs import Outputs
from zeroskip.apps.network import (QuantizedLayer, QuantizedMLP, fixed_point, init_mlp, int8_forward,
                                   prune, quantize, requantize, train)
from zeroskip.sim.rtl.build import build_accelerator
from zeroskip.sim.rtl.runner import run_programs

__all__ = ["run_demo", "load_user_model"]

HIDDEN = (256, 128)
INPUT_RANGE = 16.0  # digits pixels are 0..16


def load_digits_split(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    return train_test_split(digits.data, digits.target, test_size=0.25, stratify=digits.target,
                            random_state=seed)


def prune_schedule(target):
    steps = [s for s in (0.5, 0.7, 0.8, 0.9, 0.95) if s < target - 1e-9]
    return steps + [target]


def train_pruned(x_train, y_train, x_test, y_test, sparsity, seed, progress):
    """Train, then prune gradually with fine-tuning; returns the model and the accuracy curve."""
    rng = np.random.default_rng(seed)
    model = init_mlp([x_train.shape[1], *HIDDEN, 10], rng)
    x_train, x_test = x_train / INPUT_RANGE, x_test / INPUT_RANGE
    schedule = prune_schedule(sparsity) if sparsity > 0 else []
    epochs, finetune = 60, 20
    bar = progress(total=epochs + finetune * len(schedule), desc="train + prune", unit="epoch")
    train(model, x_train, y_train, epochs=epochs, rng=rng, progress=bar)
    curve = [(0.0, model.accuracy(x_test, y_test))]
    for step in schedule:
        prune(model, step)
        train(model, x_train, y_train, epochs=finetune, rng=rng, lr=5e-4, progress=bar)
        curve.append((model.sparsity, model.accuracy(x_test, y_test)))
    bar.close()
    # fold the input scaling into the first layer so the model takes raw 0..16 pixels
    model.weights[0] = model.weights[0] / INPUT_RANGE
    return model, curve


def load_user_model(path, calibration_q):
    """int8 layer matrices from an .npz: ``w0, w1, ...`` (in × out), optional int32 ``b0, ...``.
    Requantization scales come from the int8 calibration activations."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise BadInput(f"--weights: no such file: {path}") from None
    except OSError as exc:  # its message repeats the path: say the cause once
        raise BadInput(f"--weights: cannot read {path}: "
                       f"{exc.strerror or type(exc).__name__}") from None
    except Exception:  # any unreadable archive is bad input (numpy guesses "pickled data")
        raise BadInput(f"--weights: {path} is not an .npz archive (np.savez of int8 arrays "
                       f"w0, w1, ...)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise BadInput(f"--weights: {path} is a single array; expected an .npz with w0, w1, ...")
    with archive:
        names = set(archive.files)
        count = 0
        while f"w{count}" in names:
            count += 1
        if count == 0:
            raise BadInput(f"--weights: {path} holds no layer w0 (found {sorted(names)[:5]})")
        try:
            weights = [check_int8_matrix(archive[f"w{i}"], f"--weights w{i}")
                       for i in range(count)]
            biases = [archive[f"b{i}"] if f"b{i}" in names else np.zeros(w.shape[1], np.int64)
                      for i, w in enumerate(weights)]
        except BadInput:
            raise
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise BadInput(f"--weights: {path} holds Python objects, which are never "
                               f"loaded (pickle); save int8 arrays") from None
            raise BadInput(f"--weights: {path}: {exc}") from None
        except Exception as exc:
            raise BadInput(f"--weights: {path}: {type(exc).__name__}: {exc}") from None
    if weights[0].shape[0] != calibration_q.shape[1]:
        raise BadInput(f"--weights: w0 takes {weights[0].shape[0]} inputs; the digits images "
                       f"have {calibration_q.shape[1]} pixels")
    for i in range(1, count):
        if weights[i].shape[0] != weights[i - 1].shape[1]:
            raise BadInput(f"--weights: w{i} takes {weights[i].shape[0]} inputs but w{i - 1} "
                           f"gives {weights[i - 1].shape[1]}")
    if weights[-1].shape[1] != 10:
        raise BadInput(f"--weights: the last layer gives {weights[-1].shape[1]} outputs; the "
                       f"digits have 10 classes")
    for i, (w, b) in enumerate(zip(weights, biases)):
        if b.dtype.kind not in "iu" or b.shape != (w.shape[1],):
            raise BadInput(f"--weights: b{i} must be {w.shape[1]} integers, got "
                           f"{b.dtype} {b.shape}")
        info = np.iinfo(np.int32)
        if b.size and (int(b.min()) < info.min or int(b.max()) > info.max):
            bad = int(b.min()) if int(b.min()) < info.min else int(b.max())
            raise BadInput(f"--weights: b{i} value {bad} is outside int32 "
                           f"[{info.min}, {info.max}]")
    # requantization: map the 99.99th percentile of each hidden layer's output to 127
    layers = []
    acts = calibration_q
    for i, (w, b) in enumerate(zip(weights, biases)):
        acc = golden.gemm(acts, w).astype(np.int64) + b
        if i < count - 1:
            top = max(float(np.percentile(np.maximum(acc, 0), 99.99)), 1.0)
            multiplier, shift = fixed_point(127 / top)
        else:
            multiplier, shift = 1, 0
        layer = QuantizedLayer(w, b.astype(np.int32), multiplier, shift)
        layers.append(layer)
        if i < count - 1:
            acts = requantize(acc - b, layer)
    return QuantizedMLP(layers, INPUT_RANGE / 127)


class AcceleratorGemm:
    """A gemm(acts, weights) that runs each layer on the RTL in skip and in dense mode and
    records what the hardware counted."""

    def __init__(self, config, sim, progress, table=None):
        self.config, self.sim, self.progress = config, sim, progress
        self.table = table or energy.EnergyTable.default()
        self.layers = []

    def __call__(self, acts, weights):
        programs = [compile_gemm(acts, weights, self.config, mode)
                    for mode in (Mode.SKIP, Mode.DENSE)]
        skip, dense = (r.check(p) for r, p in zip(run_programs(programs, self.sim), programs))
        results = [assemble(p, r.results) for p, r in zip(programs, (skip, dense))]
        if not np.array_equal(results[0], results[1]):
            raise RuntimeError("skip and dense mode disagree on the RTL")
        m, k, n = programs[0].shape
        nnz = int(np.count_nonzero(weights))

        compressed = formats.encode_for(self.config, weights)
        # energy (an estimate: the RTL's event counts × the table) of both modes
        energies = {mode: energy.estimate(energy.events(program, rtl), rtl.total("cycles"),
                                          self.table)
                    for mode, program, rtl in zip(("skip", "dense"), programs, (skip, dense))}
        self.layers.append({
            "shape": [m, k, n],
            "weight_sparsity": round(1 - nnz / weights.size, 4),
            "cycles_skip": skip.total("cycles"),
            "cycles_dense": dense.total("cycles"),
            "total_cycles_skip": skip.total_cycles,
            "total_cycles_dense": dense.total_cycles,
            "ideal_cycles": ideal_cycles(m * nnz, self.config.pe_count),
            "macs_executed_skip": skip.total("macs_executed"),
            "macs_gated_skip": skip.total("macs_gated"),
            "macs_executed_dense": dense.total("macs_executed"),
            "dense_weight_bits": 8 * weights.size,
            "weight_bits_compressed": int(formats.size_bits(self.config.fmt, compressed)),
            **{f"energy_{mode}_pj": figures["energy_pj"] for mode, figures in energies.items()},
            **{f"onchip_energy_{mode}_pj": figures["energy_pj"] -
               figures["energy_breakdown_pj"]["offchip"] for mode, figures in energies.items()},
        })
        self.progress.update(1)
        return results[0]


def accuracy_limits(accuracies):
    """The accuracy axis (%): 80 to 100 for a good model, down to whatever the data needs."""
    low = min(80.0, 100 * min(accuracies) - 5)
    return max(low, 0.0), 100.5


def plot(summary, curve, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = summary["layers"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [f"layer {i}\n{l['shape'][1]}→{l['shape'][2]}" for i, l in enumerate(layers)]
    x = np.arange(len(layers))
    ax1.bar(x - 0.2, [l["cycles_dense"] for l in layers], 0.4, label="dense mode")
    ax1.bar(x + 0.2, [l["cycles_skip"] for l in layers], 0.4, label="skip mode")
    for i, l in enumerate(layers):
        ax1.annotate(f"{l['cycles_dense'] / l['cycles_skip']:.1f}×",
                     (i + 0.2, l["cycles_skip"]), ha="center", va="bottom", fontsize=8)
    ax1.set(xticks=x, xticklabels=names, ylabel="cycles (RTL counter)",
            title=f"Cycles per layer, {summary['test_images']} images, "
                  f"{summary['rows']}×{summary['cols']} PEs")
    ax1.legend()
    if curve:
        ax2.plot([100 * s for s, _ in curve], [100 * a for _, a in curve], "o-",
                 label="float, after prune + fine-tune")
    ax2.plot([100 * summary["weight_sparsity"]], [100 * summary["accelerator_accuracy"]], "r*",
             markersize=14, label="int8 on the accelerator")
    ax2.set(xlabel="weight sparsity (%)", ylabel="test accuracy (%)",
            ylim=accuracy_limits([a for _, a in curve] + [summary["accelerator_accuracy"]]),
            title="Accuracy while pruning")
    ax2.grid(True, alpha=0.3)
    ax2.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_demo(out_dir="demo", *, sparsity=0.9, weights=None, rows=8, cols=8, sim="verilator",
             seed=0, show_progress=True, table=None):
    """Run the demo; writes ``out_dir``/summary.json and demo.png and returns the summary."""
    from tqdm import tqdm

    def progress(**kw):
        return tqdm(disable=not show_progress, **kw)

    x_train, x_test, y_train, y_test = load_digits_split(seed)
    out_dir = Path(out_dir)
    curve = []
    if weights is None:
        model, curve = train_pruned(x_train, y_train, x_test, y_test, sparsity, seed, progress)
        float_accuracy = model.accuracy(x_test, y_test)
        qmodel = quantize(model, x_train, input_range=INPUT_RANGE)
    else:
        input_scale = INPUT_RANGE / 127
        calibration = np.clip(np.round(x_train / input_scale), -128, 127).astype(np.int8)
        qmodel = load_user_model(weights, calibration)
        float_accuracy = None
    out_dir.mkdir(parents=True, exist_ok=True)

    x_q = qmodel.quantize_input(x_test)
    reference = int8_forward(qmodel, x_q)
    int8_accuracy = float((reference.argmax(axis=1) == y_test).mean())

    # double-buffered: the layers' end-to-end time (total_cycles) besides their compute
    config = ArrayConfig.for_capacity(rows, cols, double_buffer=True)
    # a build, when one is needed, is reported on the `zeroskip.progress` logger (the command
    # shows it on a terminal); a cached one is silent
    build_accelerator(config, sim)
    bar = progress(total=len(qmodel.layers), desc="layers on the RTL", unit="layer")
    accelerator = AcceleratorGemm(config, sim, bar, table)
    logits = int8_forward(qmodel, x_q, gemm=accelerator)
    bar.close()

    layers = accelerator.layers
    cycles_skip = sum(l["cycles_skip"] for l in layers)
    cycles_dense = sum(l["cycles_dense"] for l in layers)
    summary = {
        "float_accuracy": None if float_accuracy is None else round(float_accuracy, 4),
        "int8_accuracy": round(int8_accuracy, 4),
        "accelerator_accuracy": round(float((logits.argmax(axis=1) == y_test).mean()), 4),
        "logits_match": bool(np.array_equal(logits, reference)),
        "weight_sparsity": round(qmodel.sparsity, 4),
        "cycles_skip": cycles_skip,
        "cycles_dense": cycles_dense,
        "speedup": round(cycles_dense / cycles_skip, 3),
        # end to end: operands loaded and results read back too (the RTL's total_cycles)
        "total_cycles_skip": sum(l["total_cycles_skip"] for l in layers),
        "total_cycles_dense": sum(l["total_cycles_dense"] for l in layers),
        "speedup_end_to_end": round(sum(l["total_cycles_dense"] for l in layers) /
                                    sum(l["total_cycles_skip"] for l in layers), 3),
        "ideal_cycles": sum(l["ideal_cycles"] for l in layers),
        "fraction_of_ideal": round(sum(l["ideal_cycles"] for l in layers) / cycles_skip, 4),
        "dense_weight_bits": sum(l["dense_weight_bits"] for l in layers),
        "weight_bits_compressed": sum(l["weight_bits_compressed"] for l in layers),
        "test_images": int(len(y_test)),
        "network": [int(qmodel.layers[0].weights.shape[0])] +
                   [int(l.weights.shape[1]) for l in qmodel.layers],
        "rows": rows, "cols": cols, "format": config.fmt, "simulator": sim,
        **_energy_summary(layers, len(y_test), cycles_skip, cycles_dense,
                          accelerator.table),
        "layers": layers,
    }
    with Outputs() as outputs:  # both files or neither
        outputs.write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        outputs.write(out_dir / "demo.png", lambda tmp: plot(summary, curve, tmp))
        outputs.commit()
    return summary


def _energy_summary(layers, images, cycles_skip, cycles_dense, table):
    """Energy per inference in both modes and the EDP ratios, from the layers' estimates."""
    total = {name: sum(layer[name] for layer in layers) for name in
             ("energy_skip_pj", "energy_dense_pj", "onchip_energy_skip_pj",
              "onchip_energy_dense_pj")}
    return {
        "energy_per_inference_skip_pj": round(total["energy_skip_pj"] / images, 3),
        "energy_per_inference_dense_pj": round(total["energy_dense_pj"] / images, 3),
        "edp_ratio_dense_vs_skip": round(total["energy_dense_pj"] * cycles_dense /
                                         (total["energy_skip_pj"] * cycles_skip), 3),
        "onchip_edp_ratio_dense_vs_skip": round(
            total["onchip_energy_dense_pj"] * cycles_dense /
            (total["onchip_energy_skip_pj"] * cycles_skip), 3),
        "energy_table": {"name": table.name, "source": table.source},
    }


def format_summary(s):
    def pct(v):
        return "n/a (int8 weights given)" if v is None else f"{100 * v:.2f}%"
    lines = [
        f"network {'-'.join(map(str, s['network']))} on {s['test_images']} digits test images, "
        f"{s['rows']}x{s['cols']} PE array ({s['format']}), RTL on {s['simulator']}",
        f"  float accuracy        {pct(s['float_accuracy'])}",
        f"  int8 NumPy accuracy   {pct(s['int8_accuracy'])}",
        f"  accelerator accuracy  {pct(s['accelerator_accuracy'])}   "
        f"(int32 logits identical to NumPy: {s['logits_match']})",
        f"  weight sparsity       {100 * s['weight_sparsity']:.1f}%",
        f"  cycles, dense mode    {s['cycles_dense']:,}",
        f"  cycles, skip mode     {s['cycles_skip']:,}   speedup {s['speedup']:.2f}x, "
        f"fraction of ideal {s['fraction_of_ideal']:.3f}",
        f"  end to end            {s['total_cycles_dense']:,} -> {s['total_cycles_skip']:,} "
        f"cycles with loads and read-back, speedup {s['speedup_end_to_end']:.2f}x",
        f"  weight storage        {s['dense_weight_bits'] / 8 / 1024:.1f} KiB dense int8 -> "
        f"{s['weight_bits_compressed'] / 8 / 1024:.1f} KiB {s['format']}",
        f"  energy per image      {s['energy_per_inference_dense_pj'] / 1e3:,.1f} nJ dense -> "
        f"{s['energy_per_inference_skip_pj'] / 1e3:,.1f} nJ skip (estimate, "
        f"{s['energy_table']['name']} table); EDP {s['edp_ratio_dense_vs_skip']:.1f}x better, "
        f"on chip {s['onchip_edp_ratio_dense_vs_skip']:.1f}x",
    ]
    for i, l in enumerate(s["layers"]):
        m, k, n = l["shape"]
        lines.append(f"  layer {i}: {m}x{k}x{n}, {100 * l['weight_sparsity']:.1f}% sparse, "
                     f"{l['cycles_dense']:,} -> {l['cycles_skip']:,} cycles "
                     f"({l['cycles_dense'] / l['cycles_skip']:.2f}x)")
    return "\n".join(lines)
