"""Sphinx configuration of zeroskip's documentation site (``make docs`` -> build/docs).

The pages are the Markdown files in this folder (MyST). Figure tables are never typed into a
page: a page includes the file a make target generated (``make bench`` -> bench.md, ``make
boards`` -> boards.md, ``make formats`` -> formats_table.md, ``make models`` ->
models/*/report.md, ``zeroskip sweep`` -> sweep/*/results.md), so those files are sources of
includes, not pages of their own (``exclude_patterns``).
"""

from importlib.metadata import version as _version

project = "zeroskip"
author = "the zeroskip authors"
copyright = "the zeroskip authors, BSD-2-Clause"
release = _version("zeroskip")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"

# generated files: included by the pages (their tables), never pages themselves
exclude_patterns = [
    "_build", "bench.md", "boards.md", "area.md", "formats_table.md", "tinyml.md", "resident.md",
    "models/**", "sweep/**", "soc/**", "demo/**",
]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "furo"
html_title = f"zeroskip {release}"
