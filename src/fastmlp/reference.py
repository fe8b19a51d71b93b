"""The same math as the compiled engine, in plain NumPy (and scipy.special).

Read this side by side with ``fastmlp.Network``: ``reference.Network`` has the
same interface and computes the same numbers, one layer and one batch at a
time in Python. It is the test oracle and the "NumPy baseline" of the
benchmarks. Nothing here is clever on purpose.

Conventions (those of the engine, docs/engine.rst): a batch ``X`` is ``(n_samples, n_features)``;
``W`` is ``(fan_in, fan_out)``; layer l computes ``Z = A_prev @ W + b`` and
``A = f(Z)``; ``delta = dL/dZ``.

Examples
--------
One layer's forward and backward step, by hand:

>>> import numpy as np
>>> from fastmlp import reference
>>> z = np.array([[-1.0, 0.0, 2.0]])
>>> reference.relu(z)
array([[0., 0., 2.]])
>>> reference.relu_derivative(z, reference.relu(z))
array([[0., 0., 1.]])
>>> Y, Z = np.array([[1.0]]), np.array([[0.0]])
>>> round(float(reference.binary_log_loss(Y, Z)), 6)  # -log(sigmoid(0)) = log 2
0.693147
>>> reference.output_delta("logistic", Y, reference.output_forward("logistic", Z))
array([[-0.5]])
"""
import numpy as np

from . import _registry
from ._base import BaseNetwork
from ._math import (  # noqa: F401 (the reference's math is its public API)
    LEAKY_RELU_SLOPE, PRELU_INITIAL_SLOPE, identity, identity_derivative, logistic, logistic_derivative, tanh,
    tanh_derivative, relu, relu_derivative, leaky_relu, leaky_relu_derivative, swish, swish_derivative, prelu,
    prelu_derivative, prelu_slope_gradient, squared_error, binary_log_loss, softmax_log_loss, poisson_loss,
    absolute_error, absolute_error_gradient, huber_loss, huber_gradient, quantile_loss, quantile_gradient,
    gamma_loss, gamma_gradient,
    output_delta, output_forward, init_auto, glorot_uniform, glorot_normal, he_uniform, he_normal, sgd_update,
    adam_update,
)


