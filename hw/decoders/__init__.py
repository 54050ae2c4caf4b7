"""Compressed-weight decoders, one per format. Each turns a lane's compressed columns into the
token stream a PE column consumes, at one token per cycle."""

from .csc import CSCDecoder

__all__ = ["CSCDecoder", "decoder_for"]

_DECODERS = {"csc": CSCDecoder}


def decoder_for(config):
    """A decoder lane for ``config.fmt``."""
    return _DECODERS[config.fmt](config)
