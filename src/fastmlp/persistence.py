"""Save and load models without pickle: fastmlp.load and the models' save(path).

A model file is a zip archive (entries stored uncompressed, so ``numpy.load``
and ``unzip`` read it too) with exactly these entries:

config.json
    UTF-8 JSON, as Python's json module writes it (non-finite floats appear as
    Infinity, -Infinity, NaN)::

        {"format": "fastmlp", "version": 2, "written_by": "fastmlp 0.1.0",
         "model": "Network" | "reference.Network" | "MLPClassifier" | "MLPRegressor"
                  | "MLPEnsembleClassifier" | "MLPEnsembleRegressor" | "NetworkEnsemble",
         "object_arrays": [names of arrays that were object arrays of str/int/bool],
         "rngs": [{"type": "Generator" | "RandomState", "state": {...}}, ...],
         "network": {...} or null,          (the Network, or the estimator's)
         "estimator": {"params": {...}, "fitted": {...} or null}}   (estimators only)

    An array is referred to where it is used as ``{"array": "<name>"}``, its
    name being its place in the JSON (``"network.params"``); a random
    generator as ``{"rng": <index into rngs>}``, so one generator shared by
    several owners is one generator again after loading. An ensemble has no
    network of its own: its fitted ``estimators_`` is a list of
    ``{"network": ..., "estimator": ...}``, each member as a file of its
    member class would hold it, its arrays named under
    ``"estimator.fitted.estimators_.<k>."``. A ``NetworkEnsemble``'s
    ``"network"`` is ``{"n_members": K, "member_params": [K objects],
    "seeds_": [K ints], "random_state": {"rng": i}, "members": [K networks,
    their arrays named under "network.members.<k>."]}``, and after a fit
    ``"n_epochs_"`` (K ints), ``"loss_curve_"`` (K, epochs) and
    ``"grad_norms_"`` (K, epochs, layers), NaN after a member's epochs, with
    ``"validation_loss_curve_"`` (K, epochs) after a fit with validation data;
    its members share every constructor argument but their dropout.
<name>.npy
    One array each, in NumPy's .npy format, never of an object dtype.

What a model saves is declared by its class: ``_SAVED_ARGS`` (a network's
constructor arguments) and ``_SAVED_FITTED`` (each fitted attribute with its
kind: count, number, curve, rng, trainer, ...); one generic loop writes and
reads them through the table ``_KINDS`` of how each kind is written and
checked, and the cross-checks between attributes follow.

Loading trusts nothing in the file. The class comes from the fixed table
MODELS, never from importing a name; arrays are read with allow_pickle=False
after their header (dtype, shape, size) has been checked; every JSON object
must have exactly the expected keys; models are rebuilt through their own
constructors and validation (Network's constructor, the estimators'
_validate_params and _trainer) and the parameters are copied in only after
their shape, dtype and finiteness are checked; the training history
(``loss_curve_``, ``grad_norms_``, ``validation_scores_``, ``best_loss_``, ...) must be what a
fit can record: shapes that agree with each other and with the network, and
finite numbers where fit records finite ones. Anything wrong raises a
ValueError that names it; a missing file raises the usual OSError.

Version history: 1, the first; 2 adds ``history_`` (the per-epoch record
of loss, learning rate, seconds, and val_loss and val_score with a validation
set) to fitted networks and estimators, a schedule as an estimator's
``learning_rate`` (``{"schedule": <name in SCHEDULES>, "params": {...}}``)
and its run (``_lr_run``: max_epochs, the next epoch, the run's state).
Version 1 files still load. NetworkEnsemble files (format version 2 too)
need a fastmlp that names it in MODELS; an older one refuses them cleanly.
"""
import json
import math
import os
import secrets
import struct
import zipfile
import zlib
from typing import Callable, NamedTuple

import numpy as np
from sklearn.base import is_classifier
from sklearn.preprocessing import LabelBinarizer

from . import reference, schedules
from ._base import BaseNetwork
from ._training import TRAINER_ARGS, Trainer, new_history
from ._validation import check_bool, check_finite, check_float, check_int
from .ensemble import NetworkEnsemble, check_member_params
from .ensemble_estimators import MLPEnsembleClassifier, MLPEnsembleRegressor
from .estimators import MLPClassifier, MLPRegressor
from .network import Network

FORMAT = "fastmlp"
VERSION = 2

# The only classes a file can name.
MODELS = {
    "Network": Network,
    "reference.Network": reference.Network,
    "MLPClassifier": MLPClassifier,
    "MLPRegressor": MLPRegressor,
    "MLPEnsembleClassifier": MLPEnsembleClassifier,
    "MLPEnsembleRegressor": MLPEnsembleRegressor,
    "NetworkEnsemble": NetworkEnsemble,
}
_MODEL_NAMES = {cls: name for name, cls in MODELS.items()}

_CONFIG = "config.json"
_MAX_CONFIG_BYTES = 16 * 2**20

# Settings of a trainer that are arguments of Trainer (validated by it); the
# others (dropout, step, seed) are checked here.
_TRAINER_ARGS = TRAINER_ARGS

# Bit generators a file may name, with the exact layout of their state.
# Leaves: ("int", low, high), ("array", dtype, shape). Ranges matter: NumPy's
# setters do not check them (MT19937 would read past its key with pos > 624).
_U32 = ("int", 0, 2**32 - 1)
_BIT = ("int", 0, 1)
_PCG_STATE = {"state": {"state": ("int", 0, 2**128 - 1), "inc": ("int", 0, 2**128 - 1)},
              "has_uint32": _BIT, "uinteger": _U32}
_BIT_GENERATORS = {
    "PCG64": (np.random.PCG64, _PCG_STATE),
    "PCG64DXSM": (np.random.PCG64DXSM, _PCG_STATE),
    "MT19937": (np.random.MT19937, {"state": {"key": ("array", np.uint32, (624,)), "pos": ("int", 0, 624)}}),
    "Philox": (np.random.Philox, {"state": {"counter": ("array", np.uint64, (4,)), "key": ("array", np.uint64, (2,))},
                                  "buffer": ("array", np.uint64, (4,)), "buffer_pos": ("int", 0, 4),
                                  "has_uint32": _BIT, "uinteger": _U32}),
    "SFC64": (np.random.SFC64, {"state": {"state": ("array", np.uint64, (4,))}, "has_uint32": _BIT, "uinteger": _U32}),
}
_GAUSS = {"has_gauss": _BIT, "gauss": ("float",)}  # RandomState's cached normal

# The only schedule classes a file can name (an estimator's learning_rate), and
# how deep one may wrap another (LinearWarmup).
SCHEDULES = {name: getattr(schedules, name) for name in schedules.__all__}
_SCHEDULE_NAMES = {cls: name for name, cls in SCHEDULES.items()}
_MAX_SCHEDULE_DEPTH = 4

_LB_PARAMS = ("neg_label", "pos_label", "sparse_output")
_LB_TYPES = ("binary", "multiclass", "multilabel-indicator")

# What a damaged or hostile file can make the readers below raise; load turns
# each into a ValueError naming the file.
_FILE_ERRORS = (ValueError, TypeError, KeyError, IndexError, EOFError, OverflowError, RuntimeError, OSError,
                zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error)


# ---------------------------------------------------------------------- save