class Network(BaseNetwork):
    """The same network as ``fastmlp.Network``, computed in plain NumPy.

    Same constructor, attributes and methods (see ``fastmlp.Network``). Given
    the same ``coefs_`` and ``intercepts_`` it returns the same outputs, losses
    and gradients; one epoch with the same shuffling gives the same weights
    (without dropout: its masks come from NumPy's generator here and from the
    engine's own xoshiro256** in ``fastmlp.Network``, so with dropout the two
    train alike, not equal).

    Parameters
    ----------
    layer_sizes : sequence of int
        The number of units of each layer, ``[n_inputs, hidden..., n_outputs]``.
    activation : str, default="relu"
        Hidden activation, as in ``fastmlp.Network``.
    output_activation : {"identity", "logistic", "softmax", "exp"}, default="identity"
        Activation of the output layer, paired with ``loss``.
    loss : {"squared_error", "log_loss", "poisson", "absolute_error", "huber", \
            "quantile", "gamma"}, default="squared_error"
        The loss, as in ``fastmlp.Network``.
    init : str, default="auto"
        The initialisation scheme, as in ``fastmlp.Network``.
    dtype : {"float32", "float64"}, default="float64"
        Kept through everything: weights, gradients, outputs.
    dropout : float or list of float, default=0.0
        Inverted-dropout rate of every hidden layer, or one per hidden layer.
    random_state : None, int, numpy.random.Generator or RandomState, default=None
        Source of the initial weights, the shuffling and the dropout masks;
        the same seed gives the same initial weights and shuffles as
        ``fastmlp.Network`` (not the same dropout masks).
    loss_param : float, default=None
        The loss's parameter (huber's delta, quantile's q), as in ``fastmlp.Network``.

    See Also
    --------
    fastmlp.Network : The same model, computed in compiled code.

    Examples
    --------
    >>> import numpy as np
    >>> import fastmlp
    >>> from fastmlp import reference
    >>> slow = reference.Network([3, 4, 2], activation="tanh", random_state=0)
    >>> fast = fastmlp.Network([3, 4, 2], activation="tanh", random_state=0)
    >>> X = np.random.default_rng(1).standard_normal((5, 3))
    >>> bool(np.allclose(slow.forward(X), fast.forward(X)))
    True
    """

    def _forward_pass(self, X, keep=None, rng=None):
        """Every layer's values: lists Z[l], F[l] = f(Z[l]), A[l] (what layer l + 1 reads), M[l].

        A[0] = X. With keep (a keep probability per hidden layer) and rng,
        hidden layers use inverted dropout: A_l = F_l * M_l, M_l in {0, 1/keep};
        otherwise A_l = F_l and M_l is None.
        """
        Z, F, A, M = [None], [None], [X], [None]
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_), start=1):
            z = np.asarray(A[-1] @ W) + b  # Z_l = A_{l-1} W_l + b_l (A_0 may be sparse)
            Z.append(z)
            if l == self.n_layers_:
                break  # the output activation is applied with the loss
            f = self._activate(l, z)  # F_l = f(Z_l)
            m = None
            if keep is not None and keep[l - 1] < 1:
                m = ((rng.random(f.shape) < keep[l - 1]) / keep[l - 1]).astype(f.dtype)
            F.append(f)
            M.append(m)
            A.append(f if m is None else f * m)
        return Z, F, A, M

    def _gradients(self, X, Y, scale, sample_weight=None, keep=None, rng=None, unit_max=None):
        """Sum over rows of (weight times) the loss, and scale times its gradient (flat).

        unit_max, when given, gets each hidden unit's largest z (the dead-unit report).
        """
        Z, F, A, M = self._forward_pass(X, keep, rng)
        if unit_max is not None:
            np.maximum(unit_max, np.concatenate([z.max(axis=0) for z in Z[1:-1]] or [unit_max[:0]]), out=unit_max)
        L = self.n_layers_
        slope_of = self._slope_views()
        out, kwargs = self._output, self._loss_kwargs()
        if out.gradient is None:
            delta = scale * output_delta(out.activation, Y, output_forward(out.activation, Z[L]))  # delta_L
        else:
            delta = scale * out.gradient(Y, Z[L], **kwargs)
        loss = out.loss(Y, Z[L], sample_weight, **kwargs)
        if sample_weight is not None:
            delta *= sample_weight[:, None]
        grads = np.empty_like(self._params)
        dW, db = self._split(grads)
        dslope = dict(zip(slope_of, self._split_slopes(grads)))
        for l in range(L, 0, -1):
            dW[l - 1][...] = A[l - 1].T @ delta  # dW_l = A_{l-1}^T delta_l
            db[l - 1][...] = delta.sum(axis=0)  # db_l = sum over rows of delta_l
            if l > 1:
                # delta_{l-1} = (delta_l W_l^T) * M_{l-1} * f'(Z_{l-1})
                back = delta @ self.coefs_[l - 1].T
                if M[l - 1] is not None:
                    back = back * M[l - 1]
                if l - 1 in slope_of:  # prelu: the slopes' gradient, then through f'
                    dslope[l - 1][...] = prelu_slope_gradient(Z[l - 1], back)
                    delta = back * prelu_derivative(Z[l - 1], F[l - 1], slope_of[l - 1])
                else:
                    delta = back * self._hidden[l - 2].derivative(Z[l - 1], F[l - 1])
        return loss, grads

    def _slope_views(self):
        """{hidden layer l: its PReLU slopes} for the layers that have them."""
        layers = [l for l in range(1, self.n_layers_) if self._hidden[l - 1].learnable_slope]
        return dict(zip(layers, self.prelu_slopes_))

    def _activate(self, l, z):
        """F_l = f(Z_l) for hidden layer l."""
        if self._hidden[l - 1].learnable_slope:
            return prelu(z, self._slope_views()[l])
        return self._hidden[l - 1].forward(z)

    def _l2(self, grads, alpha, n):
        """Adds alpha/n W to dW and returns alpha/(2n) sum ||W||^2."""
        dW, _ = self._split(grads)
        for W, g in zip(self.coefs_, dW):
            g += (alpha / n) * W
        return 0.5 * alpha * sum(float(np.sum(W * W)) for W in self.coefs_) / n

    def _forward(self, X, training, seed, n_threads=None, logits=False):
        rng = np.random.default_rng(seed)
        Z, _, _, _ = self._forward_pass(X, self._keep if training else None, rng)
        return Z[-1] if logits else output_forward(self._output.activation, Z[-1])

    def _loss_and_gradients(self, X, Y, alpha, sample_weight):
        n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight, dtype=np.float64))
        loss, grads = self._gradients(X, Y, 1.0 / n, sample_weight)
        loss = float(loss) / n
        if alpha > 0:
            loss += self._l2(grads, alpha, n)
        return loss, grads

    def _train_epoch(self, trainer, X, Y, sample_weight, order, batch_size, n_threads=None, loss_per_row=False):
        s = trainer.settings
        n, B = X.shape[0], batch_size
        rng = np.random.default_rng(s["seed"])
        keep = self._keep if s["dropout"] else None
        update = _registry.OPTIMIZERS[s["optimizer"]].update
        rates = getattr(trainer, "rates", None)  # a schedule's rate per batch, or None: s["learning_rate"]
        loss_sum, n_batches = 0.0, 0
        for k, start in enumerate(range(0, n, B)):
            rows = order[start:start + B] if order is not None else slice(start, start + B)
            Xb, Yb = X[rows], Y[rows]
            swb = None if sample_weight is None else sample_weight[rows]
            b = Xb.shape[0] if swb is None else float(np.sum(swb, dtype=np.float64))
            if b <= 0:
                continue  # a batch of zero weight is skipped
            loss, grads = self._gradients(Xb, Yb, 1.0 / b, swb, keep, rng, trainer.unit_max)
            loss = float(loss) / b
            if s["alpha"] > 0:
                loss += self._l2(grads, s["alpha"], b)
            if not np.isfinite(loss):
                return loss_sum, n_batches, False
            dW, _ = self._split(grads)
            trainer.grad_norm_sums += [np.sqrt(np.sum(g * g)) for g in dW]
            with np.errstate(over="ignore"):  # (an overflow is a divergence, reported as the engine reports it)
                total = np.sqrt(np.sum(grads.astype(np.float64) ** 2))
            if s["clip_norm"] is not None and total > s["clip_norm"]:
                grads *= grads.dtype.type(s["clip_norm"] / total)
            if s["optimizer"] == "adam":
                s["step"] += 1
            update(self._params, grads, trainer.state, **(s if rates is None else dict(s, learning_rate=rates[k])))
            loss_sum += loss * (Xb.shape[0] if loss_per_row else b)
            n_batches += 1
        return loss_sum, n_batches, True
