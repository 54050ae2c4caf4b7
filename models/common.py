"""Helpers shared by the model scripts in models/: the digits data, global magnitude pruning,
ONNX saving, static int8 quantization with onnxruntime and accuracy under onnxruntime.

Every model takes ``x``: float32 [N, 64], the raw digits pixels divided by 16 (0..1), and
the split is exactly the one zeroskip's demo uses (``load_digits_split``).
"""

import logging
import sys
from pathlib import Path

import numpy as np
import onnx

MODELS_DIR = Path(__file__).resolve().parent
REPO_ROOT = MODELS_DIR.parent
# so `python models/xxx.py` (not only `python -m models.xxx`) can import zeroskip from the repo
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

OPSET = 17       # plain ai.onnx opset every onnxruntime >= 1.13 runs (has LayerNormalization)
IR_VERSION = 8   # onnxruntime 1.18+ accepts it; newer onnx writes 10+ by default
PIXEL_RANGE = 16.0
N_CALIB = 200


def load_data():
    """(x_train, x_test, y_train, y_test): float32 pixels in 0..1 and int64 labels."""
    from zeroskip.apps.demo import load_digits_split
    x_train, x_test, y_train, y_test = load_digits_split()
    return ((x_train / PIXEL_RANGE).astype(np.float32), (x_test / PIXEL_RANGE).astype(np.float32),
            y_train.astype(np.int64), y_test.astype(np.int64))


def calib_data(x_train):
    """The calibration batch: the first N_CALIB training images (never test images)."""
    return x_train[:N_CALIB].astype(np.float32)


def write_data_files():
    """models/digits_test_{x,y}.npy and models/digits_calib_x.npy (what `zeroskip run` is fed)."""
    x_train, x_test, _, y_test = load_data()
    np.save(MODELS_DIR / "digits_test_x.npy", x_test)
    np.save(MODELS_DIR / "digits_test_y.npy", y_test)
    np.save(MODELS_DIR / "digits_calib_x.npy", calib_data(x_train))


def global_prune_masks(weights, sparsity):
    """Masks (1 = keep) zeroing the smallest-|w| fraction `sparsity` of all weights together.

    Global rather than per-layer: small layers whose weights matter more (e.g. a 72-weight first
    conv) keep more of them. Already-zero weights count towards the target, so applying a
    schedule 0.5 -> 0.7 -> ... never revives pruned weights."""
    flat = np.concatenate([np.abs(w).ravel() for w in weights])
    k = int(round(sparsity * flat.size))
    if k == 0:
        return [np.ones_like(w) for w in weights]
    # the k-th smallest magnitude is the threshold; ties at it are broken by order so exactly
    # k weights are zeroed
    order = np.argsort(flat, kind="stable")
    keep = np.ones(flat.size, dtype=bool)
    keep[order[:k]] = False
    masks, start = [], 0
    for w in weights:
        masks.append(keep[start:start + w.size].reshape(w.shape).astype(w.dtype))
        start += w.size
    return masks


def sparsity(arrays):
    """Fraction of exact zeros over all the arrays."""
    total = sum(a.size for a in arrays)
    return sum(int(np.count_nonzero(a == 0)) for a in arrays) / total


def save_model(model, path):
    """Pin opset/IR so older onnxruntimes load it, check it, and save it."""
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def make_x_input():
    """The shared graph input: float32 x [N, 64] with a symbolic batch dimension."""
    return onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 64])


class _DropMessages(logging.Filter):
    def __init__(self, *fragments):
        super().__init__()
        self.fragments = fragments

    def filter(self, record):
        return not any(f in record.getMessage() for f in self.fragments)


