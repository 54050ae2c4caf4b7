"""A small pruned CNN for the 8x8 digits, trained in pure NumPy, exported to ONNX and quantized.

Graph: x [N,64] -> Reshape [N,1,8,8] -> Conv(1->8, 3x3, pad 1) -> Relu -> Conv(8->16, 3x3, pad 1)
-> Relu -> MaxPool 2x2 -> Flatten [N,256] -> Gemm(256->10) -> logits [N,10].

Training: Adam on softmax cross-entropy, then global magnitude pruning in steps (50, 70, 80, 85%
of all conv+fc weights; biases are not pruned) with fine-tuning after each step and the masks
held fixed. Writes models/digits_cnn_float.onnx and the per-channel QDQ int8
models/digits_cnn.onnx.

    .venv/bin/python -m models.digits_cnn      (or: .venv/bin/python models/digits_cnn.py)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file or as -m

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.common import (MODELS_DIR, OPSET, calib_data, global_prune_masks, load_data,
                           make_x_input, quantize_and_report, run_onnxruntime, save_model, sparsity,
                           write_data_files)

SEED = 0
PRUNE_STEPS = (0.5, 0.7, 0.8, 0.85)
EPOCHS, FINETUNE_EPOCHS, BATCH = 30, 20, 32
LR, FINETUNE_LR = 2e-3, 1e-3
PRUNED = ("conv1.W", "conv2.W", "fc.W")  # the weights pruning applies to

FLOAT_PATH = MODELS_DIR / "digits_cnn_float.onnx"
INT8_PATH = MODELS_DIR / "digits_cnn.onnx"


# ---- im2col convolution (3x3, stride 1, pad 1) on [N, C, 8, 8] ----

def _im2col_index(h, w):
    """Row/col indices into the padded image for each (output pixel, kernel tap)."""
    oi, oj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ki, kj = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    rows = oi.reshape(-1, 1) + ki.reshape(1, -1)  # [h*w, 9]
    cols = oj.reshape(-1, 1) + kj.reshape(1, -1)
    return rows, cols


ROWS, COLS = _im2col_index(8, 8)


def im2col(x):
    """[N, C, 8, 8] -> [N, 64, C*9], column c*9 + ki*3 + kj: ONNX's [Cout, Cin, kh, kw] order."""
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    patches = xp[:, :, ROWS, COLS]                  # [N, C, 64, 9]
    return patches.transpose(0, 2, 1, 3).reshape(n, 64, c * 9)


def col2im(dcols, c):
    """Adjoint of im2col: scatter-add patch gradients back to [N, C, 8, 8]."""
    n = dcols.shape[0]
    d = dcols.reshape(n, 64, c, 9).transpose(0, 2, 1, 3)  # [N, C, 64, 9]
    dxp = np.zeros((n, c, 10, 10), dtype=dcols.dtype)
    # several patches touch the same pixel, hence add.at rather than fancy-index assignment
    np.add.at(dxp, (slice(None), slice(None), ROWS, COLS), d)
    return dxp[:, :, 1:-1, 1:-1]


def conv_forward(x, w, b):
    cols = im2col(x)                                        # [N, 64, Cin*9]
    out = cols @ w.reshape(w.shape[0], -1).T + b            # [N, 64, Cout]
    return out.transpose(0, 2, 1).reshape(x.shape[0], w.shape[0], 8, 8), cols


def conv_backward(dout, cols, w, cin):
    n, cout = dout.shape[:2]
    d = dout.reshape(n, cout, 64).transpose(0, 2, 1)        # [N, 64, Cout]
    dw = np.einsum("npo,npk->ok", d, cols).reshape(w.shape)
    db = d.sum(axis=(0, 1))
    dx = col2im(d @ w.reshape(cout, -1), cin)
    return dx, dw, db


# ---- the network ----

def init_params(rng):
    def he(shape, fan_in):  # He init: keeps ReLU activations' scale roughly constant per layer
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return {"conv1.W": he((8, 1, 3, 3), 9), "conv1.b": np.zeros(8, np.float32),
            "conv2.W": he((16, 8, 3, 3), 72), "conv2.b": np.zeros(16, np.float32),
            "fc.W": he((10, 256), 256), "fc.b": np.zeros(10, np.float32)}