def save(model, path):
    """Write a fastmlp model to one file at exactly `path`, without pickle.

    Parameters
    ----------
    model : fastmlp.Network, fastmlp.reference.Network, MLPClassifier, MLPRegressor, their ensembles or NetworkEnsemble
        Fitted or not (an unfitted estimator keeps its parameters only).
    path : str or os.PathLike
        The file to write, used as given (no extension is added). It is
        written next to its final place and renamed over it, so an existing
        file is replaced whole or not at all.

    Raises
    ------
    TypeError
        For another kind of model, or a value the format cannot hold (an
        estimator parameter that is not a number, string, list, tuple, array
        or random generator).
    ValueError
        For an empty path, a folder, or a path whose folder does not exist.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastmlp import MLPClassifier
    >>> from fastmlp.persistence import load, save
    >>> clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=50, random_state=0)
    >>> clf = clf.fit([[0.0], [1.0], [2.0], [3.0]], ["a", "a", "b", "b"])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "clf.fastmlp")
    ...     save(clf, path)
    ...     loaded = load(path)
    >>> loaded.classes_
    array(['a', 'b'], dtype='<U1')
    >>> bool((loaded.predict_proba([[1.5]]) == clf.predict_proba([[1.5]])).all())
    True
    """
    from . import __version__

    kind = _MODEL_NAMES.get(type(model))
    if kind is None:
        raise TypeError(f"save takes a {', '.join(MODELS)} (not a subclass), got {type(model).__name__}; "
                        "use pickle for other objects.")
    path = _check_path(path)
    _check_savable(model, path)  # (an empty path, a folder, a missing folder, named: not the temporary file's error)
    w = _Writer()
    config = {"format": FORMAT, "version": VERSION, "written_by": f"fastmlp {__version__}", "model": kind}
    estimator = None
    if isinstance(model, BaseNetwork):
        network = _dump_network(model, w)
    elif isinstance(model, NetworkEnsemble):
        network = _dump_network_ensemble(model, w)
    else:
        network, estimator = _dump_estimator(model, w)
    config.update(object_arrays=w.object_arrays, rngs=w.rngs, network=network)
    if not isinstance(model, (BaseNetwork, NetworkEnsemble)):
        config["estimator"] = estimator
    blob = json.dumps(config, indent=1).encode("utf-8")

    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr(_entry(_CONFIG), blob)
                for name, arr in w.arrays.items():
                    with zf.open(_entry(name + ".npy"), "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    return os.fsdecode(os.fspath(path))


def _check_savable(model, path):
    """Raise now what save(model, path) would raise for the path's folder or the model's parameters (a
    Checkpoint's check when a fit begins, not after its first epoch): a ValueError naming path for a folder
    that does not exist, save's TypeError for a parameter the format cannot hold."""
    path = _check_path(path)
    if not path or os.path.isdir(path) or path.endswith((os.sep, os.altsep or os.sep)):
        raise ValueError(f"path={path!r} is {'empty' if not path else 'a folder'}: a model is written to one file "
                         "at path.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"path={path!r}: its folder {folder!r} does not exist.")
    if hasattr(model, "get_params") and type(model) in _MODEL_NAMES:
        w = _Writer()
        for k, v in model.get_params(deep=False).items():
            _encode_param(v, f"estimator.params.{k}", w)


def _entry(name):
    """A zip entry with a fixed timestamp: the same model gives the same bytes."""
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


def _scalar(value, where):
    """A JSON scalar from a Python or NumPy one."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise TypeError(f"cannot save {where}: {type(value).__name__} is not a number, string, bool or None.")


class _Writer:
    """Collects the arrays and random generators of a model while its JSON is built."""

    def __init__(self):
        self.arrays = {}
        self.object_arrays = []
        self.rngs = []
        self._rng_index = {}  # id(rng) -> index (the rngs live as long as the model)

    def array(self, name, value):
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            arr = _from_object(arr, name)
            self.object_arrays.append(name)
        self.arrays[name] = np.ascontiguousarray(arr)
        return {"array": name}

    def rng(self, rng, where):
        if id(rng) not in self._rng_index:
            if isinstance(rng, np.random.Generator):
                kind, state = "Generator", rng.bit_generator.state
            elif isinstance(rng, np.random.RandomState):
                kind, state = "RandomState", rng.get_state(legacy=False)
            else:
                raise TypeError(f"cannot save {where}: {type(rng).__name__} is not a numpy Generator or RandomState.")
            if state.get("bit_generator") not in _BIT_GENERATORS:
                raise TypeError(f"cannot save {where}: bit generator {state.get('bit_generator')!r} is not one of "
                                f"{', '.join(_BIT_GENERATORS)}.")
            i = len(self.rngs)
            self.rngs.append({"type": kind, "state": self._tree(state, f"rngs.{i}.state")})
            self._rng_index[id(rng)] = i
        return {"rng": self._rng_index[id(rng)]}

    def _tree(self, value, name):
        if isinstance(value, dict):
            return {k: self._tree(v, f"{name}.{k}") for k, v in value.items()}
        if isinstance(value, np.ndarray):
            return self.array(name, value)
        return _scalar(value, name)


def _from_object(arr, name):
    """An object array of str, bool or int as a unicode, bool or int64 array (restored on load)."""
    items = arr.ravel().tolist()
    if all(isinstance(v, str) for v in items):
        out = np.array(items, dtype=np.str_)
    elif all(isinstance(v, (bool, np.bool_)) for v in items):
        out = np.array(items, dtype=np.bool_)
    elif all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items):
        out = np.array(items, dtype=np.int64)
    else:
        raise TypeError(f"cannot save {name}: an object array must hold only strings, only bools or only "
                        "integers.")
    out = out.reshape(arr.shape)
    if not np.array_equal(out.astype(object), arr):  # e.g. trailing NUL characters, which unicode arrays drop
        raise TypeError(f"cannot save {name}: its values do not survive conversion to {out.dtype}.")
    return out


def _dump_network(net, w, prefix=""):
    """prefix: where in the JSON the network's owner is ("" at the top, "...members.0." for an ensemble's member)."""
    cfg = {name: _plain(getattr(net, name)) for name in net._SAVED_ARGS}
    cfg["random_state"] = w.rng(net._rng, f"{prefix}network.random_state")
    cfg["params"] = w.array(f"{prefix}network.params", net._params)
    cfg.update(_dump_fitted(net, w, f"{prefix}network"))
    return cfg


def _dump_network_ensemble(ens, w):
    """A NetworkEnsemble: its members as networks (their weights, dropout and generators), what each member's
    member_params set, their seeds, the shuffling generator, and the record of the last fit."""
    # (member_params as a fit reads it, checked: it may have been changed in place since, or replaced)
    cfg = {"n_members": ens.n_members,
           "member_params": [{k: _plain(v) for k, v in own.items()} for own in ens._fit_member_params()],
           "seeds_": [int(seed) for seed in ens.seeds_],
           "random_state": w.rng(ens._rng, "network.random_state"),
           "members": [_dump_network(m, w, f"network.members.{k}.") for k, m in enumerate(ens._members)]}
    if hasattr(ens, "loss_curve_"):
        cfg["n_epochs_"] = [int(n) for n in ens.n_epochs_]
        cfg["loss_curve_"] = w.array("network.loss_curve_", np.asarray(ens.loss_curve_, dtype=np.float64))
        cfg["grad_norms_"] = w.array("network.grad_norms_", np.asarray(ens.grad_norms_, dtype=np.float64))
    if hasattr(ens, "validation_loss_curve_"):
        cfg["validation_loss_curve_"] = w.array("network.validation_loss_curve_",
                                                np.asarray(ens.validation_loss_curve_, dtype=np.float64))
    return cfg


def _plain(value):
    """A constructor argument as JSON: names, numbers and lists of them; a dtype by its name."""
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return _scalar(value, "a constructor argument")


def _dump_fitted(model, w, where):
    """The fitted attributes that model's class declares (_SAVED_FITTED), each by its kind's writer (but
    those the model would not use again: _KEPT_IF)."""
    return {attr: _KINDS[kind].dump(getattr(model, attr), w, f"{where}.{attr}", model)
            for attr, (kind, _) in type(model)._SAVED_FITTED.items()
            if hasattr(model, attr) and _KEPT_IF.get(attr, lambda m: True)(model)}


# A schedule's run is written only while partial_fit would go on with it: its schedule and learning_rate_init
# are the estimator's now (set_params since makes the next call start a run of its own, and the run kept
# could not be rebuilt from the parameters the file holds).
_KEPT_IF = {"_lr_run": lambda est: est._lr_run_goes_on()}


def _load_fitted(model, cfg, where, ctx):
    """Set the attributes model's class declares from cfg, each checked by its kind's reader (in the
    declared order: a reader may use those before it); the cross-checks are the caller's."""
    for attr, (kind, _) in type(model)._SAVED_FITTED.items():
        if attr in cfg:
            setattr(model, attr, _KINDS[kind].load(cfg[attr], f"{where}.{attr}", ctx))


def _fitted_keys(cls):
    """(required, optional) keys of cls's fitted attributes in a file."""
    table = cls._SAVED_FITTED
    return (tuple(a for a, (_, required) in table.items() if required),
            tuple(a for a, (_, required) in table.items() if not required))


def _dump_history(history, w, where):
    return {k: w.array(f"{where}.{k}", np.asarray(v, dtype=np.float64)) for k, v in history.items()}


def _dump_dead_units(value, where):
    return None if value is None else [float(_scalar(v, where)) for v in value]


def _encode_param(value, where, w):
    """An estimator parameter as JSON: scalars as they are, lists, {"tuple"}, {"ndarray"}, {"rng"}, {"schedule"};
    a NumPy dtype by its name."""
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        return w.rng(value, where)
    if type(value) in _SCHEDULE_NAMES:
        params = value.get_params(deep=False)
        return {"schedule": _SCHEDULE_NAMES[type(value)],
                "params": {k: _encode_param(v, f"{where}.{k}", w) for k, v in params.items()}}
    if isinstance(value, tuple):
        return {"tuple": [_encode_param(v, f"{where}[{i}]", w) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode_param(v, f"{where}[{i}]", w) for i, v in enumerate(value)]
    if isinstance(value, dict):  # (class_weight, member_params' dicts) as [key, value] pairs: JSON's keys
        # would all be strings; a value as any parameter's (a member's dropout may be a list of rates)
        return {"dict": [[_scalar(k, f"{where} key"), _encode_param(v, f"{where}[{k!r}]", w)]
                         for k, v in value.items()]}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name  # (dtype=np.float32 is kept as "float32", which means the same)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf" or value.ndim != 1:
            raise TypeError(f"cannot save {where}: only 1-D numeric arrays are supported, got {value.dtype} "
                            f"of shape {value.shape}.")
        return {"ndarray": value.tolist(), "dtype": value.dtype.str}
    return _scalar(value, where)


def _dump_estimator(est, w, prefix=""):
    params = {k: _encode_param(v, f"{prefix}estimator.params.{k}", w) for k, v in est.get_params(deep=False).items()}
    if not est.__sklearn_is_fitted__():
        return None, {"params": params, "fitted": None}
    network = _dump_network(est._network, w, prefix) if hasattr(est, "_network") else None  # (an ensemble has none)
    return network, {"params": params, "fitted": _dump_fitted(est, w, f"{prefix}estimator.fitted")}


def _dump_members(members, w, where):
    """An ensemble's estimators_: each member as a top-level estimator's network and estimator, names under where."""
    dumped = []
    for k, member in enumerate(members):
        network, estimator = _dump_estimator(member, w, f"{where}.{k}.")
        dumped.append({"network": network, "estimator": estimator})
    return dumped


def _dump_label_binarizer(lb, w, where, est):
    cfg = {k: _scalar(v, f"{where}.{k}") for k, v in lb.get_params(deep=False).items()}
    cfg["y_type_"] = str(lb.y_type_)
    cfg["sparse_input_"] = bool(lb.sparse_input_)
    cfg["classes_"] = "classes_" if lb.classes_ is est.classes_ else w.array(f"{where}.classes_", lb.classes_)
    return cfg


def _dump_schedule_run(value, where):
    run, epoch = value
    return {"max_epochs": run.max_epochs, "epoch": int(epoch),
            "state": {k: _scalar(v, f"{where}.state.{k}") for k, v in run.get_state().items()}}


def _dump_trainer(trainer, w, where, model=None):
    return {
        "settings": {k: _scalar(v, f"{where}.settings.{k}") for k, v in trainer.settings.items()},
        "state": [w.array(f"{where}.state.{i}", s) for i, s in enumerate(trainer.state)],
    }


# ---------------------------------------------------------------------- load

def load(path):
    """Read a model written by ``save`` (``model.save(path)``).

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    fastmlp.Network, fastmlp.reference.Network, MLPClassifier, MLPRegressor, their ensembles or NetworkEnsemble
        Predicting bit-identically to the saved model and continuing to train
        as it would have (optimizer state and random generators included).

    Raises
    ------
    OSError
        When the file cannot be opened (FileNotFoundError when it is missing).
    ValueError
        When path is not a regular file (a device, a pipe), or the file is not
        a valid fastmlp model file of a version this
        fastmlp reads: truncated, corrupted, or with unexpected, missing or
        ill-typed entries, keys or values. Nothing in the file is imported,
        executed or unpickled.

    See Also
    --------
    save : Write a model file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fastmlp
    >>> net = fastmlp.Network([2, 3, 1], random_state=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "net.fastmlp")
    ...     net.save(path)
    ...     loaded = fastmlp.load(path)
    >>> loaded
    Network([2, 3, 1], activation='relu', output_activation='identity', loss='squared_error', dtype='float64')
    >>> X = np.ones((3, 2))
    >>> bool((loaded.predict(X) == net.predict(X)).all())
    True
    """
    path = _check_path(path)
    if os.path.exists(path) and not os.path.isdir(path) and not os.path.isfile(path):
        # (a device or a pipe: reading one to its end may never end, or fill the memory)
        raise ValueError(f"cannot load {path!r}: not a regular file.")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            return _load(f, size)
        except _FILE_ERRORS as exc:
            raise ValueError(f"cannot load {path!r}, not a valid fastmlp model file: {exc}") from exc


def _load(f, size):
    with zipfile.ZipFile(f) as zf:
        ar = _Archive(zf, size)
        cfg = ar.config()
        _fields(cfg, "config.json", ("format", "version"), optional=None)
        if cfg["format"] != FORMAT:
            raise ValueError(f"config.json: format is {cfg['format']!r}, expected {FORMAT!r}.")
        version = check_int(cfg["version"], "config.json: version", 1)
        if version > VERSION:
            raise ValueError(f"format version {version} is newer than this fastmlp reads ({VERSION}); "
                             "upgrade fastmlp to load it.")
        kind = cfg.get("model")
        if not isinstance(kind, str) or kind not in MODELS:
            raise ValueError(f"config.json: model is {kind!r}, expected one of {', '.join(map(repr, MODELS))}.")
        cls = MODELS[kind]
        is_network = issubclass(cls, (BaseNetwork, NetworkEnsemble))
        keys = ("format", "version", "written_by", "model", "object_arrays", "rngs", "network")
        _fields(cfg, "config.json", keys if is_network else keys + ("estimator",))
        _string(cfg["written_by"], "written_by")
        ar.set_object_arrays(cfg["object_arrays"])
        rngs = _Rngs(cfg["rngs"], ar)
        if cls is NetworkEnsemble:
            model = _load_network_ensemble(cfg["network"], ar, rngs)
        elif is_network:
            model = _load_network(cfg["network"], ar, cls, rngs)
        else:
            model = _load_estimator(cls, cfg, ar, rngs)
        ar.finish()
        rngs.finish()
        return model


def _fields(d, where, required, optional=()):
    """d must be a JSON object with the required keys and no others (optional=None: others allowed)."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(d).__name__}.")
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(map(repr, missing))}.")
    if optional is not None:
        extra = sorted(set(d) - set(required) - set(optional))
        if extra:
            raise ValueError(f"{where} has unexpected keys {', '.join(map(repr, extra))}.")
    return d


def _string(value, where, choices=None):
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {value!r}.")
    if choices is not None and value not in choices:
        raise ValueError(f"{where} is {value!r}, expected one of {', '.join(map(repr, choices))}.")
    return value


def _real(value, where, optional=False):
    """A JSON number (infinity and NaN allowed) as float, or None when optional."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number{' or null' if optional else ''}, got {value!r}.")
    return float(value)


def _no_duplicate_keys(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        raise ValueError(f"config.json repeats a key in {[k for k, _ in pairs]}.")
    return d


class _Archive:
    """The zip file: its config.json and its arrays, each checked before it is read."""

    def __init__(self, zf, size):
        self.zf = zf
        infos = zf.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise ValueError("the archive repeats an entry name.")
        for info in infos:
            if info.filename != _CONFIG and not info.filename.endswith(".npy"):
                raise ValueError(f"unexpected entry {info.filename!r}: a fastmlp file holds {_CONFIG} and .npy "
                                 "arrays only.")
            if info.flag_bits & 0x1:
                raise ValueError(f"entry {info.filename!r} is encrypted.")
            # Stored entries no larger than the file: sizes, and so allocations, are bounded by the file.
            if (info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size
                    or info.file_size > size):
                raise ValueError(f"entry {info.filename!r} is compressed or has an impossible size; fastmlp "
                                 "files store their entries uncompressed.")
        self.infos = {info.filename: info for info in infos}
        self.unread = {name[:-4] for name in names if name.endswith(".npy")}
        self.object_arrays = set()

    def config(self):
        info = self.infos.get(_CONFIG)
        if info is None:
            raise ValueError(f"{_CONFIG} is missing.")
        if info.file_size > _MAX_CONFIG_BYTES:
            raise ValueError(f"{_CONFIG} is {info.file_size} bytes; at most {_MAX_CONFIG_BYTES} are expected.")
        raw = self.zf.read(info)
        try:
            cfg = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{_CONFIG} is not valid JSON: {exc}") from exc
        if not isinstance(cfg, dict):
            raise ValueError(f"{_CONFIG} must hold a JSON object, got {type(cfg).__name__}.")
        return cfg

    def set_object_arrays(self, names):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"object_arrays must be a list of array names, got {names!r}.")
        for name in names:
            if name not in self.unread:
                raise ValueError(f"object_arrays names {name!r}, which is not an array of the file.")
        self.object_arrays = set(names)

    def _open(self, ref, name):
        if ref != {"array": name}:
            raise ValueError(f"{name} must be {{'array': {name!r}}}, got {ref!r}.")
        info = self.infos.get(name + ".npy")
        if info is None or name not in self.unread:
            raise ValueError(f"array {name!r} is missing.")
        return info

    def _header(self, f, name):
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version}; 1.0 or 2.0 is expected")
        except ValueError as exc:
            raise ValueError(f"array {name!r} is not a valid .npy entry: {exc}") from exc
        if dtype.hasobject:
            raise ValueError(f"array {name!r} holds Python objects (dtype {dtype}); fastmlp files hold no pickled "
                             "data.")
        return shape, dtype, f.tell()

    def header(self, ref, name):
        """(shape, dtype) of an array, without reading its data."""
        info = self._open(ref, name)
        with self.zf.open(info) as f:
            shape, dtype, _ = self._header(f, name)
        return shape, dtype

    def array(self, ref, name, dtype, shape=None, ndim=None):
        """The array `name` (referred to as ref); dtype: allowed kinds ("fiu") or an exact np.dtype.

        The header is checked (kind, itemsize, shape, size against the entry)
        before the data is read with allow_pickle=False.
        """
        info = self._open(ref, name)
        restore_object = name in self.object_arrays
        if restore_object:  # only labels and names were object arrays
            if not isinstance(dtype, str) or "U" not in dtype:
                raise ValueError(f"object_arrays names {name!r}, which cannot be an object array.")
            dtype = "Ubi"
        with self.zf.open(info) as f:
            shape_, dtype_, header_size = self._header(f, name)
            if isinstance(dtype, str):
                ok = dtype_.kind in dtype
                expected = f"kind {dtype!r}"
            else:
                dtype = np.dtype(dtype)
                ok = dtype_.kind == dtype.kind and dtype_.itemsize == dtype.itemsize
                expected = str(dtype)
            if not ok or dtype_.fields is not None or dtype_.subdtype is not None:
                raise ValueError(f"array {name!r} has dtype {dtype_}, expected {expected}.")
            if shape is not None and tuple(shape_) != tuple(shape):
                raise ValueError(f"array {name!r} has shape {shape_}, expected {tuple(shape)}.")
            if ndim is not None and len(shape_) != ndim:
                raise ValueError(f"array {name!r} has shape {shape_}, expected {ndim} dimension(s).")
            if header_size + math.prod(shape_) * dtype_.itemsize != info.file_size:
                raise ValueError(f"array {name!r}: its entry has {info.file_size} bytes, its header says "
                                 f"{header_size + math.prod(shape_) * dtype_.itemsize}.")
            f.seek(0)
            arr = np.lib.format.read_array(f, allow_pickle=False)
            f.read()  # to the end of the entry, where zipfile checks the CRC
        self.unread.discard(name)
        arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
        if restore_object:
            arr = arr.astype(object)
        return np.ascontiguousarray(arr)

    def finish(self):
        if self.unread:
            raise ValueError(f"unexpected arrays {', '.join(map(repr, sorted(self.unread)))}.")


