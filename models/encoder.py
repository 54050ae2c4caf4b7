"""A small transformer-encoder classifier for the 8x8 digits, exported to ONNX and quantized.

Each digit is a sequence of 8 tokens (its rows) of 8 pixels. Graph (hidden 32, one head):
  x [N,64] -> Reshape [N,8,8]
  -> MatMul We [8,32] -> Add P [8,32]      (embedding; P = bias + positional embedding per row)
  -> Q, K, V = MatMul [32,32] each          (1/sqrt(32) folded into Wq, so no Mul node)
  -> MatMul(Q, Transpose(K)) -> Softmax -> MatMul(., V) -> MatMul Wo [32,32]
  -> Add residual -> LayerNormalization
  -> MatMul W1 [32,64] -> Relu -> MatMul W2 [64,32] -> Add residual -> LayerNormalization
  -> ReduceMean over the 8 tokens -> Gemm head [32 -> 10] -> logits [N,10]

Honest note: the encoder block is NOT trained. Its weights (We, P, Wq, Wk, Wv, Wo, W1, W2) are
seeded random Gaussians, magnitude-pruned to 85% zeros (globally over the block) and then
rescaled so each matrix keeps unit output variance; LayerNormalization has gamma 1, beta 0.
Only the classifier head is trained: sklearn LogisticRegression on the standardized pooled block
features, then magnitude-pruned to 70% in two steps with NumPy Adam fine-tuning under fixed masks
(70% rather than 80% because 80% cost ~3 points of test accuracy; the head is 320 of 8768 weights, so the whole model stays
above 84% zeros); the standardization is folded into the Gemm. So the block is a random
feature extractor with a trained linear readout: the accuracy measures that, not a trained
transformer. Its point is a graph with the ops and shapes of an encoder for the front end.
Writes models/encoder_float.onnx and the per-channel QDQ int8 models/encoder.onnx.

    .venv/bin/python -m models.encoder      (or: .venv/bin/python models/encoder.py)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file or as -m

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression

from models.common import (MODELS_DIR, OPSET, calib_data, global_prune_masks, load_data,
                           make_x_input, quantize_and_report, run_onnxruntime, save_model, sparsity,
                           write_data_files)

SEED = 0
SEQ, TOKEN, HIDDEN, FF, CLASSES = 8, 8, 32, 64, 10
BLOCK_SPARSITY = 0.85
HEAD_PRUNE_STEPS = (0.5, 0.7)
C = 10.0  # inverse L2 strength of the head (LogisticRegression convention)
LN_EPS = 1e-5
BLOCK = ("We", "Wq", "Wk", "Wv", "Wo", "W1", "W2")  # the pruned random matrices ([in, out])

FLOAT_PATH = MODELS_DIR / "encoder_float.onnx"
INT8_PATH = MODELS_DIR / "encoder.onnx"


def init_block(rng):
    shapes = {"We": (TOKEN, HIDDEN), "Wq": (HIDDEN, HIDDEN), "Wk": (HIDDEN, HIDDEN),
              "Wv": (HIDDEN, HIDDEN), "Wo": (HIDDEN, HIDDEN), "W1": (HIDDEN, FF), "W2": (FF, HIDDEN)}
    p = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    masks = dict(zip(BLOCK, global_prune_masks([p[k] for k in BLOCK], BLOCK_SPARSITY)))
    for k in BLOCK:
        w = p[k] * masks[k]
        # after pruning, rescale so a unit-variance input gives ~unit-variance outputs
        # (sum of squares per output column averaged over columns = 1)
        p[k] = (w / np.sqrt(np.mean(np.sum(w * w, axis=0)))).astype(np.float32)
    # Q.K^T / sqrt(d): fold the attention scale into Wq (exact in float, no extra node)
    p["Wq"] = (p["Wq"] / np.sqrt(HIDDEN)).astype(np.float32)
    # per-row additive term: a bias and a learned-looking positional embedding in one constant;
    # without it attention + mean pooling would not know which row is which
    p["P"] = (0.5 * rng.standard_normal((SEQ, HIDDEN))).astype(np.float32)
    p["ln1.g"] = np.ones(HIDDEN, np.float32)
    p["ln1.b"] = np.zeros(HIDDEN, np.float32)
    p["ln2.g"] = np.ones(HIDDEN, np.float32)
    p["ln2.b"] = np.zeros(HIDDEN, np.float32)
    return p


def layer_norm(z, g, b):
    mu = z.mean(-1, keepdims=True)
    var = ((z - mu) ** 2).mean(-1, keepdims=True)
    return (z - mu) / np.sqrt(var + LN_EPS) * g + b


def features(p, x):
    """The block's pooled output [N, 32]: exactly what the ONNX graph feeds the head."""
    h0 = x.reshape(-1, SEQ, TOKEN) @ p["We"] + p["P"]
    q, k, v = h0 @ p["Wq"], h0 @ p["Wk"], h0 @ p["Wv"]
    s = q @ k.transpose(0, 2, 1)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    n1 = layer_norm(h0 + (a @ v) @ p["Wo"], p["ln1.g"], p["ln1.b"])
    n2 = layer_norm(n1 + np.maximum(n1 @ p["W1"], 0) @ p["W2"], p["ln2.g"], p["ln2.b"])
    return n2.mean(axis=1)


