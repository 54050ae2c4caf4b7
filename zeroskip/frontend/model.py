"""A user's ONNX model: loaded, checked by ONNX's checker, and described (its graph inputs, the
dtypes it declares, the operators it is made of) for the messages that name what was found."""

from __future__ import annotations

from pathlib import Path
import numpy as np

from zeroskip.sim.loaders import BadInput

__all__ = ["DTYPES", "load_model", "check_model", "model_name", "graph_inputs",
           "declared_dtype", "operators"]

#: numpy dtypes of ONNX tensor element types (the ones a graph input of ours may declare)
DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
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
    """``model`` if ONNX's checker accepts it; TypeError for something that is not an
    ``onnx.ModelProto``, BadInput naming ``name`` for a model the checker refuses."""
    import onnx
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"model: expected a path or an onnx.ModelProto, got "
                        f"{type(model).__name__}")
    if not model.graph.node:
        raise BadInput(f"{name} is not an ONNX model (no graph nodes)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise BadInput(f"{name}: invalid ONNX model: {str(exc).splitlines()[0]}") from None
    return model


def model_name(model, path=None) -> str:
    """What messages and reports call the model: its path, else its graph's name."""
    if path is not None:
        return str(path)
    return getattr(getattr(model, "graph", None), "name", "") or "model"


def graph_inputs(model) -> list:
    """The graph inputs a user feeds: those that are not initializers."""
    inits = {init.name for init in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def declared_dtype(model, name, value):
    """The dtype the graph declares for its output ``name`` (``value``'s own if none)."""
    for o in model.graph.output:
        if o.name == name:
            return DTYPES.get(o.type.tensor_type.elem_type, value.dtype)
    return value.dtype


def operators(model) -> str:
    """The model's operators as a message names them, each once in graph order, with its
    domain when not the default one: ``LinearClassifier from ai.onnx.ml, Cast``."""
    seen = dict.fromkeys(node.op_type + (f" from {node.domain}" if node.domain not in
                                         ("", "ai.onnx") else "")
                         for node in model.graph.node)
    return ", ".join(seen)
