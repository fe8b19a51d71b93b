"""The gallery's figures: the PNG files each example writes.

The examples save their figures (and close them) rather than show them, so
matplotlib's scraper would find nothing open. conf.py runs each one with
``--out OUT/<example>`` (reset_argv below); after each code block, scrape()
copies the PNG files that appeared there into the gallery, in the order they
were written.
"""
import shutil
import tempfile
from pathlib import Path

from sphinx_gallery.scrapers import figure_rst

OUT = Path(tempfile.mkdtemp(prefix="fastmlp-gallery-"))
_seen = set()


def reset_argv(gallery_conf, script_vars):
    out = OUT / Path(script_vars["src_file"]).stem
    out.mkdir(parents=True, exist_ok=True)
    return ["--out", str(out)]


def scrape(block, block_vars, gallery_conf):
    out = OUT / Path(block_vars["src_file"]).stem
    new = sorted((p for p in out.glob("*.png") if p not in _seen), key=lambda p: p.stat().st_mtime_ns)
    images = []
    for png, target in zip(new, block_vars["image_path_iterator"]):
        shutil.copyfile(png, target)
        _seen.add(png)
        images.append(target)
    return figure_rst(images, gallery_conf["src_dir"])
