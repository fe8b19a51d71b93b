"""Checks at the Python boundary: everything compiled code trusts is made true here."""
import copy
import math
import numbers

import numpy as np

# Every size handed to BLAS is a C int.
BLAS_INT_MAX = 2**31 - 1

_ENGINE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The compiled one-pass finiteness test, set by network.py when it loads the
# engine; this module never imports the engine, so the NumPy reference
# validates its input with the extension absent.
_compiled_all_finite = None


def use_compiled_all_finite(all_finite):
    """Let check_finite use the engine's vectorised test (all_finite(flat array) -> bool)."""
    global _compiled_all_finite
    _compiled_all_finite = all_finite


def check_int(value, name, minimum=1, maximum=None):
    """A Python or NumPy integer (not a bool) >= minimum, returned as int."""
    if type(value) is not int and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}.")
    return value


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real number in [low, high] (ends open where asked), returned as float."""
    # (the exact types first: isinstance against the numbers ABCs costs a microsecond a call, and the
    # optimizer's settings are checked at every fit)
    if type(value) is not float and type(value) is not int and (
            isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).")
    try:
        value = float(value)
    except OverflowError:  # (an int past the largest float)
        raise ValueError(f"{name} must be a finite number, got one past the largest float "
                         f"({type(value).__name__}).") from None
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}.")
    return value


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def as_csr(X, name, dtype):
    """A sparse X as a canonical CSR matrix of `dtype` with intp indices, checked.

    The structure is checked in full (indices in range, indptr monotone) since
    compiled code reads through it; the values must be finite.
    """
    if X.dtype.kind not in "biuf":  # (astype would drop a complex matrix's imaginary part with a warning)
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}.")
    try:
        X = X.tocsr().astype(dtype, copy=False)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name}: cannot convert the sparse matrix to {np.dtype(dtype)}: {exc}") from None
    # a matrix of our own (sharing the caller's arrays until they are replaced below): the caller's CSR of the
    # right dtype is never changed, its int32 indices never swapped for ours
    X = copy.copy(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}.")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); at least one sample is required.")
    if X.shape[0] > BLAS_INT_MAX or X.shape[1] > BLAS_INT_MAX:
        raise ValueError(f"{name} has shape {X.shape}; at most {BLAS_INT_MAX} rows and columns are supported.")
    X = X.copy() if not X.data.flags.writeable else X
    try:
        X.check_format(full_check=True)
    except ValueError as exc:
        raise ValueError(f"{name} is not a valid CSR matrix: {exc}") from None
    if not X.has_canonical_format:
        # duplicate entries summed and indices sorted, as toarray() sees them (read entry by entry, duplicates of
        # 1e16, 1 and -1e16 gave another row than toarray()'s, and two of 1e308 passed as finite); on a copy:
        # sum_duplicates works in place
        X = X.copy()
        X.sum_duplicates()
    X.indptr = aligned(np.ascontiguousarray(X.indptr, dtype=np.intp))
    X.indices = aligned(np.ascontiguousarray(X.indices, dtype=np.intp))
    X.data = aligned(np.ascontiguousarray(X.data))
    check_finite(X.data, name)
    return X


def as_float_array(X, name, dtype, ndim=2):
    """X as a C-contiguous array of `dtype`, checked for kind, ndim, emptiness and finiteness.

    Accepts anything NumPy turns into a real numeric array (lists, integer,
    float16, Fortran-ordered, non-contiguous, read-only, big-endian arrays,
    pandas frames); numeric object arrays are converted. Strings, complex
    numbers, ragged lists and sparse matrices raise TypeError.
    """
    if is_sparse(X):
        raise TypeError(f"{name} is a sparse matrix; a dense array is expected here (use .toarray()).")
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} cannot be converted to a numeric array: {exc}") from None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except OverflowError:  # (a Python int past float64's range)
            raise ValueError(f"{name} holds a number too large for float64.") from None
        except (ValueError, TypeError):
            raise TypeError(f"{name} holds non-numeric objects; expected real numbers.") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if arr.ndim != ndim:
        hint = " (use X.reshape(1, -1) for a single sample)" if ndim == 2 and arr.ndim == 1 else ""
        raise ValueError(f"{name} must be {ndim}-D, got a {arr.ndim}-D array of shape {arr.shape}{hint}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one sample is required.")
    if arr.shape[0] > BLAS_INT_MAX:
        raise ValueError(f"{name} has {arr.shape[0]} rows; at most {BLAS_INT_MAX} are supported.")
    with np.errstate(over="ignore"):  # (a finite value past the dtype's range: named below, not warned)
        cast = aligned(np.ascontiguousarray(arr, dtype=dtype))
    if not all_finite(cast):
        if arr.dtype != cast.dtype and all_finite(arr):
            raise ValueError(f"{name} has values up to {float(np.max(np.abs(arr))):.4g} in magnitude, which "
                             f"overflow {np.dtype(dtype).name} (largest {float(np.finfo(dtype).max):.4g}).")
        check_finite(cast, name)  # (raises, naming NaN or infinity)
    return cast


def check_writable(arrays, what):
    """A ValueError when any of arrays cannot be written in place: a model memory-mapped by joblib.load(...,
    mmap_mode="r") predicts, but training writes its weights and state where they are."""
    if not all(a.flags.writeable for a in arrays if isinstance(a, np.ndarray)):
        raise ValueError(f"{what}'s weights or optimizer state are read-only (memory-mapped, as joblib.load(..., "
                         "mmap_mode='r') gives them): it predicts, but to train it load it without mmap_mode, or "
                         "copy it (copy.deepcopy).")


def check_sample_weight(sample_weight, n_samples, dtype, name="sample_weight"):
    """None, or a (n_samples,) array of `dtype` of finite non-negative weights with a positive sum (what the
    engine can scale them by is check_weight_sum's, once the rows of a mean are known)."""
    if sample_weight is None:
        return None
    sw = as_float_array(sample_weight, name, dtype, ndim=1)
    if sw.shape[0] != n_samples:
        raise ValueError(f"{name} has {sw.shape[0]} entries, expected {n_samples} (one per sample).")
    if sw.min() < 0:
        raise ValueError(f"{name} must be non-negative.")
    if not np.sum(sw, dtype=np.float64) > 0:
        raise ValueError(f"{name} must not be all zero: the weights must have a positive sum.")
    return sw


def check_weight_sum(sw, dtype, rows, name="sample_weight"):
    """Training weights (or None) whose means a model of dtype can scale: a mean over `rows` rows (a batch, or
    every row) takes 1 / (their weights' sum) in dtype, which past 1 / (the smallest normal number) is
    subnormal, and training flushes it to zero. The largest such sum is that of the `rows` largest weights."""
    if sw is None:
        return
    rows = min(int(rows), sw.shape[0])
    top = sw if rows >= sw.shape[0] else np.partition(sw, sw.shape[0] - rows)[sw.shape[0] - rows:]
    most, limit = float(np.sum(top, dtype=np.float64)), 1 / float(np.finfo(dtype).tiny)
    if not most < limit:
        what = "sums to" if rows >= sw.shape[0] else f"sums, over its {rows} largest (a batch's rows), to"
        raise ValueError(f"{name} {what} {most:.4g}; a {np.dtype(dtype).name} model needs a batch's weights to sum "
                         f"below {limit:.4g} (it trains on weighted means, scaled by 1 / the sum): divide the weights "
                         "by a common factor, which changes nothing else.")


def aligned(arr):
    """arr, or an aligned copy where its data is not aligned to its itemsize (compiled code loads whole elements)."""
    return arr if arr.flags.aligned else arr.copy()


CACHE_LINE = 64


def line_aligned_empty(n, dtype, fill=None):
    """np.empty(n, dtype) starting on a cache line (filled with fill, when given).

    For the arrays the engine reads and writes every batch (the parameters, the
    optimizer's state, the gradients, the workspaces): a vector of 32 bytes
    that straddles two lines costs two loads, and an array from NumPy starts
    16 bytes into a line (the updates of small networks were 3-9% slower), and
    two threads' parts of rows that start on lines share none.
    """
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n + CACHE_LINE // itemsize, dtype=dtype)
    skip = (-raw.ctypes.data % CACHE_LINE) // itemsize
    out = raw[skip:skip + n]
    if fill is not None:
        out[...] = fill
    return out


def line_aligned(arr):
    """A 1-D array arr, or a copy starting on a cache line where it does not (see line_aligned_empty). A
    read-only arr (memory-mapped by joblib.load(..., mmap_mode="r"): shared, and never trained) is kept."""
    if (arr.ctypes.data % CACHE_LINE == 0 and arr.flags.c_contiguous) or not arr.flags.writeable:
        return arr
    return line_aligned_empty(arr.shape[0], arr.dtype, fill=arr)


def all_finite(arr):
    """Whether no element of arr is NaN or infinite: one compiled, vectorized pass for the engine's dtypes
    (no temporary, no cast); NumPy's isfinite for anything else."""
    if (_compiled_all_finite is not None and arr.dtype in _ENGINE_DTYPES and arr.flags.c_contiguous
            and arr.flags.aligned):
        return bool(_compiled_all_finite(arr.reshape(-1)))
    return bool(np.isfinite(arr).all())


def check_finite(arr, name):
    if not all_finite(arr):
        raise ValueError(f"{name} contains NaN or infinity (in {arr.dtype}).")