class _Rngs:
    """The file's random generators, rebuilt from checked states; each must be used."""

    def __init__(self, items, ar):
        if not isinstance(items, list):
            raise ValueError(f"rngs must be a list, got {type(items).__name__}.")
        self.rngs = [self._build(item, f"rngs.{i}", ar) for i, item in enumerate(items)]
        self.used = set()

    @staticmethod
    def _build(item, where, ar):
        _fields(item, where, ("type", "state"))
        kind = _string(item["type"], f"{where}.type", ("Generator", "RandomState"))
        state = _fields(item["state"], f"{where}.state", ("bit_generator",), optional=None)
        name = _string(state["bit_generator"], f"{where}.state.bit_generator", tuple(_BIT_GENERATORS))
        bit_generator, layout = _BIT_GENERATORS[name]
        layout = dict(layout, **(_GAUSS if kind == "RandomState" else {}))
        value = {"bit_generator": name, **_decode_layout(state, layout, f"{where}.state", ar, ("bit_generator",))}
        if kind == "Generator":
            bg = bit_generator()
            bg.state = value
            return np.random.Generator(bg)
        rng = np.random.RandomState(bit_generator())
        rng.set_state(value)
        return rng

    def get(self, ref, where):
        if not isinstance(ref, dict) or set(ref) != {"rng"}:
            raise ValueError(f"{where} must be {{'rng': <index>}}, got {ref!r}.")
        i = check_int(ref["rng"], f"{where}.rng", 0, len(self.rngs) - 1)
        self.used.add(i)
        return self.rngs[i]

    def finish(self):
        unused = sorted(set(range(len(self.rngs))) - self.used)
        if unused:
            raise ValueError(f"rngs {unused} are not used by the model.")


