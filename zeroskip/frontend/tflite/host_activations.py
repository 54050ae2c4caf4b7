"""TFLite's int8 activations on the host, bit-exact with the reference kernels
(``kernels/activations.cc`` with ``kReference``): SOFTMAX by gemmlowp's fixed-point exponential
and reciprocal (``reference_ops::Softmax``), LOGISTIC and TANH by the 256-entry lookup table
that ``Prepare`` fills in float32 (``LUTPopulate``: the reference build uses it too, not
``reference_integer_ops::Logistic``/``Tanh``)."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Callable

import numpy as np

from zeroskip.frontend.tflite.host_common import ROUNDING, quant, round_half_away
from zeroskip.frontend.tflite.model import OpInfo, TfliteModel
from zeroskip.sim.fixedpoint import (calculate_input_radius, exp_on_negative_values,
                                     get_reciprocal, preprocess_softmax_scaling, rescale)
from zeroskip.sim.requantize import (multiply_by_quantized_multiplier,
                                     saturating_rounding_doubling_high_mul,
                                     rounding_divide_by_pot)

__all__ = ["softmax", "logistic", "tanh", "lookup_table"]

#: Integer bits of softmax's scaled input differences and of its sum of exponentials
_DIFF_BITS, _ACCUMULATION_BITS = 5, 12


def _int8_in_out(op: OpInfo, model: TfliteModel) -> None:
    for index in (op.inputs[0], op.outputs[0]):
        if np.dtype(model.tensors[index].dtype) != np.int8:
            raise ValueError(f"{op.code} (operator {op.index}) runs on int8 tensors; tensor "
                             f"{index} is {np.dtype(model.tensors[index].dtype)}")


def softmax(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """``reference_ops::Softmax`` for int8 along the last axis: each difference to the row's
    maximum (those above ``diff_min``) scaled by ``beta · input_scale`` into Q5.26, its exp in
    Q0.31, the sum in Q12.19, the reciprocal, and each output ``exp / sum`` in 1/256 units less
    128. The output must be quantized with zero point -128 and scale 1/256, as TFLite requires."""
    _int8_in_out(op, model)
    s_in, _ = quant(model, op.inputs[0])
    s_out, z_out = quant(model, op.outputs[0])
    if z_out != -128 or abs(float(s_out) - 1 / 256) > 0.001 / 256:
        raise ValueError(f"SOFTMAX (operator {op.index}) must write zero point -128 and scale "
                         f"1/256, not {z_out} and {float(s_out):g}")
    multiplier, shift = preprocess_softmax_scaling(
        float(np.float32(op.options.get("beta", 1.0))), float(s_in), _DIFF_BITS,
        ROUNDING)
    diff_min = -calculate_input_radius(_DIFF_BITS, shift)
    x = np.asarray(inputs[0], dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    used = diff >= diff_min
    rescaled = multiply_by_quantized_multiplier(np.where(used, diff, 0), multiplier, shift,
                                                ROUNDING)
    exps = exp_on_negative_values(np.where(used, rescaled, 0), _DIFF_BITS)
    sum_of_exps = np.where(used, rescale(exps, 0, _ACCUMULATION_BITS), 0).sum(
        axis=-1, keepdims=True)
    shifted_scale, bits_over_unit = get_reciprocal(sum_of_exps, _ACCUMULATION_BITS)
    exponent = bits_over_unit + 31 - 8
    out = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exps),
                                 exponent) - 128
    # (in SOFTMAX the two roundings differ by one LSB of a Q5.26 difference at most, which no
    # test has seen reach the int8 output; ROUNDING keeps it the build's)
    return [np.where(used, np.clip(out, -128, 127), -128).astype(np.int8)]


def _libm(name: str) -> Callable[[float], float] | None:
    path = ctypes.util.find_library("m")
    if path is None:
        return None
    function = getattr(ctypes.CDLL(path), name)
    function.restype, function.argtypes = ctypes.c_float, [ctypes.c_float]
    return function


# TFLite fills its tables with the C library's float32 expf and tanhf; the same functions here
# give the same tables (a correctly rounded float64 result is the fallback without a libm)
_EXPF, _TANHF = _libm("expf"), _libm("tanhf")


def _float32_map(function: Callable[[float], float] | None, fallback: Callable, x: np.ndarray
                 ) -> np.ndarray:
    if function is None:
        with np.errstate(over="ignore"):
            return fallback(x.astype(np.float64)).astype(np.float32)
    return np.array([function(float(v)) for v in x], dtype=np.float32)


def lookup_table(input_scale: np.float32, input_zero: int, output_scale: np.float32,
                 output_zero: int, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """TFLite's ``LUTPopulate`` for int8: the output for each input -128..127, computed in
    float32 (dequantize, ``transform``, times ``1 / output_scale``, rounded half away from
    zero, plus the zero point, clamped)."""
    values = np.arange(-128, 128, dtype=np.int32)
    dequantized = np.float32(input_scale) * (values - input_zero).astype(np.float32)
    transformed = transform(dequantized.astype(np.float32))
    rescaled = round_half_away(transformed * (np.float32(1) / np.float32(output_scale)))
    quantized = (rescaled + np.float32(output_zero)).astype(np.int64)
    return np.clip(quantized, -128, 127).astype(np.int8)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = _float32_map(_EXPF, np.exp, -x)
    return np.float32(1) / (np.float32(1) + e)


def _tanh(x: np.ndarray) -> np.ndarray:
    return _float32_map(_TANHF, np.tanh, x)


def _table_op(op: OpInfo, model: TfliteModel, inputs: list,
              transform: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    _int8_in_out(op, model)
    table = lookup_table(*quant(model, op.inputs[0]), *quant(model, op.outputs[0]), transform)
    return [table[np.asarray(inputs[0], dtype=np.int64) + 128]]


def logistic(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """LOGISTIC on int8: TFLite's table of ``1 / (1 + expf(-x))``; the output must have scale
    1/256 (TFLite refuses others)."""
    s_out, _ = quant(model, op.outputs[0])
    if float(s_out) != 1 / 256:
        raise ValueError(f"LOGISTIC (operator {op.index}) must write scale 1/256, not "
                         f"{float(s_out):g}")
    return _table_op(op, model, inputs, _sigmoid)


def tanh(op: OpInfo, model: TfliteModel, inputs: list) -> list[np.ndarray]:
    """TANH on int8: TFLite's table of ``tanhf(x)``."""
    return _table_op(op, model, inputs, _tanh)
