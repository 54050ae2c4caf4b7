"""Small int8 TFLite models written with the flatbuffers schema of the ``tflite`` package, so
the tests make every model they run (no converter, no download).

A model is a list of :class:`Tensor` and a list of :class:`Op`; :func:`model_bytes` writes the
flatbuffer. Options are given by the schema's names: ``Op("FULLY_CONNECTED", [0, 1, 2], [3],
"FullyConnectedOptions", {"FusedActivationFunction": 1})``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
import tflite

_TYPES = {np.dtype(np.float32): tflite.TensorType.FLOAT32, np.dtype(np.int8): tflite.TensorType.INT8,
          np.dtype(np.int32): tflite.TensorType.INT32, np.dtype(np.uint8): tflite.TensorType.UINT8,
          np.dtype(np.int16): tflite.TensorType.INT16, np.dtype(np.int64): tflite.TensorType.INT64}


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: Any = np.int8
    scale: list[float] | None = None        # per tensor (one) or per channel
    zero_point: list[int] | None = None
    quantized_dimension: int = 0
    data: np.ndarray | None = None          # a constant (weights, bias, shape)


@dataclass
class Op:
    code: str                               # a tflite.BuiltinOperator name
    inputs: list[int]
    outputs: list[int]
    options_type: str | None = None         # a tflite.BuiltinOptions name
    options: dict[str, Any] = field(default_factory=dict)


def _vector(builder, start, values, kind):
    start(builder, len(values))
    for value in reversed(values):
        getattr(builder, f"Prepend{kind}")(value)
    return builder.EndVector()


def _options(builder, name, fields):
    module = tflite   # the schema's functions are all at the package's top level
    vectors = {}
    for key, value in fields.items():
        if isinstance(value, (list, tuple)):
            vectors[key] = _vector(builder, getattr(module, f"{name}Start{key}Vector"),
                                   list(value), "Int32")
    getattr(module, f"{name}Start")(builder)
    for key, value in fields.items():
        getattr(module, f"{name}Add{key}")(builder, vectors.get(key, value))
    return getattr(module, f"{name}End")(builder)


def _quantization(builder, tensor):
    if tensor.scale is None:
        return None
    scale = _vector(builder, tflite.QuantizationParametersStartScaleVector,
                    [float(s) for s in tensor.scale], "Float32")
    zero = _vector(builder, tflite.QuantizationParametersStartZeroPointVector,
                   [int(z) for z in (tensor.zero_point or [0] * len(tensor.scale))], "Int64")
    tflite.QuantizationParametersStart(builder)
    tflite.QuantizationParametersAddScale(builder, scale)
    tflite.QuantizationParametersAddZeroPoint(builder, zero)
    tflite.QuantizationParametersAddQuantizedDimension(builder, tensor.quantized_dimension)
    return tflite.QuantizationParametersEnd(builder)


def model_bytes(tensors: list[Tensor], ops: list[Op], inputs: list[int],
                outputs: list[int]) -> bytes:
    """The ``.tflite`` flatbuffer of one subgraph: ``tensors`` (constants carry ``data``),
    ``ops`` in execution order, the subgraph's input and output tensor indices."""
    builder = flatbuffers.Builder(1024)
    # buffer 0 is the empty buffer every model starts with; each constant gets its own
    buffers, buffer_of = [b""], []
    for tensor in tensors:
        if tensor.data is None:
            buffer_of.append(0)
        else:
            buffer_of.append(len(buffers))
            buffers.append(np.ascontiguousarray(tensor.data, dtype=tensor.dtype).tobytes())
    buffer_offsets = []
    for data in buffers:
        content = builder.CreateByteVector(data) if data else None
        tflite.BufferStart(builder)
        if content is not None:
            tflite.BufferAddData(builder, content)
        buffer_offsets.append(tflite.BufferEnd(builder))
    tensor_offsets = []
    for tensor, buffer in zip(tensors, buffer_of):
        name = builder.CreateString(tensor.name)
        shape = _vector(builder, tflite.TensorStartShapeVector, list(tensor.shape), "Int32")
        quant = _quantization(builder, tensor)
        tflite.TensorStart(builder)
        tflite.TensorAddShape(builder, shape)
        tflite.TensorAddType(builder, _TYPES[np.dtype(tensor.dtype)])
        tflite.TensorAddBuffer(builder, buffer)
        tflite.TensorAddName(builder, name)
        if quant is not None:
            tflite.TensorAddQuantization(builder, quant)
        tensor_offsets.append(tflite.TensorEnd(builder))
    codes = list(dict.fromkeys(op.code for op in ops))
    code_offsets = []
    for code in codes:
        value = getattr(tflite.BuiltinOperator, code)
        tflite.OperatorCodeStart(builder)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(value, 127))
        tflite.OperatorCodeAddBuiltinCode(builder, value)
        tflite.OperatorCodeAddVersion(builder, 1)
        code_offsets.append(tflite.OperatorCodeEnd(builder))
    op_offsets = []
    for op in ops:
        op_inputs = _vector(builder, tflite.OperatorStartInputsVector, op.inputs, "Int32")
        op_outputs = _vector(builder, tflite.OperatorStartOutputsVector, op.outputs, "Int32")
        options = _options(builder, op.options_type, op.options) if op.options_type else None
        tflite.OperatorStart(builder)
        tflite.OperatorAddOpcodeIndex(builder, codes.index(op.code))
        tflite.OperatorAddInputs(builder, op_inputs)
        tflite.OperatorAddOutputs(builder, op_outputs)
        if op.options_type is not None:
            tflite.OperatorAddBuiltinOptionsType(
                builder, getattr(tflite.BuiltinOptions, op.options_type))
            tflite.OperatorAddBuiltinOptions(builder, options)
        op_offsets.append(tflite.OperatorEnd(builder))
    tensors_vec = _vector(builder, tflite.SubGraphStartTensorsVector, tensor_offsets, "UOffsetTRelative")
    inputs_vec = _vector(builder, tflite.SubGraphStartInputsVector, inputs, "Int32")
    outputs_vec = _vector(builder, tflite.SubGraphStartOutputsVector, outputs, "Int32")
    ops_vec = _vector(builder, tflite.SubGraphStartOperatorsVector, op_offsets, "UOffsetTRelative")
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensors_vec)
    tflite.SubGraphAddInputs(builder, inputs_vec)
    tflite.SubGraphAddOutputs(builder, outputs_vec)
    tflite.SubGraphAddOperators(builder, ops_vec)
    subgraph = tflite.SubGraphEnd(builder)
    subgraphs = _vector(builder, tflite.ModelStartSubgraphsVector, [subgraph], "UOffsetTRelative")
    codes_vec = _vector(builder, tflite.ModelStartOperatorCodesVector, code_offsets,
                        "UOffsetTRelative")
    buffers_vec = _vector(builder, tflite.ModelStartBuffersVector, buffer_offsets,
                          "UOffsetTRelative")
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, codes_vec)
    tflite.ModelAddSubgraphs(builder, subgraphs)
    tflite.ModelAddBuffers(builder, buffers_vec)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


