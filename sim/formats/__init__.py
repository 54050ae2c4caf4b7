"""Compressed-weight formats: NumPy encoders and decoders, exact storage sizes, and what one
decoder lane stores and emits for its columns."""

from zeroskip.sim.formats import bitmap, csc, nm, rle
from zeroskip.sim.formats.lane import column_run

__all__ = ["MODULES", "encode", "decode", "size_bits", "module", "column_run", "encode_for"]

#: The format modules by name (the names are :data:`zeroskip.config.FORMATS`).
MODULES = {"csc": csc, "bitmap": bitmap, "rle": rle, "nm": nm}


def module(fmt):
    return MODULES[fmt]


def encode(fmt, weights, **params):
    return MODULES[fmt].encode(weights, **params)


def decode(fmt, compressed):
    return MODULES[fmt].decode(compressed)


def size_bits(fmt, compressed):
    return MODULES[fmt].size_bits(compressed)


def encode_for(config, weights):
    """Encode ``weights`` with ``config``'s format and parameters."""
    if config.fmt == "nm":
        return nm.encode(weights, config.nm_n, config.nm_m)
    if config.fmt == "rle":
        return rle.encode(weights, config.rle_run_bits)
    if config.fmt == "bitmap":
        return bitmap.encode(weights, config.bitmap_width)
    return MODULES[config.fmt].encode(weights)
