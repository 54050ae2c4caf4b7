"""What a sweep's points run: a GEMM point's operands (:func:`operands`), and an ONNX model
with its inputs (:class:`ModelWorkload`, random inputs from :func:`random_feeds`)."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeroskip.apps.sweep.points import Point

__all__ = ["operands", "ModelWorkload", "random_feeds"]


def operands(point: Point) -> tuple[np.ndarray, np.ndarray]:
    """The point's A (M×K) and W (K×N): the same workload (pattern, sparsity, shape, seed) on
    every array and format, so that points compare."""
    from zeroskip.sim.patterns import sparse_weights
    acts_rng = np.random.default_rng([point.seed, point.m, point.k])
    acts = acts_rng.integers(-128, 128, (point.m, point.k)).astype(np.int8)
    weights_rng = np.random.default_rng([point.seed, point.k, point.n,
                                         zlib.crc32(point.pattern.encode()),
                                         round(point.sparsity * 1_000_000)])
    weights = sparse_weights(weights_rng, point.k, point.n, point.pattern, 1 - point.sparsity)
    return acts, weights


@dataclass
class ModelWorkload:
    """An ONNX model as a sweep's workload: the model's bytes and its inputs (and labels,
    and calibration data for a float model), sent once to every worker."""
    name: str
    model: bytes
    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    calibration: np.ndarray | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, input: str | None = None,
             labels: str | None = None, calibrate: str | None = None,
             seed: int = 0) -> "ModelWorkload":
        """Everything checked as ``zeroskip run`` checks it; without ``input``, random inputs
        of the declared shapes (dynamic dimensions 1) from ``seed``."""
        from zeroskip.frontend.graph import plan as graph_plan
        from zeroskip.frontend.inputs import bind_inputs, load_calibration, load_labels
        from zeroskip.frontend.model import load_model
        from zeroskip.frontend.quantize import prepare_model
        from zeroskip.frontend.terms import CLI
        model = load_model(Path(path))
        feeds = bind_inputs(model, input) if input is not None else random_feeds(model, seed)
        label_values = None if labels is None else load_labels(labels, feeds)
        calibration = None if calibrate is None else load_calibration(calibrate)
        # it quantizes and it runs: a float weight without --calibrate is bad input, named
        graph_plan(prepare_model(model, calibration, None, terms=CLI), CLI)
        return cls(Path(path).name, model.SerializeToString(), feeds, label_values,
                   calibration)

    def digest(self) -> str:
        import hashlib
        digest = hashlib.sha256(self.model)
        arrays = [*(self.feeds[name] for name in sorted(self.feeds)), self.labels,
                  self.calibration]
        for name, value in zip([*sorted(self.feeds), "labels", "calibration"], arrays):
            if value is not None:
                digest.update(f"{name}{value.dtype}{value.shape}".encode())
                digest.update(np.ascontiguousarray(value).tobytes())
        return digest.hexdigest()[:12]


def random_feeds(model, seed: int) -> dict[str, np.ndarray]:
    """Inputs of the model's declared dtypes and shapes (dynamic dimensions 1): integers over
    their whole range, floats standard normal."""
    from zeroskip.frontend.model import DTYPES as _DTYPES, graph_inputs
    rng = np.random.default_rng([seed, 0x5EED])
    feeds = {}
    for info in graph_inputs(model):
        tensor = info.type.tensor_type
        dtype = np.dtype(_DTYPES.get(tensor.elem_type, np.float32))
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim]
        if dtype.kind in "iu":
            limits = np.iinfo(dtype)  # type: ignore[type-var]
            feeds[info.name] = rng.integers(int(limits.min), int(limits.max) + 1, shape,
                                            dtype=dtype)
        else:
            feeds[info.name] = rng.standard_normal(shape).astype(dtype)
    return feeds
