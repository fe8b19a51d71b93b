"""The objectives of issue 15 beside scikit-learn's gradient boosting.

Same data, same loss: fastmlp's MLPRegressor(loss=...) and
HistGradientBoostingRegressor(loss=...) (no "huber" there), MLPClassifier and
HistGradientBoostingClassifier with class_weight="balanced". Held-out metric
of each loss, mean over three seeds, and the fit times. Not a target to beat:
the anchor users will compare with. Writes the table into bench/PARITY.md,
below parity.py's (replacing an earlier run's).

    python bench/objectives.py
"""
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import (balanced_accuracy_score, mean_gamma_deviance, mean_pinball_loss,
                             mean_poisson_deviance, median_absolute_error, recall_score)
from sklearn.model_selection import train_test_split

import fastmlp

SEEDS = [0, 1, 2]
N_SAMPLES = 4000
HEADING = "## Objectives beside HistGradientBoosting"
MLP = dict(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=300, alpha=1e-2)


def outliers(rng):
    """A smooth target with 5% of the training targets moved by 10-30 (the signal spans about +-2)."""
    X = rng.uniform(-2, 2, (N_SAMPLES, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=N_SAMPLES)
    return X, y, "outliers"


def heteroscedastic(rng):
    """Noise that grows with |x0|."""
    X = rng.uniform(-2, 2, (N_SAMPLES, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] + (0.2 + 0.5 * np.abs(X[:, 0])) * rng.normal(size=N_SAMPLES)
    return X, y, None


def skewed(rng):
    """Positive, right-skewed: Gamma(shape 1.5) around exp(a nonlinear function of x)."""
    X = rng.normal(size=(N_SAMPLES, 4))
    mean = np.exp(0.6 * X[:, 0] - 0.4 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3])
    return X, rng.gamma(1.5, mean / 1.5), None


def counts(rng):
    X = rng.normal(size=(N_SAMPLES, 4))
    return X, rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1] + 0.2 * X[:, 2] * X[:, 3])).astype(float), None


def coverage(y, pred):
    """The fraction of targets at or below the predicted quantile."""
    return float(np.mean(y <= pred))


# (data, loss, parameters, metric name, metric): the metric on clean held-out targets
CASES = [
    (outliers, "squared_error", {}, "median absolute error", median_absolute_error),
    (outliers, "absolute_error", {}, "median absolute error", median_absolute_error),
    (outliers, "huber", {"huber_delta": 1.0}, "median absolute error", median_absolute_error),
    (heteroscedastic, "quantile", {"quantile": 0.1}, "coverage (nominal 0.1)", coverage),
    (heteroscedastic, "quantile", {"quantile": 0.1}, "pinball loss",
     lambda y, p: mean_pinball_loss(y, p, alpha=0.1)),
    (heteroscedastic, "quantile", {"quantile": 0.9}, "coverage (nominal 0.9)", coverage),
    (heteroscedastic, "quantile", {"quantile": 0.9}, "pinball loss",
     lambda y, p: mean_pinball_loss(y, p, alpha=0.9)),
    (skewed, "squared_error", {}, "mean gamma deviance",
     lambda y, p: mean_gamma_deviance(y, np.maximum(p, 1e-3))),
    (skewed, "gamma", {}, "mean gamma deviance", mean_gamma_deviance),
    (counts, "poisson", {}, "mean Poisson deviance", mean_poisson_deviance),
]


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tic = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - tic