def _decode_layout(value, layout, where, ar, extra_keys=()):
    if isinstance(layout, dict):
        _fields(value, where, tuple(layout) + extra_keys)
        return {k: _decode_layout(value[k], spec, f"{where}.{k}", ar) for k, spec in layout.items()}
    if layout[0] == "int":
        return check_int(value, where, layout[1], layout[2])
    if layout[0] == "float":
        return check_float(value, where)
    return ar.array(value, where, layout[1], shape=layout[2])


def _checked_params(arr, net, name):
    """A flat parameter-sized array of the network's dtype with finite values."""
    if arr.dtype.itemsize != net.dtype.itemsize:
        raise ValueError(f"array {name!r} has dtype {arr.dtype}, but the network is {net.dtype}.")
    check_finite(arr, name)
    return arr.astype(net.dtype, copy=False)


def _load_network(cfg, ar, cls, rngs, prefix=""):
    where = f"{prefix}network"
    required, optional = _fitted_keys(cls)
    # (files written before an argument existed leave it out: _ARGS_SINCE gives its value for them)
    args = tuple(name for name in cls._SAVED_ARGS if name not in cls._ARGS_SINCE)
    _fields(cfg, where, args + ("random_state", "params") + required, optional + tuple(cls._ARGS_SINCE))
    try:
        sizes = cls._check_layer_sizes(cfg["layer_sizes"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    # Before the constructor allocates: the stored parameters (bounded by the
    # file's size) must be at least the weights and biases of layer_sizes.
    shape, _ = ar.header(cfg["params"], f"{where}.params")
    n_weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if len(shape) != 1 or shape[0] < n_weights:
        raise ValueError(f"array '{where}.params' has shape {shape}, but layer_sizes {list(sizes)} need a 1-D "
                         f"array of at least {n_weights} parameters.")
    try:
        net = cls(sizes, **{name: cfg.get(name, cls._ARGS_SINCE.get(name)) for name in cls._SAVED_ARGS[1:]},
                  random_state=0)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    params = ar.array(cfg["params"], f"{where}.params", "f", shape=(net.n_params_,))
    np.copyto(net._params, _checked_params(params, net, f"{where}.params"))
    net._rng = rngs.get(cfg["random_state"], f"{where}.random_state")
    _load_fitted(net, cfg, where, _Context(ar, rngs, net, net))
    # cross-checks: fit records loss_curve_ and grad_norms_ together, history_ beside them
    if hasattr(net, "loss_curve_") != hasattr(net, "grad_norms_"):
        raise ValueError(f"{where} has one of 'loss_curve_' and 'grad_norms_' without the other.")
    if hasattr(net, "loss_curve_"):
        # (an early-stopping fit, whose validation is in history_, records the epoch that diverged as NaN)
        _check_record(net.loss_curve_, net.grad_norms_, where, net.n_layers_,
                      diverged="val_score" in getattr(net, "history_", {}))
    if hasattr(net, "history_"):
        if not hasattr(net, "loss_curve_"):
            raise ValueError(f"{where} has 'history_' without 'loss_curve_'.")
        net.history_ = _load_history(ar, net.history_, f"{where}.history_", net.loss_curve_)
        if "val_loss" in net.history_:
            net.validation_loss_curve_ = list(net.history_["val_loss"])
    return net


# What the members of a NetworkEnsemble share (its constructor's arguments but dropout).
_ENSEMBLE_SHARED = ("layer_sizes", "activation", "output_activation", "loss", "init", "dtype", "loss_param")


def _load_network_ensemble(cfg, ar, rngs):
    """A NetworkEnsemble: K member networks that agree on everything but their weights, dropout and
    generators, with member_params and seeds_ that match them, and the record of the last fit."""
    where = "network"
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} must be an object, got {type(cfg).__name__}.")
    _fields(cfg, where, ("n_members", "member_params", "seeds_", "random_state", "members"),
            ("n_epochs_", "loss_curve_", "grad_norms_", "validation_loss_curve_"))
    K = check_int(cfg["n_members"], f"{where}.n_members", 1)
    try:
        member_params = check_member_params(cfg["member_params"], K)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}.{exc}") from exc
    seeds, members = cfg["seeds_"], cfg["members"]
    if not isinstance(seeds, list) or len(seeds) != K:
        raise ValueError(f"{where}.seeds_ must list n_members={K} seeds.")
    seeds = [check_int(seed, f"{where}.seeds_.{k}", 0) for k, seed in enumerate(seeds)]
    for k, own in enumerate(member_params):
        if "random_state" in own and own["random_state"] != seeds[k]:
            raise ValueError(f"{where}.seeds_.{k} is {seeds[k]}, but member_params[{k}] sets random_state "
                             f"{own['random_state']}.")
    if not isinstance(members, list) or len(members) != K:
        raise ValueError(f"{where}.members must list n_members={K} networks.")
    nets = [_load_network(m, ar, Network, rngs, f"{where}.members.{k}.") for k, m in enumerate(members)]
    for k, net in enumerate(nets):
        if hasattr(net, "loss_curve_"):
            raise ValueError(f"{where}.members.{k} has a loss curve of its own; the ensemble keeps its members'.")
        differing = [name for name in _ENSEMBLE_SHARED
                     if not np.array_equal(np.asarray(getattr(net, name), dtype=object),
                                           np.asarray(getattr(nets[0], name), dtype=object))]
        if differing:
            raise ValueError(f"{where}.members.{k} differs from member 0 in {differing}; an ensemble's members "
                             "share them.")
    ens = NetworkEnsemble.__new__(NetworkEnsemble)
    ens.n_members, ens.member_params, ens.seeds_, ens._members = K, member_params, tuple(seeds), nets
    ens._rng = rngs.get(cfg["random_state"], f"{where}.random_state")
    ens._adopt_members()
    try:  # (member_params' dropout: the members' own, as every fit checks it)
        ens._fit_member_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}.{exc}") from exc
    if ("loss_curve_" in cfg) != ("grad_norms_" in cfg):
        raise ValueError(f"{where} has one of 'loss_curve_' and 'grad_norms_' without the other.")
    if "n_epochs_" in cfg and "loss_curve_" not in cfg:
        raise ValueError(f"{where} has 'n_epochs_' without 'loss_curve_'.")
    if "loss_curve_" in cfg:
        losses = ar.array(cfg["loss_curve_"], f"{where}.loss_curve_", "f", ndim=2)
        norms = ar.array(cfg["grad_norms_"], f"{where}.grad_norms_", "f", ndim=3)
        if losses.shape[0] != K or norms.shape != (K, losses.shape[1], len(nets[0].layer_sizes) - 1):
            raise ValueError(f"arrays '{where}.loss_curve_' {losses.shape} and '{where}.grad_norms_' {norms.shape} "
                             f"do not fit {K} members of {len(nets[0].layer_sizes) - 1} layers.")
        counts = cfg.get("n_epochs_", [losses.shape[1]] * K)  # (files from before early stopping: every epoch)
        if not isinstance(counts, list) or len(counts) != K:
            raise ValueError(f"{where}.n_epochs_ must list n_members={K} counts of epochs.")
        counts = np.array([check_int(n, f"{where}.n_epochs_.{k}", 0, losses.shape[1]) for k, n in enumerate(counts)],
                          dtype=np.intp)
        if K and counts.max() != losses.shape[1]:
            raise ValueError(f"{where}.n_epochs_ {counts.tolist()} does not fit its loss curves of "
                             f"{losses.shape[1]} epochs: they end with the longest.")
        for k, n in enumerate(counts):
            _check_record(losses[k, :n], norms[k, :n], f"{where}.members.{k}", norms.shape[2], diverged=True)
            if not (np.isnan(losses[k, n:]).all() and np.isnan(norms[k, n:]).all()):
                raise ValueError(f"arrays '{where}.loss_curve_' and '{where}.grad_norms_' of member {k} go on "
                                 f"after its n_epochs_ ({n}): NaN there.")
        ens.n_epochs_ = counts
        ens.loss_curve_, ens.grad_norms_ = losses.astype(np.float64), norms.astype(np.float64)
    if "validation_loss_curve_" in cfg:
        val = ar.array(cfg["validation_loss_curve_"], f"{where}.validation_loss_curve_", "f", ndim=2)
        if "loss_curve_" not in cfg or val.shape != ens.loss_curve_.shape:
            raise ValueError(f"array '{where}.validation_loss_curve_' {val.shape} does not fit the loss curve "
                             f"{ens.loss_curve_.shape if 'loss_curve_' in cfg else '(none)'}: one value per member "
                             "and epoch.")
        ens.validation_loss_curve_ = val.astype(np.float64)
    return ens


