"""pytest configuration shared by the test modules."""
import os

# Before anything imports scipy (scipy reads it once, at import): scikit-learn's
# estimator checks skip check_array_api_input unless SCIPY_ARRAY_API=1, and
# tests/test_estimators.py requires every check of check_estimator to run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
