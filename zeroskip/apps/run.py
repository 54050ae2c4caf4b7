"""``zeroskip run MODEL.onnx``: a user's ONNX model on the RTL, checked against onnxruntime.

Every input is checked before anything runs and nothing is written unless the whole run
succeeds (``DIR/outputs.npz``, ``report.json``, ``report.md``, ``layers.png``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zeroskip.sim import energy
from zeroskip.sim.loaders import BadInput

__all__ = ["run_model", "infer", "load_model", "bind_inputs", "check_feeds", "check_labels",
           "calibrate", "check_model", "format_report"]

#: numpy dtypes of ONNX tensor element types (the ones a graph input of ours may declare)
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
           7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
           13: np.uint64}


def load_model(path: str | Path):
    """The model at ``path``, checked by ONNX's checker; BadInput for anything else."""
    import onnx
    from google.protobuf.message import DecodeError
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise BadInput(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    return check_model(model, path)


def check_model(model, name):
    """``model`` if ONNX's checker accepts it; BadInput naming ``name`` otherwise."""
    import onnx
    if not isinstance(model, onnx.ModelProto) or not model.graph.node:
        raise BadInput(f"{name} is not an ONNX model (no graph nodes)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise BadInput(f"{name}: invalid ONNX model: {str(exc).splitlines()[0]}") from None
    return model


def graph_inputs(model) -> list:
    """The graph inputs a user feeds: those that are not initializers."""
    inits = {init.name for init in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _load_array(path, what):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise BadInput(f"{what}: no such file: {path}") from None
    except Exception:
        raise BadInput(f"{what}: {path} is not a NumPy file") from None


def bind_inputs(model, input_path=None, inputs_path=None) -> dict:
    """The feeds: ``--input X.npy`` for a model with one graph input, ``--inputs IN.npz``
    keyed by input name; every dtype and shape checked against the graph's declaration."""
    wanted = graph_inputs(model)
    if (input_path is None) == (inputs_path is None):
        raise BadInput("give one of --input X.npy and --inputs IN.npz")
    if input_path is not None:
        if len(wanted) != 1:
            raise BadInput(f"--input: the model has {len(wanted)} graph inputs "
                           f"({', '.join(i.name for i in wanted)}); use --inputs IN.npz keyed "
                           f"by name")
        array = _load_array(input_path, "--input")
        if not isinstance(array, np.ndarray):
            raise BadInput(f"--input: {input_path} is an .npz archive; use --inputs")
        return check_feeds(model, {wanted[0].name: array}, "--input")
    else:
        archive = _load_array(inputs_path, "--inputs")
        if isinstance(archive, np.ndarray):
            raise BadInput(f"--inputs: {inputs_path} is a single array; expected an .npz keyed "
                           f"by input name")
        with archive:
            feeds = {name: archive[name] for name in archive.files}
    return check_feeds(model, feeds, "--inputs")


def check_feeds(model, feeds: dict, what: str = "inputs") -> dict:
    """``feeds`` if it names every graph input and nothing else, each of the declared dtype
    and shape; BadInput naming ``what`` otherwise."""
    wanted = graph_inputs(model)
    missing = [i.name for i in wanted if i.name not in feeds]
    if missing:
        raise BadInput(f"{what}: missing graph input {missing[0]!r} (the model takes "
                       f"{', '.join(i.name for i in wanted)})")
    extra = sorted(set(feeds) - {i.name for i in wanted})
    if extra:
        raise BadInput(f"{what}: {extra[0]!r} is not a graph input of the model")
    for info in wanted:
        if not isinstance(feeds[info.name], np.ndarray):
            raise BadInput(f"input {info.name!r}: not a NumPy array")
        _check_value(info, feeds[info.name])
    return feeds


def check_labels(labels, feeds: dict, what: str = "labels") -> np.ndarray:
    batch = next(iter(feeds.values())).shape[0]
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or \
            labels.dtype.kind not in "iu" or len(labels) != batch:
        raise BadInput(f"{what}: expected {batch} integer class labels (1-D)")
    return labels


def _check_value(info, value):
    tensor = info.type.tensor_type
    dtype = _DTYPES.get(tensor.elem_type)
    if dtype is None:
        raise BadInput(f"input {info.name!r}: element type {tensor.elem_type} is not supported")
    if value.dtype != dtype:
        raise BadInput(f"input {info.name!r}: dtype {value.dtype}, the model wants "
                       f"{np.dtype(dtype).name}")
    if tensor.HasField("shape"):
        dims = tensor.shape.dim
        if len(dims) != value.ndim:
            raise BadInput(f"input {info.name!r}: shape {list(value.shape)}, the model wants "
                           f"{len(dims)} dimensions ({_shape_text(dims)})")
        for dim, size in zip(dims, value.shape):
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise BadInput(f"input {info.name!r}: shape {list(value.shape)}, the model "
                               f"wants [{_shape_text(dims)}]")


def _shape_text(dims):
    return ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                     for d in dims)


def _weights_to_prune(model):
    """Float weight initializers of Conv/Gemm/MatMul (input 1)."""
    names = {node.input[1] for node in model.graph.node
             if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1}
    return [init for init in model.graph.initializer if init.name in names and
            init.data_type == 1]


def calibrate(model, calibration: np.ndarray, prune: float | None):
    """Quantize a float model with onnxruntime's own static quantizer (QDQ, uint8
    activations, int8 weights per channel) on ``calibration``; ``prune`` zeroes that fraction
    of each weight matrix by magnitude first."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    wanted = graph_inputs(model)
    if len(wanted) != 1:
        raise BadInput(f"--calibrate: the model has {len(wanted)} graph inputs; calibration "
                       f"takes a model with one")
    if calibration.ndim == 0:
        raise BadInput("--calibrate: expected an array of calibration inputs, not a scalar")
    _check_value(wanted[0], calibration)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    if prune is not None:
        for init in _weights_to_prune(model):
            weights = numpy_helper.to_array(init).copy()
            keep = int(round(weights.size * (1 - prune)))
            if keep < weights.size:
                order = np.argsort(np.abs(weights), axis=None)
                weights.reshape(-1)[order[:weights.size - keep]] = 0
            init.CopyFrom(numpy_helper.from_array(weights, init.name))
    name = wanted[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: calibration}])

        def get_next(self):
            return next(self.batches, None)

    # the quantizer logs through the root logger (its first warning would install a handler
    # that then prints every library's INFO lines): keep the root logger as it was
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers[:] = [logging.NullHandler()]
    try:
        with tempfile.TemporaryDirectory() as workdir:
            source, target = Path(workdir) / "float.onnx", Path(workdir) / "quantized.onnx"
            onnx.save(model, str(source))
            quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=True)
            return onnx.load(str(target))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def reference_outputs(model, feeds, optimized=True) -> tuple[dict, dict]:
    """The outputs of onnxruntime on the same inputs, and which runtime gave them: ONNX's own
    reference evaluator when onnxruntime cannot run the model (it lacks per-channel weight
    zero points in ConvInteger, for one), with onnxruntime's message.

    ``optimized`` false runs the graph as written (``ORT_DISABLE_ALL``): onnxruntime's default
    rewrites QDQ patterns into its own integer kernels (QLinearAdd, QLinearSoftmax, ...) whose
    arithmetic differs from the ONNX definition of the nodes they replace."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    if not optimized:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds))), {
            "runtime": "onnxruntime", "version": onnxruntime.__version__,
            "graph_optimization": "default (ORT_ENABLE_ALL)" if optimized else "ORT_DISABLE_ALL"}
    except Exception as exc:  # onnxruntime's own Fail/NotImplemented/InvalidGraph errors
        import onnx
        from onnx.reference import ReferenceEvaluator
        names = [o.name for o in model.graph.output]
        return dict(zip(names, ReferenceEvaluator(model).run(names, feeds))), {
            "runtime": "onnx.reference", "version": onnx.__version__,
            "onnxruntime_error": str(exc).split("Status Message: ")[-1].strip()[:300]}


def _difference(ours: dict, theirs: dict) -> dict:
    diffs = [float(np.max(np.abs(ours[n].astype(np.float64) - theirs[n].astype(np.float64))))
             if ours[n].size else 0.0 for n in ours]
    return {"max_abs_diff": max(diffs) if diffs else 0.0,
            "bit_exact": all(np.array_equal(ours[n], theirs[n]) for n in ours)}


def _class_scores(outputs, batch):
    """The first float output shaped [batch, classes] (classes > 1): the class scores."""
    for name, value in outputs.items():
        if value.ndim == 2 and value.shape[0] == batch and value.shape[1] > 1 and \
                value.dtype.kind == "f":
            return name
    return None


def compare(ours: dict, theirs: dict, runtime: dict, labels=None) -> dict:
    reference: dict[str, Any] = {**runtime, **_difference(ours, theirs)}
    first = next(iter(ours.values()))
    batch = first.shape[0] if first.ndim else 0
    scores = _class_scores(ours, batch)
    if scores is not None:
        top_ours, top_theirs = ours[scores].argmax(axis=1), theirs[scores].argmax(axis=1)
        reference["scores_output"] = scores
        reference["top1_agreement"] = round(float(np.mean(top_ours == top_theirs)), 4)
        if labels is not None:
            reference["accuracy"] = round(float(np.mean(top_ours == labels)), 4)
            reference["reference_accuracy"] = round(float(np.mean(top_theirs == labels)), 4)
    return reference


def run_model(model_path, *, out, input=None, inputs=None, labels=None, calibrate_path=None,
              prune=None, rows=None, cols=None, format=None, nm=None, mode="skip",
              sim="verilator", board=None, port=None, progress=False,
              energy_table=None) -> dict:
    """The command: every input checked, the model run (:func:`infer`), the files written
    together; returns the report."""
    from zeroskip.api import GemmRunner
    from zeroskip.apps.outputs import Outputs, check_folder

    check_folder(out, "--out")
    model = load_model(model_path)
    check_prune(prune, "--prune")
    accelerator = GemmRunner(rows=rows, cols=cols, format=format, nm=nm, mode=mode, sim=sim,
                             board=board, port=port, energy_table=energy_table)
    feeds = bind_inputs(model, input, inputs)
    if labels is not None:
        labels = load_labels(labels, feeds)
    calibration = None if calibrate_path is None else load_calibration(calibrate_path)
    model = prepare_model(model, calibration, prune)
    ours, report = infer(model, feeds, accelerator, labels=labels, progress=progress,
                         name=str(model_path))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Outputs() as files:
        files.write(out / "outputs.npz", lambda tmp: _savez(tmp, ours))
        files.write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
        files.write_text(out / "report.md", format_report(report))
        files.write(out / "layers.png", lambda tmp: plot_layers(report["layers"], tmp))
        if calibrate_path is not None:
            import onnx
            files.write(out / "quantized.onnx", lambda tmp: onnx.save(model, str(tmp)))
        files.commit()
    return report


def check_prune(prune, what: str = "prune"):
    if prune is not None and not (isinstance(prune, (int, float)) and 0 <= prune < 1):
        raise BadInput(f"{what} must be in [0, 1), not {prune}")


def load_labels(path, feeds: dict) -> np.ndarray:
    """``--labels y.npy``: one integer class label per input of the batch in ``feeds``."""
    return check_labels(_load_array(path, "--labels"), feeds, "--labels")


def load_calibration(path) -> np.ndarray:
    """``--calibrate CAL.npy``: one array of calibration inputs."""
    data = _load_array(path, "--calibrate")
    if not isinstance(data, np.ndarray):
        raise BadInput("--calibrate: expected a single .npy array")
    return data


def prepare_model(model, calibration: np.ndarray | None, prune: float | None):
    """The model that runs: a float model quantized on ``calibration`` (its weights pruned
    first by ``prune``), or a quantized model with its array weights pruned by ``prune``."""
    if calibration is not None:
        return calibrate(model, calibration, prune)
    if prune is not None:
        from zeroskip.frontend.prune import prune_quantized
        return prune_quantized(model, prune)
    return model


def infer(model, feeds: dict, accelerator, *, labels=None, progress=False,
          name="model") -> tuple[dict, dict]:
    """The model's outputs (in the dtypes the graph declares) and the report: the graph run
    node by node (:class:`zeroskip.frontend.graph.Executor`) and compared with onnxruntime.
    ``feeds`` and ``labels`` are checked already (:func:`check_feeds`, :func:`check_labels`)."""
    from zeroskip.frontend.graph import Executor

    executor = Executor(model, accelerator)  # plans every node: bad input before any run
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(model.graph.node), desc="layers", unit="node")

    def step(step, record):
        if bar is not None:
            bar.set_postfix_str(f"{record['name']} ({record['on']})")
            bar.update(1)
    executor.on_step = step
    ours, layers = executor.run(feeds)
    if bar is not None:
        bar.close()
    ours = {name: np.asarray(value, dtype=_declared(model, name, value)) for name, value in
            ours.items()}
    reference = compare(ours, *reference_outputs(model, feeds), labels)
    if reference["runtime"] == "onnxruntime" and not reference["bit_exact"]:
        # tell the graph's own arithmetic apart from onnxruntime's fused kernels
        literal, _ = reference_outputs(model, feeds, optimized=False)
        reference["unoptimized"] = {"graph_optimization": "ORT_DISABLE_ALL",
                                    **_difference(ours, literal)}
    config = accelerator.config
    report = {
        "model": name,
        "array": {"rows": config.rows, "cols": config.cols, "format": config.fmt,
                  "mode": accelerator.mode.name.lower(),
                  "simulator": accelerator.sim if accelerator.port is None else
                  f"board {accelerator.board} at {accelerator.port}"},
        "inputs": {name: list(value.shape) for name, value in feeds.items()},
        "reference": reference, "layers": layers, "total": _total(layers),
    }
    first = next(iter(feeds.values()))
    batch = first.shape[0] if first.ndim else 1
    if report["total"].get("energy_pj") is not None and batch:
        report["total"]["energy_per_inference_pj"] = round(report["total"]["energy_pj"] / batch,
                                                           3)
        report["total"]["provenance"]["energy_per_inference_pj"] = \
            report["total"]["provenance"]["energy_pj"]
    return ours, report


