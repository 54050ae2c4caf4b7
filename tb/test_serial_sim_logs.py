"""A simulator that fails keeps its whole log: the error's first line (all the CLI prints of
an internal error) names the kept file under ``$ZEROSKIP_CACHE/logs``, the log's tail follows.
The failing simulation is the serial bridge of tb/test_serial.py given no time at all."""

import re
from pathlib import Path

import pytest

from zeroskip.sim.rtl import build, runner

from .rtl import build_component, simulators
from .test_serial import BUILD_NAME, CONFIG, DIVISOR, board_top


def kept_log(message, cache):
    first = message.splitlines()[0]
    found = re.search(r"whole log: (\S+\.log)$", first)
    assert found, first
    path = Path(found.group(1))
    assert path.parent == cache / "logs" and path.is_file(), first
    return path, message.split("\n", 1)[1]


def test_a_failed_simulation_keeps_its_log(tmp_path, monkeypatch):
    build_dir = build_component("verilator", BUILD_NAME, CONFIG, board_top, "board_top")
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path))  # where the log goes, not the build
    job = {"port_file": str(tmp_path / "port"), "stop_file": str(tmp_path / "stop"),
           "divisor": DIVISOR, "wall_limit": 0, "drop": (), "damage": ()}
    with pytest.raises(RuntimeError) as error:
        runner.run_cocotb("verilator", build_dir, "board_top", "zeroskip.tb.cocotb_serial", job)
    message = str(error.value)
    assert message.startswith("simulation of zeroskip.tb.cocotb_serial failed")
    path, tail = kept_log(message, tmp_path)
    log = path.read_text()
    assert "the host did not finish within 0 s" in log  # the testbench's own failure
    assert "serial_bridge" in log and "FAIL" in log     # cocotb's summary
    assert tail and log.endswith(tail)


def test_a_simulation_that_cannot_start_keeps_its_log(tmp_path, monkeypatch):
    build_dir = build_component("verilator", BUILD_NAME, CONFIG, board_top, "board_top")
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError) as error:
        runner.run_cocotb("verilator", build_dir, "board_top", "zeroskip.tb.no_such_module", {})
    path, _ = kept_log(str(error.value), tmp_path)
    assert "no_such_module" in path.read_text()


@pytest.mark.parametrize("sim", simulators())
def test_a_failed_build_keeps_its_log(tmp_path, monkeypatch, sim):
    monkeypatch.setenv("ZEROSKIP_CACHE", str(tmp_path))
    verilog = "module broken(input clk);\n  this is not verilog;\nendmodule\n"
    with pytest.raises(RuntimeError) as error:
        build.build(sim, "broken", lambda: verilog, "broken")
    message = str(error.value)
    assert message.startswith(f"{sim} build of broken failed")
    path, _ = kept_log(message, tmp_path)
    assert path.name.startswith(f"build-{sim}-broken-")
    assert "syntax error" in path.read_text()
    # nothing marks the failed build complete: the next call builds again
    assert not list(tmp_path.glob(f"{sim}-broken-*/complete"))
