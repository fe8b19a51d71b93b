"""Vanishing gradients: a deep sigmoid network barely learns; ReLU with He init does.
==================================================================================

Backpropagation multiplies, layer by layer, by the activation's derivative.
The sigmoid's derivative is at most 0.25, so in a 10-layer sigmoid network the
gradient reaching the first layers has been shrunk by roughly 0.25 nine times:
its first layers get gradients orders of magnitude smaller than its last one,
their weights hardly move, and the loss stays where it started. ReLU's
derivative is 1 wherever a unit is active, and He initialisation scales the
weights so that the signal keeps its size from layer to layer: every layer's
gradient has about the same size, and the network learns.

The example trains both 10-layer networks (64 -> 9 x 32 -> 10, softmax) on
scikit-learn's digits for 20 epochs of plain SGD with the same learning rate,
each batch's gradient clipped to a norm of 2 (``clip_norm=2.0``: without it the
ReLU network's loss, once low, can blow up again within the last epochs, and
the weights it ends with predict worse than the loss curve suggests; the
sigmoid network's gradients are far below 2 and never clipped), and draws ``fastmlp.plot.plot_gradient_norms`` of each side by side, plus both
loss curves (``vanishing_gradients.png``). Each line is one layer's mean
gradient norm ||dW|| per epoch, on a log scale: for the sigmoid network the
lines fan out over about five orders of magnitude, layer 1 at the bottom; for
ReLU + He they lie together.

Run it: ``python vanishing_gradients.py`` (writes ``vanishing_gradients.png`` in the current
directory; ``--out DIR`` writes it in DIR instead).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from fastmlp import Network  # noqa: E402
from fastmlp.plot import plot_gradient_norms, plot_loss_curve  # noqa: E402

LAYER_SIZES = [64] + [32] * 9 + [10]  # 10 weight layers
SEED = 0


def train(X, Y, activation, init):
    """A 10-layer softmax classifier with the given hidden activation and init, 20 epochs of clipped SGD."""
    net = Network(LAYER_SIZES, activation=activation, init=init, output_activation="softmax",
                  loss="log_loss", random_state=SEED)
    return net.fit(X, Y, epochs=20, batch_size=32, optimizer="sgd", learning_rate=0.05, clip_norm=2.0)


def main(out_dir="."):
    """Train both networks, draw vanishing_gradients.png in out_dir, return the gradient norms shown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels in [0, 1]
    Y = np.eye(10)[y]  # one-hot targets
    nets = {
        "sigmoid": train(X, Y, "logistic", "glorot_uniform"),
        "relu": train(X, Y, "relu", "he_uniform"),
    }

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    results = {}
    for ax, (name, net) in zip(axes, nets.items()):
        plot_gradient_norms(net, ax=ax)
        first, last = net.grad_norms_[0, 0], net.grad_norms_[0, -1]
        accuracy = float(np.mean(net.predict(X).argmax(axis=1) == y))
        results[name] = {
            "first_layer_norm": float(first),  # epoch 1
            "last_layer_norm": float(last),
            "ratio": float(first / last),  # ||dW_1|| / ||dW_10||
            "loss_start": net.loss_curve_[0],
            "loss_end": net.loss_curve_[-1],
            "train_accuracy": accuracy,
        }
        label = "sigmoid, Glorot init" if name == "sigmoid" else "ReLU, He init"
        ax.set_title(f"{label}: layer 1 / layer 10 = {first / last:.1e}", fontsize=10)
        print(f"{label:>20}: ||dW|| layer 1 {first:.2e}, layer 10 {last:.2e} (ratio {first / last:.1e}); "
              f"loss {net.loss_curve_[0]:.3f} -> {net.loss_curve_[-1]:.3f}; training accuracy {accuracy:.2f}")
    low = min(axes[0].get_ylim()[0], axes[1].get_ylim()[0])
    high = max(axes[0].get_ylim()[1], axes[1].get_ylim()[1])
    for ax in axes[:2]:
        ax.set_ylim(low, high)  # the same scale on both, so their sizes compare
    for name, color in (("sigmoid", "C0"), ("relu", "C3")):
        plot_loss_curve(nets[name], ax=axes[2])
        axes[2].lines[-1].set(color=color, label=f"{name} training loss")
    axes[2].legend()
    axes[2].set_title("training loss: only the ReLU network learns", fontsize=10)
    fig.suptitle("10-layer networks on digits: per-layer gradient norms (log scale) and loss")
    path = out_dir / "vanishing_gradients.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    results["figures"] = [str(path)]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="directory for the PNG files (default: the current directory)")
    main(out_dir=parser.parse_args().out)