def _savez(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _declared(model, name, value):
    for o in model.graph.output:
        if o.name == name:
            return _DTYPES.get(o.type.tensor_type.elem_type, value.dtype)
    return value.dtype


def _total(layers) -> dict:
    accel = [layer for layer in layers if layer["on"] == "accelerator"]
    total: dict[str, Any] = {"accelerator_layers": len(accel),
                             "host_layers": len(layers) - len(accel)}
    for name in ("cycles", "dense_cycles", "ideal_cycles", "mapped_ideal_cycles",
                 "macs_executed", "load_cycles"):
        total[name] = int(sum(layer[name] for layer in accel))
    cycles = total["cycles"]
    total["fraction_of_ideal"] = round(total["ideal_cycles"] / cycles, 4) if cycles else None
    total["speedup"] = round(total["dense_cycles"] / cycles, 3) if cycles else None
    if accel:
        total.update(energy.combine(accel))
        total["provenance"] = {"cycles": "rtl", "load_cycles": "rtl", "macs_executed": "rtl",
                               "ideal_cycles": "host", "fraction_of_ideal": "rtl",
                               "mapped_ideal_cycles": "host",
                               "dense_cycles": accel[0]["provenance"]["dense_cycles"],
                               "speedup": accel[0]["provenance"]["speedup"],
                               **{name: accel[0]["provenance"].get(name)
                                  for name in energy.FIGURES}}
    return total


def format_report(report) -> str:
    ref = report["reference"]
    array = report["array"]
    lines = [f"# {Path(report['model']).name} on a {array['rows']}×{array['cols']} "
             f"{array['format']} array ({array['mode']} mode, {array['simulator']})", ""]
    agreement = [f"max |diff| {ref['max_abs_diff']:g}",
                 "bit-exact" if ref["bit_exact"] else "not bit-exact"]
    if "top1_agreement" in ref:
        agreement.append(f"top-1 agreement {ref['top1_agreement']:.4f}")
    if "accuracy" in ref:
        agreement.append(f"accuracy {ref['accuracy']:.4f} (onnxruntime "
                         f"{ref['reference_accuracy']:.4f})")
    lines += [f"Against {ref['runtime']} {ref['version']}: {', '.join(agreement)}."]
    if "unoptimized" in ref:
        literal = ref["unoptimized"]
        lines += ["", f"Against onnxruntime running the graph as written (ORT_DISABLE_ALL, no "
                  f"fused kernels): max |diff| {literal['max_abs_diff']:g}, "
                  f"{'bit-exact' if literal['bit_exact'] else 'not bit-exact'}."]
    lines += ["",
              "| node | op | M×K×N | weight sparsity | cycles (RTL) | dense cycles | speedup | "
              "ideal | fraction of ideal | mapped ideal |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for layer in report["layers"]:
        if layer["on"] != "accelerator":
            continue
        lines.append(f"| {layer['name']} | {layer['op']} | {layer['m']}×{layer['k']}×"
                     f"{layer['n']}{' ×' + str(layer['gemms']) if layer['gemms'] > 1 else ''} | "
                     f"{layer['weight_sparsity']:.1%} | {layer['cycles']:,} | "
                     f"{layer['dense_cycles']:,} | {layer['speedup']}× | "
                     f"{layer['ideal_cycles']:,} | {layer['fraction_of_ideal']} | "
                     f"{layer['mapped_ideal_cycles']:,} |")
    total = report["total"]
    if total["accelerator_layers"]:
        lines.append(f"| **total** | | | | {total['cycles']:,} | {total['dense_cycles']:,} | "
                     f"{total['speedup']}× | {total['ideal_cycles']:,} | "
                     f"{total['fraction_of_ideal']} | {total['mapped_ideal_cycles']:,} |")
    host = [f"{layer['op']}" + (f" ({layer['reason']})" if layer.get("reason") else "")
            for layer in report["layers"] if layer["on"] == "host"]
    lines += ["", f"Host ops ({len(host)}): {', '.join(dict.fromkeys(host)) or 'none'}.",
              "", "Cycles are RTL counters; dense cycles come from the exact cycle model "
              "(checked against the RTL on every run) unless the run was in dense mode; ideal "
              "cycles = M × nonzero weights / PEs and mapped ideal = the bound of this array's "
              "mapping (a weight column never split over lanes), both computed on the host.", ""]
    if total.get("energy_pj") is not None:
        parts, table = total["energy_breakdown_pj"], total["energy_table"]
        lines += [f"Energy (an estimate: RTL event counts × the {table['name']} table, "
                  f"{table['source']}): {total['energy_pj'] / 1e6:.4g} µJ in all, "
                  f"{total['energy_per_inference_pj'] / 1e6:.4g} µJ per inference (compute "
                  f"{parts['compute'] / 1e6:.3g}, on-chip memory "
                  f"{parts['onchip_memory'] / 1e6:.3g}, off-chip {parts['offchip'] / 1e6:.3g}, "
                  f"static {parts['static'] / 1e6:.3g} µJ); dense mode "
                  f"{total['dense_energy_pj'] / 1e6:.4g} µJ (model); on-chip EDP "
                  f"{total['onchip_edp_ratio_vs_dense']}× better than dense mode.", ""]
    return "\n".join(lines)


def plot_layers(layers, path):
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
