"""A TFLite run's inputs from the command's files: ``--input X.npy`` (N samples of the model's
one input) or ``--inputs IN.npz`` keyed by input tensor name, checked against the model before
anything runs."""

from __future__ import annotations

import numpy as np

from zeroskip.frontend.tflite.executor import check_input
from zeroskip.frontend.tflite.model import TfliteModel
from zeroskip.sim.loaders import BadInput

__all__ = ["bind_input"]


def _load(path, what):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise BadInput(f"{what}: no such file: {path}") from None
    except Exception:
        raise BadInput(f"{what}: {path} is not a NumPy file") from None


def bind_input(model: TfliteModel, input_path=None, inputs_path=None) -> np.ndarray:
    """The batch of the model's one input from ``--input`` or ``--inputs``."""
    if (input_path is None) == (inputs_path is None):
        raise BadInput("give one of --input X.npy and --inputs IN.npz")
    name = model.tensors[model.inputs[0]].name
    if input_path is not None:
        array = _load(input_path, "--input")
        if not isinstance(array, np.ndarray):
            with array:
                keys = ", ".join(array.files) or "none"
            raise BadInput(f"--input: {input_path} is an .npz archive (keys: {keys}); expected "
                           f"one .npy array for {name!r}, or use --inputs")
        return check_input(model, array, "--input")
    archive = _load(inputs_path, "--inputs")
    if isinstance(archive, np.ndarray):
        raise BadInput(f"--inputs: {inputs_path} is a single array of shape {archive.shape}; "
                       f"expected an .npz keyed by input name ({name})")
    with archive:
        names = list(archive.files)
        if names != [name]:
            raise BadInput(f"--inputs: {inputs_path} has {', '.join(names) or 'no arrays'}; "
                           f"the model's input is {name!r}")
        return check_input(model, archive[name], "--inputs")