def quantize(float_path, out_path, calib_x, per_channel, batch=50):
    """Static QDQ quantization: uint8 activations (asymmetric, nonzero zero points), symmetric
    int8 weights (so pruned zeros stay exactly zero), ranges from MinMax over calib_x."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calib_x[i:i + batch]} for i in range(0, len(calib_x), batch)])

        def get_next(self):
            return next(self.batches, None)

    # No quant_pre_process on purpose: it rewrites the graph (e.g. fuses skl2onnx's MatMul+Add
    # into Gemm), and these files should show the graph as exported. Its reminder is dropped.
    reminder = _DropMessages("pre-processing before quantization", "run pre-processing before")
    logging.getLogger().addFilter(reminder)
    try:
        quantize_static(str(float_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel,
                        # QUInt8 passed explicitly: newer onnxruntimes default to QInt8 activations
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(reminder)
    # quantize_static writes whatever IR version its onnx produces; pin it like the float model
    model = onnx.load(str(out_path))
    save_model(model, out_path)


def run_onnxruntime(path, x):
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})


def accuracy_onnxruntime(path, x, y, output=0):
    """Test accuracy of an ONNX model under onnxruntime: argmax of output `output` (scores)."""
    scores = run_onnxruntime(path, x)[output]
    return float(np.mean(np.argmax(scores, axis=1) == y))


def int8_weights(path):
    """{initializer name: int8 array} of a quantized model: the weights its DequantizeLinear
    nodes read (int32 biases and uint8 zero points left out)."""
    from onnx import numpy_helper
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            a = inits[node.input[0]]
            if a.dtype == np.int8:
                out[node.input[0]] = a
    return out


def report_int8(path, float_weights=None):
    """Print per-weight int8 sparsity; if float_weights ({quantized name: float array}) is given,
    check that every zero float weight quantized to exactly 0 (symmetric int8: 0 -> 0)."""
    weights = int8_weights(path)
    for name, q in weights.items():
        print(f"  {name:40s} {str(q.shape):16s} int8 zeros {np.mean(q == 0):.3f}")
    total = sparsity(list(weights.values()))
    print(f"  int8 weight sparsity overall: {total:.4f}")
    if float_weights is not None:
        for name, w in float_weights.items():
            q = weights[name]
            assert np.all(q[w == 0] == 0), f"{name}: a pruned weight quantized to nonzero"
        print("  pruned float zeros are exactly zero in int8: ok")
    return total


def quantize_and_report(float_path, int8_path, calib_x, x_test, y_test, float_weights,
                        per_channel=True):
    """Quantize (:func:`quantize`), print the float and onnxruntime-int8 test accuracies, check
    that the pruned zeros of ``float_weights`` ({float initializer name: array}) stay zero, and
    print the quantized graph."""
    quantize(float_path, int8_path, calib_x, per_channel=per_channel)
    float_acc = accuracy_onnxruntime(float_path, x_test, y_test)
    int8_acc = accuracy_onnxruntime(int8_path, x_test, y_test)
    print(f"float ONNX test accuracy {float_acc:.4f}, onnxruntime int8 {int8_acc:.4f}")
    quantized = int8_weights(int8_path)
    # quantize_static names a quantized weight W as W_quantized
    report_int8(int8_path, {f"{k}_quantized": w for k, w in float_weights.items()
                            if f"{k}_quantized" in quantized})
    print(describe_graph(int8_path))


def describe_graph(path):
    """Op types in order, the dtypes of Q/DQ zero points, and per-channel (axis) flags."""
    from onnx import numpy_helper
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    lines = [f"{path.name}: opset {model.opset_import[0].version}, ir {model.ir_version}"]
    for node in model.graph.node:
        extra = ""
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zp = inits.get(node.input[2]) if len(node.input) > 2 else None
            axis = [a.i for a in node.attribute if a.name == "axis"]
            per_channel = zp is not None and zp.ndim > 0 and zp.size > 1
            extra = (f" zp={zp.dtype if zp is not None else '?'}"
                     f"{' per-channel axis=' + str(axis[0] if axis else 1) if per_channel else ''}"
                     f"{' zp=' + str(int(zp)) if zp is not None and zp.size == 1 else ''}")
        lines.append(f"  {node.op_type:18s} {list(node.input)} -> {list(node.output)}{extra}")
    return "\n".join(lines)