class _Context(NamedTuple):
    """What the readers of _KINDS may use: the archive, the random generators, the network, the model."""
    ar: object
    rngs: object
    net: object
    model: object


def _load_history(ar, cfg, where, loss_curve):
    """history_ as a fit records it: per epoch of loss_curve_ (its loss, the same numbers), the learning
    rate (> 0; NaN for L-BFGS), seconds (>= 0; NaN for a diverged epoch), and val_loss and val_score
    together or not at all (NaN where there was no validation or the predictions were not finite; the
    score minus infinity where their error overflows)."""
    keys = new_history(validation=isinstance(cfg, dict) and "val_loss" in cfg)
    _fields(cfg, where, tuple(keys))
    n = len(loss_curve)
    history = {k: ar.array(cfg[k], f"{where}.{k}", np.float64, shape=(n,)).tolist() for k in keys}
    if not np.array_equal(history["loss"], loss_curve, equal_nan=True):
        raise ValueError(f"array '{where}.loss' differs from loss_curve_.")
    for key, low in (("learning_rate", 0.0), ("seconds", 0.0)):
        values = np.asarray(history[key])
        if not (np.isnan(values) | (np.isfinite(values) & (values >= low))).all():
            raise ValueError(f"array '{where}.{key}' must hold finite numbers >= {low} or NaN.")
    # (a score may be minus infinity: an R^2 whose squared errors overflow, see _validation_scores)
    for key, bad in (("val_loss", np.isinf), ("val_score", lambda v: np.asarray(v) == np.inf)):
        if key in history and bad(history[key]).any():
            raise ValueError(f"array '{where}.{key}' contains infinity.")
    return history


