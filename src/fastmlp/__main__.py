"""python -m fastmlp: train on scikit-learn's bundled digits and report accuracy and time."""
import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastmlp


def main(epochs=30):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    Y_train = np.eye(10)[y_train]

    net = fastmlp.Network([64, 128, 64, 10], activation="relu", output_activation="softmax",
                          loss="log_loss", random_state=0)
    print(f"fastmlp {fastmlp.__version__}: digits, {len(X_train)} training and {len(X_test)} test images")
    print(net.summary())
    print()
    tic = time.perf_counter()
    net.fit(X_train, Y_train, epochs=epochs, batch_size=32, optimizer="adam", learning_rate=1e-3,
            alpha=1e-4, verbose=True)
    seconds = time.perf_counter() - tic
    accuracy = float(np.mean(net.predict(X_test).argmax(axis=1) == y_test))
    print()
    print(f"test accuracy {accuracy:.4f}  ({epochs} epochs in {seconds:.2f} s)")
    return accuracy


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastmlp",
        description="fastmlp's demo: a [64, 128, 64, 10] network trained on scikit-learn's bundled digits "
                    "(Adam, one progress line per epoch), then the test accuracy and the training time. "
                    "Exits with status 1 if the accuracy is below 0.9.")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


if __name__ == "__main__":
    sys.exit(0 if main(_parse_args().epochs) >= 0.9 else 1)
