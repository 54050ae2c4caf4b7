"""Sparsity patterns of pruned weights, for benchmarks and tests."""

import numpy as np

__all__ = ["PATTERNS", "sparse_weights", "n_of_m_mask", "nm_pattern"]


def _values(rng, shape):
    values = rng.integers(-128, 128, shape)
    values[values == 0] = 1  # a kept weight is nonzero
    return values


def _uniform(rng, k, n, density):
    return rng.random((k, n)) < density


def n_of_m_mask(rng, k, n, keep, group):
    """``keep`` nonzeros in every group of ``group`` consecutive weights down a column
    (the last group may be short)."""
    mask = np.zeros((k, n), bool)
    for start in range(0, k, group):
        size = min(group, k - start)
        scores = rng.random((size, n))
        chosen = np.argsort(scores, axis=0)[:min(keep, size)]
        for col in range(n):
            mask[start + chosen[:, col], col] = True
    return mask


def _blocks(rng, k, n, density, block=4):
    kb, nb = -(-k // block), -(-n // block)
    blocks = rng.random((kb, nb)) < density
    return np.kron(blocks, np.ones((block, block), bool))[:k, :n]


def _heavy_tailed(rng, k, n, density):
    """Column densities spread like a magnitude-pruned layer's: log-normal around the mean,
    so a few columns stay dense while most are very sparse."""
    raw = rng.lognormal(mean=0.0, sigma=1.2, size=n)
    scale = density / raw.mean()
    for _ in range(50):  # rescale until the mean survives clipping the dense columns at 1
        column_density = np.clip(raw * scale, 0.0, 1.0)
        if column_density.mean() >= density * 0.999 or column_density.min() >= 1.0:
            break
        scale *= density / column_density.mean()
    return rng.random((k, n)) < column_density[None, :]


#: name -> (description, mask generator(rng, k, n, density), fixed density or None)
PATTERNS = {
    "uniform": ("uniform random", _uniform, None),
    "2:4": ("2:4 structured", lambda rng, k, n, d: n_of_m_mask(rng, k, n, 2, 4), 0.5),
    "1:4": ("1:4 structured", lambda rng, k, n, d: n_of_m_mask(rng, k, n, 1, 4), 0.25),
    "block4x4": ("4x4 blocks", _blocks, None),
    "heavy_tailed": ("heavy-tailed column densities", _heavy_tailed, None),
}


def nm_pattern(pattern):
    """``"3:8"`` -> (3, 8) for any N:M pattern name with 1 <= N < M <= 16, else None."""
    try:
        keep, group = (int(x) for x in str(pattern).split(":"))
    except ValueError:
        return None
    return (keep, group) if 1 <= keep < group <= 16 else None


def sparse_weights(rng, k, n, pattern="uniform", density=0.5):
    """A K × N int8 weight matrix with the given sparsity pattern: a name of :data:`PATTERNS`,
    or any N:M pattern ``"N:M"`` (1 <= N < M <= 16; exactly N nonzeros in every full group of
    M rows down a column, ``density`` ignored)."""
    if pattern not in PATTERNS and nm_pattern(pattern):
        keep, group = nm_pattern(pattern)
        mask = n_of_m_mask(rng, k, n, keep, group)
        return (_values(rng, (k, n)) * mask).astype(np.int8)
    _, make_mask, fixed = PATTERNS[pattern]
    mask = make_mask(rng, k, n, fixed if fixed is not None else density)
    return (_values(rng, (k, n)) * mask).astype(np.int8)
