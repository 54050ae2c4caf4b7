"""A TFLite run's inputs from the command's files: ``--input X.npy`` (N samples of the model's
one input) or ``--inputs IN.npz`` keyed by input tensor name, checked against the model before
anything runs."""

from __future__ import annotations

import numpy as np

from zeroskip.frontend.inputs import load_array, load_single_array
from zeroskip.frontend.tflite.executor import check_input
from zeroskip.frontend.tflite.model import TfliteModel
from zeroskip.sim.loaders import BadInput

__all__ = ["bind_input"]


def bind_input(model: TfliteModel, input_path=None, inputs_path=None) -> np.ndarray:
    """The batch of the model's one input from ``--input`` or ``--inputs``."""
    if (input_path is None) == (inputs_path is None):
        raise BadInput("give one of --input X.npy and --inputs IN.npz")
    name = model.tensors[model.inputs[0]].name
    if input_path is not None:
        array = load_single_array(input_path, "--input",
                                  f"one .npy array for {name!r}, or use --inputs")
        return check_input(model, array, "--input")
    archive = load_array(inputs_path, "--inputs")
    if isinstance(archive, np.ndarray):
        raise BadInput(f"--inputs: {inputs_path} is a single array of shape {archive.shape}; "
                       f"expected an .npz keyed by input name ({name})")
    with archive:
        names = list(archive.files)
        if names != [name]:
            raise BadInput(f"--inputs: {inputs_path} has {', '.join(names) or 'no arrays'}; "
                           f"the model's input is {name!r}")
        return check_input(model, archive[name], "--inputs")
