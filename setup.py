"""Build the compiled engine: one Cython module plus the C kernels in csrc/."""
import os
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

KERNELS = ["csrc/activations.c", "csrc/losses.c", "csrc/optimizers.c", "csrc/dropout.c", "csrc/sparse.c", "csrc/rng.c"]

extensions = [
    Extension(
        "fastmlp._engine",
        sources=["src/fastmlp/_engine.pyx", *KERNELS],
        include_dirs=["csrc", np.get_include()],
        depends=glob("csrc/*.h") + glob("csrc/*.template.c") + glob("src/fastmlp/*.pxd"),
        # -fno-math-errno: libm calls need not set errno, so sqrt and friends vectorize;
        # -fopenmp-simd: honour "omp simd" loop pragmas (vectorized reductions), no OpenMP runtime
        extra_compile_args=["-O3", "-fno-math-errno", "-fopenmp-simd"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES))
