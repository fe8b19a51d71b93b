"""Universal approximation: one hidden layer fits sin(x) better as it gets wider.
==============================================================================

The universal approximation theorem says a network with one hidden layer can
get as close as you like to any smooth function on an interval, given enough
hidden units. With ReLU units it is easy to see why: each unit contributes one
kink, so a width-n layer draws a curve made of about n + 1 straight pieces.
Width 2 can only make a rough zig-zag; width 32 is hard to tell from sin(x).

The example fits sin(x) on [-pi, pi] (200 points) with 1-n-1 networks for
n = 2, 4, 8, 32 and prints the root-mean-square error of each: it shrinks as
the width grows. The figure (``universal_approximation.png``) draws each fitted
curve over sin(x), and the error against the width on a log scale.

Run it: ``python universal_approximation.py`` (writes ``universal_approximation.png`` in the current
directory; ``--out DIR`` writes it in DIR instead).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402

from fastmlp import Network  # noqa: E402

WIDTHS = (2, 4, 8, 32)
SEED = 3


def fit_width(x, y, width):
    """A 1-width-1 ReLU network fitted to (x, y) with Adam."""
    net = Network([1, width, 1], activation="relu", random_state=SEED)
    return net.fit(x, y, epochs=2000, batch_size=32, optimizer="adam", learning_rate=0.01)


def main(out_dir="."):
    """Fit sin with each width, draw universal_approximation.png in out_dir, return the errors."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x = np.linspace(-np.pi, np.pi, 200).reshape(-1, 1)
    y = np.sin(x)
    errors, curves = {}, {}
    for width in WIDTHS:
        net = fit_width(x, y, width)
        curves[width] = net.predict(x).ravel()
        errors[width] = float(np.sqrt(np.mean((curves[width] - y.ravel()) ** 2)))
        print(f"width {width:>2}: RMS error {errors[width]:.4f}")

    fig, axes = plt.subplots(1, len(WIDTHS) + 1, figsize=(3.4 * (len(WIDTHS) + 1), 3.4),
                             constrained_layout=True)
    for ax, width in zip(axes, WIDTHS):
        ax.plot(x, y, color="0.6", linewidth=4, label="sin(x)")
        ax.plot(x, curves[width], color="C3", linewidth=1.5, label="network")
        ax.set_title(f"{width} hidden units\nRMS error {errors[width]:.3f}", fontsize=10)
        ax.set_xlabel("x")
        ax.set_ylim(-1.3, 1.3)
    axes[0].legend(loc="upper left", fontsize="small")
    axes[-1].plot(WIDTHS, [errors[w] for w in WIDTHS], "o-", color="C3")
    axes[-1].set_xscale("log", base=2)
    axes[-1].set_yscale("log")
    axes[-1].set_xticks(WIDTHS, [str(w) for w in WIDTHS])
    axes[-1].xaxis.set_minor_locator(ticker.NullLocator())
    # a few plain labels (0.02, 0.05, 0.1, ...), none on the minor ticks: matplotlib's
    # default labels every minor tick of a short log range as 2 x 10^-2, 3 x 10^-2, ...
    axes[-1].yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0), numticks=6))
    axes[-1].yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[-1].yaxis.set_minor_formatter(ticker.NullFormatter())
    axes[-1].set_xlabel("hidden units")
    axes[-1].set_ylabel("RMS error")
    axes[-1].set_title("error vs width", fontsize=10)
    fig.suptitle("One hidden layer of ReLU units fitting sin(x): wider is closer")
    path = out_dir / "universal_approximation.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"widths": list(WIDTHS), "rms_errors": [errors[w] for w in WIDTHS], "figures": [str(path)]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="directory for the PNG files (default: the current directory)")
    main(out_dir=parser.parse_args().out)
