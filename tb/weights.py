"""Weight matrices for tests: random sparsity and the nasty patterns."""

import numpy as np


def random_weights(rng, k, n, density=0.5, pattern=None, extreme=False):
    """A K × N int8 matrix. ``pattern``: None (uniform random at ``density``), "single" (one
    nonzero), "one_column" (every nonzero in one column), "long_runs" (nonzeros only at the
    ends of each column). ``extreme`` makes every nonzero -128."""
    values = rng.integers(-128, 128, (k, n))
    values[values == 0] = 1
    if extreme:
        values[:] = -128
    if pattern is None:
        mask = rng.random((k, n)) < density
    elif pattern == "single":
        mask = np.zeros((k, n), bool)
        mask[rng.integers(k), rng.integers(n)] = True
    elif pattern == "one_column":
        mask = np.zeros((k, n), bool)
        mask[:, rng.integers(n)] = True
    elif pattern == "long_runs":
        mask = np.zeros((k, n), bool)
        mask[0, :] = True
        mask[-1, ::2] = True
    else:
        raise ValueError(pattern)
    return (values * mask).astype(np.int8)


def fit_n_of_m(weights, n, m):
    """Keep at most ``n`` nonzeros (the first ones) in every group of ``m`` rows."""
    weights = weights.copy()
    for start in range(0, weights.shape[0], m):
        block = weights[start:start + m]
        for c in range(weights.shape[1]):
            block[np.flatnonzero(block[:, c])[n:], c] = 0
    return weights
