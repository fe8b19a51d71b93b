"""Deep ensembles: eight networks that agree on the data and disagree in a gap.
============================================================================

A noisy sine, sampled on two stretches of the line with a gap between them
(no training input in (-1.5, 1.5)). An ``MLPEnsembleRegressor`` fits eight
networks of one architecture that differ only in their initial weights (each
member's seed is drawn from ``random_state``) and predicts their mean; with
``return_std=True`` it also gives their standard deviation. Where there are
data every member has to pass through them, so they agree and the spread is
small; in the gap and beyond the data nothing ties them down, each member
bends its own way, and the spread grows. That spread is the ensemble's
measure of its own uncertainty: large exactly where the model has not seen
anything (GaussianProcessRegressor's ``return_std`` has the same meaning).

The figure (``ensemble_uncertainty.png``) shows the data, the true curve, each
member's prediction (thin), the ensemble's mean and a band of two standard
deviations around it.

Run it: ``python ensemble_uncertainty.py`` (writes ``ensemble_uncertainty.png``
in the current directory; ``--out DIR`` writes it in DIR instead).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fastmlp import MLPEnsembleRegressor  # noqa: E402

SEED = 0
GAP = 1.5  # no training input in (-GAP, GAP)


def main(out_dir="."):
    """Fit the ensemble, draw ensemble_uncertainty.png in out_dir, return the mean spreads."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    x = np.concatenate([rng.uniform(-4, -GAP, 60), rng.uniform(GAP, 4, 60)])
    y = np.sin(x) + 0.1 * rng.standard_normal(x.size)
    ens = MLPEnsembleRegressor(hidden_layer_sizes=(32, 32), activation="tanh", max_iter=500, learning_rate_init=0.01,
                               n_members=8, random_state=SEED).fit(x[:, None], y)

    grid = np.linspace(-5, 5, 400)
    mean, std = ens.predict(grid[:, None], return_std=True)
    _, std_data = ens.predict(x[:, None], return_std=True)
    in_gap = np.abs(grid) < GAP - 0.5
    results = {"std_on_data": float(std_data.mean()), "std_in_gap": float(std[in_gap].mean())}
    print(f"mean std on the training inputs {results['std_on_data']:.3f}, in the gap {results['std_in_gap']:.3f}")

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    ax.axvspan(-GAP, GAP, color="0.93", label="no training data")
    for k, member in enumerate(ens.estimators_):
        ax.plot(grid, member.predict(grid[:, None]), color="C0", linewidth=0.6, alpha=0.5,
                label="members" if k == 0 else None)
    ax.fill_between(grid, mean - 2 * std, mean + 2 * std, color="C1", alpha=0.3, label="mean ± 2 std")
    ax.plot(grid, mean, color="C1", linewidth=2, label="ensemble mean")
    ax.plot(grid, np.sin(grid), color="k", linestyle="--", linewidth=1, label="sin(x)")
    ax.scatter(x, y, s=10, color="k", zorder=3, label="training data")
    ax.set_ylim(-3, 3)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("MLPEnsembleRegressor, 8 members: the spread grows without data")
    ax.legend(loc="lower left", fontsize="small")
    path = out_dir / "ensemble_uncertainty.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    results["figures"] = [str(path)]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="directory for the PNG files (default: the current directory)")
    main(out_dir=parser.parse_args().out)
