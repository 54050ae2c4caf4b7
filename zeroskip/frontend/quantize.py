"""The model that runs: a float model quantized with onnxruntime's own static quantizer on the
user's calibration inputs (its weights pruned first on request), or a quantized model with its
array weights pruned. A model the quantizer cannot take is refused up front, saying why."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from zeroskip.frontend.inputs import check_value, found
from zeroskip.frontend.model import graph_inputs, operators
from zeroskip.frontend.terms import PYTHON, Terms
from zeroskip.sim.loaders import BadInput

__all__ = ["calibrate", "check_calibratable", "check_prune", "prepare_model", "QUANTIZED_OPS",
           "MATRIX_OPS"]

#: Operators that only a quantized model has: ``calibrate`` would quantize it twice.
QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
                 "QLinearMatMul", "ConvInteger", "MatMulInteger")
#: The float matrix products the quantizer turns into what runs on the array.
MATRIX_OPS = ("Conv", "Gemm", "MatMul")


def check_prune(prune, terms: Terms = PYTHON):
    """BadInput unless ``prune`` is None or a fraction in [0, 1)."""
    if prune is not None and (not isinstance(prune, (int, float)) or isinstance(prune, bool) or
                              not 0 <= prune < 1):
        raise BadInput(f"{terms('prune')} must be in [0, 1), not {prune!r}")


def check_calibratable(model, name: str, terms: Terms = PYTHON):
    """BadInput unless ``model`` is a float model with a matrix product for the quantizer:
    not quantized already, and with a Conv, Gemm or MatMul of the default domain."""
    default = [node for node in model.graph.node if node.domain in ("", "ai.onnx")]
    present = {node.op_type for node in default}
    quantized = [op for op in QUANTIZED_OPS if op in present]
    if quantized:
        raise BadInput(f"{name} is already quantized (has {'/'.join(quantized)} nodes): drop "
                       f"{terms.given('calibrate')}")
    if not any(node.op_type in MATRIX_OPS for node in default):
        raise BadInput(f"{name}: no matrix product of a supported kind (found: "
                       f"{operators(model)}); {terms('calibrate')} quantizes a float model's "
                       f"{', '.join(MATRIX_OPS)} nodes for the array")


def _weights_to_prune(model):
    """Float weight initializers of Conv/Gemm/MatMul (input 1)."""
    names = {node.input[1] for node in model.graph.node
             if node.op_type in MATRIX_OPS and len(node.input) > 1}
    return [init for init in model.graph.initializer if init.name in names and
            init.data_type == 1]


def calibrate(model, calibration, prune: float | None, *, name: str = "model",
              terms: Terms = PYTHON):
    """Quantize a float model with onnxruntime's own static quantizer (QDQ, uint8
    activations, int8 weights per channel) on ``calibration``; ``prune`` zeroes that fraction
    of each weight matrix by magnitude first.

    Raises
    ------
    ValueError
        (:class:`BadInput`) for a model that is quantized already or has no matrix product
        to quantize, calibration inputs of another dtype or shape than the graph input, or a
        model onnxruntime's quantizer refuses.
    """
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    what = terms("calibrate")
    check_calibratable(model, name, terms)
    wanted = graph_inputs(model)
    if len(wanted) != 1:
        raise BadInput(f"{what}: the model has {len(wanted)} graph inputs; calibration takes "
                       f"a model with one")
    if not isinstance(calibration, np.ndarray) or calibration.ndim == 0 or \
            calibration.shape[0] == 0:
        raise BadInput(f"{what}: expected an array of calibration inputs (a batch of at least "
                       f"one), found {found(calibration)}")
    check_value(wanted[0], calibration, what)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    if prune is not None:
        for init in _weights_to_prune(model):
            weights = numpy_helper.to_array(init).copy()
            keep = int(round(weights.size * (1 - prune)))
            if keep < weights.size:
                order = np.argsort(np.abs(weights), axis=None)
                weights.reshape(-1)[order[:weights.size - keep]] = 0
            init.CopyFrom(numpy_helper.from_array(weights, init.name))
    input_name = wanted[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{input_name: calibration}])

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
            try:
                quantize_static(str(source), str(target), Reader(),
                                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, per_channel=True)
            except Exception as exc:  # the quantizer's own errors are about this model
                message = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
                raise BadInput(f"{what}: onnxruntime's quantizer cannot quantize {name}: "
                               f"{message}") from None
            return onnx.load(str(target))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def prepare_model(model, calibration: np.ndarray | None, prune: float | None, *,
                  name: str = "model", terms: Terms = PYTHON):
    """The model that runs: a float model quantized on ``calibration`` (its weights pruned
    first by ``prune``), or a quantized model with its array weights pruned by ``prune``."""
    if calibration is not None:
        return calibrate(model, calibration, prune, name=name, terms=terms)
    if prune is not None:
        from zeroskip.frontend.prune import prune_quantized
        return prune_quantized(model, prune, terms=terms)
    return model
