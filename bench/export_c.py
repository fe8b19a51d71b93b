"""The exported C header against fastmlp's predict, ONNX Runtime and emlearn: one-row latency and footprint.

For each model (float32, the type emlearn's networks use) the same weights
run as fastmlp.export_c's header, as emlearn's generated code (emlearn.convert
takes the fastmlp estimator itself: it reads coefs_, intercepts_, activation
and out_activation_; its "loadable" method, as its "inline" one fails on float
networks in emlearn 0.23), through ``MLPClassifier.predict`` and through ONNX
Runtime (fastmlp.onnx.to_onnx). Each C contender is a small timing main
compiled with ``cc -std=c99 -O2`` that classifies 1000 rows in a loop (ns per
row, the best of 7 passes of 10 loops); the Python ones classify one row per
call (the best of 7 passes of 300 calls). The best pass, not the median: the
machine is shared, and the least disturbed pass is the one that compares. Footprints come from an object file holding
one function that classifies a row: flash is its text + data (code, weights,
constants: GNU size), RAM its bss + data (emlearn's buffers are static) plus
the stack of its functions (gcc -fstack-usage, summed: the deepest chain at
most).

    python bench/export_c.py          # prints the table and writes its section of bench/RESULTS.md
    python bench/export_c.py --print  # prints only

Needs a C compiler (cc), emlearn and onnxruntime (``pip install ".[bench]"``).
Runs in about ten seconds on one core.
"""
import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import timeit
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SECTION = "## Exported C: one-row latency and footprint"
MARK = "<!-- written by bench/export_c.py -->"
CC = os.environ.get("CC", "cc")
N_ROWS = 1000
PASSES = 7


def models():
    """(title, fitted float32 MLPClassifier, rows to classify): digits (the example's size) and W2 tabular."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    from fastmlp import MLPClassifier

    sys.path.insert(0, str(HERE))
    import contenders

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    made = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        digits = MLPClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=0, dtype="float32").fit(X, y)
        made.append(("digits 64-32-10, relu, softmax", digits, np.resize(X, (N_ROWS, X.shape[1]))))
        w2 = contenders.WORKLOADS["W2"]
        Xw, yw, _ = contenders.make_data(w2, np.float32, n_samples=5000)
        tabular = MLPClassifier(hidden_layer_sizes=w2.hidden, max_iter=10, random_state=0, dtype="float32")
        made.append(("W2 tabular 32-64-64-1, relu, logistic", tabular.fit(Xw, yw), Xw[:N_ROWS]))
    return made


# --------------------------------------------------------------------------
# The C contenders: (header, include line, a C expression classifying the row x)


def fastmlp_c(clf, folder):
    import fastmlp

    fastmlp.export_c(clf, folder / "fm.h", name="fm")
    return '#include "fm.h"', "fm_predict(x)"


def emlearn_c(clf, folder):
    import emlearn

    here = os.getcwd()
    os.chdir(folder)  # emlearn.convert compiles a Python-side classifier of its own into ./tmp
    try:
        emlearn.convert(clf, method="loadable").save(file=str(folder / "eml.h"), name="eml")
    finally:
        os.chdir(here)
    return '#include "eml.h"', "eml_predict(x, N_FEATURES)"


def _emlearn_include():
    import emlearn

    return ["-I", os.path.dirname(emlearn.__file__)]


TIMING_MAIN = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
%(include)s

#define N_FEATURES %(n_features)d
#define N_ROWS %(n_rows)d
static float rows[N_ROWS][N_FEATURES];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void)
{
    FILE *in = fopen("rows.bin", "rb");
    double best[%(passes)d];
    int r, p, q;
    volatile int sink = 0;
    if (!in || fread(rows, sizeof rows, 1, in) != 1) return 1;
    fclose(in);
    for (r = 0; r < N_ROWS; r++) {
        const float *x = rows[r];
        printf("%%d\n", (int)(%(call)s));
    }
    for (p = 0; p < %(passes)d; p++) {
        double t0 = now();
        for (q = 0; q < 10; q++) {
            for (r = 0; r < N_ROWS; r++) {
                const float *x = rows[r];
                sink += %(call)s;
            }
        }
        best[p] = (now() - t0) / (10.0 * N_ROWS);
    }
    for (p = 0; p < %(passes)d; p++) fprintf(stderr, "%%.6e\n", best[p]);
    return sink == 12345678;
}
"""

FOOTPRINT = r"""
#define N_FEATURES %(n_features)d
%(include)s
int classify(const float *x);
int classify(const float *x)
{
    return %(call)s;
}
"""


