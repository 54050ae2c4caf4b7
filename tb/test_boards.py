"""Board builds with the PyPI toolchain: the iCEBreaker bitstream and its report, and
``zeroskip build --program`` against a stand-in programmer.

The iCEBreaker build is the one CI makes (about two minutes); it is cached per gateware
version, so the tests after the first reuse it, as ``make flash`` after ``make bitstream`` does.
"""

import json
import os
import subprocess
import sys

import pytest

from zeroskip.sim.rtl.cache import cache_root, gateware_digest, locked

pytest.importorskip("amaranth_boards", reason="pip install zeroskip[boards]")

REPORT_KEYS = {"board", "device", "pe_count", "clock_mhz", "fmax_mhz", "timing_met",
               "luts_used", "luts_total", "ffs_used", "dsps_used", "dsps_total", "brams_used",
               "brams_total", "bitstream"}


def zeroskip(*args, env=None):
    return subprocess.run([sys.executable, "-m", "zeroskip.cli", *args], capture_output=True,
                          text=True, env=env)


@pytest.fixture(scope="module")
def icebreaker():
    out = cache_root() / "boards" / f"icebreaker-{gateware_digest()}"
    with locked(out.parent):  # one build, whichever worker gets here first
        result = zeroskip("build", "--board", "icebreaker", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_icebreaker_bitstream_meets_timing_with_16_pes_on_dsps(icebreaker):
    report = json.loads((icebreaker / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["board"] == "icebreaker"
    assert report["pe_count"] >= 16
    assert report["clock_mhz"] >= 30
    assert report["timing_met"] and report["fmax_mhz"] >= report["clock_mhz"]
    assert report["dsps_used"] > 0
    assert 0 < report["luts_used"] <= report["luts_total"]
    assert 0 < report["brams_used"] <= report["brams_total"]
    bitstream = icebreaker / "top.bin"
    assert report["bitstream"] == str(bitstream)
    assert bitstream.stat().st_size > 100_000  # a whole UP5K image
    # reproducible: the seed that met timing and the tools that built it
    assert report["nextpnr_seed"] >= 1
    assert set(report["toolchain"]) == {"yosys", "nextpnr", "packer"}
    assert report["toolchain"]["yosys"].startswith("Yosys ")
    assert "nextpnr" in report["toolchain"]["nextpnr"]


def _stand_in(tmp_path, exit_status, message=""):
    """An ``openFPGALoader`` on PATH that records its arguments."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "argv.json"
    script = folder / "openFPGALoader"
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"json.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n"
                      f"print({message!r}, file=sys.stderr)\nsys.exit({exit_status})\n")
    script.chmod(0o755)
    env = dict(os.environ, PATH=f"{folder}{os.pathsep}{os.environ['PATH']}")
    env.pop("OPENFPGALOADER", None)
    return env, log


def test_program_calls_openfpgaloader_with_the_bitstream(icebreaker, tmp_path):
    env, log = _stand_in(tmp_path, 0)
    result = zeroskip("build", "--board", "icebreaker", "--out", str(icebreaker), "--program",
                      env=env)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout  # programming does not rebuild
    assert json.loads(log.read_text()) == ["-b", "ice40_generic", str(icebreaker / "top.bin")]


def test_program_with_no_board_attached_is_a_device_failure_exit_3(icebreaker, tmp_path):
    env, log = _stand_in(tmp_path, 1, "unable to open ftdi device: -3 (device not found)")
    result = zeroskip("build", "--board", "icebreaker", "--out", str(icebreaker), "--program",
                      env=env)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert "device not found" in result.stderr
    assert log.exists()


def test_program_without_libusb_names_the_package(icebreaker, tmp_path):
    env, _ = _stand_in(tmp_path, 1, "unable to open ftdi device: LIBUSB_ERROR_NOT_SUPPORTED "
                                    "(libusb-1.0 missing)")
    result = zeroskip("build", "--board", "icebreaker", "--out", str(icebreaker), "--program",
                      env=env)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert "apt-get install libusb-1.0-0" in result.stderr


def test_a_build_is_known_by_its_design_not_by_where_its_sources_are(monkeypatch):
    """`make boards` rebuilds a board only when what Yosys and nextpnr get changes: the design
    without its source locations (an edit that moves lines, another checkout's path), the
    constraints, the scripts and the seeds."""
    from zeroskip.platforms import flow
    from zeroskip.platforms.boards import BOARDS
    from zeroskip.platforms.top import BoardTop
    board = BOARDS["icebreaker"]

    def digest(baud=3_000_000, seeds=flow.SEEDS):
        return flow.design_digest(board, BoardTop(board.config, clock_hz=30_000_000,
                                                  baud=baud), seeds=seeds)

    reference = digest()
    assert digest() == reference
    assert digest(baud=115200) != reference             # another UART divisor
    assert digest(seeds=(2, 3)) != reference

    plan = flow._plan

    def moved(*args):
        built = plan(*args)
        assert 'attribute \\src "' in built.files["top.il"]
        built.files["top.il"] = built.files["top.il"].replace('\\src "/', '\\src "/elsewhere/')
        return built
    monkeypatch.setattr(flow, "_plan", moved)
    assert digest() == reference
