"""pytest configuration shared by the test modules."""
import os

# Before anything imports scipy (scipy reads it once, at import): scikit-learn's
# estimator checks skip check_array_api_input unless SCIPY_ARRAY_API=1, and
# tests/test_estimators.py requires every check of check_estimator to run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")


import pytest  # noqa: E402  (after the environment above)


@pytest.fixture
def two_cpus():
    """Two CPUs for the engine, on a machine of one too (its default threads follow the usable CPUs)."""
    from fastmlp import _engine
    from fastmlp.network import _usable_cpus

    _engine.set_usable_cpus(2)
    yield
    _engine.set_usable_cpus(_usable_cpus())
