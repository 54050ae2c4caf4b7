import os
import secrets

import pytest
from hypothesis import settings

from zeroskip.config import ArrayConfig

# Property tests run in CI on 2 cores next to RTL simulations: keep them short, and free of
# deadlines (a slow shared machine is not a failure). Each session draws fresh examples from one
# seed (:func:`hypothesis_seed`), printed in the header, so a failure is reproducible from it.
settings.register_profile("ci", max_examples=60, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=200, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Where a session's Hypothesis seed comes from, first that is given: pytest's own
#: ``--hypothesis-seed``, this variable, the xdist controller (for a worker), a fresh draw.
SEED_VARIABLE = "HYPOTHESIS_SEED"
SEED_OPTION = "hypothesis_seed"  # dest of the Hypothesis plugin's --hypothesis-seed
_SEED = pytest.StashKey[str]()


def hypothesis_seed(config):
    """This session's Hypothesis seed (a string: Hypothesis also takes a non-integer seed)."""
    given = config.getoption(SEED_OPTION, default=None) or os.environ.get(SEED_VARIABLE)
    if given:
        return str(given)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "hypothesis_seed" in workerinput:
        return workerinput["hypothesis_seed"]
    return str(secrets.randbelow(2 ** 32))


class _SeedToWorkers:
    """xdist controller: every worker draws from the controller's (printed) seed."""

    def __init__(self, seed):
        self.seed = seed

    def pytest_configure_node(self, node):
        node.workerinput["hypothesis_seed"] = self.seed


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # before the Hypothesis plugin's own pytest_configure, which applies --hypothesis-seed to
    # every test (a test without it would draw its own unprinted seed)
    seed = hypothesis_seed(config)
    setattr(config.option, SEED_OPTION, seed)
    config.stash[_SEED] = seed
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_SeedToWorkers(seed), "zeroskip-hypothesis-seed")


def _reproduce(seed):
    return (f"hypothesis seed {seed} (fresh each run; to reproduce: {SEED_VARIABLE}={seed} "
            f"make test, or pytest --hypothesis-seed={seed})")


def pytest_report_header(config):
    return _reproduce(config.stash[_SEED])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        terminalreporter.write_line(_reproduce(config.stash[_SEED]))


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
