"""Reading a board build's tools back (platforms/build_report.py), without running them: the
report from nextpnr's and Yosys' JSON, and a failed build's own error line from its log."""

import json

from zeroskip.platforms.boards import BOARDS
from zeroskip.platforms.build_report import board_report, first_error


def test_the_first_error_line_and_whether_the_design_does_not_fit():
    log = ("Warning: something harmless\n"
           "ERROR: Unable to place cell 'dsp', no BELs remaining to implement cell type "
           "'ICESTORM_DSP'\nERROR: a later error\n0 warnings, 2 errors\n")
    assert first_error(log) == ("ERROR: Unable to place cell 'dsp', no BELs remaining to "
                                "implement cell type 'ICESTORM_DSP'", True)
    assert first_error("ERROR: syntax error\n") == ("ERROR: syntax error", False)
    # no ERROR line: the last line says what stopped, an empty log that nothing did
    assert first_error("one\nKilled\n") == ("Killed", False)
    assert first_error("") == ("no output", False)


def test_an_ice40_report_from_nextpnr_and_yosys(tmp_path):
    board = BOARDS["icebreaker"]
    (tmp_path / "top_report.json").write_text(json.dumps({
        "utilization": {"ICESTORM_LC": {"used": 4000, "available": 5280},
                        "ICESTORM_DSP": {"used": 8, "available": 8},
                        "ICESTORM_RAM": {"used": 20, "available": 30}},
        # the UART's clock does not count, only the PLL's (by its constraint)
        "fmax": {"clk": {"achieved": 31.234, "constraint": 30.0},
                 "uart_clk": {"achieved": 12.0, "constraint": 12.0}}}))
    (tmp_path / "stat.json").write_text(json.dumps({"design": {"num_cells_by_type": {
        "SB_DFF": 100, "SB_DFFE": 50, "SB_LUT4": 3000}}}))
    report = board_report(board, tmp_path)
    assert (report["luts_used"], report["ffs_used"], report["dsps_used"],
            report["brams_used"]) == (4000, 150, 8, 20)
    assert report["fmax_mhz"] == 31.23 and report["timing_met"]
    assert report["luts_total"] == board.luts_total
    assert report["bitstream"] == str(tmp_path / "top.bin")
