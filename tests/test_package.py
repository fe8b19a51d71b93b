"""The package itself: its public namespace and ``python -m fastmlp``."""
import os
import subprocess
import sys
import types
from pathlib import Path

import fastmlp

PUBLIC_API = {"MLPClassifier", "MLPRegressor", "Network", "NetworkEnsemble", "export_c", "load", "reference", "__version__"}


def test_namespace_holds_only_the_api_and_fastmlp_submodules():
    assert set(fastmlp.__all__) == PUBLIC_API and len(fastmlp.__all__) == len(PUBLIC_API)
    namespace = {}
    exec("from fastmlp import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC_API
    for name in dir(fastmlp):
        if name.startswith("_") or name in PUBLIC_API:
            continue
        # anything else is one of fastmlp's own modules (imported by the package), never a stray
        # import such as importlib, numpy or sys
        value = getattr(fastmlp, name)
        assert isinstance(value, types.ModuleType) and value.__name__ == f"fastmlp.{name}", name
    for name in PUBLIC_API - {"__version__", "reference"}:  # every public name is fastmlp's own
        assert getattr(fastmlp, name).__module__.startswith("fastmlp.")
    assert fastmlp.reference.__name__ == "fastmlp.reference"


DEMO_STARTS = f"fastmlp {fastmlp.__version__}: digits"


def _run(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    # the fastmlp this test imported (installed, or a source tree built in place)
    here = str(Path(fastmlp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "fastmlp", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_help_prints_usage_and_does_not_train():
    for flag in ("--help", "-h"):
        result = _run(flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: python -m fastmlp") and "--epochs" in result.stdout
        assert "digits" in result.stdout and DEMO_STARTS not in result.stdout
    result = _run("--no-such-option")
    assert result.returncode == 2 and "usage: python -m fastmlp" in result.stderr
    assert DEMO_STARTS not in result.stdout


def test_plain_run_is_the_demo():
    result = _run()
    assert result.returncode == 0, result.stderr  # exit status 0: accuracy at least 0.9
    assert result.stdout.startswith(DEMO_STARTS)
    assert "test accuracy" in result.stdout and "30 epochs" in result.stdout
