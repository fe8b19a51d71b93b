"""The documentation builds with no warning and holds the whole API and the gallery.

Runs where the docs extra is installed (``pip install ".[docs]"``); skipped
otherwise. The build is the documented command (warnings are errors) on a copy
of docs/, examples/ and bench/, so nothing is written into the source tree; it
runs the gallery's examples and draws the user guide's figures.
"""
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastmlp
from _helpers import repository

MISSING = [m for m in ("sphinx", "pydata_sphinx_theme", "sphinx_gallery", "numpydoc", "matplotlib")
           if importlib.util.find_spec(m) is None]
# (one process of pytest-xdist's runs the whole module: the docs are built once)
pytestmark = [pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed (no {', '.join(MISSING)})"),
              pytest.mark.xdist_group("docs")]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    for part in ("docs", "examples", "bench"):
        shutil.copytree(repository(part), tmp / part,
                        ignore=shutil.ignore_patterns("_build", "_generated", "auto_examples", "__pycache__"))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    here = str(Path(fastmlp.__file__).resolve().parents[1])  # the fastmlp under test
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs",
                            "docs/_build/html"], cwd=tmp, env=env, capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-5000:]
    assert "warning" not in build.stderr.lower(), build.stderr[-5000:]
    return tmp / "docs" / "_build" / "html"


def _public_functions(module, defined_in=()):
    """Public names that module defines (or takes from the private modules defined_in)."""
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    return [n for n in names if getattr(getattr(module, n), "__module__", None) in (module.__name__, *defined_in)]


def test_every_public_name_is_in_the_api_reference(html):
    import fastmlp.callbacks
    import fastmlp.onnx
    import fastmlp.plot
    import fastmlp.schedules

    api = (html / "api.html").read_text(encoding="utf-8")
    # the docstrings write ``coefs_``: a bare coefs_ would be a reST link (an error), an escaped one shows
    assert "\\_" not in api and "\\_" not in (html / "file_format.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'id="([\w.-]+)"', api))
    expected = {f"fastmlp.{n}" for n in fastmlp.__all__ if n != "reference"}
    expected |= {"fastmlp.persistence.save", "fastmlp.persistence.load", "module-fastmlp.reference"}
    for module in (fastmlp.reference, fastmlp.callbacks, fastmlp.schedules, fastmlp.plot, fastmlp.onnx):
        expected |= {f"{module.__name__}.{n}" for n in module.__all__} if hasattr(module, "__all__") else set()
        # fastmlp.reference's math lives in the leaf module fastmlp._math and is its public API
        expected |= {f"{module.__name__}.{n}" for n in _public_functions(module, ("fastmlp._math",))}
    assert len(expected) > 45
    assert sorted(expected - ids) == []
    # every public method and property of the classes (fastmlp's own, not scikit-learn's), and every
    # constructor parameter described
    classes = {f"fastmlp.{c.__name__}": c for c in (fastmlp.Network, fastmlp.MLPClassifier, fastmlp.MLPRegressor)}
    classes["fastmlp.reference.Network"] = fastmlp.reference.Network
    for module in (fastmlp.callbacks, fastmlp.schedules):
        classes |= {f"{module.__name__}.{n}": getattr(module, n) for n in module.__all__}
    for qual, cls in classes.items():
        members = {n for klass in cls.__mro__ if klass.__module__.startswith("fastmlp")
                   for n, v in vars(klass).items()
                   if not n.startswith("_") and (callable(v) or isinstance(v, (property, classmethod, staticmethod)))}
        assert members, qual
        assert sorted(m for m in members if f"{qual}.{m}" not in ids) == [], qual
        for name in inspect.signature(cls).parameters:
            assert f"<strong>{name}</strong>" in api, (qual, name)


def test_every_example_is_in_the_gallery_with_its_figures(html):
    gallery = (html / "auto_examples" / "index.html").read_text(encoding="utf-8")
    for script in sorted(repository("examples").glob("*.py")):
        page = html / "auto_examples" / f"{script.stem}.html"
        assert page.exists() and f"{script.stem}.html" in gallery, script.name
        figures = re.findall(rf'src="\.\./_images/sphx_glr_{script.stem}_\d+\.png"', page.read_text(encoding="utf-8"))
        if script.stem == "dask_incremental":
            assert figures == []  # shown, not run: it starts a cluster
        elif script.stem == "digits_in_c":
            assert figures == []  # run: its output is the C program's, or, with no compiler, the files it wrote
            text = page.read_text(encoding="utf-8")
            assert "test accuracy" in text and "digits_model.h" in text
            if any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
                said = re.findall(r"image \d: the C code says \d \(true digit \d\)", text)
                assert len(said) == 6, "the compiled program's output is not on the page"
        else:
            assert figures, f"{script.name}: no figure in its gallery page"
            for src in figures:
                assert (html / "_images" / Path(src[9:-1]).name).stat().st_size > 5000


def test_user_guide_figures_and_pages(html):
    guide = (html / "user_guide.html").read_text(encoding="utf-8")
    images = re.findall(r'src="_images/([\w.]+\.png)"', guide)
    assert len(images) >= 9, images  # one per topic
    for name in images:
        assert (html / "_images" / name).stat().st_size > 5000
    for page in ("getting_started", "sklearn", "training", "objectives", "engine", "guarantees", "performance",
                 "file_format", "onnx", "export_c", "dask", "development", "api"):
        assert (html / f"{page}.html").exists(), page
    # the training loop's figure of every schedule, the C export's header written at build time, and
    # the performance page's numbers included from bench/RESULTS.md (not copied)
    training = (html / "training.html").read_text(encoding="utf-8")
    (schedules,) = re.findall(r'src="_images/(schedules\.png)"', training)
    assert (html / "_images" / schedules).stat().st_size > 5000
    header = (html / "export_c.html").read_text(encoding="utf-8")
    assert "gate_forward" in header and "GATE_SCRATCH_SIZE" in header and "gate_W2" in header
    results = repository("bench", "RESULTS.md").read_text(encoding="utf-8")
    heading = re.search(r"^## Targets$", results, re.M).group(0)
    assert heading in (html / "performance.html").read_text(encoding="utf-8")
