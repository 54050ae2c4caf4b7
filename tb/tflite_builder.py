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


def every_op_model(rng) -> bytes:
    """A small network with every operator zeroskip runs, float in and float out (QUANTIZE at
    the input, DEQUANTIZE at the first output): CONV_2D (SAME, relu), PAD, DEPTHWISE_CONV_2D
    (VALID, relu6), MAX_POOL_2D, a 1×1 CONV_2D and a residual ADD, MUL by a per-channel
    constant, AVERAGE_POOL_2D and MAX_POOL_2D concatenated, MEAN, RESHAPE, FULLY_CONNECTED,
    then SOFTMAX, LOGISTIC and TANH of the logits (three outputs)."""
    def q(scale, zero):
        return {"scale": [scale], "zero_point": [zero]}

    def weights(shape, axis, sparsity=0.5):
        w = rng.integers(-127, 128, shape).astype(np.int8)
        w[rng.random(shape) < sparsity] = 0
        return w, list(rng.uniform(5e-3, 2e-2, shape[axis]))

    w1, s1 = weights((6, 3, 3, 2), 0)
    w2, s2 = weights((1, 3, 3, 6), 3)
    w3, s3 = weights((6, 1, 1, 6), 0)
    w4, s4 = weights((5, 12), 0, 0.25)
    t = [
        Tensor("image", (1, 8, 8, 2), np.float32),                                      # 0
        Tensor("quantized", (1, 8, 8, 2), **q(0.05, -2)),                               # 1
        Tensor("w1", w1.shape, scale=s1, zero_point=[0] * 6, data=w1),                  # 2
        Tensor("b1", (6,), np.int32, scale=[0.05 * s for s in s1], zero_point=[0] * 6,
               data=rng.integers(-300, 300, 6).astype(np.int32)),                       # 3
        Tensor("conv", (1, 8, 8, 6), **q(0.1, -128)),                                   # 4
        Tensor("paddings", (4, 2), np.int32,
               data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),              # 5
        Tensor("padded", (1, 10, 10, 6), **q(0.1, -128)),                               # 6
        Tensor("w2", w2.shape, scale=s2, zero_point=[0] * 6, data=w2,
               quantized_dimension=3),                                                  # 7
        Tensor("b2", (6,), np.int32, scale=[0.1 * s for s in s2], zero_point=[0] * 6,
               data=rng.integers(-300, 300, 6).astype(np.int32)),                       # 8
        Tensor("depthwise", (1, 8, 8, 6), **q(0.05, -128)),                             # 9
        Tensor("pooled", (1, 4, 4, 6), **q(0.05, -128)),                                # 10
        Tensor("w3", w3.shape, scale=s3, zero_point=[0] * 6, data=w3),                  # 11
        Tensor("b3", (6,), np.int32, scale=[0.05 * s for s in s3], zero_point=[0] * 6,
               data=rng.integers(-300, 300, 6).astype(np.int32)),                       # 12
        Tensor("branch", (1, 4, 4, 6), **q(0.07, 3)),                                   # 13
        Tensor("residual", (1, 4, 4, 6), **q(0.1, -5)),                                 # 14
        Tensor("gain", (1, 1, 1, 6), scale=[0.02], zero_point=[0],
               data=rng.integers(-100, 100, (1, 1, 1, 6)).astype(np.int8)),             # 15
        Tensor("scaled", (1, 4, 4, 6), **q(0.03, 0)),                                   # 16
        Tensor("average", (1, 2, 2, 6), **q(0.03, 0)),                                  # 17
        Tensor("maximum", (1, 2, 2, 6), **q(0.03, 0)),                                  # 18
        Tensor("joined", (1, 2, 2, 12), **q(0.03, 0)),                                  # 19
        Tensor("axes", (2,), np.int32, data=np.array([1, 2], np.int32)),                # 20
        Tensor("mean", (1, 1, 1, 12), **q(0.02, 1)),                                    # 21
        Tensor("shape", (2,), np.int32, data=np.array([1, 12], np.int32)),              # 22
        Tensor("flat", (1, 12), **q(0.02, 1)),                                          # 23
        Tensor("w4", w4.shape, scale=s4, zero_point=[0] * 5, data=w4),                  # 24
        Tensor("b4", (5,), np.int32, scale=[0.02 * s for s in s4], zero_point=[0] * 5,
               data=rng.integers(-100, 100, 5).astype(np.int32)),                       # 25
        Tensor("logits", (1, 5), **q(0.01, 0)),                                         # 26
        Tensor("softmax", (1, 5), **q(1 / 256, -128)),                                  # 27
        Tensor("probabilities", (1, 5), np.float32),                                    # 28
        Tensor("logistic", (1, 5), **q(1 / 256, -128)),                                 # 29
        Tensor("tanh", (1, 5), **q(1 / 128, 0)),                                        # 30
    ]
    pool = {"Padding": 1, "StrideW": 2, "StrideH": 2, "FilterWidth": 2, "FilterHeight": 2}
    ops = [
        Op("QUANTIZE", [0], [1]),
        Op("CONV_2D", [1, 2, 3], [4], "Conv2DOptions",
           {"Padding": 0, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": FUSED["relu"]}),
        Op("PAD", [4, 5], [6]),
        Op("DEPTHWISE_CONV_2D", [6, 7, 8], [9], "DepthwiseConv2DOptions",
           {"Padding": 1, "StrideW": 1, "StrideH": 1, "DepthMultiplier": 1,
            "FusedActivationFunction": FUSED["relu6"]}),
        Op("MAX_POOL_2D", [9], [10], "Pool2DOptions", pool),
        Op("CONV_2D", [10, 11, 12], [13], "Conv2DOptions",
           {"Padding": 1, "StrideW": 1, "StrideH": 1}),
        Op("ADD", [10, 13], [14], "AddOptions", {}),
        Op("MUL", [14, 15], [16], "MulOptions", {}),
        Op("AVERAGE_POOL_2D", [16], [17], "Pool2DOptions", {**pool, "Padding": 0}),
        Op("MAX_POOL_2D", [16], [18], "Pool2DOptions", pool),
        Op("CONCATENATION", [17, 18], [19], "ConcatenationOptions", {"Axis": 3}),
        Op("MEAN", [19, 20], [21], "ReducerOptions", {"KeepDims": True}),
        Op("RESHAPE", [21, 22], [23], "ReshapeOptions", {"NewShape": [1, 12]}),
        Op("FULLY_CONNECTED", [23, 24, 25], [26], "FullyConnectedOptions", {}),
        Op("SOFTMAX", [26], [27], "SoftmaxOptions", {"Beta": 1.0}),
        Op("DEQUANTIZE", [27], [28]),
        Op("LOGISTIC", [26], [29]),
        Op("TANH", [26], [30]),
    ]
    return model_bytes(t, ops, [0], [28, 29, 30])