def regression(make, loss, params, metric):
    """Mean held-out metric and total fit seconds of (fastmlp, HGB) over SEEDS; HGB None without that loss."""
    scores, seconds = {"fastmlp": [], "hgb": []}, {"fastmlp": 0.0, "hgb": 0.0}
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        X, y, corrupt = make(rng)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=seed)
        if corrupt:
            y_train = y_train.copy()
            hit = rng.choice(len(y_train), len(y_train) // 20, replace=False)
            y_train[hit] += rng.choice([-1, 1], len(hit)) * rng.uniform(10, 30, len(hit))
        models = {"fastmlp": fastmlp.MLPRegressor(loss=loss, random_state=seed, **MLP, **params)}
        if loss != "huber":
            hgb_params = {"quantile": params["quantile"]} if loss == "quantile" else {}
            models["hgb"] = HistGradientBoostingRegressor(loss=loss, random_state=seed, **hgb_params)
        for key, model in models.items():
            seconds[key] += _fit(model, X_train, y_train)
            scores[key].append(metric(y_test, model.predict(X_test)))
    return {k: float(np.mean(v)) if v else None for k, v in scores.items()}, seconds


def classification():
    """Minority recall and balanced accuracy, (none, balanced) x (fastmlp, HGB), weights [0.95, 0.05]."""
    results = {}
    for class_weight in (None, "balanced"):
        scores, seconds = {"fastmlp": [], "hgb": []}, {"fastmlp": 0.0, "hgb": 0.0}
        for seed in SEEDS:
            X, y = make_classification(n_samples=N_SAMPLES, n_features=10, weights=[0.95, 0.05], random_state=seed)
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
            models = {"fastmlp": fastmlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=100,
                                                       class_weight=class_weight, random_state=seed),
                      "hgb": HistGradientBoostingClassifier(class_weight=class_weight, random_state=seed)}
            for key, model in models.items():
                seconds[key] += _fit(model, X_train, y_train)
                pred = model.predict(X_test)
                scores[key].append((recall_score(y_test, pred), balanced_accuracy_score(y_test, pred)))
        results[class_weight] = {k: np.mean(v, axis=0) for k, v in scores.items()}, seconds
    return results


def _number(value):
    return "n/a" if value is None else f"{value:.4f}"


def main():
    lines = ["| data | loss | metric (held out) | fastmlp | HistGradientBoosting | fit time, fastmlp / HGB |",
             "|---|---|---|---|---|---|"]
    for make, loss, params, name, metric in CASES:
        score, seconds = regression(make, loss, params, metric)
        ratio = f"{seconds['fastmlp'] / seconds['hgb']:.2f}" if score["hgb"] is not None else "n/a"
        label = loss + "".join(f", {k}={v}" for k, v in params.items())
        lines.append(f"| {make.__name__} | {label} | {name} | {_number(score['fastmlp'])} | "
                     f"{_number(score['hgb'])} | {ratio} |")
        print(lines[-1], flush=True)
    for class_weight, (score, seconds) in classification().items():
        for i, name in enumerate(("minority recall", "balanced accuracy")):
            lines.append(f"| imbalanced (0.95/0.05) | class_weight={class_weight!r} | {name} | "
                         f"{score['fastmlp'][i]:.4f} | {score['hgb'][i]:.4f} | "
                         f"{seconds['fastmlp'] / seconds['hgb']:.2f} |")
            print(lines[-1], flush=True)
    section = (f"{HEADING}\n\n`python bench/objectives.py`: {N_SAMPLES} samples, half held out, mean over "
               f"{len(SEEDS)} seeds. fastmlp: hidden_layer_sizes={MLP['hidden_layer_sizes']}, "
               f"solver={MLP['solver']!r}, max_iter={MLP['max_iter']}, alpha={MLP['alpha']} (the classifier: "
               "hidden_layer_sizes=(16,), adam, max_iter=100); HistGradientBoosting with its defaults. "
               "Outliers: 5% of the training targets moved by 10-30, the held-out ones clean. squared_error's "
               "predictions are floored at 1e-3 for the gamma deviance. HistGradientBoosting has no huber loss. "
               "Fit times from one run on a busy 2-core machine. Not a target: the anchor users will compare "
               "with.\n\n" + "\n".join(lines) + "\n")
    path = Path(__file__).resolve().parent / "PARITY.md"
    text = path.read_text() if path.exists() else ""
    head = text.split(HEADING)[0].rstrip("\n")
    path.write_text((head + "\n\n" if head else "") + section)


if __name__ == "__main__":
    main()
