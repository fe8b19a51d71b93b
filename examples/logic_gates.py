"""Logic gates: what one neuron can learn, and why XOR needs a hidden layer.
=========================================================================

One neuron (``Network([2, 1], output_activation="logistic")``) computes
sigmoid(w1 x1 + w2 x2 + b): its decision boundary, where the output crosses
0.5, is a straight line. AND, OR and NAND each put their "true" corners on one
side of a line, so one neuron learns them (accuracy 1.0 on the four inputs).

XOR is true on (0, 1) and (1, 0) only: no straight line separates those two
corners from the other two, so a network without a hidden layer gets at most
3 of the 4 right (here it settles on 0.5 everywhere). Add one hidden layer and
the network learns it: the hidden units draw several lines and the output combines
them. The course notes build XOR by hand from OR and AND units; the example
wires its own hand-made weights, XOR = AND(OR, NAND), into a 2-2-1 network
too, with no training at all.

The figure (``logic_gates.png``) shows the output of each network over the
plane (red near 1, blue near 0), the 0.5 boundary in black and the four
training points coloured by their target. Where the output hardly moves from
0.5 (XOR without a hidden layer), its panel has colours on their own scale,
symmetric about 0.5, and says how far from 0.5 the output gets.

Run it: ``python logic_gates.py`` (writes ``logic_gates.png`` in the current
directory; ``--out DIR`` writes it in DIR instead).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fastmlp import Network  # noqa: E402

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
GATES = {
    "AND": [0, 0, 0, 1],
    "OR": [0, 1, 1, 1],
    "NAND": [1, 1, 1, 0],
    "XOR": [0, 1, 1, 0],
}
SEED = 0


def accuracy(net, y):
    """Fraction of the four inputs whose output is on the right side of 0.5."""
    return float(np.mean((net.predict(X).ravel() > 0.5) == (y > 0.5)))


def one_neuron(y):
    """A single logistic neuron trained on the truth table y."""
    net = Network([2, 1], output_activation="logistic", loss="log_loss", random_state=SEED)
    return net.fit(X, y, epochs=500, batch_size=4, optimizer="adam", learning_rate=0.1)


def one_hidden_layer(y):
    """2 inputs -> 4 tanh units -> 1 logistic output, trained on y."""
    net = Network([2, 4, 1], activation="tanh", output_activation="logistic", loss="log_loss",
                  random_state=SEED)
    return net.fit(X, y, epochs=500, batch_size=4, optimizer="adam", learning_rate=0.05)


def hardwired_xor():
    """XOR = AND(OR(x1, x2), NAND(x1, x2)), with weights set by hand (no training)."""
    net = Network([2, 2, 1], activation="logistic", output_activation="logistic", loss="log_loss")
    net.coefs_ = [np.array([[20.0, -20.0], [20.0, -20.0]]),  # hidden unit 1: OR, unit 2: NAND
                  np.array([[20.0], [20.0]])]  # output: AND of the two
    net.intercepts_ = [np.array([-10.0, 30.0]), np.array([-30.0])]
    return net


def draw(ax, net, y, title):
    """The network's output over the plane, its 0.5 boundary and the four points; returns the output's range."""
    grid = np.linspace(-0.5, 1.5, 201)
    g1, g2 = np.meshgrid(grid, grid)
    P = net.predict(np.column_stack([g1.ravel(), g2.ravel()])).reshape(g1.shape)
    spread = float(np.abs(P - 0.5).max())
    if spread > 0.1:
        ax.contourf(g1, g2, P, levels=np.linspace(0, 1, 11), cmap="RdBu_r", vmin=0, vmax=1, alpha=0.8)
    else:
        # Nearly 0.5 everywhere (XOR without a hidden layer): on the 0..1 scale the panel would be
        # one flat colour. Its own scale, symmetric about 0.5, shows the little the output does.
        spread = max(spread, 1e-15)  # the levels must increase even for an output of exactly 0.5
        ax.contourf(g1, g2, P, levels=np.linspace(0.5 - spread, 0.5 + spread, 11), cmap="RdBu_r", alpha=0.35)
        ax.text(0.5, 0.97, f"output 0.5 \u00b1 {spread:.0e} everywhere\n(colours on their own scale)",
                transform=ax.transAxes, ha="center", va="top", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    if P.min() < 0.5 < P.max():  # the decision boundary, wherever the output crosses 0.5
        ax.contour(g1, g2, P, levels=[0.5], colors="k", linewidths=2)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", vmin=0, vmax=1, s=120, edgecolors="k", zorder=3)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x1")
    ax.set_xticks([0, 1])
    ax.set_yticks([0, 1])
    ax.set_aspect("equal")
    return float(P.min()), float(P.max())


def main(out_dir="."):
    """Train the gates, draw logic_gates.png in out_dir, return the accuracies shown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, panels = {}, []
    for name in ("AND", "OR", "NAND", "XOR"):
        y = np.array(GATES[name], dtype=np.float64)
        net = one_neuron(y)
        key = "XOR_no_hidden" if name == "XOR" else name
        results[key] = accuracy(net, y)
        title = f"{name}, one neuron\naccuracy {results[key]:.2f}"
        if name == "XOR":
            title = f"XOR, no hidden layer\naccuracy {results[key]:.2f}: no line separates it"
        panels.append((net, y, title))
    y_xor = np.array(GATES["XOR"], dtype=np.float64)
    net = one_hidden_layer(y_xor)
    results["XOR_hidden"] = accuracy(net, y_xor)
    panels.append((net, y_xor, f"XOR, one hidden layer (4 units)\naccuracy {results['XOR_hidden']:.2f}"))
    results["XOR_hardwired"] = accuracy(hardwired_xor(), y_xor)

    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 4.2), constrained_layout=True)
    ranges = {key: draw(ax, net, y, title)
              for ax, (net, y, title), key in zip(axes, panels, ("AND", "OR", "NAND", "XOR_no_hidden", "XOR_hidden"))}
    axes[0].set_ylabel("x2")
    fig.suptitle("One neuron draws one line: AND, OR, NAND yes, XOR no; a hidden layer solves XOR "
                 "(red: output 1, blue: output 0)")
    path = out_dir / "logic_gates.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    for name, acc in results.items():
        print(f"{name:>14}: accuracy {acc:.2f}")
    results["output_ranges"] = ranges  # (min, max) of each panel's output over the plane
    results["figures"] = [str(path)]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="directory for the PNG files (default: the current directory)")
    main(out_dir=parser.parse_args().out)
