import os

import pytest
from hypothesis import settings

from zeroskip.config import ArrayConfig

# Property tests run in CI on 2 cores next to RTL simulations: keep them short and deterministic.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def small_config(rows=2, cols=2, **kw):
    """A configuration with tiny memories, for the Amaranth simulator tests."""
    defaults = dict(max_k=32, act_depth=128, weight_depth=256, pointer_depth=17, out_depth=64)
    defaults.update(kw)
    return ArrayConfig(rows=rows, cols=cols, **defaults)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: the same cases in every run and on every
    worker (``hash()`` of a string changes from one interpreter to the next)."""
    import zlib

    import numpy as np
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))
