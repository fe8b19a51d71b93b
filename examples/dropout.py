"""Dropout: a big network on a small data set, trained with and without it.
========================================================================

Sixty noisy points of scikit-learn's two-moons problem and a network with two
hidden layers of 128 ReLU units: far more weights than points. Without
dropout, plain SGD drives the training loss towards 0 by memorising the noise,
and the validation loss (on 1000 fresh points) turns around and climbs: that
widening gap is overfitting. With dropout 0.5, each training step switches off
a random half of the hidden units (inverted dropout: the kept ones are scaled
by 1/0.5, so nothing changes at prediction time); no unit can rely on another,
the fitted function stays smoother: the training loss stays higher, the
validation loss climbs far more slowly, and the gap between the two (what the
network memorised rather than learned) is about half as wide.

The network is trained in chunks of 20 epochs (``fit`` continues from the
current weights), and after each chunk both losses are measured without
dropout. The figure (``dropout.png``) shows the training and validation
log-loss curves of both networks.

Run it: ``python dropout.py`` (writes ``dropout.png`` in the current
directory; ``--out DIR`` writes it in DIR instead).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402

from fastmlp import Network  # noqa: E402

CHUNKS, EPOCHS_PER_CHUNK = 100, 20
SEED = 0


def log_loss(net, X, y):
    """Mean binary log-loss of the network's predictions (no dropout) on (X, y)."""
    p = np.clip(net.predict(X).ravel(), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def train(X_train, y_train, X_val, y_val, dropout):
    """Train a 2-128-128-1 network; returns (epochs, training losses, validation losses)."""
    net = Network([2, 128, 128, 1], activation="relu", output_activation="logistic", loss="log_loss",
                  dropout=dropout, random_state=SEED)
    epochs, train_loss, val_loss = [], [], []
    for chunk in range(1, CHUNKS + 1):
        # plain SGD keeps no optimizer state, so 100 calls of 20 epochs train exactly as one of 2000
        net.fit(X_train, y_train, epochs=EPOCHS_PER_CHUNK, batch_size=20, optimizer="sgd", learning_rate=0.1)
        epochs.append(chunk * EPOCHS_PER_CHUNK)
        train_loss.append(log_loss(net, X_train, y_train))
        val_loss.append(log_loss(net, X_val, y_val))
    return epochs, train_loss, val_loss


def main(out_dir="."):
    """Train with and without dropout, draw dropout.png in out_dir, return the final losses."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    X_train, y_train = make_moons(60, noise=0.3, random_state=0)
    X_val, y_val = make_moons(1000, noise=0.3, random_state=1)
    y_train, y_val = y_train.astype(np.float64), y_val.astype(np.float64)

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    results = {}
    for rate, color in ((0.0, "C3"), (0.5, "C0")):
        epochs, train_loss, val_loss = train(X_train, y_train, X_val, y_val, rate)
        name = "no_dropout" if rate == 0 else "dropout"
        results[name] = {"train_loss": train_loss[-1], "val_loss": val_loss[-1], "best_val_loss": min(val_loss),
                         "gap": val_loss[-1] - train_loss[-1]}
        label = "no dropout" if rate == 0 else f"dropout {rate:g}"
        ax.plot(epochs, train_loss, color=color, linestyle="--", label=f"{label}: training")
        ax.plot(epochs, val_loss, color=color, label=f"{label}: validation")
        print(f"{label:>12}: final training loss {train_loss[-1]:.3f}, validation loss {val_loss[-1]:.3f} "
              f"(best {min(val_loss):.3f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("log-loss (measured without dropout)")
    ax.set_title("2-128-128-1 network, 60 noisy two-moons points")
    ax.legend()
    path = out_dir / "dropout.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    results["figures"] = [str(path)]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="directory for the PNG files (default: the current directory)")
    main(out_dir=parser.parse_args().out)
