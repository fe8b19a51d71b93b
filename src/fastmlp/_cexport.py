"""Export a fitted model as one dependency-free C99 header (``fastmlp.export_c``).

The header holds the weights as ``static const`` arrays and the forward pass as
``static inline`` functions written out layer by layer: one loop nest per
layer, in the model's (or the requested) dtype, with the engine's formulas
(csrc/activations.template.c, csrc/losses.template.c), so the C output agrees
with ``predict`` to rounding. No allocation, no mutable globals: a call keeps
its scratch on the stack, ``<NAME>_SCRATCH_SIZE`` elements. ``<math.h>`` is
included only when an activation needs it.

The model is read through its public attributes (``coefs_``, ``intercepts_``,
``prelu_slopes_``, ``activation``, ``output_activation`` / ``out_activation_``,
``classes_``) and the activations through ``_registry``; ``_HIDDEN`` and
``_OUTPUT`` below hold the C form of each registered name. A fitted
``Pipeline(StandardScaler(), estimator)`` is exported with the scaling applied
to the inputs, (x - mean) / scale, as StandardScaler computes it.
"""
import hashlib
import os
import re
import secrets

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from . import _registry
from ._base import BaseNetwork
from .ensemble_estimators import MLPEnsembleClassifier, MLPEnsembleRegressor
from .estimators import MLPClassifier, MLPRegressor
from .reference import LEAKY_RELU_SLOPE

__all__ = ["export_c"]

_ESTIMATORS = (MLPClassifier, MLPRegressor, MLPEnsembleClassifier, MLPEnsembleRegressor)
_C_TYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_LIBM_SUFFIX = {np.dtype(np.float32): "f", np.dtype(np.float64): ""}

