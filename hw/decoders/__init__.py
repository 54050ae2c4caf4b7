"""Compressed-weight decoders, one per format. Each turns a lane's compressed columns into the
token stream a PE column consumes, at one token per cycle."""

from zeroskip.hw.decoders.bitmap import BitmapDecoder
from zeroskip.hw.decoders.csc import CSCDecoder
from zeroskip.hw.decoders.lane import Cursor, LaneDecoder
from zeroskip.hw.decoders.nm import NMDecoder
from zeroskip.hw.decoders.rle import RLEDecoder

__all__ = ["LaneDecoder", "Cursor", "CSCDecoder", "BitmapDecoder", "RLEDecoder", "NMDecoder",
           "decoder_class", "decoder_for"]

_DECODERS = {"csc": CSCDecoder, "bitmap": BitmapDecoder, "rle": RLEDecoder, "nm": NMDecoder}


def decoder_class(config):
    """The lane decoder class of ``config.fmt``; its ``memories(config)`` are what the host
    loads per lane. For the dense baseline (``config.arch == "dense"``), the description of
    its columns' uncompressed weight memories."""
    if config.arch == "dense":
        from zeroskip.hw.dense import DenseColumns
        return DenseColumns
    return _DECODERS[config.fmt]


def decoder_for(config):
    """A decoder lane for ``config.fmt``."""
    return decoder_class(config)(config)
