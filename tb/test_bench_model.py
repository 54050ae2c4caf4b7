"""The analytical cycle model against the RTL on every benchmark pattern (smaller GEMMs than
`make bench`), and the bench's outputs."""

import pytest

from zeroskip.config import ArrayConfig
from zeroskip.apps.bench import BenchCase, default_cases, measure, write_outputs


@pytest.mark.parametrize("case", default_cases(), ids=lambda c: f"{c.fmt}-{c.pattern}-{c.density}")
def test_model_predicts_rtl_cycles(case):
    row = measure(case, case.config(4, 4, (48, 64, 40)), (48, 64, 40))
    assert row["predicted_cycles"] == row["cycles_skip"]
    assert row["model_error"] == 0
    assert row["dense_fraction"] >= 0.95


def test_bench_outputs(tmp_path):
    config = BenchCase("uniform", 1.0).config(2, 2, (8, 16, 8))
    rows = [measure(BenchCase("uniform", d), config, (8, 16, 8)) for d in (1.0, 0.25)]
    assert all(r["total_skip"] > r["cycles_skip"] and r["speedup_end_to_end"] for r in rows)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:start -->\nold\n<!-- bench:end -->\noutro\n")
    write_outputs(config, rows, tmp_path / "out", (8, 16, 8), readme=readme)
    for name in ("bench.md", "bench.csv", "bench.json", "bench.png", "bench_roofline.png"):
        assert (tmp_path / "out" / name).stat().st_size > 100
    text = readme.read_text()
    assert "old" not in text and "| uniform |" in text and text.endswith("outro\n")
    # the section is what the docs consistency check recomputes from the generated bench.md
    from zeroskip.apps.readme import expected_section, sections
    assert sections(text)["bench"] == expected_section("bench", tmp_path / "out", readme)
    assert "![bench](out/bench.png)" in text and "![roofline](out/bench_roofline.png)" in text