#: TFLite's fused activation codes by the names the reader gives them
FUSED = {"none": 0, "relu": 1, "relu6": 3}


def conv_model(rng, *, depthwise=False, shape=(9, 7, 4), out_channels=6, kernel=(3, 3),
               stride=(1, 1), dilation=(1, 1), padding="same", activation="none",
               multiplier=2, sparsity=0.5, per_channel=True):
    """One int8 CONV_2D or DEPTHWISE_CONV_2D layer with random quantization and weights of
    the given sparsity."""
    h, w, c = shape
    oc = c * multiplier if depthwise else out_channels
    wshape = (1, *kernel, oc) if depthwise else (oc, *kernel, c)
    weights = rng.integers(-127, 128, wshape).astype(np.int8)
    weights[rng.random(wshape) < sparsity] = 0
    scales = list(rng.uniform(1e-3, 0.05, oc if per_channel else 1))
    in_scale, in_zero = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    out_scale, out_zero = float(rng.uniform(0.05, 0.5)), int(rng.integers(-128, 128))
    options = {"Padding": 0 if padding == "same" else 1, "StrideH": stride[0],
               "StrideW": stride[1], "DilationHFactor": dilation[0],
               "DilationWFactor": dilation[1], "FusedActivationFunction": FUSED[activation]}
    if depthwise:
        options["DepthMultiplier"] = multiplier
    tensors = [Tensor("x", (1, h, w, c), scale=[in_scale], zero_point=[in_zero]),
               Tensor("w", wshape, scale=scales, zero_point=[0] * len(scales), data=weights,
                      quantized_dimension=3 if depthwise else 0),
               Tensor("b", (oc,), np.int32, scale=[in_scale * s for s in scales],
                      zero_point=[0] * len(scales),
                      data=rng.integers(-3000, 3000, oc).astype(np.int32)),
               Tensor("y", (1, 1, 1, oc), scale=[out_scale], zero_point=[out_zero])]
    code = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    kind = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
    content = model_bytes(tensors, [Op(code, [0, 1, 2], [3], kind, options)], [0], [3])
    return content


def fc_model(rng, k=40, n=12, activation="relu", per_channel=True):
    weights = rng.integers(-127, 128, (n, k)).astype(np.int8)
    weights[:, ::3] = 0
    scales = list(rng.uniform(1e-3, 0.05, n if per_channel else 1))
    in_scale, in_zero = 0.05, -7
    tensors = [Tensor("x", (1, k), scale=[in_scale], zero_point=[in_zero]),
               Tensor("w", (n, k), scale=scales, zero_point=[0] * len(scales), data=weights),
               Tensor("b", (n,), np.int32, scale=[in_scale * s for s in scales],
                      zero_point=[0] * len(scales),
                      data=rng.integers(-3000, 3000, n).astype(np.int32)),
               Tensor("y", (1, n), scale=[0.2], zero_point=[5])]
    return model_bytes(tensors, [Op("FULLY_CONNECTED", [0, 1, 2], [3], "FullyConnectedOptions",
                                    {"FusedActivationFunction": FUSED[activation]})], [0], [3])


def run_reference(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    """The model's outputs on ``x`` by LiteRT's reference kernels (``BUILTIN_REF``), one
    invocation per sample of ``x``'s first axis, in the model's output order."""
    from zeroskip.frontend.tflite.reference import reference_outputs
    return list(reference_outputs(model, x).values())
