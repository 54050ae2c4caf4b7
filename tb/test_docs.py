"""The README and the documentation pages against the generated files under docs/: every marked
section is what its generator writes from them, every figure the README's prose quotes is in
one of them, every included table exists, and the site builds with warnings as errors."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zeroskip.apps import readme as sections_writer
from zeroskip.apps.formats_table import formats_table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# the documentation's pages (generated files are included by them, never pages themselves)
PAGES = sorted(p for p in DOCS.glob("*.md")
               if p.name not in ("bench.md", "boards.md", "area.md", "formats_table.md",
                                 "tinyml.md", "resident.md"))
# what make targets generate under docs/: the only source of a figure
GENERATED = [p for p in DOCS.rglob("*") if p.suffix in (".md", ".json", ".csv")
             and p not in PAGES]


def test_there_is_something_to_check():
    assert len(PAGES) >= 10 and (DOCS / "boards.json").is_file() and (DOCS / "bench.md").is_file()
    assert "results" in sections_writer.sections(README.read_text())


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: p.name)
def test_marked_sections_are_what_the_generators_write(path):
    for name, text in sections_writer.sections(path.read_text()).items():
        expected = sections_writer.expected_section(name, DOCS, path)
        assert text == expected, (f"{path.name}: section {name!r} differs from what docs/ "
                                  f"gives; `make readme` rewrites it")


def test_readme_results_table_is_the_boards_file():
    import json
    boards = json.loads((DOCS / "boards.json").read_text())
    text = sections_writer.sections(README.read_text())["results"]
    assert text == sections_writer.results_table(boards)
    for row in boards["boards"]:
        line = next(l for l in text.splitlines()
                    if l.startswith(f"| {row['board']} | {row['arch']} |"))
        for point in row["throughput"]:
            assert f"| {point['dense_equivalent_gmacs']} |" in line


def _figures(text):
    """Figure-like tokens of Markdown prose: decimals, thousands, ratios and percentages,
    outside code blocks, inline code and marked sections."""
    text = re.sub(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("    "))
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)        # link targets
    return set(re.findall(r"\d+(?:[.,]\d+)+×?|\d+(?:\.\d+)?[×%]", text))


# figures the README may state without a generated file: the Python version it needs
NOT_MEASURED = {"3.10"}


def test_readme_prose_quotes_only_generated_figures():
    corpus = "\n".join(p.read_text(errors="replace") for p in GENERATED)
    corpus += "\n".join(p.read_text() for p in (ROOT / "docs" / "demo").glob("*.json"))
    stray = sorted(f for f in _figures(README.read_text()) - NOT_MEASURED
                   if f.rstrip("×") not in corpus and f not in corpus)
    assert not stray, f"README figures no generated file under docs/ has: {stray}"


def test_figures_check_can_fail():
    assert _figures("it runs 13.5× faster on 1,234 cycles `9.9` at 90%") == {
        "13.5×", "1,234", "90%"}


def test_readme_is_a_landing_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text and "make setup" in text
    assert "source .venv/bin/activate" in text
    assert "every event that costs energy is a hardware counter" not in text.lower()
    for link in re.findall(r"\]\((docs/[^)#]+)\)", text):
        assert (ROOT / link).exists(), link
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (ROOT / image).is_file(), image


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_included_files_exist(path):
    for target in re.findall(r"```\{include\} (\S+)", path.read_text()):
        assert (DOCS / target).is_file(), f"{path.name} includes {target}"


def test_formats_table_is_current():
    assert (DOCS / "formats_table.md").read_text() == formats_table() + "\n"


def test_check_and_rewrite(tmp_path, capsys):
    stale = tmp_path / "README.md"
    stale.write_text("intro\n<!-- results:start -->\n| old | table |\n<!-- results:end -->\nend\n")
    assert sections_writer.main([str(stale), "--check", "--docs", str(DOCS)]) == 1
    assert "section 'results' differs" in capsys.readouterr().err
    assert sections_writer.main([str(stale), "--docs", str(DOCS)]) == 0
    assert sections_writer.main([str(stale), "--check", "--docs", str(DOCS)]) == 0
    text = stale.read_text()
    assert text.startswith("intro\n") and text.endswith("<!-- results:end -->\nend\n")
    assert "| ulx3s-85f | zeroskip |" in text and "old" not in text
    stale.write_text("<!-- typed:start -->\n1.4×\n<!-- typed:end -->\n")
    assert sections_writer.main([str(stale), "--docs", str(DOCS)]) == 2
    assert "no generator writes a section named 'typed'" in capsys.readouterr().err


def test_results_table_with_per_bram_ratios():
    import json
    boards = json.loads((DOCS / "boards.json").read_text())
    for c in boards["comparisons"]:
        for r in c["ratios"]:
            r["per_bram"] = 0.5
        c["crossovers"]["per_bram"] = None
    text = sections_writer.results_table(boards)
    assert "per BRAM vs dense" in text and "0.50× / 0.50×" in text
    assert "BRAM not reached" in text


def test_docs_build(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    sphinx_build = shutil.which("sphinx-build", path=str(Path(sys.executable).parent))
    command = ([sphinx_build] if sphinx_build else [sys.executable, "-m", "sphinx"])
    proc = subprocess.run(command + ["-W", "--keep-going", "-q", "-b", "html", str(DOCS),
                                     str(tmp_path / "html")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (tmp_path / "html" / "api.html").read_text()
    assert 'id="zeroskip.gemm"' in api and 'id="zeroskip.run"' in api
    assert "ArrayConfig" in api
    cli = (tmp_path / "html" / "cli.html").read_text()
    for option in ("--acts", "--weights", "--board", "--calibrate", "--scheduler"):
        assert option in cli
    boards = (tmp_path / "html" / "boards-and-bitstreams.html").read_text()
    assert "ulx3s-85f" in boards and "crossover" in boards