# Keywords of C99, C11 and C23 (a name must stay valid as the language grows), and
# C++'s, so the header can be included from C++ too.
_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local
alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual
and and_eq asm bitand bitor catch char16_t char32_t char8_t class compl concept consteval constinit
const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export friend mutable namespace
new noexcept not not_eq operator or or_eq private protected public reinterpret_cast requires static_cast
template this throw try typeid typename using virtual wchar_t xor xor_eq
""".split())
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_WIDTH = 100  # longest line of numbers in the header


# --------------------------------------------------------------------------
# The C form of each activation, by its _registry name. `z` is a C expression
# of the pre-activation (bias added), `c` the _Code of the header being written.

_HIDDEN = {
    "identity": lambda c, z, l, j: z,
    "logistic": lambda c, z, l, j: f"{c.name}_sigmoid({z})",
    "tanh": lambda c, z, l, j: f"{c.libm('tanh')}({z})",
    "relu": lambda c, z, l, j: f"{z} > 0 ? {z} : {c.literal(0.0)}",
    "leaky_relu": lambda c, z, l, j: f"{z} > 0 ? {z} : {c.literal(LEAKY_RELU_SLOPE)} * {z}",
    "prelu": lambda c, z, l, j: f"{z} > 0 ? {z} : {c.prefix}_slopes{l}[{j}] * {z}",
    "swish": lambda c, z, l, j: f"{z} * {c.name}_sigmoid({z})",
}
_NEEDS_SIGMOID = {"logistic", "swish"}
_NEEDS_LIBM_HIDDEN = {"logistic", "swish", "tanh"}
_OUTPUT = {"identity", "logistic", "softmax", "exp"}  # written by _Code.output_activation
_NEEDS_LIBM_OUTPUT = {"logistic", "softmax", "exp"}


class _Model:
    """What the header is written from: sizes, activations and parameters, in float64 until written.

    kind is "network", "classifier" or "regressor"; task (classifiers) is
    "binary", "multiclass" or "multilabel"; notes are lines for the header comment.
    """

    def __init__(self, description, kind, coefs, intercepts, slopes, activation, output, dtype):
        self.description, self.kind = description, kind
        self.coefs = [np.array(W, dtype=np.float64) for W in coefs]
        self.intercepts = [np.array(b, dtype=np.float64) for b in intercepts]
        self.slopes = [np.array(s, dtype=np.float64) for s in slopes]
        self.activation, self.output, self.dtype = activation, output, dtype
        self.sizes = [self.coefs[0].shape[0]] + [W.shape[1] for W in self.coefs]
        self.task = self.classes = None
        self.notes = []
        # a Pipeline's StandardScalers as one scaling of the inputs, x -> (x - x_mean) / x_scale; None: none
        self.x_mean = self.x_scale = None
        # (coefs, intercepts, slopes) of each network whose outputs the header averages: this one, or an
        # ensemble's members (the first is the one above)
        self.members = [(self.coefs, self.intercepts, self.slopes)]


def _read_fitted(est):
    """The _Model of a fastmlp estimator or ensemble estimator."""
    return _read_ensemble(est) if isinstance(est, (MLPEnsembleClassifier, MLPEnsembleRegressor)) else \
        _read_estimator(est)


def _read_estimator(est):
    """A _Model of a fastmlp MLPClassifier or MLPRegressor; NotFittedError if it is not fitted."""
    if not est.__sklearn_is_fitted__():
        raise NotFittedError(f"model: this {type(est).__name__} is not fitted yet; call 'fit' before "
                             f"exporting it to C.")
    coefs = list(est.coefs_)
    kind = "classifier" if isinstance(est, MLPClassifier) else "regressor"
    m = _Model(repr(est), kind, coefs, est.intercepts_, est.prelu_slopes_, est.activation, est.out_activation_,
               coefs[0].dtype)
    if kind == "classifier":
        m.classes = np.asarray(est.classes_)
        for k, c in enumerate(m.classes.tolist()):  # (C99 promises string literals up to 4095 characters)
            if isinstance(c, str) and len(c.encode("utf-8")) > _MAX_LITERAL:
                raise ValueError(f"model: class label {k} is {len(c.encode('utf-8'))} bytes long; a C99 string "
                                 f"literal may hold {_MAX_LITERAL} (export_c writes the labels as literals).")
        if est.out_activation_ == "softmax":
            m.task = "multiclass"
        else:  # logistic: one output is binary, several are labels of their own
            m.task = "binary" if est.n_outputs_ == 1 else "multilabel"
    return m


def _read_ensemble(ens):
    """A _Model of a fastmlp MLPEnsembleClassifier or MLPEnsembleRegressor: its members, whose outputs
    (probabilities, values) the header averages as the ensemble does."""
    if not ens.__sklearn_is_fitted__():
        raise NotFittedError(f"model: this {type(ens).__name__} is not fitted yet; call 'fit' before "
                             f"exporting it to C.")
    members = [_read_estimator(member) for member in ens.estimators_]
    m = members[0]
    m.members = [(k.coefs, k.intercepts, k.slopes) for k in members]
    m.description = repr(ens)
    m.notes.append(f"the mean of the outputs of {len(members)} members (estimators_), as predict_proba / "
                   f"predict of the ensemble")
    return m


def _read_model(model):
    """The _Model of a Network, an estimator, or a Pipeline of StandardScalers and an estimator."""
    if isinstance(model, BaseNetwork):
        m = _Model(repr(model), "network", model.coefs_, model.intercepts_, model.prelu_slopes_,
                   model.activation, model.output_activation, model.dtype)
        m.notes = model.summary().splitlines()
        return m
    from sklearn.pipeline import Pipeline  # here: it would add 0.1 s to `import fastmlp`

    if isinstance(model, _ESTIMATORS):
        m = _read_fitted(model)
    elif isinstance(model, Pipeline):
        m = _read_pipeline(model)
    else:
        raise TypeError(f"model must be a fastmlp Network, MLPClassifier, MLPRegressor, MLPEnsembleClassifier, "
                        f"MLPEnsembleRegressor or a Pipeline ending in one, got {type(model).__name__}.")
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        m.notes.append("inputs: " + ", ".join(f"x[{i}] {n}" for i, n in enumerate(names)))
    return m


def _read_pipeline(pipe):
    """Pipeline(StandardScaler()..., estimator): the scalings as one, x -> (x - x_mean) / x_scale, which the header
    applies to the inputs as StandardScaler computes it (folded into layer 1 instead, W / scale and b - (mean /
    scale) W, a float32 header cancelled where a feature's mean is large against its spread).

    Two scalings (x - m1) / s1, then (y - m2) / s2, are (x - (m1 + m2 s1)) / (s1 s2).
    """
    *steps, (last_name, est) = pipe.steps
    if not isinstance(est, _ESTIMATORS):
        raise TypeError(f"model: the Pipeline's last step {last_name!r} must be a fastmlp MLPClassifier, "
                        f"MLPRegressor, MLPEnsembleClassifier or MLPEnsembleRegressor, got {type(est).__name__}.")
    for name, step in steps:
        if step is not None and step != "passthrough" and type(step) is not StandardScaler:
            raise ValueError(f"model: the Pipeline's step {name!r} ({type(step).__name__}) cannot be exported "
                             f"to C; only StandardScaler steps (applied to the inputs) may precede the "
                             f"estimator.")
    m = _read_fitted(est)
    x_mean = np.zeros(m.sizes[0])  # the steps so far as x -> (x - x_mean) / x_scale
    x_scale = np.ones(m.sizes[0])
    scaled = False
    for name, step in steps:
        if step is None or step == "passthrough":
            continue
        try:
            check_is_fitted(step)
        except NotFittedError:
            raise NotFittedError(f"model: the Pipeline's step {name!r} (StandardScaler) is not fitted yet.") from None
        mean = step.mean_ if step.with_mean else 0.0  # mean_ is kept with with_mean=False too
        scale = step.scale_ if step.with_std else 1.0
        x_mean, x_scale = x_mean + mean * x_scale, x_scale * scale
        scaled = True
        m.notes.append(f"pipeline step {name!r}: StandardScaler, (x - mean) / scale over {m.sizes[0]} features "
                       "before layer 1")
    if scaled:
        m.x_mean, m.x_scale = x_mean, x_scale
    m.description = repr(pipe)
    return m


# --------------------------------------------------------------------------
# Writing C.


# The longest string literal every C99 compiler takes (its translation limits, 5.2.4.1).
_MAX_LITERAL = 4095


def _c_string(text):
    """A C string literal of text's UTF-8 bytes: octal escapes outside printable ASCII, '?' escaped
    (no trigraph can form)."""
    out = []
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        if ch in '\\"?':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _comment_safe(text):
    """text with nothing that could end a C block comment or splice a line, in ASCII (a character
    outside printable ASCII, a feature name's or a label's, written as <U+XXXX>)."""
    text = "".join(c if " " <= c <= "~" else f"<U+{ord(c):04X}>" for c in text)
    return text.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")


def _wrap(items, indent):
    """items joined by ", " into lines of at most _WIDTH characters, each starting with indent."""
    lines, line = [], indent
    for k, item in enumerate(items):
        item += "," if k < len(items) - 1 else ""
        if len(line) + 1 + len(item) > _WIDTH and line != indent:
            lines.append(line)
            line = indent
        line += ("" if line == indent else " ") + item
    lines.append(line)
    return lines


def _int_labels(classes):
    """classes_ as integers when each is an integer (bool, int, or float with an integral value), else None."""
    if classes.dtype.kind in "biu":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.all(np.isfinite(classes)) and np.array_equal(classes, np.round(classes)) \
            and np.all(np.abs(classes) < 2.0 ** 63):
        return classes.astype(np.int64)
    return None


class _Code:
    """The text of one header: the model m written for dtype, under the C prefix name."""

    def __init__(self, m, name, dtype):
        self.m, self.name, self.NAME, self.dtype = m, name, name.upper(), dtype
        self.T = _C_TYPE[dtype]
        self.K = len(m.members)
        self.prefix = name  # of the arrays of the network being written: <name>, or <name>_m<k> for member k
        self.lines = []
        L = len(m.coefs)
        self.hidden_sizes = m.sizes[1:-1]
        pairs = [a + b for a, b in zip(self.hidden_sizes, self.hidden_sizes[1:])]
        # Hidden layer l writes its units at the start of the scratch (l odd) or at its end (l even):
        # consecutive layers never overlap when the scratch holds the largest consecutive pair.
        self.scratch = max(pairs + list(self.hidden_sizes) + [0])
        self.n_layers = L

    def literal(self, value):
        """value (finite) rounded to the dtype, as the shortest C literal that reads back to it."""
        if self.dtype == np.float32:
            return f"{np.float32(value)!s}f"
        return repr(float(value))

    def libm(self, fn):
        return fn + _LIBM_SUFFIX[self.dtype]

    def emit(self, *lines):
        self.lines.extend(lines)

    def array(self, cname, values, comment):
        """A static const array of the dtype: one brace per row of a matrix, lines wrapped at _WIDTH."""
        dims = "".join(f"[{n}]" for n in values.shape)
        self.emit(f"/* {comment} */", f"static const {self.T} {cname}{dims} = {{")
        if values.ndim == 1:
            self.emit(*_wrap([self.literal(v) for v in values], "    "))
        else:
            for r, row in enumerate(values):
                lines = _wrap([self.literal(v) for v in row], "     ")
                lines[0] = "    {" + lines[0][5:]
                lines[-1] += "}" + ("," if r < len(values) - 1 else "")
                self.emit(*lines)
        self.emit("};", "")

    # ------------------------------------------------------------------ parts

    def header_comment(self, filename, version, digest):
        m, N = self.m, self.NAME
        T = self.T
        what = {"network": "a fastmlp Network", "classifier": "a fastmlp MLPClassifier",
                "regressor": "a fastmlp MLPRegressor"}[m.kind]
        if self.K > 1:
            what = {"classifier": "a fastmlp MLPEnsembleClassifier",
                    "regressor": "a fastmlp MLPEnsembleRegressor"}[m.kind] + f" ({self.K} members)"
        lines = [f"{filename}: {what} as dependency-free C99, written by fastmlp {version}.", "",
                 *m.description.splitlines()]
        if m.notes:
            lines += ["", *m.notes]
        lines += ["", "layers (Z = A W + b, A' = f(Z); W[i][j] joins input i to unit j, as coefs_):"]
        for l, (fan_in, fan_out) in enumerate(zip(m.sizes[:-1], m.sizes[1:]), start=1):
            act = m.output if l == self.n_layers else m.activation
            lines.append(f"  layer {l}: ({fan_in}, {fan_out}), {act}")
        n_params = sum(sum(W.size + b.size for W, b in zip(coefs, intercepts)) + sum(s.size for s in slopes)
                       for coefs, intercepts, slopes in m.members)
        lines += [f"  {n_params} parameters, {n_params * self.dtype.itemsize} bytes of {T}",
                  f"weights sha256 {digest}",
                  f"  (of the {T} arrays below, in order, as little-endian bytes)", "", "Use:",
                  f"  {T} out[{N}_N_OUTPUTS];",
                  f"  {self.name}_forward(x, out);  -- x: {N}_N_INPUTS finite values, not overlapping out"]
        outputs = {"network": f"  out: the network's {m.output} output",
                   "regressor": "  out: the predicted values" + (" (exp output: the Poisson mean)"
                                                                if m.output == "exp" else "")}
        if m.kind == "classifier":
            lines += {
                "binary": ["  out[0]: the probability of class 1 (of the two below)",
                           f"  int k = {self.name}_predict(x);  -- 1 where out[0] > 0.5, else 0"],
                "multiclass": ["  out[k]: the probability of class k (softmax)",
                               f"  int k = {self.name}_predict(x);  -- the most probable class (the first of ties)"],
                "multilabel": ["  out[k]: the probability of label k, each on its own",
                               f"  int labels[{N}_N_OUTPUTS];",
                               f"  {self.name}_predict(x, labels);  -- labels[k] = out[k] > 0.5"],
            }[m.task]
            lines += self.class_comment()
        else:
            lines.append(outputs[m.kind])
        callers = (("forward", self.K > 1), ("predict", m.kind == "classifier"))
        more = " and ".join(f"{self.name}_{f}" for f, has in callers if has)
        lines += ["", f"Re-entrant: nothing global is written; a call keeps {N}_SCRATCH_SIZE {T}s on the stack"
                      + (f"\n({N}_N_OUTPUTS more in each of {more})." if more else ".")]
        lines = [part for line in lines for part in line.split("\n")]
        self.emit("/*", *(f" * {_comment_safe(t)}".rstrip() for t in lines), " */")

    def class_comment(self):
        classes = self.m.classes
        if self.m.task == "multilabel":
            return [f"labels: {', '.join(str(c) for c in classes.tolist())}"]
        text = classes.dtype.kind in "USO" and all(isinstance(c, str) for c in classes.tolist())
        shown = [_c_string(c) if text else repr(c) for c in classes.tolist()]
        return ["classes (index: label):", *(f"  {k}: {s}" for k, s in enumerate(shown))]

    def class_table(self):
        m, N = self.m, self.NAME
        classes = m.classes
        self.emit(f"#define {N}_N_CLASSES {len(classes)}")
        if all(isinstance(c, str) for c in classes.tolist()):
            items = [_c_string(c) for c in classes.tolist()]
            ctype = "char *const"
        elif classes.dtype.kind == "u" and classes.max() > np.iinfo(np.int64).max:  # (beyond long long)
            ctype = "unsigned long long"
            items = [f"{v}ULL" for v in classes.tolist()]
        else:
            labels = _int_labels(classes)
            if labels is None:  # floats: the comment above lists them
                self.emit("")
                return
            fits_int = bool(np.all((labels >= -(2 ** 31 - 1)) & (labels <= 2 ** 31 - 1)))
            ctype = "int" if fits_int else "long long"
            # (C has no literal of the least long long: 9223372036854775808 does not fit one)
            items = [str(v) if fits_int else f"{v}LL" if v > np.iinfo(np.int64).min else "(-9223372036854775807LL - 1)"
                     for v in labels.tolist()]
        self.emit("", "/* classes_: the label of each class index */",
                  f"static const {ctype} {self.name}_classes[{N}_N_CLASSES] = {{")
        self.emit(*_wrap(items, "    "), "};")

    def sigmoid(self):
        T, one = self.T, self.literal(1.0)
        exp = self.libm("exp")
        self.emit(
            "/* logistic sigmoid, stable in both tails as fastmlp's engine: exp never sees a large positive z */",
            f"static inline {T} {self.name}_sigmoid({T} z)",
            "{",
            f"    {T} e;",
            "    if (z >= 0) {",
            f"        return {one} / ({one} + {exp}(-z));",
            "    }",
            f"    e = {exp}(z);",
            f"    return e / ({one} + e);",
            "}", "")

    def layer(self, l, src, dst, fan_in, fan_out, last):
        """One layer's loop nest: dst = f(src W_l + b_l)."""
        m, prefix = self.m, self.prefix
        act = m.output if last else m.activation
        scaled = l == 1 and m.x_mean is not None  # (the Pipeline's StandardScalers, on the inputs)
        load = f"({src}[i] - {self.name}_x_mean[i]) / {self.name}_x_scale[i]" if scaled else f"{src}[i]"
        self.emit(f"    /* layer {l}: ({fan_in}, {fan_out}), {act}: {dst} = {act}({src} W{l} + b{l}) */",
                  *(["    /* (x scaled as the Pipeline's StandardScalers scale it: (x - mean) / scale) */"]
                    if scaled else []),
                  f"    for (j = 0; j < {fan_out}; j++) {dst}[j] = 0;",
                  f"    for (i = 0; i < {fan_in}; i++) {{",
                  f"        const {self.T} v = {load};"
                  + (f" /* loaded once: {src} and {dst} share the scratch */" if l > 1 and not last else ""),
                  f"        for (j = 0; j < {fan_out}; j++) {dst}[j] += v * {prefix}_W{l}[i][j];",
                  "    }")
        if last:
            self.output_activation(dst, fan_out, l)
            return
        f = _HIDDEN[m.activation](self, "z", l, "j")
        self.emit(f"    for (j = 0; j < {fan_out}; j++) {{",
                  f"        const {self.T} z = {dst}[j] + {prefix}_b{l}[j];",
                  f"        {dst}[j] = {f};",
                  "    }")

    def output_activation(self, out, n, l):
        b = f"{self.prefix}_b{l}"
        act = self.m.output
        if act == "softmax":
            exp = self.libm("exp")
            self.emit(f"    for (j = 0; j < {n}; j++) {out}[j] += {b}[j];",
                      "    /* softmax as the engine: exp(z - max z), then times 1 / sum */",
                      f"    m = {out}[0];",
                      f"    for (j = 1; j < {n}; j++) m = {out}[j] > m ? {out}[j] : m;",
                      "    s = 0;",
                      f"    for (j = 0; j < {n}; j++) {{",
                      f"        {out}[j] = {exp}({out}[j] - m);",
                      f"        s += {out}[j];",
                      "    }",
                      f"    m = {self.literal(1.0)} / s;",
                      f"    for (j = 0; j < {n}; j++) {out}[j] *= m;")
            return
        f = {"identity": "z", "logistic": f"{self.name}_sigmoid(z)", "exp": f"{self.libm('exp')}(z)"}[act]
        if act == "identity":
            self.emit(f"    for (j = 0; j < {n}; j++) {out}[j] += {b}[j];")
            return
        self.emit(f"    for (j = 0; j < {n}; j++) {{",
                  f"        const {self.T} z = {out}[j] + {b}[j];",
                  f"        {out}[j] = {f};",
                  "    }")

    def forward(self):
        """<name>_forward: the network's layers, or the mean of the members' <name>_member<k>."""
        name, N, T = self.name, self.NAME, self.T
        if self.K == 1:
            self.network_forward(f"{name}_forward",
                                 f"the model's output for one row: x ({N}_N_INPUTS,) read, out ({N}_N_OUTPUTS,) "
                                 "written")
            return
        for k in range(self.K):
            self.prefix = f"{name}_m{k}"
            self.network_forward(f"{name}_member{k}", f"member {k}'s output for one row (estimators_[{k}])")
        self.prefix = name
        # as the ensemble's mean over its members: the sum in member order, then divided by their number
        self.emit(f"/* the model's output for one row, the mean of the {self.K} members': x ({N}_N_INPUTS,) read, "
                  f"out ({N}_N_OUTPUTS,) written */",
                  f"static inline void {name}_forward(const {T} *x, {T} *out)", "{",
                  f"    {T} o[{N}_N_OUTPUTS];", "    int j;", f"    {name}_member0(x, out);")
        for k in range(1, self.K):
            self.emit(f"    {name}_member{k}(x, o);", f"    for (j = 0; j < {N}_N_OUTPUTS; j++) out[j] += o[j];")
        self.emit(f"    for (j = 0; j < {N}_N_OUTPUTS; j++) out[j] /= {self.literal(self.K)};", "}", "")

    def network_forward(self, fname, comment):
        """One network's forward pass as the function fname, over the arrays of self.prefix."""
        m, N, T = self.m, self.NAME, self.T
        self.emit(f"/* {comment} */", f"static inline void {fname}(const {T} *x, {T} *out)", "{")
        if self.scratch:
            self.emit(f"    {T} scratch[{N}_SCRATCH_SIZE];")
            for l, units in enumerate(self.hidden_sizes, start=1):
                where = "scratch" if l % 2 else f"scratch + {N}_SCRATCH_SIZE - {units}"
                self.emit(f"    {T} *const a{l} = {where};")
        if m.output == "softmax":
            self.emit(f"    {T} m, s;")
        self.emit("    int i, j;", "")
        for l, (fan_in, fan_out) in enumerate(zip(m.sizes[:-1], m.sizes[1:]), start=1):
            last = l == self.n_layers
            self.layer(l, "x" if l == 1 else f"a{l - 1}", "out" if last else f"a{l}", fan_in, fan_out, last)
            if not last:
                self.emit("")
        self.emit("}", "")

    def predict(self):
        name, N, T = self.name, self.NAME, self.T
        task = self.m.task
        if task == "multilabel":
            self.emit("/* labels[k] = 1 where label k's probability exceeds 0.5, else 0 (as predict) */",
                      f"static inline void {name}_predict(const {T} *x, int *labels)", "{",
                      f"    {T} out[{N}_N_OUTPUTS];", "    int k;", f"    {name}_forward(x, out);",
                      f"    for (k = 0; k < {N}_N_OUTPUTS; k++) labels[k] = out[k] > {self.literal(0.5)};", "}")
            return
        self.emit(f"/* the predicted class index into {name}_classes (as predict) */",
                  f"static inline int {name}_predict(const {T} *x)", "{", f"    {T} out[{N}_N_OUTPUTS];")
        if task == "binary":
            decision = (f"return out[0] > {self.literal(0.5)};" if len(self.m.classes) == 2
                        else "return 0; /* fitted on one class, predict always gives it */")
            self.emit(f"    {name}_forward(x, out);", f"    {decision}", "}")
            return
        self.emit("    int k, best = 0;", f"    {name}_forward(x, out);",
                  f"    for (k = 1; k < {N}_N_OUTPUTS; k++) {{",
                  "        if (out[k] > out[best]) best = k;", "    }", "    return best;", "}")

    def write(self, filename, version):
        m, N, name = self.m, self.NAME, self.name
        arrays = []  # (C name, values in the dtype, comment), in the header's order
        if m.x_mean is not None:
            arrays += [(f"{name}_x_mean", m.x_mean, f"the inputs' StandardScaler: mean ({m.sizes[0]},)"),
                       (f"{name}_x_scale", m.x_scale, f"the inputs' StandardScaler: scale ({m.sizes[0]},)")]
        for k, (coefs, intercepts, slopes) in enumerate(m.members):
            prefix, of = (name, "") if self.K == 1 else (f"{name}_m{k}", f"estimators_[{k}].")
            for l, (W, b) in enumerate(zip(coefs, intercepts), start=1):
                act = m.output if l == self.n_layers else m.activation
                arrays += [(f"{prefix}_W{l}", W, f"layer {l} weights {W.shape}, {of}coefs_[{l - 1}]"),
                           (f"{prefix}_b{l}", b,
                            f"layer {l} biases ({b.size},), {of}intercepts_[{l - 1}]; then {act}")]
            for l, s in enumerate(slopes, start=1):
                arrays.append((f"{prefix}_slopes{l}", s,
                               f"layer {l} prelu slopes ({s.size},), {of}prelu_slopes_[{l - 1}]"))
        with np.errstate(over="ignore"):
            arrays = [(cname, np.asarray(a, dtype=self.dtype.newbyteorder("<")), c) for cname, a, c in arrays]
        for cname, values, _ in arrays:  # a float64 model's weights (or a scaling) beyond float32's range
            if not np.isfinite(values).all():
                raise ValueError(f"dtype={self.dtype.name}: the model's parameters ({cname}) overflow it.")
            if cname.endswith("_x_scale") and not (values != 0).all():  # (the header divides by it)
                raise ValueError(f"dtype={self.dtype.name}: the Pipeline's StandardScaler scale ({cname}) "
                                 "underflows it to 0.")
        digest = hashlib.sha256(b"".join(a.tobytes() for _, a, _ in arrays)).hexdigest()

        self.header_comment(filename, version, digest)
        self.emit(f"#ifndef {N}_H", f"#define {N}_H", "")
        needs_libm = (m.activation in _NEEDS_LIBM_HIDDEN and len(m.sizes) > 2) or m.output in _NEEDS_LIBM_OUTPUT
        if needs_libm:
            self.emit("#include <math.h>", "")
        self.emit(f"#define {N}_N_INPUTS {m.sizes[0]}", f"#define {N}_N_OUTPUTS {m.sizes[-1]}",
                  f"#define {N}_SCRATCH_SIZE {self.scratch} /* {self.T}s: hidden units, two consecutive layers "
                  f"at most */")
        if m.kind == "classifier" and m.task != "multilabel":
            self.class_table()
        self.emit("")
        for cname, values, comment in arrays:
            self.array(cname, values, comment)
        uses_sigmoid = (m.activation in _NEEDS_SIGMOID and len(m.sizes) > 2) or m.output == "logistic"
        if uses_sigmoid:
            self.sigmoid()
        self.forward()
        if m.kind == "classifier":
            self.predict()
            self.emit("")
        self.emit(f"#endif /* {N}_H */")
        return "\n".join(self.lines) + "\n"


# --------------------------------------------------------------------------
# Checks and the public function.


def _check_name(name):
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (a C identifier), got {type(name).__name__}.")
    if not _IDENTIFIER.match(name):
        raise ValueError(f"name must be a C identifier (letters, digits and '_', not starting with a digit), "
                         f"got {name!r}.")
    if name in _KEYWORDS:
        raise ValueError(f"name must not be a C (or C++) keyword, got {name!r}.")
    if name.startswith("_"):  # (reserved at file scope; "_math" would also make the guard _MATH_H, math.h's)
        raise ValueError(f"name must not start with '_' (C reserves such names at file scope, and the "
                         f"upper-case ones everywhere), got {name!r}.")
    return name


def _check_dtype(dtype, model_dtype):
    if dtype is None:
        return np.dtype(model_dtype)
    try:
        checked = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32, float64 or None (the model's), got {dtype!r}.") from None
    if checked not in _C_TYPE:
        raise ValueError(f"dtype must be float32, float64 or None (the model's), got {dtype!r}.")
    return checked


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    return os.fsdecode(os.fspath(path))


def _check_supported(m):
    """Every activation registered has a C form here; a name added to _registry later is refused by name."""
    if m.activation not in _HIDDEN:
        known = _registry.ACTIVATIONS.get(m.activation)
        raise ValueError(f"model: activation={m.activation!r} has no C form in export_c"
                         + ("" if known is None else " yet") + ".")
    if m.output not in _OUTPUT:
        raise ValueError(f"model: output activation {m.output!r} has no C form in export_c.")


def _write_atomically(path, text):
    """text at path, or (on any failure) nothing new at path: written beside it, then renamed over it."""
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "x", encoding="ascii", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.lexists(tmp):
            os.remove(tmp)
        if isinstance(error, OSError):
            raise ValueError(f"path={path!r} cannot be written: {error.strerror or error}.") from error
        raise


def export_c(model, path, *, name="model", dtype=None):
    """Write a fitted model as one dependency-free C99 header.

    The header holds the weights as ``static const`` arrays and the forward
    pass as ``static inline`` functions, one loop nest per layer, with the
    engine's numerically stable formulas (a stable sigmoid, softmax with the
    row maximum subtracted): ``<name>_forward(const T *x, T *out)`` writes the
    output (probabilities for a classifier, values for a regressor) and, for a
    classifier, ``<name>_predict`` gives what ``predict`` gives (the class
    index into ``<name>_classes``; for multilabel, ``<name>_predict(x, labels)``
    writes one 0 or 1 per label). There is no allocation and no mutable global:
    a call keeps ``<NAME>_SCRATCH_SIZE`` elements on the stack. The header
    comment holds the model's description, each layer's shape and activation,
    the fastmlp version and the SHA-256 of the weights.

    Parameters
    ----------
    model : Network, MLPClassifier, MLPRegressor, MLPEnsembleClassifier, MLPEnsembleRegressor or Pipeline
        A fastmlp ``Network``, a fitted ``MLPClassifier`` or ``MLPRegressor``,
        a fitted ``MLPEnsembleClassifier`` or ``MLPEnsembleRegressor`` (each
        member a function of its own, ``<name>_forward`` the mean of their
        outputs, as the ensemble's ``predict_proba`` and ``predict``), or a
        fitted ``Pipeline`` of ``StandardScaler`` steps and one of these
        estimators, whose scaling the header applies to the inputs, (x -
        mean) / scale as StandardScaler computes it (the header takes the raw
        features).
    path : str or os.PathLike
        The header file to write. It is written beside its final place and
        renamed over it: an existing file is replaced whole or not at all.
    name : str, default="model"
        The C prefix of every name in the header (``<name>_forward``,
        ``<NAME>_N_INPUTS``, ...): a C identifier, not a keyword, not starting
        with '_'.
    dtype : {"float32", "float64"} or None, default=None
        The C type, ``float`` or ``double``, of the weights and the arithmetic;
        None means the model's dtype.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        For an unfitted estimator (or StandardScaler in the Pipeline).
    TypeError
        For another kind of model, or a name, path or dtype of the wrong type.
    ValueError
        For a Pipeline step other than StandardScaler, a name that is not a C
        identifier, is a keyword or starts with '_', a dtype other than
        float32 and float64, a class label longer than a C99 string literal
        (4095 bytes), or a path that cannot be written.

    See Also
    --------
    fastmlp.onnx.to_onnx : The model as an ONNX graph.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import fastmlp
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = fastmlp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200,
    ...                             random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = fastmlp.export_c(clf, os.path.join(folder, "iris.h"), name="iris")
    ...     with open(path) as f:
    ...         header = f.read()
    >>> print(header[header.index("#define IRIS_N_INPUTS"):].splitlines()[0])
    #define IRIS_N_INPUTS 4
    >>> "static inline int iris_predict(const double *x)" in header
    True
    """
    m = _read_model(model)
    name = _check_name(name)
    dtype = _check_dtype(dtype, m.dtype)
    path = _check_path(path)
    _check_supported(m)
    from . import __version__

    text = _Code(m, name, dtype).write(os.path.basename(path), __version__)
    _write_atomically(path, text)
    return path