def _check_record(losses, norms, where, n_layers, diverged=False):
    """loss_curve_ and grad_norms_ as fit records them: a finite loss per epoch, and per epoch a
    finite norm >= 0 per layer; with diverged, an epoch may be a diverged one (NaN loss and norms,
    as an early-stopping fit records the epoch it returned from: the last of its call, which later
    calls of a warm start or partial_fit may follow)."""
    losses = np.asarray(losses, dtype=np.float64)
    if norms.shape != (len(losses), n_layers):
        raise ValueError(f"array '{where}.grad_norms_' has shape {norms.shape}, expected {(len(losses), n_layers)} "
                         "(one row per entry of loss_curve_, one column per layer).")
    kept = ~(np.isnan(losses) & np.isnan(norms).all(axis=1)) if diverged else np.ones(len(losses), dtype=bool)
    check_finite(losses[kept], f"array '{where}.loss_curve_'")
    check_finite(norms[kept], f"array '{where}.grad_norms_'")
    if (norms[kept] < 0).any():
        raise ValueError(f"array '{where}.grad_norms_' has negative norms.")


def _validation_scores(scores, name, n_epochs):
    """None, or at most one score per epoch: accuracy or R^2, NaN where the predictions were not finite
    (as scikit-learn records them), minus infinity where finite predictions' error overflows (an R^2 of
    outputs near the dtype's largest number), never plus infinity."""
    if scores is None:
        return None
    if len(scores) > n_epochs:
        raise ValueError(f"array {name!r} has {len(scores)} scores, more than the {n_epochs} epochs of "
                         "loss_curve_.")
    if (np.asarray(scores) == np.inf).any():
        raise ValueError(f"array {name!r} contains infinity.")
    return scores.tolist()


