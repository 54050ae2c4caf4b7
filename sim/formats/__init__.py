"""Compressed-weight formats: NumPy encoders and decoders, exact storage sizes, and what one
decoder lane stores and emits for its columns."""

from . import bitmap, csc, nm, rle
from .lane import column_run

__all__ = ["FORMATS", "encode", "decode", "size_bits", "module", "column_run", "encode_for"]

FORMATS = {"csc": csc, "bitmap": bitmap, "rle": rle, "nm": nm}


def module(fmt):
    return FORMATS[fmt]


def encode(fmt, weights, **params):
    return FORMATS[fmt].encode(weights, **params)


def decode(fmt, compressed):
    return FORMATS[fmt].decode(compressed)


def size_bits(fmt, compressed):
    return FORMATS[fmt].size_bits(compressed)


def encode_for(config, weights):
    """Encode ``weights`` with ``config``'s format and parameters."""
    if config.fmt == "nm":
        return nm.encode(weights, config.nm_n, config.nm_m)
    if config.fmt == "rle":
        return rle.encode(weights, config.rle_run_bits)
    if config.fmt == "bitmap":
        return bitmap.encode(weights, config.bitmap_width)
    return FORMATS[config.fmt].encode(weights)