def run_c(name, make, clf, X, folder):
    """ns per row, the labels the C code gave, flash and RAM bytes of one contender."""
    folder = folder / name
    folder.mkdir()
    include, call = make(clf, folder)
    flags = ["-std=c99", "-O2", *(_emlearn_include() if name == "emlearn" else [])]
    values = dict(include=include, call=call, n_features=X.shape[1], n_rows=len(X), passes=PASSES)
    (folder / "main.c").write_text(TIMING_MAIN % values)
    np.ascontiguousarray(X, dtype=np.float32).tofile(folder / "rows.bin")
    subprocess.run([CC, *flags, "main.c", "-o", "main", "-lm"], cwd=folder, check=True)
    run = subprocess.run([str(folder / "main")], cwd=folder, capture_output=True, text=True, check=True)
    labels = np.array(run.stdout.split(), dtype=int)
    seconds = np.array(run.stderr.split(), dtype=float)
    (folder / "footprint.c").write_text(FOOTPRINT % values)
    subprocess.run([CC, *flags, "-fstack-usage", "-c", "footprint.c", "-o", "footprint.o"], cwd=folder, check=True)
    text, data, bss = map(int, subprocess.run(["size", "footprint.o"], cwd=folder, capture_output=True, text=True,
                                              check=True).stdout.splitlines()[1].split()[:3])
    stack = sum(int(line.split("\t")[1]) for line in (folder / "footprint.su").read_text().splitlines())
    return dict(ns=float(np.min(seconds)) * 1e9, labels=labels, flash=text + data, ram=bss + data + stack,
                static_ram=bss + data, stack=stack)


def python_latency(fn, x):
    """ns per call of fn(x), the best of PASSES passes of 300 calls."""
    fn(x)
    return float(np.min(timeit.repeat(lambda: fn(x), number=300, repeat=PASSES))) / 300 * 1e9


def onnx_session(clf):
    import onnxruntime

    from fastmlp.onnx import to_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(to_onnx(clf).SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure():
    from threadpoolctl import threadpool_limits

    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        for k, (title, clf, X) in enumerate(models()):
            folder = Path(tmp) / str(k)
            folder.mkdir()
            expected = np.searchsorted(clf.classes_, clf.predict(X))
            c = {name: run_c(name, make, clf, X, folder)
                 for name, make in (("fastmlp C", fastmlp_c), ("emlearn", emlearn_c))}
            session = onnx_session(clf)
            x1 = np.ascontiguousarray(X[:1])
            rows.append(dict(
                model=title, c=c,
                agree={name: float(np.mean(r["labels"] == expected)) for name, r in c.items()},
                predict_ns=python_latency(clf.predict, x1),
                onnx_ns=python_latency(lambda x: session.run(None, {"X": x}), x1)))
    return rows


def table(rows):
    import emlearn
    import onnxruntime

    import fastmlp

    compiler = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    lines = [SECTION, MARK, "",
             f"`python bench/export_c.py` on {cpu_name()} ({platform.machine()}, one thread), {compiler} "
             f"with `-std=c99 -O2`; fastmlp {fastmlp.__version__}, emlearn {emlearn.__version__}, ONNX Runtime "
             f"{onnxruntime.__version__}. Float32 models, the same weights in every contender. Latency: one row "
             "classified, in nanoseconds (C: a loop over 1000 rows, the best of 7 passes of 10 loops; Python: one "
             "call per row, the best of 7 passes of 300). Flash: code + weights + constants of an object file with one "
             "function classifying a row (GNU size: text + data). RAM: its static data + bss (emlearn's two "
             "activation buffers are static) + the stack of its functions (gcc -fstack-usage, summed). "
             "\"agree\": the share of the 1000 rows given predict's class (emlearn writes its weights with 6 "
             "decimals).", "",
             "| model | fastmlp C (ns) | emlearn (ns) | MLPClassifier.predict (ns) | ONNX Runtime (ns) | "
             "flash fastmlp C / emlearn (bytes) | RAM fastmlp C / emlearn (bytes) | agree fastmlp C / emlearn |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f, e = r["c"]["fastmlp C"], r["c"]["emlearn"]
        lines.append(
            f"| {r['model']} | {f['ns']:,.0f} | {e['ns']:,.0f} | {r['predict_ns']:,.0f} | {r['onnx_ns']:,.0f} | "
            f"{f['flash']:,} / {e['flash']:,} | {f['ram']:,} ({f['stack']} stack) / {e['ram']:,} "
            f"({e['static_ram']} static + {e['stack']} stack) | {r['agree']['fastmlp C']:.3f} / "
            f"{r['agree']['emlearn']:.3f} |")
    return lines


def write_section(lines, path=HERE / "RESULTS.md"):
    """Replace (or append) this script's section of RESULTS.md; compare.py keeps it when it rewrites the rest."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = "\n".join(lines) + "\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the table only; write no file")
    args = parser.parse_args()
    if shutil.which(CC) is None:
        sys.exit(f"no C compiler ({CC}) found")
    lines = table(measure())
    print("\n".join(lines))
    if not args.print:
        write_section(lines)
        print(f"wrote its section of {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