def _load_dead_units(value, where, net):
    """None, or one fraction in [0, 1] per hidden layer."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != net.n_layers_ - 1:
        raise ValueError(f"{where} must be null or a list of {net.n_layers_ - 1} fractions, got {value!r}.")
    return [check_float(v, f"{where}[{i}]", 0.0, 1.0) for i, v in enumerate(value)]


def _decode_param(value, where, rngs, depth=0):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) and set(value) == {"schedule", "params"}:
        cls = SCHEDULES.get(value["schedule"]) if isinstance(value["schedule"], str) else None
        if cls is None:
            raise ValueError(f"{where}.schedule is {value['schedule']!r}, expected one of "
                             f"{', '.join(map(repr, SCHEDULES))}.")
        if depth >= _MAX_SCHEDULE_DEPTH:
            raise ValueError(f"{where}: schedules nested more than {_MAX_SCHEDULE_DEPTH} deep.")
        params = _fields(value["params"], f"{where}.params", tuple(cls().get_params(deep=False)))
        return cls(**{k: _decode_param(v, f"{where}.params.{k}", rngs, depth + 1) for k, v in params.items()})
    if isinstance(value, list):
        return [_decode_param(v, f"{where}[{i}]", rngs) for i, v in enumerate(value)]
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_decode_param(v, f"{where}[{i}]", rngs) for i, v in enumerate(value["tuple"]))
    if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
        dtype = np.dtype(_string(value["dtype"], f"{where}.dtype"))
        items = value["ndarray"]
        if dtype.kind not in "biuf" or not isinstance(items, list) or not all(
                isinstance(v, (bool, int, float)) for v in items):
            raise ValueError(f"{where} must be a list of numbers with a numeric dtype, got {value!r}.")
        return np.array(items, dtype=dtype)
    if isinstance(value, dict) and set(value) == {"rng"}:
        return rngs.get(value, where)
    if isinstance(value, dict) and set(value) == {"dict"} and isinstance(value["dict"], list) and all(
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], (type(None), bool, int, float, str))
            for item in value["dict"]):
        return {k: _decode_param(v, f"{where}[{k!r}]", rngs) for k, v in value["dict"]}
    raise ValueError(f"{where}: {value!r} is not a valid parameter value.")


def _load_estimator(cls, cfg, ar, rngs, prefix=""):
    _fields(cfg["estimator"], f"{prefix}estimator", ("params", "fitted"))
    names = tuple(cls().get_params(deep=False))
    params = _fields(cfg["estimator"]["params"], f"{prefix}estimator.params", names)
    est = cls(**{k: _decode_param(v, f"{prefix}estimator.params.{k}", rngs) for k, v in params.items()})
    try:
        est._validate_params()
        if not isinstance(est.learning_rate, str):  # a schedule checks its parameters when it starts
            try:
                est.learning_rate.start(est.learning_rate_init, est.max_iter)
            except (TypeError, ValueError):
                # (as partial_fit starts it, open-ended: a schedule whose parameters are good but do not fit
                # max_iter, which fit would refuse, was taken by partial_fit or set since, and saved)
                est.learning_rate.start(est.learning_rate_init, None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{prefix}estimator.params: {exc}") from exc
    fitted = cfg["estimator"]["fitted"]
    ensemble = hasattr(cls, "_member_class")
    if fitted is None or ensemble:  # (an ensemble's networks are its members')
        if cfg["network"] is not None:
            raise ValueError(f"{prefix}network must be null for an unfitted estimator or an ensemble, got "
                             f"{type(cfg['network']).__name__}.")
        if fitted is None:
            return est
    where = f"{prefix}estimator.fitted"
    _fields(fitted, where, *_fitted_keys(cls))
    if ensemble:
        _load_fitted(est, fitted, where, _Context(ar, rngs, None, est))
        _check_ensemble_record(est, where)
        return est
    net = est._network = _load_network(cfg["network"], ar, Network, rngs, prefix)
    _load_fitted(est, fitted, where, _Context(ar, rngs, net, est))
    _check_estimator_record(est, where, ar)
    return est


def _load_members(cfg, where, ctx):
    """An ensemble's estimators_, each member read as a top-level estimator of the ensemble's member class."""
    ens = ctx.model
    # (as many as the fit made: n_members, a parameter, may have been set to another number since)
    if not isinstance(cfg, list) or not cfg:
        raise ValueError(f"{where} must list the fitted members, got {type(cfg).__name__} "
                         f"of {len(cfg) if isinstance(cfg, list) else 'no'} items.")
    members = []
    for k, member in enumerate(cfg):
        _fields(member, f"{where}.{k}", ("network", "estimator"))
        est = _load_estimator(ens._member_class, member, ctx.ar, ctx.rngs, f"{where}.{k}.")
        if not est.__sklearn_is_fitted__():
            raise ValueError(f"{where}.{k} is not fitted.")
        members.append(est)
    return members


def _check_ensemble_record(ens, where):
    """The members agree with each other and with the ensemble: features, network sizes, dtype, labels."""
    first = ens.estimators_[0]
    for k, member in enumerate(ens.estimators_):
        if (member.n_features_in_ != ens.n_features_in_ or member._network.layer_sizes != first._network.layer_sizes
                or member._network.dtype != first._network.dtype or hasattr(member, "feature_names_in_")):
            raise ValueError(f"{where}.estimators_.{k} does not fit the ensemble: every member takes its "
                             f"n_features_in_={ens.n_features_in_} features (without names) in one network shape "
                             "and dtype.")
        if is_classifier(ens) and not np.array_equal(member.classes_, first.classes_):
            raise ValueError(f"{where}.estimators_.{k} has classes {member.classes_!r}, member 0 {first.classes_!r}.")
    if ens.best_index_ >= len(ens.estimators_):
        raise ValueError(f"{where}.best_index_ is {ens.best_index_}, but there are {len(ens.estimators_)} members.")
    ens._from_members()


def _check_estimator_record(est, where, ar):
    """The cross-checks of an estimator's fitted attributes: with each other and with the network."""
    net = est._network
    sizes = list(net.layer_sizes)
    for attr, expected in (("n_features_in_", sizes[0]), ("n_outputs_", sizes[-1]), ("n_layers_", len(sizes))):
        if getattr(est, attr) != expected:
            raise ValueError(f"{where}.{attr} is {getattr(est, attr)}, but the network's layer_sizes {sizes} "
                             f"give {expected}.")
    _string(est.out_activation_, f"{where}.out_activation_", (net.output_activation,))
    # an early-stopping fit that diverged records that epoch as NaN: its loss, norms and score
    _check_record(est.loss_curve_, est.grad_norms_, where, est.n_layers_ - 1,
                  diverged=est.validation_scores_ is not None)
    est.validation_scores_ = _validation_scores(est.validation_scores_, f"{where}.validation_scores_",
                                                len(est.loss_curve_))
    nan_epochs = np.flatnonzero(np.isnan(np.asarray(est.loss_curve_, dtype=np.float64)))
    diverged = bool(nan_epochs.size) and nan_epochs[-1] == len(est.loss_curve_) - 1  # (its last epoch)
    # (scores and epochs line up while early stopping stayed on; switched between calls, they do not, and the
    # diverged epoch's NaN loss and norms mark it alone)
    if nan_epochs.size and len(est.validation_scores_) == len(est.loss_curve_) \
            and not np.isnan(np.asarray(est.validation_scores_)[nan_epochs]).all():
        raise ValueError(f"array '{where}.loss_curve_' contains NaN or infinity, and not as the record of a "
                         "diverged epoch (NaN validation score).")
    if hasattr(est, "history_"):
        est.history_ = _load_history(ar, est.history_, f"{where}.history_", est.loss_curve_)
        if "val_loss" in est.history_:
            est.validation_loss_curve_ = list(est.history_["val_loss"])
    else:  # a version 1 file: the losses only
        est.history_ = new_history(validation=False)
        est.history_["loss"] = list(est.loss_curve_)
        est.history_["learning_rate"] = [np.nan] * len(est.loss_curve_)
        est.history_["seconds"] = [np.nan] * len(est.loss_curve_)
    # best_loss_: inf before the first epoch, None with early stopping (sgd, adam);
    # best_validation_score_: -inf before the first score, None without early stopping.
    if est.best_loss_ is not None and not (np.isfinite(est.best_loss_) or
                                           (est.best_loss_ == np.inf and not est.loss_curve_)):
        raise ValueError(f"{where}.best_loss_ is {est.best_loss_}, expected a finite number (or infinity "
                         "before the first epoch).")
    best = est.best_validation_score_
    if (best is None) != (est.validation_scores_ is None) or (best is not None and not best < np.inf):
        raise ValueError(f"{where}.best_validation_score_ is {best}, expected null without validation scores, "
                         "else a finite number (-infinity before the first score).")
    loss = getattr(est, "loss_", None)
    if loss is not None and not (np.isfinite(loss) or (diverged and np.isnan(loss))):
        raise ValueError(f"{where}.loss_ is {loss}, expected a finite number (NaN after divergence).")
    if is_classifier(est):
        _check_classes(est, f"{where}._label_binarizer")


