#!/usr/bin/env bash
# Rebuild the extension with ThreadSanitizer and run the engine's OpenMP paths
# under it: tests/native/threads_workload.py (fits with 2 and 3 threads for
# sgd, momentum, Nesterov, adam, L2, clipping, sample weights, dropout, PReLU,
# sparse input, both dtypes; a 10,000-row forward pass; loss_and_gradients;
# the estimators under threadpool_limits) and tests/test_threads.py (Python
# threads running the engine at once). Not part of the normal pytest run;
# about 5-10 minutes on two cores.
#
#   tests/native/run_tsan.sh            # from anywhere inside the repository
#
# Needs gcc's libtsan (with gcc) and LLVM's OpenMP runtime with its Archer
# tool (Debian: apt-get install libomp-14-dev, or any libomp-N-dev).
#
# Why LLVM's runtime: GCC's libgomp is not instrumented and synchronises its
# threads with futexes and spinning, which ThreadSanitizer cannot see, so every
# parallel region reports false races (the main thread's writes before the
# region against the workers' reads in it). The extension is built by gcc as
# usual (-fopenmp, calls to libgomp's GOMP_* entry points); libomp.so.5, which
# implements the same entry points, is preloaded in front of libgomp, and its
# OMPT tool libarcher.so tells ThreadSanitizer about every fork, barrier and
# join. ignore_noninstrumented_modules=1 then ignores the accesses made inside
# code that is not instrumented (the interpreter, NumPy, OpenBLAS, libomp
# itself): no suppressions file is needed.
#
# What a clean run proves: no two threads touch the same element of the
# engine's buffers without an OpenMP barrier between them, in every access the
# compiled engine (Cython and csrc/) makes. Two canaries run first and must
# behave: a small OpenMP program whose regions are ordered only by OpenMP's
# barriers gives no report (no false positives from the runtime) and its racy
# variant is reported; and a copy of the engine with a race injected (each
# chunk of the optimizer update, which OpenMP's static schedule hands to the
# threads in fixed shares, made to overlap the next chunk's first parameter,
# so two threads update it) is reported. Accesses inside BLAS are not seen
# (OpenBLAS is not instrumented), but every range a block's GEMM writes (Z, dW
# with db, delta_{l-1}) is also touched by that block's instrumented kernels,
# and threads_workload.py compares every threaded result bit for bit with the
# one-thread one. Like any such tool it sees the races of the interleavings
# that ran: the column blocks are scheduled dynamically (which thread takes
# which block varies), so the workload runs hundreds of threaded batches, with
# 2 and 3 threads. (Column blocks made to overlap by 8 units in _part, tried
# by hand: reported within the workload's first fit, in 3 runs of 3.)
#
# The source tree (tracked files plus new, not ignored ones: `git ls-files`) is
# copied to a temporary directory and built there, so the checkout and its
# in-place build are never touched.
#
# Environment:
#   FASTMLP_TSAN_TESTS     pytest arguments (default tests/test_threads.py)
#   FASTMLP_TSAN_TIMEOUT   seconds for each run (default 3600)
#   FASTMLP_TSAN_KEEP=1    keep the temporary directory (builds, logs, reports)
#   FASTMLP_LIBOMP_DIR     directory with libomp.so.5 and libarcher.so
#                          (default: the newest /usr/lib/llvm-*/lib having both)
#   PYTHON                 interpreter (default: python3)
#
# Exit status: 0 when clean; 1 on any ThreadSanitizer report (or a crash, or a
# broken setup, or a canary that did not behave); 2 when there is no report
# but tests failed or a threaded result differed from the one-thread one.
# Sanitized processes exit with 66 on a report, which also leaves a file in the
# reports directory.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && git rev-parse --show-toplevel)"
work="$(mktemp -d "${TMPDIR:-/tmp}/fastmlp-tsan.XXXXXX")"
cleanup() {
    if [[ "${FASTMLP_TSAN_KEEP:-0}" == 1 ]]; then
        echo "kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
die() { printf 'run_tsan.sh: %s\n' "$*" >&2; exit 1; }
timeout_s="${FASTMLP_TSAN_TIMEOUT:-3600}"

# --- the runtimes -------------------------------------------------------------
libtsan="$(gcc -print-file-name=libtsan.so)"
[[ "$libtsan" == /* && -e "$libtsan" ]] || die "libtsan.so not found (gcc -print-file-name=libtsan.so gave '$libtsan')"
ompdir="${FASTMLP_LIBOMP_DIR:-}"
if [[ -z "$ompdir" ]]; then
    for d in $(ls -d /usr/lib/llvm-*/lib 2>/dev/null | sort -V -r); do
        if [[ -e "$d/libomp.so.5" && -e "$d/libarcher.so" ]]; then ompdir="$d"; break; fi
    done
fi
[[ -n "$ompdir" && -e "$ompdir/libomp.so.5" && -e "$ompdir/libarcher.so" ]] ||
    die "LLVM's libomp.so.5 and libarcher.so not found: apt-get install libomp-14-dev (or set FASTMLP_LIBOMP_DIR)"
echo "ThreadSanitizer: $libtsan; OpenMP runtime: $ompdir/libomp.so.5 with $ompdir/libarcher.so"

reports="$work/reports"
mkdir -p "$reports"
run() {
    # LD_PRELOAD: the interpreter is not instrumented, so the ThreadSanitizer
    # runtime must be loaded first; libomp before the libgomp the extension
    # links, so that its GOMP_* and omp_* calls reach libomp.
    # ARCHER_OPTIONS=verbose=1: Archer says that it is active (checked below).
    env LD_PRELOAD="$libtsan $ompdir/libomp.so.5" \
        OMP_TOOL_LIBRARIES="$ompdir/libarcher.so" ARCHER_OPTIONS="verbose=1" \
        TSAN_OPTIONS="ignore_noninstrumented_modules=1:exitcode=66:log_path=$reports/tsan:${TSAN_EXTRA:-}" \
        PYTHONFAULTHANDLER=1 "$@"
}

# --- canary 1: the runtime gives OpenMP's ordering, and a race is reported -----
say "canary: an OpenMP program ordered by barriers must be clean, its racy variant reported"
cat >"$work/canary.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
static double a[4096];
int main(int argc, char **argv) {
    int racy = argc > 1 && atoi(argv[1]);
    double total = 0;
    for (int rep = 0; rep < 20; rep++) {
        /* one region writes, the next reads the other thread's elements: ordered by the barrier */
        #pragma omp parallel for num_threads(2) schedule(static)
        for (int i = 0; i < 4096; i++) a[i] = i + rep;
        #pragma omp parallel for num_threads(2) schedule(static) reduction(+:total)
        for (int i = 0; i < 4096; i++) total += a[4095 - i];
        if (racy) {
            #pragma omp parallel for num_threads(2) schedule(static)
            for (int i = 0; i < 4096; i++) a[i % 8] += 1;  /* both threads write a[0..7] */
        }
    }
    printf("%g\n", total);
    return 0;
}
EOF
gcc -g -O1 -fsanitize=thread -fopenmp "$work/canary.c" -o "$work/canary" || die "cannot build the canary"
set +e
run "$work/canary" 0 >"$work/canary-clean.log" 2>&1
clean=$?
set -e
if [[ $clean -ne 0 ]] || compgen -G "$reports/tsan*" >/dev/null; then
    cat "$work/canary-clean.log" "$reports"/tsan* 2>/dev/null | head -60 || true
    die "the barrier-ordered canary was reported (status $clean): OpenMP's synchronisation is not seen"
fi
grep -q "Archer detected OpenMP application with TSan" "$work/canary-clean.log" ||
    die "Archer did not start: $(cat "$work/canary-clean.log")"
set +e
run "$work/canary" 1 >"$work/canary-racy.log" 2>&1
racy=$?
set -e
if [[ $racy -ne 66 ]] || ! grep -qs "data race" "$reports"/tsan*; then
    cat "$work/canary-racy.log" "$reports"/tsan* 2>/dev/null | head -60 || true
    die "the racy canary was NOT reported (status $racy): the sanitizer setup is broken"
fi
echo "clean variant: no report; racy variant: reported (exit status $racy)"
rm -f "$reports"/*

# --- copy the source tree, twice: the engine under test and the racy canary -----
copy_tree() {
    mkdir -p "$1"
    (
        cd "$root"
        git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done |
            tar --null -T - -cf -
    ) | tar -C "$1" -xf -
    [[ -f "$1/setup.py" ]] || die "setup.py missing from the copy"
    if compgen -G "$1/src/fastmlp/*.so" >/dev/null || [[ -e "$1/src/fastmlp/_engine.c" ]]; then
        die "build products were copied: the copy must be built from source"
    fi
}
say "copying $root to $work/src-tree and $work/racy-tree"
tree="$work/src-tree"
racy_tree="$work/racy-tree"
copy_tree "$tree"
copy_tree "$racy_tree"
# The injected race: each update chunk but the last one also updates the next
# chunk's first parameter (in _update_chunk).
update_call='_update(s, step_size, off, p.u_len\[c\], params'
grep -q "$update_call" "$racy_tree/src/fastmlp/_engine.pyx" ||
    die "the canary's injected race no longer applies: update update_call to _update_chunk in _engine.pyx"
sed -i "s|$update_call|_update(s, step_size, off, p.u_len[c] + (c + 1 < p.n_chunks), params|" \
    "$racy_tree/src/fastmlp/_engine.pyx"

# --- build with ThreadSanitizer ----------------------------------------------
# FM_NO_CLONES: no target_clones kernels; their ifunc resolvers would run
# instrumented code while the loader relocates the extension, before the
# sanitizer's symbols are bound (a crash at import). The baseline clone is the
# same source.
sanitize="-fsanitize=thread"
build() {
    (
        cd "$1"
        CFLAGS="$sanitize -g -DFM_NO_CLONES" LDFLAGS="$sanitize" \
            "$PYTHON" setup.py build_ext --inplace >"$1.build.log" 2>&1
    ) || { tail -50 "$1.build.log"; die "build failed (log: $1.build.log)"; }
    local so
    so="$(compgen -G "$1/src/fastmlp/_engine*.so" | head -1 || true)"
    [[ -n "$so" ]] || die "no extension was built in $1"
    # (grep reads all of ldd's output: with pipefail, grep -q's early exit could fail ldd with SIGPIPE)
    ldd "$so" | grep libtsan >/dev/null || die "$so is not linked against libtsan"
    ldd "$so" | grep libgomp >/dev/null || die "$so is not linked against an OpenMP runtime: built without OpenMP"
}
say "building the engine with a race injected (canary) and the engine under test, with: $sanitize"
build "$racy_tree"
build "$tree"

say "checking that the sanitized build is the one imported, with OpenMP"
(cd "$tree" && PYTHONPATH="$tree/src" run "$PYTHON" -c "
import sys, fastmlp._engine as e
assert e.__file__.startswith(sys.argv[1]), e.__file__
assert e.OPENMP, 'built without OpenMP'
print('imported', e.__file__)" "$tree") || die "cannot import the sanitized build"

# --- canary 2: the injected race in the engine must be reported ----------------
say "canary: the engine with overlapping update chunks must be reported"
set +e
(cd "$racy_tree" && TSAN_EXTRA="halt_on_error=1" PYTHONPATH="$racy_tree/src" run timeout "$timeout_s" \
    "$PYTHON" tests/native/threads_workload.py --canary) >"$work/canary-engine.log" 2>&1
racy=$?
set -e
if [[ $racy -ne 66 ]] || ! grep -qs "data race" "$reports"/tsan* || ! grep -qs "fastmlp_7_engine" "$reports"/tsan*; then
    cat "$work/canary-engine.log" "$reports"/tsan* 2>/dev/null | head -60 || true
    die "the race injected in the engine was NOT reported (status $racy): the sanitizer setup is broken"
fi
echo "caught (exit status $racy):"
grep -m1 -A3 "data race" "$reports"/tsan* | sed 's/^/    /'
rm -f "$reports"/*

# --- the threaded workload and tests ------------------------------------------
say "tests/native/threads_workload.py under ThreadSanitizer"
set +e
(cd "$tree" && PYTHONPATH="$tree/src" run timeout "$timeout_s" "$PYTHON" tests/native/threads_workload.py) 2>&1 |
    tee "$work/workload.log"
workload=${PIPESTATUS[0]}
set -e
grep -q "Archer detected OpenMP application with TSan" "$work/workload.log" ||
    die "Archer did not start in the workload: OpenMP's synchronisation was not seen"

# shellcheck disable=SC2086
say "pytest ${FASTMLP_TSAN_TESTS:-tests/test_threads.py} under ThreadSanitizer"
set +e
(
    cd "$tree"
    # --capture=sys: what the sanitizer writes to the file descriptors reaches the log.
    PYTHONPATH="$tree/src" run timeout "$timeout_s" "$PYTHON" -m pytest ${FASTMLP_TSAN_TESTS:-tests/test_threads.py} \
        -q -p no:cacheprovider --capture=sys --tb=short -rfE
) 2>&1 | tee "$work/pytest.log"
tests=${PIPESTATUS[0]}
set -e

# --- verdict ------------------------------------------------------------------
say "verdict"
found=0
for f in "$reports"/*; do
    [[ -e "$f" ]] || continue
    echo "--- ThreadSanitizer report $f"
    cat "$f"
    found=1
done
patterns='WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|Fatal Python error|Segmentation fault'
for log in "$work/workload.log" "$work/pytest.log"; do
    if grep -Eq "$patterns" "$log"; then
        echo "--- reports in $log:"
        grep -En "$patterns" "$log" | head -50
        found=1
    fi
done
if [[ $workload -ne 0 && $workload -ne 1 ]]; then
    echo "the workload ended abnormally (status $workload): report, crash, abort or timeout"
    found=1
fi
if [[ $tests -ge 124 || ($tests -ne 0 && $tests -ne 1) ]]; then
    echo "pytest ended abnormally (status $tests): report, crash, abort or timeout"
    found=1
fi
if [[ $found -ne 0 ]]; then
    echo "RESULT: ThreadSanitizer report(s) found"
    exit 1
fi
if [[ $workload -ne 0 || $tests -ne 0 ]]; then
    echo "RESULT: no ThreadSanitizer report, but the workload (status $workload) or tests (status $tests) failed"
    exit 2
fi
echo "RESULT: clean (no ThreadSanitizer report, threaded results identical, all tests passed)"
