"""The ONNX front end's lowering on the host: im2col, groups, strides, padding, dilation and
zero points against ONNX's reference implementation. The GEMMs here run in NumPy (this
module tests the lowering's arithmetic); ``test_onnx_rtl`` runs the same graphs on the RTL."""

import numpy as np

import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from zeroskip.config import ArrayConfig, Mode
from zeroskip.frontend import lowering
from zeroskip.frontend.graph import Executor
from zeroskip.sim import golden
from zeroskip.sim.loaders import BadInput


class NumpyGemms:
    """The accelerator's contract (``run([(A, W), ...])`` → ``[(C, report), ...]``) in NumPy,
    checking that every operand it is given is int8 as the array requires."""
    config = ArrayConfig(rows=8, cols=8)
    mode = Mode.SKIP

    def __init__(self):
        self.calls = []

    def run(self, pairs):
        self.calls.append(pairs)
        out = []
        for acts, weights in pairs:
            assert acts.dtype == np.int8 and weights.dtype == np.int8
            report = {name: 1 for name in ("cycles", "dense_cycles", "ideal_cycles",
                                           "macs_executed", "load_cycles",
                                           "mapped_ideal_cycles")}
            report["provenance"] = {"dense_cycles": "model", "speedup": "model"}
            out.append((golden.gemm(acts, weights), report))
        return out


_TYPES = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8}


def _conv_integer_model(x, w, xz, wz, attrs):
    names = ["x", "w", "x_zero_point", "w_zero_point"]
    inputs = [helper.make_tensor_value_info(n, _TYPES[v.dtype.type], v.shape)
              for n, v in zip(names, (x, w, xz, wz))]
    node = helper.make_node("ConvInteger", names, ["y"], **attrs)
    graph = helper.make_graph([node], "conv", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@st.composite
def conv_cases(draw):
    dims = draw(st.sampled_from([1, 2]))
    group = draw(st.sampled_from([1, 2, 3]))
    per_in = draw(st.integers(1, 3))
    per_out = draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 3)) for _ in range(dims)]
    strides = [draw(st.integers(1, 2)) for _ in range(dims)]
    dilations = [draw(st.integers(1, 2)) for _ in range(dims)]
    pads = [draw(st.integers(0, 2)) for _ in range(2 * dims)]
    spatial = [draw(st.integers(d * (k - 1) + 1, 7)) for k, d in zip(kernel, dilations)]
    dtype_x = draw(st.sampled_from([np.uint8, np.int8]))
    dtype_w = draw(st.sampled_from([np.uint8, np.int8]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    info_x, info_w = np.iinfo(dtype_x), np.iinfo(dtype_w)
    x = rng.integers(info_x.min, info_x.max + 1, (2, group * per_in, *spatial)).astype(dtype_x)
    w = rng.integers(info_w.min, info_w.max + 1, (group * per_out, per_in, *kernel))
    w = np.where(rng.random(w.shape) < 0.6, 0, w).astype(dtype_w)  # pruned: zeros
    xz = np.array(rng.integers(info_x.min, info_x.max + 1), dtype=dtype_x)
    wz = np.array(rng.integers(info_w.min, info_w.max + 1), dtype=dtype_w)
    attrs = {"group": group, "strides": strides, "dilations": dilations, "pads": pads}
    return x, w, xz, wz, attrs


@given(conv_cases())
def test_conv_integer_lowering_matches_onnx(case):
    x, w, xz, wz, attrs = case
    model = _conv_integer_model(x, w, xz, wz, attrs)
    feeds = {"x": x, "w": w, "x_zero_point": xz, "w_zero_point": wz}
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    gemms = NumpyGemms()
    outputs, layers = Executor(model, gemms).run(feeds)
    np.testing.assert_array_equal(outputs["y"], expected)
    assert len(gemms.calls) == 1  # every group of the node in one simulation
    assert layers[0]["gemms"] >= attrs["group"]


def test_auto_pad_same_upper_and_lower():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (1, 2, 6, 5)).astype(np.uint8)
    w = rng.integers(-128, 128, (4, 2, 3, 2)).astype(np.int8)
    for auto_pad in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        attrs = {"auto_pad": auto_pad, "strides": [2, 1]}
        model = _conv_integer_model(x, w, np.array(7, np.uint8), np.array(0, np.int8), attrs)
        feeds = {"x": x, "w": w, "x_zero_point": np.array(7, np.uint8),
                 "w_zero_point": np.array(0, np.int8)}
        expected = ReferenceEvaluator(model).run(None, feeds)[0]
        outputs, _ = Executor(model, NumpyGemms()).run(feeds)
        np.testing.assert_array_equal(outputs["y"], expected)


@given(st.integers(0, 2 ** 32 - 1), st.sampled_from([np.uint8, np.int8]),
       st.sampled_from([np.uint8, np.int8]), st.booleans())
def test_matmul_zero_points_are_exact(seed, dtype_a, dtype_b, per_row):
    """Operands that do not fit int8 once their zero point is removed (uint8 weights far from
    theirs, a per-row activation zero point) still give the exact int32 result."""
    rng = np.random.default_rng(seed)
    ia, ib = np.iinfo(dtype_a), np.iinfo(dtype_b)
    a = rng.integers(ia.min, ia.max + 1, (5, 7)).astype(dtype_a)
    b = rng.integers(ib.min, ib.max + 1, (7, 3)).astype(dtype_b)
    za = rng.integers(ia.min, ia.max + 1, (5,) if per_row else ()).astype(dtype_a)
    zb = rng.integers(ib.min, ib.max + 1, (3,)).astype(dtype_b)
    job = lowering.prepare_matmul(a, za, b, zb)
    results = [golden.gemm(job.acts, part) for part in job.parts]
    expected = (a.astype(np.int64) - np.reshape(za, (-1, 1))) @ (b.astype(np.int64) - zb)
    np.testing.assert_array_equal(lowering.finish_matmul(job, results), expected)


def test_zero_point_of_pruned_weights_keeps_them_zeros():
    """uint8 weights at their zero point are the pruned ones: the array sees zeros there."""
    b = np.full((6, 4), 128, dtype=np.uint8)
    b[2, 1] = 200
    job = lowering.prepare_matmul(np.zeros((3, 6), np.uint8), np.uint8(0), b, np.uint8(128))
    assert len(job.parts) == 1 and np.count_nonzero(job.parts[0]) == 1
    assert job.weight_zeros == 23


def test_float_weight_without_quantization_is_bad_input():
    w = helper.make_tensor("w", TensorProto.FLOAT, (4, 3), np.ones(12, np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 4))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 3))], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(BadInput, match="node 'fc' \\(MatMul\\): weight 'w' is float"):
        Executor(model, NumpyGemms())


def test_unsupported_gemm_attribute_names_the_node():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 4))
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "s"], ["wd"]),
        helper.make_node("Gemm", ["xd", "wd"], ["y"], name="head", alpha=0.5),
    ]
    inits = [helper.make_tensor("s", TensorProto.FLOAT, (), [0.1]),
             helper.make_tensor("z", TensorProto.UINT8, (), [128]),
             helper.make_tensor("wq", TensorProto.INT8, (4, 3), [1] * 12)]
    graph = helper.make_graph(nodes, "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(BadInput, match="node 'head' \\(Gemm\\): alpha = 0.5"):
        Executor(model, NumpyGemms())
