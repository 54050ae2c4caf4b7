"""A small MLP in NumPy: training, magnitude pruning with fine-tuning, int8 quantization, and
integer-only inference whose GEMMs can run anywhere (NumPy or the accelerator's RTL)."""

from dataclasses import dataclass

import numpy as np

from zeroskip.sim import golden

__all__ = ["MLP", "QuantizedLayer", "QuantizedMLP", "train", "prune", "quantize",
           "requantize", "fixed_point", "int8_forward"]


@dataclass
class MLP:
    """Float MLP: ``weights[i]`` is (in, out), ReLU between layers, logits out."""
    weights: list
    biases: list
    masks: list | None = None

    def forward(self, x):
        activations = [x]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w + b
            if i < len(self.weights) - 1:
                x = np.maximum(x, 0)
            activations.append(x)
        return activations

    def predict(self, x):
        return self.forward(x)[-1].argmax(axis=1)

    def accuracy(self, x, y):
        return float((self.predict(x) == y).mean())

    @property
    def sparsity(self):
        total = sum(w.size for w in self.weights)
        return 1 - sum(np.count_nonzero(w) for w in self.weights) / total


def init_mlp(sizes, rng):
    weights = [rng.normal(0, np.sqrt(2 / fan_in), (fan_in, fan_out))
               for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
    biases = [np.zeros(fan_out) for fan_out in sizes[1:]]
    return MLP(weights, biases, [np.ones_like(w, dtype=bool) for w in weights])


def train(model, x, y, *, epochs, rng, lr=1e-3, batch=64, weight_decay=1e-4, progress=None):
    """Adam on softmax cross-entropy. Pruned weights (``model.masks``) stay zero."""
    params = model.weights + model.biases
    moments = [np.zeros_like(p) for p in params]
    velocities = [np.zeros_like(p) for p in params]
    step = 0
    classes = int(y.max()) + 1
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            acts = model.forward(x[idx])
            logits = acts[-1]
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            grad = (probs - np.eye(classes)[y[idx]]) / len(idx)
            grads_w, grads_b = [], []
            for i in reversed(range(len(model.weights))):
                grads_w.append(acts[i].T @ grad + weight_decay * model.weights[i])
                grads_b.append(grad.sum(axis=0))
                if i:
                    grad = (grad @ model.weights[i].T) * (acts[i] > 0)
            grads = grads_w[::-1] + grads_b[::-1]
            step += 1
            for p, g, m, v in zip(params, grads, moments, velocities):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                p -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
            for w, mask in zip(model.weights, model.masks):
                w *= mask
        if progress is not None:
            progress.update(1)
    return model


def prune(model, sparsity):
    """Global magnitude pruning of all weight matrices to ``sparsity``."""
    magnitudes = np.concatenate([np.abs(w[m]).ravel() for w, m in zip(model.weights,
                                                                      model.masks)])
    everything = sum(w.size for w in model.weights)
    keep = int(round(everything * (1 - sparsity)))
    threshold = np.sort(magnitudes)[::-1][keep - 1] if keep > 0 else np.inf
    model.masks = [(np.abs(w) >= threshold) & m for w, m in zip(model.weights, model.masks)]
    for w, mask in zip(model.weights, model.masks):
        w *= mask
    return model


@dataclass
class QuantizedLayer:
    """int8 weights, int32 bias and the fixed-point requantization to the next layer's int8
    activations: ``y = clip((acc + bias) * multiplier >> shift, 0, 127)`` (ReLU folded in)."""
    weights: np.ndarray  # int8 (in, out)
    bias: np.ndarray     # int32 (out,)
    multiplier: int
    shift: int


@dataclass
class QuantizedMLP:
    layers: list
    input_scale: float  # real input = int8 input * input_scale

    def quantize_input(self, x):
        return np.clip(np.round(x / self.input_scale), -128, 127).astype(np.int8)

    @property
    def sparsity(self):
        total = sum(layer.weights.size for layer in self.layers)
        return 1 - sum(np.count_nonzero(layer.weights) for layer in self.layers) / total


def fixed_point(real, bits=15):
    """``real`` as an integer multiplier below 2**bits and a right shift."""
    shift = 0
    while real * 2 ** (shift + 1) < 2 ** bits and shift < 40:
        shift += 1
    return int(round(real * 2 ** shift)), shift


def quantize(model, calibration, input_range=16.0):
    """Symmetric per-layer int8 quantization, activation scales from ``calibration`` data."""
    input_scale = input_range / 127
    acts = model.forward(calibration)
    layers = []
    act_scale = input_scale
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        w_scale = np.abs(w).max() / 127 if np.any(w) else 1.0
        w_q = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
        acc_scale = act_scale * w_scale
        b_q = np.round(b / acc_scale).astype(np.int32)
        if i < len(model.weights) - 1:
            out_scale = max(np.percentile(acts[i + 1], 99.99), 1e-6) / 127
            multiplier, shift = fixed_point(acc_scale / out_scale)
            act_scale = out_scale
        else:
            multiplier, shift = 1, 0  # logits stay int32
        layers.append(QuantizedLayer(w_q, b_q, multiplier, shift))
    return QuantizedMLP(layers, input_scale)


def requantize(acc, layer):
    """ReLU and fixed-point rescale of an int32 accumulation to the next int8 activation."""
    scaled = ((acc.astype(np.int64) + layer.bias) * layer.multiplier) >> layer.shift
    return np.clip(scaled, 0, 127).astype(np.int8)


def int8_forward(qmodel, x_q, gemm=golden.gemm):
    """Integer inference: int8 activations, ``gemm`` (int8 × int8 -> int32) per layer, int32
    bias, requantization + ReLU between layers. Returns the int32 logits."""
    acts = x_q
    for i, layer in enumerate(qmodel.layers):
        acc = gemm(acts, layer.weights)
        if i == len(qmodel.layers) - 1:
            return (acc.astype(np.int64) + layer.bias).astype(np.int32)
        acts = requantize(acc, layer)
