"""A model's inputs bound and checked before anything runs: the feeds (every graph input, of
its declared dtype and shape), the class labels and the calibration inputs. Every refusal is
BadInput saying what was found and what the model expects."""

from __future__ import annotations

from typing import Any

import numpy as np

from zeroskip.frontend.model import DTYPES, graph_inputs
from zeroskip.sim.loaders import BadInput

__all__ = ["load_array", "load_single_array", "bind_inputs", "check_feeds", "check_labels", "check_value", "load_labels",
           "load_calibration", "found"]


def found(value: Any) -> str:
    """What a value is, for a message: ``shape (4, 1) int64`` or ``a list``."""
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} {value.dtype}"
    return f"a {type(value).__name__}"


def load_array(path, what):
    """A ``.npy`` array or ``.npz`` archive (no pickles), or BadInput naming ``what``."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise BadInput(f"{what}: no such file: {path}") from None
    except Exception:
        raise BadInput(f"{what}: {path} is not a NumPy file") from None


def _names(infos) -> str:
    return ", ".join(i.name for i in infos) or "none"


def bind_inputs(model, input_path=None, inputs_path=None) -> dict:
    """The command's feeds: ``--input X.npy`` for a model with one graph input, ``--inputs
    IN.npz`` keyed by input name; every dtype and shape checked against the graph's
    declaration."""
    wanted = graph_inputs(model)
    if (input_path is None) == (inputs_path is None):
        raise BadInput("give one of --input X.npy and --inputs IN.npz")
    if input_path is not None:
        if len(wanted) != 1:
            raise BadInput(f"--input: the model has {len(wanted)} graph inputs "
                           f"({_names(wanted)}); use --inputs IN.npz keyed by name")
        array = load_single_array(input_path, "--input",
                                  f"one .npy array for {wanted[0].name!r}, or use --inputs")
        return check_feeds(model, {wanted[0].name: array}, "--input")
    archive = load_array(inputs_path, "--inputs")
    if isinstance(archive, np.ndarray):
        raise BadInput(f"--inputs: {inputs_path} is a single array of shape {archive.shape}; "
                       f"expected an .npz keyed by input name ({_names(wanted)})")
    with archive:
        feeds = {name: archive[name] for name in archive.files}
    return check_feeds(model, feeds, "--inputs")


def check_feeds(model, feeds: dict, what: str = "inputs") -> dict:
    """``feeds`` if it names every graph input and nothing else, each of the declared dtype
    and shape; BadInput naming ``what`` (the option that gave them) otherwise."""
    wanted = graph_inputs(model)
    given = ", ".join(map(str, feeds)) or "none"
    missing = [i.name for i in wanted if i.name not in feeds]
    if missing:
        raise BadInput(f"{what}: missing graph input {missing[0]!r} (the model takes "
                       f"{_names(wanted)}; found {given})")
    extra = sorted(set(feeds) - {i.name for i in wanted})
    if extra:
        raise BadInput(f"{what}: {extra[0]!r} is not a graph input of the model (it takes "
                       f"{_names(wanted)})")
    for info in wanted:
        value = feeds[info.name]
        if not isinstance(value, np.ndarray):
            raise BadInput(f"{what}: input {info.name!r}: expected a NumPy array, found "
                           f"{found(value)}")
        check_value(info, value)
    return feeds


def check_labels(labels, feeds: dict, what: str = "labels") -> np.ndarray:
    """``labels`` if it is one integer class label per input of the batch in ``feeds``;
    BadInput naming ``what`` and what was found otherwise."""
    first = next(iter(feeds.values()))
    batch = first.shape[0] if first.ndim else 1
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or \
            labels.dtype.kind not in "iu" or len(labels) != batch:
        raise BadInput(f"{what}: expected {batch} integer class labels (1-D, one per input), "
                       f"found {found(labels)}")
    return labels


def check_value(info, value, what: str = ""):
    """BadInput unless ``value`` has the dtype and shape the graph input ``info`` declares;
    ``what`` (the option that gave it) leads the message."""
    lead = f"{what}: " if what else ""
    tensor = info.type.tensor_type
    dtype = DTYPES.get(tensor.elem_type)
    if dtype is None:
        raise BadInput(f"{lead}input {info.name!r}: element type {tensor.elem_type} is not "
                       f"supported")
    if value.dtype != dtype:
        raise BadInput(f"{lead}input {info.name!r}: dtype {value.dtype}, the model wants "
                       f"{np.dtype(dtype).name}")
    if tensor.HasField("shape"):
        dims = tensor.shape.dim
        if len(dims) != value.ndim:
            raise BadInput(f"{lead}input {info.name!r}: shape {list(value.shape)}, the model "
                           f"wants {len(dims)} dimensions ({_shape_text(dims)})")
        for dim, size in zip(dims, value.shape):
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise BadInput(f"{lead}input {info.name!r}: shape {list(value.shape)}, the "
                               f"model wants [{_shape_text(dims)}]")


def _shape_text(dims):
    return ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                     for d in dims)


def load_labels(path, feeds: dict) -> np.ndarray:
    """``--labels y.npy``: one integer class label per input of the batch in ``feeds``."""
    return check_labels(load_array(path, "--labels"), feeds, "--labels")


def load_calibration(path) -> np.ndarray:
    """``--calibrate CAL.npy``: one array of calibration inputs."""
    return load_single_array(path, "--calibrate", "a single .npy array")


def load_single_array(path, what: str, expected: str) -> np.ndarray:
    """One ``.npy`` array; an ``.npz`` archive is BadInput naming its keys and ``expected``."""
    data = load_array(path, what)
    if not isinstance(data, np.ndarray):
        with data:
            keys = ", ".join(data.files) or "none"
        raise BadInput(f"{what}: {path} is an .npz archive (keys: {keys}); expected {expected}")
    return data
