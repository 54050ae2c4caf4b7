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


#: Test modules whose every test runs generated Verilog in a simulator (or builds a bitstream);
#: in other modules such tests carry ``@pytest.mark.rtl`` themselves. ``make test-fast`` runs
#: the rest: the Amaranth-simulator and host tests.
RTL_MODULES = ("_rtl", "test_bench_model", "test_boards", "test_serial_sim_logs")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.endswith(RTL_MODULES):
            item.add_marker(pytest.mark.rtl)


@pytest.fixture(autouse=True)
def _rtl_only_where_marked(request, monkeypatch):
    """A test not marked ``rtl`` must not build a simulation in this process: it would make
    ``make test-fast`` slow without anyone noticing."""
    if request.node.get_closest_marker("rtl"):
        return
    from zeroskip.sim.rtl import build

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} builds a simulation: mark it "
                             f"@pytest.mark.rtl")
    monkeypatch.setattr(build, "build", refuse)
