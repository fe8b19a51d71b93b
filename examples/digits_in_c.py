"""Digits in C: a trained classifier exported as one C header, compiled and run without Python.
============================================================================================

A ``Pipeline(StandardScaler(), MLPClassifier)`` (one hidden layer of 32 ReLU
units, float32) learns scikit-learn's 8x8 handwritten digits. ``fastmlp.export_c``
writes it as ``digits_model.h``: the weights as ``static const`` arrays, the
scaling applied to the inputs as StandardScaler computes it (the C code takes
the raw grey levels 0..16), and ``digits_predict(x)``, which returns the class index into
``digits_classes``. No allocation, no globals written, only ``<math.h>``.

The example then writes ``classify_digits.c``, a small ``main`` holding a few
test images, compiles it with the system C compiler
(``cc -std=c99 -Wall -Wextra -Werror -pedantic -O2``) and runs it: for each
image it prints the digit as text and the class the C code gives, which is
the class ``predict`` gives. Without a C compiler it stops after writing the
two files.

Run it: ``python digits_in_c.py`` (writes ``digits_model.h``,
``classify_digits.c`` and the program ``classify_digits`` in the current
directory; ``--out DIR`` writes them in DIR instead).
"""
import argparse
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastmlp
from fastmlp import MLPClassifier

SEED = 0
N_SHOWN = 6  # test images the C program classifies
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]

MAIN = r"""/* classify_digits.c: %(n)d test digits classified by digits_model.h, written by examples/digits_in_c.py */
#include <stdio.h>
#include "digits_model.h"

/* 8 x 8 grey levels, 0 (white) to 16 (black), row by row */
static const float images[%(n)d][DIGITS_N_INPUTS] = {
%(images)s
};
static const int truth[%(n)d] = {%(truth)s};

int main(void)
{
    int k, r, c;
    for (k = 0; k < %(n)d; k++) {
        const int label = digits_classes[digits_predict(images[k])];
        for (r = 0; r < 8; r++) {
            for (c = 0; c < 8; c++) putchar(" .:-=+*#@"[(int)images[k][8 * r + c] / 2]);
            putchar('\n');
        }
        printf("image %%d: the C code says %%d (true digit %%d)\n\n", k, label, truth[k]);
    }
    return 0;
}
"""


def main(out_dir="."):
    """Train, export digits_model.h, compile and run classify_digits in out_dir; return what it printed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=SEED)
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, dtype="float32",
                                                          random_state=SEED))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    accuracy = float(np.mean(model.predict(X_test) == y_test))
    print(f"test accuracy {accuracy:.3f}")

    header = fastmlp.export_c(model, out_dir / "digits_model.h", name="digits")
    shown = X_test[:N_SHOWN]
    images = ",\n".join("    {" + ", ".join(f"{v:g}" for v in image) + "}" for image in shown)
    source = out_dir / "classify_digits.c"
    source.write_text(MAIN % dict(n=N_SHOWN, images=images, truth=", ".join(str(t) for t in y_test[:N_SHOWN])))
    print(f"wrote {header} ({Path(header).stat().st_size:,} bytes) and {source}")
    result = {"accuracy": accuracy, "header": str(header), "source": str(source),
              "python_predictions": [int(p) for p in model.predict(shown)], "c_predictions": None}

    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        print("no C compiler found: compile classify_digits.c yourself, e.g. cc classify_digits.c -lm")
        return result
    program = out_dir / "classify_digits"
    subprocess.run([compiler, *CFLAGS, source.name, "-o", program.name, "-lm"], cwd=out_dir, check=True)
    output = subprocess.run([str(program.resolve())], capture_output=True, text=True, check=True).stdout
    print(f"$ {' '.join([Path(compiler).name, *CFLAGS, source.name, '-o', program.name, '-lm'])}")
    print(f"$ ./{program.name}")
    print(output, end="")
    result["c_predictions"] = [int(line.split("says ")[1].split()[0]) for line in output.splitlines()
                               if line.startswith("image ")]
    result["program"] = str(program)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="directory for digits_model.h, classify_digits.c and the program "
                             "(default: the current directory)")
    main(out_dir=parser.parse_args().out)
