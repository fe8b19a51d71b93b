"""Shared test helpers (imported by the test modules; pytest puts tests/ on sys.path)."""
import os
from pathlib import Path

import numpy as np
import pytest


def repository(*parts):
    """A path in the fastmlp source tree, for the tests that read its files (README.md,
    examples/, bench/): in the tree that holds this tests/ directory, else in $FASTMLP_REPO
    (tools/check_wheel.sh runs a copy of tests/ against the installed wheel). Where neither
    has it, the test (or the module, at import) is skipped, saying why."""
    for root in (Path(__file__).resolve().parents[1], os.environ.get("FASTMLP_REPO")):
        if root and Path(root, *parts).exists():
            return Path(root, *parts)
    pytest.skip(f"{Path(*parts)} not found: these tests run outside the source tree; set FASTMLP_REPO "
                "to a fastmlp checkout to run them", allow_module_level=True)


class QuietCallback:
    """A scikit-learn callback (sklearn.callback's protocol) that does nothing and never stops a fit: a base for
    tests that need one (set on an ensemble, it makes the members fit one after another)."""

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, **kwargs):
        pass

    def on_fit_task_end(self, estimator, context, **kwargs):
        return False


# A parameter away from the default for the losses that have one (Network's
# loss_param), so that a path that drops it fails the comparison with the reference.
LOSS_PARAMS = {"huber": 0.8, "quantile": 0.3}


def make_targets(output_activation, shape, rng, loss=None):
    """Targets that fit an output activation's loss, float64.

    softmax: one-hot rows; logistic: probabilities with some exact 0/1 labels;
    exp: non-negative counts, zeros included (poisson), or positive skewed
    values for loss="gamma"; identity: real values.
    """
    n_samples, n_outputs = shape
    if loss == "gamma":
        return rng.gamma(2.0, 0.75, shape)
    if output_activation == "softmax":
        return np.eye(n_outputs)[rng.integers(0, n_outputs, n_samples)]
    if output_activation == "logistic":
        Y = rng.uniform(0, 1, shape)
        Y[0] = np.round(Y[0])
        return Y
    if output_activation == "exp":
        return rng.poisson(1.5, shape).astype(np.float64)
    return rng.standard_normal(shape) * 2
