"""The engine is built with OpenMP where the compiler has it, and without it
when asked (FASTMLP_OPENMP=0 at build time); either way it runs.

FASTMLP_EXPECT_OPENMP=0 or 1 says which build the run must be testing (.ci/run
sets 0 for its second pass over the whole suite, on a build without OpenMP).
Unset, a build on Linux must have OpenMP when the C compiler takes -fopenmp
(as setup.py decides), unless FASTMLP_OPENMP=0 is set here too.
"""
import os
import shlex
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastmlp
from fastmlp import _engine


def _compiler_has_openmp(tmp_path):
    """Whether the C compiler Python builds extensions with takes -fopenmp (setup.py's check)."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    src = tmp_path / "omp.c"
    src.write_text("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
    try:
        done = subprocess.run([*cc, "-fopenmp", str(src), "-o", str(tmp_path / "omp")], capture_output=True)
    except OSError:
        return None  # no compiler here: nothing to compare with
    return done.returncode == 0


def test_openmp_is_as_built(tmp_path):
    expect = os.environ.get("FASTMLP_EXPECT_OPENMP")
    if expect is None:
        if not sys.platform.startswith("linux"):
            pytest.skip("OpenMP is required of Linux builds only")
        if os.environ.get("FASTMLP_OPENMP") == "0":
            pytest.skip("FASTMLP_OPENMP=0: a build without OpenMP is expected")
        has = _compiler_has_openmp(tmp_path)
        if not has:
            pytest.skip("the C compiler has no OpenMP (or there is none)")
        expect = "1"
    assert expect in ("0", "1"), f"FASTMLP_EXPECT_OPENMP={expect!r}: 0 or 1"
    assert _engine.OPENMP == (expect == "1")


def test_thread_count_without_openmp_is_one():
    threads = _engine.effective_n_threads(3)
    assert threads == (3 if _engine.OPENMP else 1)
    assert 1 <= _engine.effective_n_threads() <= (os.cpu_count() or 1)
    if not _engine.OPENMP:
        assert _engine.effective_n_threads() == 1


def test_fit_and_forward_with_threads_asked_for():
    """n_threads > 1 runs on any build (serially without OpenMP), with the one-thread bits."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 64))
    Y = rng.normal(size=(300, 3))
    nets = []
    for n_threads in (1, 3):
        net = fastmlp.Network([64, 128, 3], random_state=0)
        net.fit(X, Y, epochs=2, batch_size=64, n_threads=n_threads)
        nets.append(net)
    for a, b in zip(nets[0].coefs_, nets[1].coefs_):
        assert_array_equal(a, b)
    assert_array_equal(nets[0].forward(np.tile(X, (10, 1)), n_threads=1),
                       nets[1].forward(np.tile(X, (10, 1)), n_threads=3))