def _load_schedule_run(cfg, where, est):
    """(run, next epoch) of the estimator's learning_rate schedule, continued from its saved state."""
    if isinstance(est.learning_rate, str):
        raise ValueError(f"{where}: a schedule's run, but learning_rate is {est.learning_rate!r}.")
    _fields(cfg, where, ("max_epochs", "epoch", "state"))
    max_epochs = None if cfg["max_epochs"] is None else check_int(cfg["max_epochs"], f"{where}.max_epochs", 1)
    epoch = check_int(cfg["epoch"], f"{where}.epoch", 0)
    state = cfg["state"]
    if not isinstance(state, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in state.values()):
        raise ValueError(f"{where}.state must be a JSON object of numbers, got {state!r}.")
    try:
        run = est.learning_rate.start(est.learning_rate_init, max_epochs)
        run.set_state(state)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return run, epoch


def _labels(ar, ref, name):
    classes = ar.array(ref, name, "biufUS", ndim=1)
    if classes.size == 0 or not np.array_equal(np.unique(classes), classes):
        raise ValueError(f"array {name!r} must hold distinct labels in sorted order, got {classes!r}.")
    return classes


def _load_label_binarizer(cfg, lw, ctx):
    cfg = _fields(cfg, lw, _LB_PARAMS + ("y_type_", "sparse_input_", "classes_"))
    lb = LabelBinarizer(**{k: cfg[k] for k in _LB_PARAMS})
    try:
        lb._validate_params()
    except ValueError as exc:
        raise ValueError(f"{lw}: {exc}") from exc
    if (lb.neg_label, lb.pos_label, lb.sparse_output) != (0, 1, False):  # (what every fit's LabelBinarizer() has)
        raise ValueError(f"{lw}: a fit's label binarizer has neg_label=0, pos_label=1 and sparse_output=False, got "
                         f"{lb.neg_label}, {lb.pos_label} and {lb.sparse_output}.")
    lb.y_type_ = _string(cfg["y_type_"], f"{lw}.y_type_", _LB_TYPES)
    lb.sparse_input_ = check_bool(cfg["sparse_input_"], f"{lw}.sparse_input_")
    lb.classes_ = (ctx.model.classes_ if cfg["classes_"] == "classes_" else
                   _labels(ctx.ar, cfg["classes_"], f"{lw}.classes_"))
    return lb


def _check_classes(est, lw):
    """Predictions index classes_ by output: the label encoding must fit the network."""
    lb = est._label_binarizer
    n_labels, n_outputs = len(lb.classes_), est.n_outputs_
    fits = n_outputs == 1 and n_labels <= 2 if lb.y_type_ == "binary" else n_outputs == n_labels
    if not fits or len(est.classes_) != n_labels or est._output_activation() != est.out_activation_:
        raise ValueError(f"{lw}: {lb.y_type_} labels {lb.classes_!r} (classes_ {est.classes_!r}) do not fit a "
                         f"network with {n_outputs} {est.out_activation_} output(s).")


def _load_trainer(cfg, where, ar, net):
    _fields(cfg, where, ("settings", "state"))
    settings = _fields(cfg["settings"], f"{where}.settings", _TRAINER_ARGS + ("dropout", "step", "seed"))
    try:
        trainer = Trainer(net, **{k: settings[k] for k in _TRAINER_ARGS})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}.settings: {exc}") from exc
    if set(settings) != set(trainer.settings):
        raise ValueError(f"{where}.settings has keys {sorted(settings)}, expected {sorted(trainer.settings)}.")
    dropout = check_bool(settings["dropout"], f"{where}.settings.dropout")
    if dropout != trainer.settings["dropout"]:
        raise ValueError(f"{where}.settings.dropout is {dropout}, but the network's dropout makes it "
                         f"{trainer.settings['dropout']}.")
    trainer.settings["step"] = check_int(settings["step"], f"{where}.settings.step", 0)
    trainer.settings["seed"] = check_int(settings["seed"], f"{where}.settings.seed", 0, 2**63 - 1)
    state = cfg["state"]
    if not isinstance(state, list) or len(state) != len(trainer.state):
        raise ValueError(f"{where}.state must list {len(trainer.state)} arrays for optimizer "
                         f"{trainer.settings['optimizer']!r}, got {state!r}.")
    for i, (ref, buffer) in enumerate(zip(state, trainer.state)):
        name = f"{where}.state.{i}"
        np.copyto(buffer, _checked_params(ar.array(ref, name, "f", shape=buffer.shape), net, name))
    if trainer.settings["optimizer"] == "adam" and (trainer.state[1] < 0).any():  # (squares' moving average)
        raise ValueError(f"array '{where}.state.1' (Adam's second moments) has negative values.")
    return trainer


class _Kind(NamedTuple):
    dump: Callable  # (value, writer, where, model) -> JSON
    load: Callable  # (JSON, where, _Context) -> value, checked on its own (cross-checks come after)


def _array_kind(kinds, ndim, dtype=np.float64):
    return _Kind(lambda v, w, where, m: w.array(where, np.asarray(v, dtype=dtype)),
                 lambda v, where, c: c.ar.array(v, where, kinds, ndim=ndim))


# How each kind of fitted attribute is written and read; the classes declare
# which attribute is of which kind (_SAVED_FITTED).
_KINDS = {
    "count": _Kind(lambda v, w, where, m: int(v), lambda v, where, c: check_int(v, where, 0)),
    "name": _Kind(lambda v, w, where, m: str(v), lambda v, where, c: _string(v, where)),
    "number": _Kind(lambda v, w, where, m: None if v is None else float(v),
                    lambda v, where, c: _real(v, where, optional=True)),
    "curve": _Kind(lambda v, w, where, m: w.array(where, np.asarray(v, dtype=np.float64)),
                   lambda v, where, c: c.ar.array(v, where, "f", ndim=1).tolist()),
    "norms": _array_kind(np.float64, 2),
    "scores": _Kind(lambda v, w, where, m: None if v is None else w.array(where, np.asarray(v, dtype=np.float64)),
                    lambda v, where, c: None if v is None else c.ar.array(v, where, "f", ndim=1)),
    "rng": _Kind(lambda v, w, where, m: w.rng(v, where), lambda v, where, c: c.rngs.get(v, where)),
    "names": _Kind(lambda v, w, where, m: w.array(where, v),
                   lambda v, where, c: c.ar.array(v, where, "U", shape=(c.model.n_features_in_,))),
    "params": _Kind(lambda v, w, where, m: w.array(where, v),
                    lambda v, where, c: _checked_params(c.ar.array(v, where, "f", shape=c.net._params.shape),
                                                        c.net, where).copy()),
    "trainer": _Kind(_dump_trainer, lambda v, where, c: _load_trainer(v, where, c.ar, c.net)),
    "fractions": _Kind(lambda v, w, where, m: _dump_dead_units(v, where),
                       lambda v, where, c: _load_dead_units(v, where, c.net)),
    "history": _Kind(lambda v, w, where, m: _dump_history(v, w, where),
                     lambda v, where, c: v),  # read with loss_curve_, in the cross-checks
    "schedule run": _Kind(lambda v, w, where, m: _dump_schedule_run(v, where),
                          lambda v, where, c: _load_schedule_run(v, where, c.model)),
    "labels": _Kind(lambda v, w, where, m: w.array(where, v), lambda v, where, c: _labels(c.ar, v, where)),
    "label binarizer": _Kind(_dump_label_binarizer, _load_label_binarizer),
    "members": _Kind(lambda v, w, where, m: _dump_members(v, w, where), _load_members),
}
