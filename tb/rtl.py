"""Helpers for the cocotb launchers: simulator selection and component builds."""

import os
import shutil

import pytest

from zeroskip.hw.verilog import convert, primitive_models
from zeroskip.sim.rtl import build


def simulators():
    """Both simulators; Icarus is skipped only where it is truly absent (and never in CI,
    where ``ZEROSKIP_REQUIRE_SIMS=1`` turns a missing simulator into a failure)."""
    params = [pytest.param("verilator", id="verilator")]
    if shutil.which("iverilog") or os.environ.get("ZEROSKIP_REQUIRE_SIMS"):
        params.append(pytest.param("icarus", id="icarus"))
    else:
        params.append(pytest.param("icarus", id="icarus", marks=pytest.mark.skip(
            reason="Icarus Verilog is not installed (apt-get install iverilog)")))
    return params


def build_component(sim, name, config, make_component, toplevel):
    """Build a standalone component of ``config`` for cocotb."""
    # build.build looked up on its module: the guard in conftest.py replaces it there
    return build.build(sim, f"{name}-{config.name()}",
                       lambda: convert(make_component(config), toplevel) +
                       primitive_models(config), toplevel)
