"""The bus tops' generated interface: port names, the register map, the C header (no
simulation; the RTL tests are in test_bus_rtl.py)."""

import re
import shutil
import subprocess

import pytest

from zeroskip.cli import main
from zeroskip.config import ArrayConfig
from zeroskip.hw.bus.regmap import RegisterMap
from zeroskip.hw.link.protocol import write_targets

CONFIGS = [ArrayConfig(rows=2, cols=2, max_k=64, act_depth=128, weight_depth=96,
                       pointer_depth=9, out_depth=4),
           ArrayConfig(fmt="bitmap"), ArrayConfig(rows=4, cols=16, fmt="nm")]


def _ports(text, top):
    body = text[text.index(f"module {top}("):]
    body = body[:body.index("endmodule")]
    return set(re.findall(r"^\s*(?:input|output)\s+(?:\[\d+:0\]\s+)?(\w+);", body, re.M))


@pytest.mark.parametrize("bus, prefixes", [
    ("axi", ("s_axil_", "s_axis_", "m_axis_")), ("wishbone", ("wb_",))])
def test_verilog_ports_follow_the_bus_naming(tmp_path, capsys, bus, prefixes):
    out = tmp_path / "core.v"
    assert main(["verilog", "--bus", bus, "--rows", "2", "--cols", "2", "-o", str(out)]) == 0
    ports = _ports(out.read_text(), f"zeroskip_{bus}") - {"clk", "rst", "irq"}
    assert ports and all(p.startswith(prefixes) for p in ports), ports
    if bus == "axi":
        for name in ("awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
                     "bresp", "bvalid", "bready", "araddr", "arvalid", "arready", "rdata",
                     "rresp", "rvalid", "rready"):
            assert f"s_axil_{name}" in ports
        for name in ("tdata", "tvalid", "tready", "tlast"):
            assert f"s_axis_{name}" in ports and f"m_axis_{name}" in ports
    else:
        assert ports == {f"wb_{n}" for n in ("cyc", "stb", "we", "adr", "dat_w", "sel",
                                              "dat_r", "ack", "stall")}


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
@pytest.mark.parametrize("bus", ["axi", "wishbone"])
def test_header_compiles(tmp_path, bus):
    header, table = tmp_path / "regs.h", tmp_path / "regs.md"
    assert main(["verilog", "--bus", bus, "--rows", "2", "--cols", "2", "-o", str(tmp_path / "core.v"),
                 "--header", str(header), "--regmap", str(table)]) == 0
    subprocess.run(["cc", "-Wall", "-Werror", "-c", "-x", "c", str(header), "-o",
                    str(tmp_path / "h.o")], check=True)
    use = tmp_path / "use.c"
    use.write_text('#include "regs.h"\n'
                   "int job_done(volatile uint32_t *core)\n{\n"
                   "    zs_write(core, ZS_CONTROL, ZS_CONTROL_START);\n"
                   "    return (zs_read(core, ZS_STATUS) & ZS_STATUS_DONE) != 0 &&\n"
                   "           zs_read(core, ZS_ID) == ZS_ID_VALUE &&\n"
                   "           zs_read(core, ZS_CYCLES_LO) < ZS_JOB_BITS;\n}\n")
    subprocess.run(["cc", "-Wall", "-Werror", "-std=c99", "-pedantic", "-c", str(use), "-o",
                    str(tmp_path / "use.o")], cwd=tmp_path, check=True)
    text = table.read_text()
    assert "| 0x044 | STATUS | R |" in text and "JOB_0" in text


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name())
@pytest.mark.parametrize("bus", ["axi", "wishbone"])
def test_register_map_is_consistent(config, bus):
    regmap = RegisterMap(config, bus)
    offsets = [r.offset for r in regmap.registers]
    assert len(set(offsets)) == len(offsets) and max(offsets) < 0x1000
    assert all(o % 4 == 0 for o in offsets)
    spans = sorted((w.base, w.base + w.size) for w in regmap.windows)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))        # no overlap
    assert all(w.base % w.size == 0 for w in regmap.windows)          # aligned: a bit field
    if bus == "wishbone":
        targets = write_targets(config)
        assert [w.target for w in regmap.windows[:-1]] == list(range(len(targets)))
        for w, (_, bits, mask, depth) in zip(regmap.windows, targets):
            assert w.bits == bits + mask and w.depth == depth and w.stride >= 4 * w.slots
        results = regmap["RESULTS"]
        assert results.column_stride * config.cols <= results.size
    else:
        assert not regmap.windows
    assert regmap.size <= 1 << regmap.addr_bits


def test_header_and_regmap_need_a_bus(tmp_path, capsys):
    assert main(["verilog", "-o", str(tmp_path / "a.v"), "--header", str(tmp_path / "r.h")]) == 2
    assert "--header needs --bus" in capsys.readouterr().err
    assert main(["verilog", "--bus", "axi", "-o", str(tmp_path / "a.v"),
                 "--clock-mhz", "0"]) == 2
    assert not (tmp_path / "a.v").exists()
