"""The one Markdown table writer (zeroskip.markdown.table)."""

import pytest

from zeroskip.markdown import table


def test_a_table_has_a_header_a_rule_and_one_line_per_row():
    text = table(["name", "cycles", "ratio"], [["a", 1_000, "1.5×"], ["b", 2, None]],
                 align="lr")
    assert text.splitlines() == ["| name | cycles | ratio |", "|---|---:|---|",
                                 "| a | 1000 | 1.5× |", "| b | 2 | None |"]


def test_centred_and_default_alignment():
    assert table(["x", "y"], [], align="c").splitlines()[1] == "|:---:|---|"


@pytest.mark.parametrize("rows, align, message", [
    ([["only one"]], "", "a row of 1 cells in a table of 2 columns"),
    ([], "lx", "align must be made of l, r and c"),
])
def test_malformed_tables_are_refused(rows, align, message):
    with pytest.raises(ValueError, match=message):
        table(["a", "b"], rows, align)
