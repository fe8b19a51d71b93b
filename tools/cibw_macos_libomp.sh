#!/usr/bin/env bash
# LLVM's OpenMP runtime for the macOS wheels, into PREFIX (include/, lib/):
# conda-forge's llvm-openmp, built for old macOS releases (scikit-learn's wheels
# take it from there too). Run by cibuildwheel's before-all on the runner of the
# wheel's architecture.
set -euo pipefail
prefix="$1"
case "$(uname -m)" in
    arm64) platform=osx-arm64 ;;
    x86_64) platform=osx-64 ;;
    *) echo "cibw_macos_libomp.sh: no libomp for $(uname -m)" >&2; exit 1 ;;
esac
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://micro.mamba.pm/api/micromamba/$platform/latest" | tar -xj -C "$tmp" bin/micromamba
"$tmp/bin/micromamba" create --yes --root-prefix "$tmp/root" --prefix "$prefix" \
    --platform "$platform" --channel conda-forge "llvm-openmp>=16"
ls "$prefix/include/omp.h" "$prefix/lib/libomp.dylib"
