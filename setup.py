"""Build the compiled engine: one Cython module plus the C kernels in csrc/."""
import os
import subprocess
import sys
import sysconfig
import tempfile
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}
if os.environ.get("FASTMLP_SANITIZE") == "1":  # tests/native/run_sanitizers.sh: Cython's checks on
    COMPILER_DIRECTIVES.update(boundscheck=True, wraparound=True, initializedcheck=True)



def openmp_flags():
    """-fopenmp where the C compiler takes it (FASTMLP_OPENMP=0: none); without it the engine runs serially."""
    if os.environ.get("FASTMLP_OPENMP", "1") == "0":
        return []
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        ok = subprocess.run([*cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp")], capture_output=True).returncode == 0
    if not ok:
        print("fastmlp: the C compiler has no OpenMP; the engine is built to run on one thread", file=sys.stderr)
    return ["-fopenmp"] if ok else []


OPENMP = openmp_flags()
KERNELS = ["csrc/activations.c", "csrc/losses.c", "csrc/optimizers.c", "csrc/dropout.c", "csrc/sparse.c", "csrc/rng.c"]

extensions = [
    Extension(
        "fastmlp._engine",
        sources=["src/fastmlp/_engine.pyx", *KERNELS],
        include_dirs=["csrc", np.get_include()],
        depends=glob("csrc/*.h") + glob("csrc/*.template.c") + glob("src/fastmlp/*.pxd"),
        # -fno-math-errno: libm calls need not set errno, so sqrt and friends vectorize;
        # -fopenmp-simd: honour "omp simd" loop pragmas (vectorized reductions), no OpenMP runtime
        extra_compile_args=["-O3", "-fno-math-errno", "-fopenmp-simd", *OPENMP],
        extra_link_args=OPENMP,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES))
