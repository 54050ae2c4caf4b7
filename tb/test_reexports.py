"""Re-exports left by issue 35's module split for the files other changes are rewriting
(zeroskip/cli.py, zeroskip/api.py, zeroskip/apps/sweep.py) and for the hardware identity check:
the moved names still resolve from their old module. Remove with the shims."""

import pytest

from zeroskip.platforms import boards, flow, program
from zeroskip.sim.rtl import build, cache, runner


def test_names_moved_out_of_boards_resolve_from_it():
    assert boards.design_digest is flow.design_digest and boards.build is flow.build
    assert boards.build_board is flow.build_board and boards.BuildFailed is flow.BuildFailed
    assert boards.program is program.program
    assert boards.ProgrammingFailed is program.ProgrammingFailed
    assert boards.TimingNotMet is program.TimingNotMet
    with pytest.raises(AttributeError, match="no_such_name"):
        boards.no_such_name


def test_names_moved_out_of_the_runner_resolve_from_it():
    assert runner.SimulatorMissing is build.SimulatorMissing
    assert runner.SIMULATORS is build.SIMULATORS
    assert runner.check_wave_support is build.check_wave_support
    assert runner.cache_root is cache.cache_root
    assert runner.gateware_digest is cache.gateware_digest
