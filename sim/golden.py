"""The golden model: what every run of the accelerator must reproduce bit for bit."""

import numpy as np

__all__ = ["gemm", "check_result", "macs_both_nonzero"]


def gemm(acts, weights):
    """C = A · W with int8 operands and int32 accumulation, exactly as the hardware defines it."""
    return np.asarray(acts).astype(np.int32) @ np.asarray(weights).astype(np.int32)


def check_result(result, acts, weights, what="the RTL result"):
    """Raise RuntimeError (an internal failure) unless ``result`` is bit for bit
    :func:`gemm` of ``acts`` and ``weights``."""
    expected = gemm(acts, weights)
    if not np.array_equal(result, expected):
        wrong = int(np.count_nonzero(result != expected))
        raise RuntimeError(f"{what} differs from the golden model in {wrong} of "
                           f"{expected.size} outputs")


def macs_both_nonzero(acts, weights):
    """Multiply-accumulates of ``acts @ weights`` whose activation and weight are both nonzero:
    what the multipliers execute in skip and gate mode (zero activations are gated)."""
    return int((np.count_nonzero(acts, axis=0).astype(np.int64) *
                np.count_nonzero(weights, axis=1)).sum())