def forward(p, x):
    """x [N, 64] -> logits [N, 10], plus what backward needs."""
    n = x.shape[0]
    a0 = x.reshape(n, 1, 8, 8)
    z1, cols1 = conv_forward(a0, p["conv1.W"], p["conv1.b"])
    a1 = np.maximum(z1, 0)
    z2, cols2 = conv_forward(a1, p["conv2.W"], p["conv2.b"])
    a2 = np.maximum(z2, 0)
    windows = a2.reshape(n, 16, 4, 2, 4, 2)
    pooled = windows.max(axis=(3, 5))                       # [N, 16, 4, 4]
    flat = pooled.reshape(n, 256)                           # ONNX Flatten order (C-order)
    logits = flat @ p["fc.W"].T + p["fc.b"]                 # Gemm with transB=1
    return logits, (cols1, z1, cols2, z2, windows, pooled, flat)


def backward(p, cache, dlogits):
    cols1, z1, cols2, z2, windows, pooled, flat = cache
    n = dlogits.shape[0]
    g = {"fc.W": dlogits.T @ flat, "fc.b": dlogits.sum(0)}
    dpooled = (dlogits @ p["fc.W"]).reshape(n, 16, 4, 4)
    # max-pool gradient goes to the argmax of each window (ties split the gradient: harmless)
    hit = windows == pooled[:, :, :, None, :, None]
    dwin = hit * dpooled[:, :, :, None, :, None]
    da2 = dwin.reshape(n, 16, 8, 8)
    dz2 = da2 * (z2 > 0)
    da1, g["conv2.W"], g["conv2.b"] = conv_backward(dz2, cols2, p["conv2.W"], 8)
    dz1 = da1 * (z1 > 0)
    _, g["conv1.W"], g["conv1.b"] = conv_backward(dz1, cols1, p["conv1.W"], 1)
    return g


def accuracy(p, x, y):
    return float(np.mean(np.argmax(forward(p, x)[0], axis=1) == y))


def train(p, x, y, epochs, lr, rng, masks=None):
    """Adam on mean softmax cross-entropy; masked weights get zero gradient and stay zero."""
    state = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in p.items()}
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            logits, cache = forward(p, x[idx])
            prob = np.exp(logits - logits.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            prob[np.arange(len(idx)), y[idx]] -= 1
            grads = backward(p, cache, prob / len(idx))
            t += 1
            for k, gk in grads.items():
                if masks and k in masks:
                    gk = gk * masks[k]
                m, v = state[k]
                m[:] = b1 * m + (1 - b1) * gk
                v[:] = b2 * v + (1 - b2) * gk * gk
                p[k] -= (lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)).astype(np.float32)
                if masks and k in masks:
                    p[k] *= masks[k]  # exact zeros, whatever Adam's moments say


# ---- ONNX export ----

def export(p, path):
    inits = [numpy_helper.from_array(v, k) for k, v in p.items()]
    inits.append(numpy_helper.from_array(np.array([-1, 1, 8, 8], np.int64), "image_shape"))
    nodes = [
        helper.make_node("Reshape", ["x", "image_shape"], ["image"], name="reshape"),
        helper.make_node("Conv", ["image", "conv1.W", "conv1.b"], ["conv1"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("Conv", ["relu1", "conv2.W", "conv2.b"], ["conv2"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.W", "fc.b"], ["logits"], name="fc", transB=1),
    ]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])
    graph = helper.make_graph(nodes, "digits_cnn", [make_x_input()], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="zeroskip-models")
    save_model(model, path)


def main():
    write_data_files()
    x_train, x_test, y_train, y_test = load_data()
    rng = np.random.default_rng(SEED)
    p = init_params(rng)
    train(p, x_train, y_train, EPOCHS, LR, rng)
    print(f"dense: test accuracy {accuracy(p, x_test, y_test):.4f}")
    for step in PRUNE_STEPS:
        masks = dict(zip(PRUNED, global_prune_masks([p[k] for k in PRUNED], step)))
        for k in PRUNED:
            p[k] *= masks[k]
        before = accuracy(p, x_test, y_test)
        train(p, x_train, y_train, FINETUNE_EPOCHS, FINETUNE_LR, rng, masks)
        print(f"pruned {sparsity([p[k] for k in PRUNED]):.3f}: test accuracy {before:.4f} "
              f"right after pruning, {accuracy(p, x_test, y_test):.4f} after fine-tuning")
    for k in PRUNED:
        print(f"  {k}: {p[k].size} weights, {np.mean(p[k] == 0):.3f} zero")

    export(p, FLOAT_PATH)
    # the exported float graph must compute what NumPy computed
    np.testing.assert_allclose(run_onnxruntime(FLOAT_PATH, x_test)[0], forward(p, x_test)[0],
                               rtol=1e-4, atol=1e-4)
    quantize_and_report(FLOAT_PATH, INT8_PATH, calib_data(x_train), x_test, y_test,
                        {k: p[k] for k in PRUNED})


if __name__ == "__main__":
    main()
