"""Digits: a one-hidden-layer classifier on scikit-learn's 8x8 handwritten digits.
===============================================================================

1797 images of 8 x 8 pixels (64 inputs, grey levels 0..16), ten classes. A
``fastmlp.MLPClassifier`` with one hidden layer of 64 ReLU units and a softmax
output learns them in a second with Adam (learning rate 0.003) and early
stopping: 10% of the training set is held out, and training stops once the
accuracy on it has not improved for 20 epochs (the best weights are kept).

On the test quarter the example prints the accuracy (about 0.97) and draws
``digits.png``: the loss curve with the validation accuracy
(``fastmlp.plot.plot_loss_curve``) and the confusion matrix, row = true digit,
column = predicted digit, so everything off the diagonal is a mistake. The
mistakes themselves are in ``digits_misclassified.png``: look at them, many
are digits a person would hesitate over too.

Run it: ``python digits.py`` (writes ``digits.png`` and ``digits_misclassified.png`` in the current
directory; ``--out DIR`` writes them in DIR instead).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from fastmlp import MLPClassifier  # noqa: E402
from fastmlp.plot import plot_loss_curve  # noqa: E402

SEED = 0
N_SHOWN = 12  # misclassified samples drawn


def main(out_dir="."):
    """Train on digits, draw digits.png and digits_misclassified.png in out_dir, return the accuracy."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=SEED)
    clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.003, early_stopping=True,
                        n_iter_no_change=20, max_iter=300, random_state=SEED)
    clf.fit(X_train, y_train)
    y_pred = clf.predict(X_test)
    accuracy = float(np.mean(y_pred == y_test))
    cm = confusion_matrix(y_test, y_pred, labels=clf.classes_)
    wrong = np.flatnonzero(y_pred != y_test)
    print(f"test accuracy {accuracy:.3f} ({len(wrong)} of {len(y_test)} wrong) after {clf.n_iter_} epochs")

    fig, (ax_loss, ax_cm) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    plot_loss_curve(clf, ax=ax_loss)
    ax_cm.imshow(cm, cmap="Blues")
    for (i, j), count in np.ndenumerate(cm):
        if count:
            ax_cm.text(j, i, str(count), ha="center", va="center",
                       color="white" if count > cm.max() / 2 else "black", fontsize=9)
    ax_cm.set_xticks(range(10))
    ax_cm.set_yticks(range(10))
    ax_cm.set_xlabel("predicted digit")
    ax_cm.set_ylabel("true digit")
    ax_cm.set_title(f"confusion matrix on {len(y_test)} test images, accuracy {accuracy:.3f}")
    path = out_dir / "digits.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    shown = wrong[:N_SHOWN]
    fig, axes = plt.subplots(2, N_SHOWN // 2, figsize=(1.6 * N_SHOWN // 2, 4), constrained_layout=True)
    for ax in axes.ravel():
        ax.axis("off")
    proba = clf.predict_proba(X_test[shown]) if len(shown) else np.empty((0, 10))
    for ax, k, p in zip(axes.ravel(), shown, proba):
        ax.imshow(X_test[k].reshape(8, 8), cmap="gray_r")
        ax.set_title(f"true {y_test[k]}, said {y_pred[k]}\n(p = {p.max():.2f})", fontsize=8)
    fig.suptitle(f"{len(shown)} of the {len(wrong)} misclassified test digits")
    path_wrong = out_dir / "digits_misclassified.png"
    fig.savefig(path_wrong, dpi=100)
    plt.close(fig)
    return {"accuracy": accuracy, "n_wrong": int(len(wrong)), "n_test": int(len(y_test)),
            "n_iter": int(clf.n_iter_), "best_validation_score": float(clf.best_validation_score_),
            "confusion_matrix": cm, "figures": [str(path), str(path_wrong)]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="directory for the PNG files (default: the current directory)")
    main(out_dir=parser.parse_args().out)
