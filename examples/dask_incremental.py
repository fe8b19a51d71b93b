"""Dask: train a fastmlp.MLPClassifier on chunks of a data set that never sits in memory at once.
==============================================================================================

The data set is generated lazily with dask.array: 2,000,000 rows of 20
standard-normal features in chunks of 50,000 rows, and a label computed from
them, chunk by chunk (a rule no straight line separates: the sign of
x0 * x1 + x2 / 2). Nothing is computed when the arrays are defined; a worker
makes a chunk when a task needs it and drops it afterwards, so the same code
trains on 200 million rows (32 GB) with the memory of a few chunks.

``dask_ml.wrappers.Incremental`` feeds the chunks to the estimator's
``partial_fit`` one after another, in a random order each pass; the model
(a few small arrays) moves to whichever worker holds the next chunk. After
training, the wrapper predicts in parallel, chunk by chunk, and the example
prints the accuracy on held-out rows, which it never trained on (about 0.99):
10% of the rows, generated the same way from another seed, as arrays of their
own rather than a slice of the training arrays (a graph sharing tasks with the
training's made distributed 2026.8's scheduler fail the score, about one run in
ten, on a KeyError for a key the training had just released).

By default the example starts a ``distributed.LocalCluster`` on this machine:
two worker processes with one thread each, on the loopback interface. On a
real cluster, start a scheduler and workers that have fastmlp installed::

    dask scheduler                                  # prints tcp://HOST:8786
    dask worker tcp://HOST:8786 --nthreads 1        # on each worker machine

and pass the scheduler's address; nothing else changes::

    python dask_incremental.py --scheduler tcp://HOST:8786 --rows 200000000

Run it: ``python dask_incremental.py`` (about half a minute on two cores).
"""
import argparse
import contextlib
import time

import dask.array as da
import numpy as np
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster

from fastmlp import MLPClassifier

SEED = 0
N_ROWS = 2_000_000
N_FEATURES = 20
CHUNK_ROWS = 50_000
TEST_FRACTION = 0.1
PASSES = 2  # passes over the training chunks (one partial_fit epoch per chunk per pass)


def make_data(n_rows, seed=SEED):
    """Lazy (X, y): dask arrays of shape (n_rows, N_FEATURES) and (n_rows,), nothing computed yet."""
    chunk = min(CHUNK_ROWS, n_rows)
    X = da.random.RandomState(seed).normal(size=(n_rows, N_FEATURES), chunks=(chunk, N_FEATURES))
    y = (X[:, 0] * X[:, 1] + X[:, 2] / 2 > 0).astype(np.int64)
    return X, y


def main(n_rows=N_ROWS, scheduler=None):
    """Train on 90% of n_rows lazily generated rows and return the accuracy on the other 10%.

    Parameters
    ----------
    n_rows : int, default=2_000_000
    scheduler : str or None, default=None
        Address of a running Dask scheduler ("tcp://host:8786"); None starts a
        LocalCluster for the duration of the call.

    Returns
    -------
    float, the held-out accuracy.
    """
    n_train = int(n_rows * (1 - TEST_FRACTION))
    X_train, y_train = make_data(n_train)
    # held-out rows of their own (another seed), not a slice of the training arrays (see above)
    X_test, y_test = make_data(n_rows - n_train, seed=SEED + 1)

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            # Worker processes with one thread each: a chunk's partial_fit is one
            # task, and Dask gives each worker process one BLAS thread.
            cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                       host="127.0.0.1", dashboard_address=None))
            scheduler = cluster.scheduler_address
        client = stack.enter_context(Client(scheduler))
        print(f"{n_rows:,} rows x {N_FEATURES} features ({(X_train.nbytes + X_test.nbytes) / 1e6:,.0f} MB, "
              f"{X_train.numblocks[0]} + {X_test.numblocks[0]} chunks), "
              f"scheduler {client.scheduler_info()['address']}, {len(client.scheduler_info()['workers'])} workers")

        clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.003, random_state=SEED)
        # a RandomState instance (not an int) so each pass visits the chunks in a new order
        model = Incremental(clf, scoring="accuracy", shuffle_blocks=True, random_state=np.random.RandomState(SEED))
        for p in range(1, PASSES + 1):
            tic = time.perf_counter()
            model.partial_fit(X_train, y_train, classes=[0, 1])
            print(f"pass {p}: {time.perf_counter() - tic:.1f} s, last chunk's loss {model.estimator_.loss_:.4f}")
        accuracy = float(model.score(X_test, y_test))  # predicted chunk by chunk on the workers
    print(f"held-out accuracy {accuracy:.4f} on {n_rows - n_train:,} rows")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="a running Dask scheduler, e.g. tcp://HOST:8786 (default: start a LocalCluster)")
    parser.add_argument("--rows", type=int, default=N_ROWS, help=f"rows to generate (default {N_ROWS:,})")
    args = parser.parse_args()
    main(n_rows=args.rows, scheduler=args.scheduler)
