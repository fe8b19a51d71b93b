"""Every script in examples/ runs, writes its figures and shows what its docstring claims."""
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastmlp
from _helpers import repository

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

EXAMPLES = repository("examples")
ROOT = EXAMPLES.parent
FIGURES = {
    "logic_gates": ["logic_gates.png"],
    "universal_approximation": ["universal_approximation.png"],
    "vanishing_gradients": ["vanishing_gradients.png"],
    "dropout": ["dropout.png"],
    "ensemble_uncertainty": ["ensemble_uncertainty.png"],
    "digits": ["digits.png", "digits_misclassified.png"],
}


def _load(name):
    spec = importlib.util.spec_from_file_location(f"fastmlp_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _source_tree():
    """What an example must not change: git's view of the tree and the tracked files' times; None
    outside a git checkout (an unpacked sdist)."""
    try:
        if _git("rev-parse", "--show-toplevel").strip() != str(ROOT.resolve()):
            return None
        status = _git("status", "--porcelain", "--untracked-files=all", "--ignored")
        tracked = _git("ls-files", "-z").split("\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    # bytecode caches and tool caches come and go with any import or test run
    status = sorted(line for line in status.splitlines()
                    if "__pycache__" not in line and not line[3:].startswith((".hypothesis", ".pytest_cache")))
    times = {f: (ROOT / f).stat().st_mtime_ns for f in tracked if f and (ROOT / f).exists()}
    return status, times


def _run(name, out_dir, monkeypatch):
    """main() of one example run from out_dir; checks its PNG files there and returns its numbers,
    with the figures it drew as "figure_objects" (in the order it closed them)."""
    before = _source_tree()
    figures, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figures.append(fig), close(fig)))
    monkeypatch.chdir(out_dir)  # main()'s default: the current directory
    # The networks are tiny: one BLAS thread is fastest, and keeps the run short on a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        result = _load(name).main()
    monkeypatch.undo()
    if before is not None:  # nothing written into the source tree, no tracked file touched
        after = _source_tree()
        assert after[0] == before[0], set(after[0]) ^ set(before[0])
        assert after[1] == before[1], [f for f in after[1] if after[1][f] != before[1].get(f)]
    written = sorted(p.name for p in Path(out_dir).glob("*.png"))
    assert written == sorted(FIGURES[name])
    for png in written:
        data = (Path(out_dir) / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert sorted(Path(p).name for p in result["figures"]) == sorted(FIGURES[name])
    result["figure_objects"] = figures
    return result


def _contours(ax, filled):
    return [c for c in ax.collections if isinstance(c, ContourSet) and c.filled == filled]


# examples whose test lives with their topic's tests
TESTED_ELSEWHERE = {"dask_incremental": "tests/test_dask.py", "digits_in_c": "tests/test_export_c.py"}


def test_every_example_is_tested_and_runnable():
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(set(FIGURES) | set(TESTED_ELSEWHERE))
    for name in TESTED_ELSEWHERE:
        assert f"{name}" in (EXAMPLES.parent / TESTED_ELSEWHERE[name]).read_text()
    for name in FIGURES:
        module = _load(name)
        assert module.__doc__ and len(module.__doc__.split()) > 50, f"{name} needs a module docstring"
        assert inspect.signature(module.main).parameters["out_dir"].default == "."
        assert 'main(out_dir=parser.parse_args().out)' in (EXAMPLES / f"{name}.py").read_text()


def test_no_figure_is_tracked_where_an_example_writes():
    # The examples write into the current directory or --out; a figure kept in the
    # repository (for the README) lives in docs/images/, where no example writes.
    try:
        tracked = _git("ls-files").split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    figures = {png for pngs in FIGURES.values() for png in pngs}
    assert [f for f in tracked if Path(f).name in figures and not f.startswith("docs/images/")] == []
    # scripts, and the gallery's header page (docs/conf.py renders examples/ with sphinx-gallery)
    assert all(f.endswith(".py") or f == "examples/GALLERY_HEADER.rst" for f in tracked if f.startswith("examples/"))
    # every image the README shows is tracked, under docs/images/
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert images and all(i.startswith("docs/images/") and i in tracked for i in images), images


def test_logic_gates(tmp_path, monkeypatch):
    r = _run("logic_gates", tmp_path, monkeypatch)
    assert r["AND"] == r["OR"] == r["NAND"] == 1.0  # one neuron draws the line
    assert r["XOR_no_hidden"] <= 0.75  # no line separates XOR: at best 3 of 4
    assert r["XOR_hidden"] == 1.0  # one hidden layer learns it
    assert r["XOR_hardwired"] == 1.0  # AND(OR, NAND), weights set by hand
    (fig,) = r["figure_objects"]
    panels = dict(zip(["AND", "OR", "NAND", "XOR_no_hidden", "XOR_hidden"], fig.axes))
    assert len(fig.axes) == len(panels)
    for key, ax in panels.items():
        low, high = r["output_ranges"][key]
        # the colours show what the model does: the output covers most of the colour scale,
        # for a network near 0.5 everywhere too (a flat panel had the whole 0..1 scale)
        (filled,) = _contours(ax, filled=True)
        levels = filled.levels
        assert levels[0] <= low and high <= levels[-1], (key, levels, low, high)
        assert high - low >= 0.4 * (levels[-1] - levels[0]) or high == low, (key, levels, low, high)
        # the decision boundary is drawn wherever the output crosses 0.5
        boundaries = [c for c in _contours(ax, filled=False) if list(c.levels) == [0.5]]
        assert len(boundaries) == (low < 0.5 < high), key
    for key in ("AND", "OR", "NAND", "XOR_hidden"):
        assert r["output_ranges"][key][0] < 0.1 and r["output_ranges"][key][1] > 0.9  # confident
    assert "no line separates it" in panels["XOR_no_hidden"].get_title()


def test_universal_approximation(tmp_path, monkeypatch):
    r = _run("universal_approximation", tmp_path, monkeypatch)
    assert r["widths"] == [2, 4, 8, 32]
    errors = r["rms_errors"]
    assert all(wider < narrower for narrower, wider in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.05 and errors[0] > 5 * errors[-1]
    (fig,) = r["figure_objects"]
    ax = fig.axes[-1]  # error against width, log-log
    assert ax.get_xscale() == ax.get_yscale() == "log"
    fig.canvas.draw()
    for axis, low, high in ((ax.xaxis, *ax.get_xlim()), (ax.yaxis, *ax.get_ylim())):
        labels = [t.label1 for t in axis.get_major_ticks()
                  if low <= t.get_loc() <= high and t.label1.get_visible() and t.label1.get_text()]
        assert 2 <= len(labels) <= 6, [t.get_text() for t in labels]
        assert not any(t.get_text() for t in axis.get_minorticklabels() if t.get_visible())
        boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: (b.x0, b.y0))
        assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    assert [t.get_text() for t in ax.xaxis.get_majorticklabels()] == [str(w) for w in r["widths"]]


def test_vanishing_gradients(tmp_path, monkeypatch):
    curves = {}  # each network's loss curve, as the example trains it
    fit = fastmlp.Network.fit

    def recording_fit(net, *args, **kwargs):
        fit(net, *args, **kwargs)
        curves[net.activation] = list(net.loss_curve_)
        return net

    monkeypatch.setattr(fastmlp.Network, "fit", recording_fit)
    r = _run("vanishing_gradients", tmp_path, monkeypatch)
    sigmoid, relu = r["sigmoid"], r["relu"]
    # sigmoid: the first layer's gradient is orders of magnitude below the last layer's
    assert sigmoid["ratio"] < 1e-3
    assert sigmoid["first_layer_norm"] < 1e-3 * sigmoid["last_layer_norm"]
    # ReLU + He: all layers' gradients of the same order
    assert 0.1 < relu["ratio"] < 10
    # and so only the ReLU network learns. Without clipping, where its 20 epochs of SGD
    # ended was chaotic: 10 layers at learning rate 0.05 could blow up again in the last
    # epochs (seeds 0-19, several BLAS kernels: final training accuracy 0.58-1.00, the
    # example's seed 0.70 with a loss curve ending at 0.03: the final weights' loss was
    # 2.02). With clip_norm=2 (seeds 0-4): final weights' loss 0.05-0.13, accuracy 0.95-0.99.
    # The sigmoid network's loss never went below 0.97 of its first, its accuracy 0.10.
    assert set(curves) == {"logistic", "relu"}
    assert min(curves["relu"]) < 0.2 * curves["relu"][0]
    assert relu["train_accuracy"] > 0.9 and relu["loss_end"] < 0.2 * relu["loss_start"]
    assert min(curves["logistic"]) > 0.9 * curves["logistic"][0]
    assert sigmoid["loss_end"] > 0.9 * sigmoid["loss_start"] and sigmoid["train_accuracy"] < 0.3


def test_dropout(tmp_path, monkeypatch):
    r = _run("dropout", tmp_path, monkeypatch)
    plain, dropped = r["no_dropout"], r["dropout"]
    assert plain["val_loss"] > 2 * plain["best_val_loss"]  # without dropout it overfits: validation climbs
    assert plain["train_loss"] < dropped["train_loss"]  # dropout fits the training points less tightly
    assert dropped["val_loss"] < plain["val_loss"]  # and generalises better
    assert dropped["gap"] < 0.75 * plain["gap"]


def test_ensemble_uncertainty(tmp_path, monkeypatch):
    r = _run("ensemble_uncertainty", tmp_path, monkeypatch)
    assert r["std_in_gap"] > 3 * r["std_on_data"]  # the members disagree where there are no data


def test_digits(tmp_path, monkeypatch):
    r = _run("digits", tmp_path, monkeypatch)
    assert r["accuracy"] > 0.9
    cm = np.asarray(r["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == r["n_test"]
    assert np.trace(cm) == r["n_test"] - r["n_wrong"]
    assert r["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    loss_ax = r["figure_objects"][0].axes[0]  # plot_loss_curve: losses, validation score, best score
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == [
        "training loss", "validation loss", "validation score (accuracy)", f"best validation score ({r['best_validation_score']:.3g})"]


def test_example_run_as_script_writes_into_current_directory_or_out(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    # the fastmlp this test imported (installed, or a source tree built in place)
    here = str(Path(fastmlp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(EXAMPLES / "logic_gates.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "XOR_no_hidden: accuracy" in result.stdout and "XOR_hidden: accuracy 1.00" in result.stdout
    assert (tmp_path / "logic_gates.png").stat().st_size > 5000
    result = subprocess.run([sys.executable, str(EXAMPLES / "universal_approximation.py"), "--out", "figs/a"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "figs" / "a").iterdir()] == ["universal_approximation.png"]
    assert not (tmp_path / "universal_approximation.png").exists()
