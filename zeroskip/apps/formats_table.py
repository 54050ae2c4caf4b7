"""Bits per weight of every compressed format against weight sparsity (the fraction of zero
weights, as everywhere else in zeroskip), measured by the encoders."""

from fractions import Fraction

import numpy as np

from zeroskip.markdown import table
from zeroskip.sim import formats
from zeroskip.sim.patterns import n_of_m_mask, sparse_weights

__all__ = ["formats_table", "closest_n_of_m"]

#: The table's rows, by weight sparsity (the generator asks for density = 1 - sparsity).
SPARSITIES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def closest_n_of_m(density):
    """The N:M (1 <= N < M <= 16) whose density N/M is closest to ``density``."""
    # ties go to the common groups of 4, 8 and 16
    options = [(abs(n / m - density), m not in (4, 8, 16), m, n)
               for m in range(2, 17) for n in range(1, m)]
    _, _, m, n = min(options)
    return n, m


def _n_of_m_weights(rng, k, cols, n, m):
    values = rng.integers(1, 128, (k, cols)) * rng.choice([-1, 1], (k, cols))
    return (values * n_of_m_mask(rng, k, cols, n, m)).astype(np.int8)


def formats_table(size=256, seed=0):
    """Markdown table: bits per weight (storage / K·N) per format and weight sparsity."""
    rng = np.random.default_rng(seed)
    rows = []
    for sparsity in SPARSITIES:
        density = 1 - sparsity
        weights = sparse_weights(rng, size, size, "uniform", density)
        measured = 1 - np.count_nonzero(weights) / weights.size
        cells = {"dense int8": 8.0}
        for fmt, params in (("csc", {}), ("bitmap", {"width": 64}), ("rle", {"run_bits": 4})):
            encoded = formats.module(fmt).encode(weights, **params)
            cells[fmt] = formats.size_bits(fmt, encoded) / weights.size
        n, m = closest_n_of_m(density)
        nm_weights = _n_of_m_weights(rng, size, size, n, m)
        encoded = formats.nm.encode(nm_weights, n, m)
        cells["nm"] = formats.size_bits("nm", encoded) / weights.size
        rows.append((measured, cells, (n, m)))
    head = ["weight sparsity", "dense int8", "csc", "bitmap (64-bit words)", "rle (4-bit runs)",
            "N:M (pattern, its sparsity)"]
    return table(head, ([f"{100 * measured:.1f}%", f"{cells['dense int8']:.2f}",
                         f"{cells['csc']:.2f}", f"{cells['bitmap']:.2f}", f"{cells['rle']:.2f}",
                         f"{cells['nm']:.2f} ({n}:{m} = {100 * float(1 - Fraction(n, m)):.1f}%)"]
                        for measured, cells, (n, m) in rows), align="r" * len(head))
