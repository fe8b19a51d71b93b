"""Build the compiled engine: one Cython module plus the C kernels in csrc/."""
import os
import platform
import sys
import tempfile
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.errors import CompileError, LinkError
from setuptools._distutils.sysconfig import customize_compiler

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}
if os.environ.get("FASTMLP_SANITIZE") == "1":  # tests/native/run_sanitizers.sh: Cython's checks on
    COMPILER_DIRECTIVES.update(boundscheck=True, wraparound=True, initializedcheck=True)

CC = new_compiler()  # the compiler build_ext uses, with Python's flags and $CC, $CFLAGS...
customize_compiler(CC)
MSVC = CC.compiler_type == "msvc"


def openmp_flags():
    """(compile, link) flags for OpenMP where the C compiler takes them (FASTMLP_OPENMP=0: none);
    without them the engine runs serially. MSVC: /openmp (vcomp140.dll); Apple's clang: the
    preprocessor flag and libomp (its headers and library found through CPPFLAGS/LDFLAGS, as
    the wheel build sets them); the others: -fopenmp (libgomp, or LLVM's libomp)."""
    if os.environ.get("FASTMLP_OPENMP", "1") == "0":
        return [], []
    if MSVC:
        flags = ["/openmp"], []
    elif sys.platform == "darwin":
        flags = ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    else:
        flags = ["-fopenmp"], ["-fopenmp"]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objects = CC.compile([src], output_dir=tmp, extra_postargs=flags[0])
            # linked as the extension is (with $LDFLAGS, which the wheel build uses for libomp)
            CC.link_shared_object(objects, os.path.join(tmp, "omp.so"), extra_postargs=flags[1])
        except (CompileError, LinkError):
            print("fastmlp: the C compiler has no OpenMP; the engine is built to run on one thread", file=sys.stderr)
            return [], []
    return flags


OPENMP_COMPILE, OPENMP_LINK = openmp_flags()
# -fno-math-errno: libm calls need not set errno, so sqrt and friends vectorize;
# -fno-trapping-math: no floating-point operation traps (none of ours is meant to), so that loops with a
# comparison of floats in them (fm_exp's clamps) vectorize; it changes no result;
# -fopenmp-simd: honour "omp simd" loop pragmas (vectorized reductions), no OpenMP runtime.
# MSVC has none of them (it would warn about each): /O2.
OPTIMIZE = ["/O2"] if MSVC else ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"]
# csrc/fastmlp.h's clone switch (FASTMLP_KERNELS=baseline): the clones' resolvers
# ask the wrapper first. Harmless where there are no clones (musl, no resolvers).
CLONE_SWITCH = ["-Wl,--wrap=__cpu_indicator_init"] if sys.platform.startswith("linux") and platform.machine() == "x86_64" else []
KERNELS = ["csrc/activations.c", "csrc/losses.c", "csrc/optimizers.c", "csrc/dropout.c", "csrc/sparse.c", "csrc/rng.c",
           "csrc/members.c"]

extensions = [
    Extension(
        "fastmlp._engine",
        sources=["src/fastmlp/_engine.pyx", *KERNELS],
        include_dirs=["csrc", np.get_include()],
        depends=glob("csrc/*.h") + glob("csrc/*.template.c") + glob("src/fastmlp/*.pxd"),
        extra_compile_args=[*OPTIMIZE, *OPENMP_COMPILE],
        extra_link_args=[*OPENMP_LINK, *CLONE_SWITCH],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES))
