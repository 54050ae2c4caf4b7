"""A ``.tflite`` file read into plain Python: its tensors (shapes, types, quantization, constant
data) and its operators (builtin names, inputs, outputs, options), checked to be a full-integer
int8 model of operators zeroskip runs.

The flatbuffer is parsed with the ``tflite`` package's generated schema; nothing else of
TensorFlow is needed. A file is untrusted input: its size is checked before it is read, a
truncated or foreign file is :class:`~zeroskip.sim.loaders.BadInput`, and so are float or hybrid
models (naming the first float tensor) and unsupported operators (naming the operator and its
index).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zeroskip.sim.loaders import BadInput

__all__ = ["TensorInfo", "OpInfo", "TfliteModel", "load", "is_tflite", "ARRAY_OPS", "HOST_OPS",
           "MAX_BYTES"]

#: The largest model file read (MLPerf Tiny's are 0.1-0.5 MB)
MAX_BYTES = 256 << 20

#: Operators whose matrix products run on the array
ARRAY_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
#: Operators run on the host with TFLite's integer semantics
HOST_OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL", "RESHAPE", "SOFTMAX", "PAD",
            "CONCATENATION", "MEAN", "QUANTIZE", "DEQUANTIZE", "LOGISTIC", "TANH")

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
           7: np.int16, 9: np.int8, 10: np.float64}
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}
_PADDINGS = {0: "same", 1: "valid"}


@dataclass
class TensorInfo:
    """One tensor of the model. ``scale``/``zero_point``: one entry per tensor or per channel
    along ``quantized_dimension``, empty when the tensor is not quantized. ``data``: the
    constant's values in ``shape``, or None for a tensor computed at run time; ``data_offset``
    where those values start in the file (so a pruned copy can rewrite them in place)."""
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: Any
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    zero_point: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    quantized_dimension: int = 0
    data: np.ndarray | None = None
    data_offset: int | None = None

    @property
    def is_float(self) -> bool:
        return np.dtype(self.dtype).kind == "f"


@dataclass
class OpInfo:
    """One operator: its builtin name, input and output tensor indices (-1 for an optional
    input left out) and its options with the schema's field names in snake_case (enums as
    lower-case names: ``fused_activation_function="relu6"``, ``padding="same"``)."""
    index: int
    code: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any]


@dataclass
class TfliteModel:
    """The model's tensors and operators (in execution order) and its input and output tensor
    indices."""
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: list[int]
    outputs: list[int]
    buffer: bytes = b""

    def tensor(self, index: int) -> TensorInfo:
        return self.tensors[index]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(op, tflite) -> dict[str, Any]:
    kind = op.BuiltinOptionsType()
    if kind == 0:
        return {}
    names = {value: name for name, value in vars(tflite.BuiltinOptions).items()
             if isinstance(value, int)}
    cls = getattr(tflite, names[kind])
    table = op.BuiltinOptions()
    options = cls()
    options.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {}
    for attr in dir(cls):
        if attr.startswith(("_", "GetRootAs", "Init")) or attr.endswith(
                ("BufferHasIdentifier", "Length", "IsNone")):
            continue
        method = getattr(options, attr)
        if attr.endswith("AsNumpy"):
            value = method()
            out[_snake(attr[:-len("AsNumpy")])] = [] if isinstance(value, int) else \
                [int(v) for v in value]
            continue
        if hasattr(cls, f"{attr}AsNumpy"):
            continue                     # a vector: read through its AsNumpy accessor
        try:
            value = method()
        except TypeError:
            continue                     # a vector or table accessor taking an index
        key = _snake(attr)
        if key == "fused_activation_function":
            value = _ACTIVATIONS.get(value, value)
        elif key == "padding":
            value = _PADDINGS.get(value, value)
        out[key] = value
    return out


def _tensor(index, t, buffers, starts, tflite) -> TensorInfo:
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    code = t.Type()
    if code not in _DTYPES:
        names = {v: k for k, v in vars(tflite.TensorType).items() if isinstance(v, int)}
        raise BadInput(f"tensor {index} ({t.Name().decode(errors='replace')!r}) has type "
                       f"{names.get(code, code)}, which zeroskip does not read")
    dtype = _DTYPES[code]
    info = TensorInfo(index, t.Name().decode(errors="replace"), shape, dtype)
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        info.scale = q.ScaleAsNumpy().astype(np.float32)
        info.zero_point = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength()
                           else np.zeros(info.scale.size, np.int64))
        info.quantized_dimension = q.QuantizedDimension()
    raw = buffers[t.Buffer()] if 0 <= t.Buffer() < len(buffers) else None
    if raw is not None and len(raw):
        count = int(np.prod(shape, dtype=np.int64))
        itemsize = np.dtype(dtype).itemsize
        if len(raw) != count * itemsize:
            raise BadInput(f"tensor {index} ({info.name!r}): its buffer holds {len(raw)} bytes, "
                           f"its shape {list(shape)} of {np.dtype(dtype).name} needs "
                           f"{count * itemsize}")
        info.data = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        info.data_offset = starts[t.Buffer()]
    return info


def parse(content: bytes) -> TfliteModel:
    """The model in ``content`` (a ``.tflite`` flatbuffer), unchecked beyond its structure."""
    import tflite
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise BadInput("not a TFLite model (no TFL3 file identifier)")
    try:
        model = tflite.Model.GetRootAsModel(content, 0)
        if model.SubgraphsLength() != 1:
            raise BadInput(f"the model has {model.SubgraphsLength()} subgraphs; zeroskip runs "
                           f"models of one")
        buffers, starts = [], []
        for i in range(model.BuffersLength()):
            b = model.Buffers(i)
            if b.Offset() > 1:           # data stored after the flatbuffer (models over 2 GB)
                raise BadInput(f"buffer {i} is stored outside the flatbuffer; zeroskip reads "
                               f"models under 2 GB")
            buffers.append(b.DataAsNumpy().tobytes() if b.DataLength() else b"")
            field = b._tab.Offset(4)     # the data vector's field, as the schema's reader finds it
            starts.append(b._tab.Vector(field) if field else None)
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            codes.append(tflite.opcode2name(code) if code != 32 else
                         f"CUSTOM {oc.CustomCode().decode(errors='replace')}")
        graph = model.Subgraphs(0)
        tensors = [_tensor(i, graph.Tensors(i), buffers, starts, tflite)
                   for i in range(graph.TensorsLength())]
        ops = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            ops.append(OpInfo(i, codes[op.OpcodeIndex()],
                              [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else [],
                              [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength()
                              else [], _options(op, tflite)))
        inputs = [int(v) for v in graph.InputsAsNumpy()]
        outputs = [int(v) for v in graph.OutputsAsNumpy()]
    except BadInput:
        raise
    except Exception as exc:     # a damaged flatbuffer fails anywhere in the generated reader
        raise BadInput(f"not a readable TFLite model ({type(exc).__name__}: {exc})") from None
    for op in ops:
        for t in op.inputs + op.outputs:
            if not -1 <= t < len(tensors):
                raise BadInput(f"operator {op.index} ({op.code}) names tensor {t}; the model "
                               f"has {len(tensors)}")
    return TfliteModel(tensors, ops, inputs, outputs, content)


def check(model: TfliteModel) -> None:
    """A full-integer int8 model of operators zeroskip runs, or :class:`BadInput` naming the
    first operator that is not supported or the first float tensor. Float tensors are allowed
    only as a model input consumed by QUANTIZE and a model output made by DEQUANTIZE (a
    full-integer model with a float interface)."""
    for op in model.ops:
        if op.code not in ARRAY_OPS + HOST_OPS:
            raise BadInput(f"operator {op.index} is {op.code}, which zeroskip does not run "
                           f"(array: {', '.join(ARRAY_OPS)}; host: {', '.join(HOST_OPS)})")
    for op in model.ops:
        for t in op.inputs + op.outputs:
            if t < 0 or not model.tensors[t].is_float:
                continue
            edge = ((op.code == "QUANTIZE" and t in op.inputs and t in model.inputs) or
                    (op.code == "DEQUANTIZE" and t in op.outputs and t in model.outputs))
            if not edge:
                tensor = model.tensors[t]
                raise BadInput(f"a float or hybrid model: tensor {t} ({tensor.name!r}, "
                               f"{np.dtype(tensor.dtype).name}) is an operand of operator "
                               f"{op.index} ({op.code}); zeroskip runs full-integer int8 "
                               f"models")
    for op in model.ops:
        if op.code in ARRAY_OPS:
            weights = model.tensors[op.inputs[1]]
            if weights.data is None or weights.dtype != np.int8:
                raise BadInput(f"operator {op.index} ({op.code}): its weights "
                               f"({weights.name!r}) must be a constant int8 tensor")


def is_tflite(source: Any) -> bool:
    """A TFLite model: bytes with the TFL3 file identifier, or a path named ``.tflite`` or to
    such a file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[4:8]) == b"TFL3"
    if not isinstance(source, (str, Path)) and not hasattr(source, "__fspath__"):
        return False
    path = Path(source)
    if path.suffix.lower() == ".tflite":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"
    except OSError:
        return False


def load(source: str | Path | bytes) -> TfliteModel:
    """Read and check a ``.tflite`` model from a path or from its bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        content = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BadInput(f"no such file: {path}") from None
        if size > MAX_BYTES:
            raise BadInput(f"{path}: {size} bytes; zeroskip reads models of at most "
                           f"{MAX_BYTES >> 20} MB")
        try:
            content = path.read_bytes()
        except IsADirectoryError:
            raise BadInput(f"{path} is a folder, not a .tflite file") from None
    model = parse(content)
    check(model)
    return model
