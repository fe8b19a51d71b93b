#!/usr/bin/env bash
# The test suite as other machines run it, on this one: a test must pass on any CPU and with any
# thread count, and CI runs on one machine only. Each run changes what decides the last bits of the
# arithmetic there:
#   OPENBLAS_CORETYPE   the BLAS kernels of another CPU family (both NumPy's and SciPy's OpenBLAS)
#   FASTMLP_KERNELS     baseline: the kernels' SSE2 clone, as a CPU without AVX2 and FMA runs them
#   OMP_NUM_THREADS     more engine threads than this machine has cores
# Runs from the source tree with the extension built in place (python setup.py build_ext --inplace),
# or against the installed package when there is none. About 2 minutes a run on 2 cores; exits 1 if
# any run fails. Last run (2026-11-29): every setting below passed.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if compgen -G "src/fastmlp/_engine*.so" > /dev/null; then
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
runs=(
    "OPENBLAS_CORETYPE=Prescott FASTMLP_KERNELS=baseline"
    "OPENBLAS_CORETYPE=Sandybridge"
    "OPENBLAS_CORETYPE=Haswell FASTMLP_KERNELS=baseline"
    "OPENBLAS_CORETYPE=Zen"
    "OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=3"
)
failed=()
for run in "${runs[@]}"; do
    echo "== $run"
    out=$(env $run "$PYTHON" -m pytest -q -p no:cacheprovider tests "$@" 2>&1)
    status=$?
    grep -E "^(FAILED|ERROR|[0-9]+ (passed|failed))" <<< "$out" | tail -n 5
    if (( status != 0 )); then
        failed+=("$run")
    fi
done
if (( ${#failed[@]} )); then
    printf 'failed: %s\n' "${failed[@]}"
    exit 1
fi
echo "every run passed"