def train_head(f, y, w, b, iters, lr, mask, l2):
    """Full-batch Adam on softmax cross-entropy (+ small L2); w [10, 32] as Gemm's transB=1 B."""
    state = [np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)]
    onehot = np.eye(CLASSES, dtype=np.float32)[y]
    for t in range(1, iters + 1):
        z = f @ w.T + b
        prob = np.exp(z - z.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        d = (prob - onehot) / len(f)
        gw, gb = d.T @ f + l2 * w, d.sum(0)
        gw = gw * mask
        for i, (param, g) in enumerate(((w, gw), (b, gb))):
            m, v = state[2 * i], state[2 * i + 1]
            m[:] = 0.9 * m + 0.1 * g
            v[:] = 0.999 * v + 0.001 * g * g
            param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        w *= mask  # exact zeros, whatever Adam's moments say
    return w, b


def head_accuracy(f, y, w, b):
    return float(np.mean(np.argmax(f @ w.T + b, axis=1) == y))


def export(p, path):
    def const(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    inits = [const(k, v) for k, v in p.items()]
    inits += [const("seq_shape", np.array([-1, SEQ, TOKEN], np.int64))]
    mm = lambda a, b, out: helper.make_node("MatMul", [a, b], [out], name=out)  # noqa: E731
    nodes = [
        helper.make_node("Reshape", ["x", "seq_shape"], ["tokens"], name="tokens"),
        mm("tokens", "We", "embed_mm"),
        helper.make_node("Add", ["embed_mm", "P"], ["h0"], name="h0"),
        mm("h0", "Wq", "q"), mm("h0", "Wk", "k"), mm("h0", "Wv", "v"),
        helper.make_node("Transpose", ["k"], ["kT"], name="kT", perm=[0, 2, 1]),
        mm("q", "kT", "scores"),
        helper.make_node("Softmax", ["scores"], ["attn"], name="attn", axis=-1),
        mm("attn", "v", "context"),
        mm("context", "Wo", "attn_out"),
        helper.make_node("Add", ["h0", "attn_out"], ["res1"], name="res1"),
        helper.make_node("LayerNormalization", ["res1", "ln1.g", "ln1.b"], ["n1"], name="ln1",
                         axis=-1, epsilon=LN_EPS),
        mm("n1", "W1", "ff1"),
        helper.make_node("Relu", ["ff1"], ["ff1_relu"], name="ff1_relu"),
        mm("ff1_relu", "W2", "ff2"),
        helper.make_node("Add", ["n1", "ff2"], ["res2"], name="res2"),
        helper.make_node("LayerNormalization", ["res2", "ln2.g", "ln2.b"], ["n2"], name="ln2",
                         axis=-1, epsilon=LN_EPS),
        # opset 17: ReduceMean's axes is still an attribute (an input from opset 18)
        helper.make_node("ReduceMean", ["n2"], ["pooled"], name="pooled", axes=[1], keepdims=0),
        helper.make_node("Gemm", ["pooled", "head.W", "head.b"], ["logits"], name="head",
                         transB=1),
    ]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])
    graph = helper.make_graph(nodes, "encoder", [make_x_input()], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="zeroskip-models")
    save_model(model, path)


def main():
    write_data_files()
    x_train, x_test, y_train, y_test = load_data()
    rng = np.random.default_rng(SEED)
    p = init_block(rng)
    f_train, f_test = features(p, x_train), features(p, x_test)

    # standardize the features for the fit (Adam and L2 behave far better on unit-scale inputs),
    # then fold the standardization into the Gemm: W' = W / sd, b' = b - W' . mu (exact)
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    z_train, z_test = (f_train - mu) / sd, (f_test - mu) / sd
    clf = LogisticRegression(C=C, max_iter=5000).fit(z_train, y_train)
    w, b = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
    print(f"dense head: train accuracy {head_accuracy(z_train, y_train, w, b):.4f}, "
          f"test {head_accuracy(z_test, y_test, w, b):.4f}")
    for step in HEAD_PRUNE_STEPS:
        mask = global_prune_masks([w], step)[0]
        w *= mask
        # same L2 as LogisticRegression's C, per sample
        w, b = train_head(z_train, y_train, w, b, iters=1000, lr=1e-2, mask=mask,
                          l2=1.0 / (C * len(z_train)))
        print(f"head pruned {sparsity([w]):.2f}: test accuracy "
              f"{head_accuracy(z_test, y_test, w, b):.4f}")
    w = (w / sd).astype(np.float32)
    b = (b - w @ mu).astype(np.float32)
    p["head.W"], p["head.b"] = w, b
    pruned = (*BLOCK, "head.W")
    for k in pruned:
        print(f"  {k}: {p[k].shape}, {np.mean(p[k] == 0):.3f} zero")
    print(f"  all weight matrices: {sparsity([p[k] for k in pruned]):.4f} zero")

    export(p, FLOAT_PATH)
    np.testing.assert_allclose(run_onnxruntime(FLOAT_PATH, x_test)[0],
                               features(p, x_test) @ w.T + b, rtol=1e-4, atol=1e-4)
    quantize_and_report(FLOAT_PATH, INT8_PATH, calib_data(x_train), x_test, y_test,
                        {k: p[k] for k in pruned})


if __name__ == "__main__":
    main()
