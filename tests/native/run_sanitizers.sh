#!/usr/bin/env bash
# Rebuild the extension with AddressSanitizer + UndefinedBehaviorSanitizer and
# Cython's bounds checks, then run the whole test suite (the fuzz test with
# many more examples) under them. Not part of the normal pytest run.
#
#   tests/native/run_sanitizers.sh            # from anywhere inside the repository
#
# The source tree (tracked files plus new, not ignored ones: `git ls-files`) is
# copied to a temporary directory and built there, so the checkout and its
# in-place build are never touched.
#
# Environment:
#   FASTMLP_FUZZ_EXAMPLES     fuzz examples (default 2000)
#   FASTMLP_SANITIZE_TIMEOUT  seconds for the test run (default 3600)
#   FASTMLP_SANITIZE_TESTS    what pytest runs, paths separated by spaces (default: tests, the whole
#                             suite; e.g. "tests/test_kernels.py tests/test_ensemble.py" after a kernel's change)
#   FASTMLP_SANITIZE_KEEP=1   keep the temporary directory (build, logs, reports)
#   PYTHON                    interpreter (default: python3)
#
# Exit status: 0 when clean; 1 on any sanitizer or bounds-check report (or a
# crash, or a broken setup); 2 when there is no report but tests failed.
# Sanitized processes exit with 86 (ASan) or 87 (UBSan) on a report, which
# also leaves a file in the reports directory.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && git rev-parse --show-toplevel)"
work="$(mktemp -d "${TMPDIR:-/tmp}/fastmlp-sanitize.XXXXXX")"
cleanup() {
    if [[ "${FASTMLP_SANITIZE_KEEP:-0}" == 1 ]]; then
        echo "kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
die() { printf 'run_sanitizers.sh: %s\n' "$*" >&2; exit 1; }

# --- copy the source tree -----------------------------------------------------
say "copying $root to $work/src-tree"
tree="$work/src-tree"
mkdir -p "$tree"
(
    cd "$root"
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -
) | tar -C "$tree" -xf -
[[ -f "$tree/setup.py" ]] || die "setup.py missing from the copy"
if compgen -G "$tree/src/fastmlp/*.so" >/dev/null || [[ -e "$tree/src/fastmlp/_engine.c" ]]; then
    die "build products were copied: the copy must be built from source"
fi

# --- build with the sanitizers ------------------------------------------------
libasan="$(gcc -print-file-name=libasan.so)"
[[ "$libasan" == /* && -e "$libasan" ]] || die "libasan.so not found (gcc -print-file-name=libasan.so gave '$libasan')"
# C++ extensions imported by the tests (matplotlib's ft2font) throw exceptions:
# ASan's __cxa_throw interceptor needs libstdc++ loaded at start-up, right after it.
preload="$libasan"
libstdcxx="$(gcc -print-file-name=libstdc++.so)"
[[ "$libstdcxx" == /* && -e "$libstdcxx" ]] && preload="$libasan $libstdcxx"
sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
say "building with: $sanitize, Cython boundscheck/wraparound/initializedcheck on"
(
    cd "$tree"
    FASTMLP_SANITIZE=1 CFLAGS="$sanitize -g" LDFLAGS="$sanitize" \
        "$PYTHON" setup.py build_ext --inplace >"$work/build.log" 2>&1
) || { tail -50 "$work/build.log"; die "build failed (log: $work/build.log)"; }
so="$(compgen -G "$tree/src/fastmlp/_engine*.so" | head -1 || true)"
[[ -n "$so" ]] || die "no extension was built"
# (grep reads all of ldd's output: with pipefail, grep -q's early exit could fail ldd with SIGPIPE)
ldd "$so" | grep libasan >/dev/null || die "$so is not linked against libasan"
ldd "$so" | grep libubsan >/dev/null || die "$so is not linked against libubsan"
grep -q "__Pyx_RaiseBufferIndexError" "$tree/src/fastmlp/_engine.c" ||
    die "the generated C has no buffer bounds checks: FASTMLP_SANITIZE=1 was not honoured by setup.py"

# --- the environment every sanitized process gets -----------------------------
reports="$work/reports"
mkdir -p "$reports"
run() {
    # PYTHONMALLOC=malloc: Python objects come from malloc too, so ASan guards them.
    env LD_PRELOAD="$preload" \
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:exitcode=86:log_path=$reports/asan" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:log_path=$reports/ubsan" \
        PYTHONMALLOC=malloc PYTHONPATH="$tree/src" PYTHONFAULTHANDLER=1 \
        "$@"
}

say "checking that the sanitized build is the one imported"
(cd "$tree" && run "$PYTHON" -c "
import sys, fastmlp._engine as e
assert e.__file__.startswith(sys.argv[1]), e.__file__
print('imported', e.__file__)" "$tree") || die "cannot import the sanitized build"

# --- canary: a deliberate out-of-bounds write must be reported -----------------
say "canary: a deliberate heap overflow through a kernel test hook must be caught"
set +e
(cd "$tree" && run "$PYTHON" -c "
import numpy as np
from fastmlp import _engine, _registry
Z = np.ones(4096); A = np.ones(4096); delta = np.ones(1024)
# the hook trusts Z's length: relu's derivative writes delta[1024:4096], past its end
_engine._act_backward_hook(_registry.ACTIVATIONS['relu'].code, Z, A, delta)
print('not caught')") >"$work/canary.log" 2>&1
canary=$?
set -e
if [[ $canary -eq 0 ]] || ! grep -qs "heap-buffer-overflow" "$reports"/asan.* ; then
    cat "$work/canary.log" "$reports"/asan.* 2>/dev/null || true
    die "the canary overflow was NOT reported: the sanitizer setup is broken"
fi
echo "caught (exit status $canary)"
rm -f "$reports"/*

# --- the test suite -----------------------------------------------------------
examples="${FASTMLP_FUZZ_EXAMPLES:-2000}"
read -r -a selected <<< "${FASTMLP_SANITIZE_TESTS:-tests}"
say "pytest ${selected[*]} under the sanitizers (fuzz: $examples examples)"
set +e
(
    cd "$tree"
    # --capture=sys: anything written to the file descriptors (sanitizers,
    # faulthandler) reaches the log even if the process dies.
    # Unraisable exceptions (a bounds check failing in a noexcept function is
    # printed, not raised) become errors.
    FASTMLP_FUZZ_EXAMPLES="$examples" run timeout "${FASTMLP_SANITIZE_TIMEOUT:-3600}" \
        "$PYTHON" -m pytest "${selected[@]}" -q -p no:cacheprovider --capture=sys --tb=short -rfE \
        -W error::pytest.PytestUnraisableExceptionWarning
) 2>&1 | tee "$work/pytest.log"
status=${PIPESTATUS[0]}
set -e

# --- verdict ------------------------------------------------------------------
say "verdict"
found=0
for f in "$reports"/*; do
    [[ -e "$f" ]] || continue
    echo "--- sanitizer report $f"
    cat "$f"
    found=1
done
# sanitizers; Cython's boundscheck and initializedcheck; a check failing in a
# noexcept function (printed as unraisable); crashes.
patterns='ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer'
patterns+='|Out of bounds on buffer access|Memoryview is not initialized|Exception ignored in'
patterns+='|Fatal Python error|Segmentation fault'
if grep -Eq "$patterns" "$work/pytest.log"; then
    echo "--- reports in the test log:"
    grep -En "$patterns" "$work/pytest.log" | head -50
    found=1
fi
if [[ $status -ge 124 || ($status -ne 0 && $status -ne 1) ]]; then
    echo "pytest ended abnormally (status $status): crash, abort or timeout"
    found=1
fi
if [[ $found -ne 0 ]]; then
    echo "RESULT: sanitizer or bounds-check report(s) found"
    exit 1
fi
if [[ $status -ne 0 ]]; then
    echo "RESULT: no sanitizer report, but tests failed (status $status): see the failures above"
    exit 2
fi
echo "RESULT: clean (no sanitizer report, all tests passed)"
