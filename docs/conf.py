"""Sphinx configuration of fastmlp's documentation.

Build: ``pip install ".[docs]"`` then
``python -m sphinx -W --keep-going -b html docs docs/_build/html``; open
``docs/_build/html/index.html``. The gallery runs examples/ (sphinx-gallery) and
the user guide's figures are drawn by docs/figures.py, both at build time.
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # figures.py, gallery_scraper.py

import fastmlp  # noqa: E402
import figures  # noqa: E402

project = "fastmlp"
author = "the fastmlp developers"
copyright = "2026, the fastmlp developers"
release = version = fastmlp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = []
html_theme = "pydata_sphinx_theme"
html_title = f"fastmlp {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False

# The API reference: autodoc reads the docstrings, numpydoc renders them. Class
# members are listed by the API page's autoclass directives, not by numpydoc.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()  # tests/test_docstrings.py validates the docstrings

# no network during the build: intersphinx has no inventories to fetch
intersphinx_mapping = {}

# The gallery: every script in examples/ is rendered; each run writes its figures
# (PNG files) into a directory given with --out, which gallery_scraper.py picks up.
# The Dask example is shown, not run: it starts a cluster of worker processes.
# digits_in_c.py runs: with a C compiler its page shows the compiled program's
# output, without one the two files it wrote (it draws no figure).
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(?!dask_incremental\.py)[^/]+\.py$",
    "reset_argv": "gallery_scraper.reset_argv",
    "image_scrapers": ("gallery_scraper.scrape",),
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
}


def setup(app):
    app.connect("builder-inited", lambda app: figures.draw_all(HERE / "_generated"))
