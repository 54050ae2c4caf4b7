"""Compressed-weight formats: NumPy encoders and decoders and exact storage sizes."""

from . import csc

__all__ = ["FORMATS", "encode", "decode", "size_bits"]

FORMATS = {"csc": csc}


def encode(fmt, weights):
    return FORMATS[fmt].encode(weights)


def decode(fmt, compressed):
    return FORMATS[fmt].decode(compressed)


def size_bits(fmt, compressed):
    return FORMATS[fmt].size_bits(compressed)
