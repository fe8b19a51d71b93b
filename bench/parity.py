"""Accuracy parity with scikit-learn's MLP on its bundled data sets.

Same data, same hyperparameters, fastmlp and scikit-learn side by side, mean
over three train/test splits and seeds: test accuracy (R^2 for diabetes, with
standardized y) and the fit time ratio. Prints a Markdown table and writes it
to bench/PARITY.md.

    python bench/parity.py
"""
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets, neural_network
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastmlp

DATA_SETS = ["iris", "wine", "breast_cancer", "digits", "diabetes"]
SOLVERS = ["sgd", "adam", "lbfgs"]
SEEDS = [0, 1, 2]


def split(name, seed):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if name == "diabetes":
        mean, std = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
    return X_train, X_test, y_train, y_test


def compare(name, solver, max_iter=300):
    """Mean scores and total fit seconds of (fastmlp, scikit-learn) over SEEDS."""
    regression = name == "diabetes"
    scores, seconds = {"fastmlp": [], "sklearn": []}, {"fastmlp": 0.0, "sklearn": 0.0}
    for seed in SEEDS:
        X_train, X_test, y_train, y_test = split(name, seed)
        params = dict(hidden_layer_sizes=(64,), solver=solver, max_iter=max_iter, random_state=seed,
                      learning_rate_init=0.01 if solver == "sgd" else 0.001)
        models = {
            "fastmlp": (fastmlp.MLPRegressor if regression else fastmlp.MLPClassifier)(**params),
            "sklearn": (neural_network.MLPRegressor if regression else neural_network.MLPClassifier)(**params),
        }
        for key, model in models.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                tic = time.perf_counter()
                model.fit(X_train, y_train)
                seconds[key] += time.perf_counter() - tic
            scores[key].append(model.score(X_test, y_test))
    return {k: float(np.mean(v)) for k, v in scores.items()}, seconds


def main():
    lines = ["| data set | solver | fastmlp | scikit-learn | difference | fit time, fastmlp / scikit-learn |",
             "|---|---|---|---|---|---|"]
    for name in DATA_SETS:
        for solver in SOLVERS:
            score, seconds = compare(name, solver)
            lines.append(f"| {name} | {solver} | {score['fastmlp']:.4f} | {score['sklearn']:.4f} | "
                         f"{score['fastmlp'] - score['sklearn']:+.4f} | {seconds['fastmlp'] / seconds['sklearn']:.2f} |")
            print(lines[-1], flush=True)
    text = ("# Accuracy parity with scikit-learn\n\n`python bench/parity.py`: hidden_layer_sizes=(64,), "
            "max_iter=300, StandardScaler, mean over 3 splits and seeds; test accuracy, R^2 for diabetes "
            "(standardized y).\n\n" + "\n".join(lines) + "\n")
    path = Path(__file__).resolve().parent / "PARITY.md"
    old = path.read_text() if path.exists() else ""
    rest = old[old.find("\n## "):] if "\n## " in old else ""  # the sections other scripts write (objectives.py)
    path.write_text(text + rest)


if __name__ == "__main__":
    main()
