"""The user guide's figures (and the C export's example header), made by conf.py at build time in docs/_generated/.

Each function draws one figure from fastmlp itself (a Network, its reference
twin or fastmlp.reference's functions) and takes a second or less.
"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import fastmlp
from fastmlp import reference as ref


def layers(path):
    """A [3, 4, 2] network: the units, the weights between layers and the parameter count."""
    sizes = [3, 4, 2]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ys = [np.linspace(-(n - 1) / 2, (n - 1) / 2, n) for n in sizes]
    for layer, (a, b) in enumerate(zip(ys, ys[1:])):
        for y0 in a:
            for y1 in b:
                ax.plot([layer, layer + 1], [y0, y1], color="0.7", lw=0.8, zorder=1)
    for layer, y in enumerate(ys):
        ax.scatter(np.full_like(y, layer), y, s=500, color=["C0", "C1", "C2"][layer], zorder=2)
    net = fastmlp.Network(sizes)
    counts = [w.size + b.size for w, b in zip(net.coefs_, net.intercepts_)]
    for layer, n in enumerate(counts):
        ax.text(layer + 0.5, max(map(len, ys)) / 2 + 0.3, f"{sizes[layer]} x {sizes[layer + 1]} + {sizes[layer + 1]}"
                f"\n= {n} parameters", ha="center")
    ax.set_xticks(range(3), ["inputs (3)", "hidden (4)", "outputs (2)"])
    ax.set_yticks([])
    ax.set_title(f"Network([3, 4, 2]): n_params_ = {net.n_params_}")
    ax.set_frame_on(False)
    ax.set_ylim(-2.3, 3.2)
    _save(fig, path)


def forward_pass(path):
    """A 1-8-1 ReLU network fitted to sin(x): each hidden unit's share of the output, and their sum."""
    x = np.linspace(-np.pi, np.pi, 200)[:, None]
    net = fastmlp.Network([1, 8, 1], activation="relu", random_state=0)
    net.fit(x, np.sin(x), epochs=400, batch_size=20, optimizer="adam", learning_rate=0.01)
    A1 = ref.relu(x @ net.coefs_[0] + net.intercepts_[0])  # (200, 8): the hidden layer
    shares = A1 * net.coefs_[1][:, 0]  # each unit's term in the output's weighted sum
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(x, shares, lw=0.8, color="0.6")
    ax.plot(x, shares.sum(axis=1) + net.intercepts_[1], color="C0", lw=2, label="output = sum + b")
    ax.plot(x, net.predict(x), "k:", lw=2, label="net.predict(x)")
    ax.plot(x, np.sin(x), color="C1", alpha=0.5, label="sin(x)")
    ax.set_xlabel("x")
    ax.set_title("the forward pass of [1, 8, 1]: grey, each ReLU unit's a_j w_j")
    ax.legend(fontsize=8)
    _save(fig, path)


def gradient_check(path):
    """loss_and_gradients against central finite differences of the loss, every weight."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 4)), np.eye(3)[rng.integers(0, 3, 20)]
    net = fastmlp.Network([4, 5, 3], activation="tanh", output_activation="softmax", loss="log_loss",
                          random_state=0)
    _, coef_grads, _ = net.loss_and_gradients(X, Y)
    numeric = []
    for W in net.coefs_:
        for i in np.ndindex(W.shape):
            w, h = W[i], 1e-6
            W[i] = w + h
            up = net.loss_and_gradients(X, Y)[0]
            W[i] = w - h
            down = net.loss_and_gradients(X, Y)[0]
            W[i] = w
            numeric.append((up - down) / (2 * h))
    analytic = np.concatenate([g.ravel() for g in coef_grads])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(numeric, analytic, s=12)
    ax.plot(*[[min(numeric), max(numeric)]] * 2, "k:", lw=1)
    ax.set_xlabel("finite difference (L(w + h) - L(w - h)) / 2h")
    ax.set_ylabel("back-propagation: loss_and_gradients")
    ax.set_title(f"dL/dW, all {len(numeric)} weights; largest difference "
                 f"{np.max(np.abs(np.subtract(numeric, analytic))):.0e}", fontsize=9)
    _save(fig, path)


def activations(path):
    """Each hidden activation of fastmlp.reference and its derivative."""
    z = np.linspace(-4, 4, 401)
    names = ["identity", "logistic", "tanh", "relu", "leaky_relu", "swish"]
    fig, axes = plt.subplots(2, 3, figsize=(8, 4.5), sharex=True)
    for ax, name in zip(axes.ravel(), names):
        f, df = getattr(ref, name), getattr(ref, name + "_derivative")
        a = f(z)
        ax.plot(z, a, label="f(z)")
        ax.plot(z, df(z, a), "--", label="f'(z)")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.set_title(name)
    axes[0, 0].legend(fontsize=8)
    _save(fig, path)


def losses(path):
    """Each output/loss pair's loss against the output, for one target."""
    p = np.linspace(0.005, 0.995, 200)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    axes[0].plot(p, 0.5 * (1 - p) ** 2)
    axes[0].set_title("squared_error, y = 1\n0.5 (y - yhat)^2")
    for y in (1.0, 0.7):
        axes[1].plot(p, -(y * np.log(p) + (1 - y) * np.log(1 - p)), label=f"y = {y}")
    axes[1].legend(fontsize=8)
    axes[1].set_title("log_loss (logistic)\n-(y log p + (1 - y) log(1 - p))")
    mu = np.linspace(0.05, 6, 200)
    axes[2].plot(mu, mu - 2 * np.log(mu) - (2 - 2 * np.log(2)))
    axes[2].set_title("poisson, y = 2\nmu - y log mu, minus its minimum")
    for ax, label in zip(axes, ["yhat", "p", "mu = exp(z)"]):
        ax.set_xlabel(label)
    _save(fig, path)


def optimizers(path):
    """The training loss per epoch of one network, from the same weights, under each optimizer."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 10))
    Y = np.sin(X[:, :1] * 2) + X[:, 1:2] * X[:, 2:3]
    runs = {"sgd": {"optimizer": "sgd"}, "sgd, momentum 0.9": {"optimizer": "sgd", "momentum": 0.9},
            "sgd, nesterov": {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
            "adam": {"optimizer": "adam", "learning_rate": 0.003}}
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, kwargs in runs.items():
        net = fastmlp.Network([10, 32, 1], activation="tanh", random_state=0)
        net.fit(X, Y, epochs=40, batch_size=32, **{"learning_rate": 0.01, **kwargs})
        ax.plot(np.arange(1, 41), net.loss_curve_, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.legend(fontsize=8)
    _save(fig, path)


def initialisation(path):
    """The spread of each layer's activations through 10 ReLU layers under three inits."""
    X = np.random.default_rng(0).normal(size=(1000, 64))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for init in ("glorot_uniform", "he_normal", "he_uniform"):
        net = fastmlp.Network([64] + [64] * 10 + [1], activation="relu", init=init, random_state=0)
        A, stds = X, []
        for W, b in zip(net.coefs_[:-1], net.intercepts_[:-1]):
            A = ref.relu(A @ W + b)
            stds.append(A.std())
        ax.plot(range(1, 11), stds, "o-", label=init)
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer")
    ax.set_ylabel("std of the activations")
    ax.set_title("Glorot's scale halves the signal's variance at each ReLU layer; He's keeps it", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)


def schedules(path):
    """Every schedule of fastmlp.schedules: the rate of each batch over 60 epochs of 10 batches."""
    from fastmlp import schedules as sch

    epochs, n_batches, base = 60, 10, 0.1
    runs = {
        "StepDecay(step_size=20, gamma=0.3)": sch.StepDecay(step_size=20, gamma=0.3),
        "ExponentialDecay(gamma=0.95)": sch.ExponentialDecay(gamma=0.95),
        "CosineAnnealing()": sch.CosineAnnealing(),
        "CosineAnnealing(T_0=15, T_mult=2)": sch.CosineAnnealing(T_0=15, T_mult=2),
        "OneCycle()": sch.OneCycle(),
        "LinearWarmup(CosineAnnealing(), warmup_epochs=10)": sch.LinearWarmup(sch.CosineAnnealing(), warmup_epochs=10),
        "ReduceOnPlateau(patience=5, factor=0.5)": sch.ReduceOnPlateau(patience=5, factor=0.5),
    }
    # the loss ReduceOnPlateau is told: falls for 15 epochs, then flat (noise only)
    losses = np.r_[np.linspace(1, 0.3, 15), 0.3 + 0.01 * np.random.default_rng(0).random(epochs - 15)]
    fig, axes = plt.subplots(2, 4, figsize=(12, 5), sharex=True)
    t = np.arange(epochs * n_batches) / n_batches  # epochs, batch by batch
    for ax, (label, schedule) in zip(axes.flat, runs.items()):
        run = schedule.start(base, epochs)
        rates = []
        for e in range(epochs):
            rates.extend(run.epoch_rates(e, n_batches))
            run.end_epoch(losses[e])
        ax.plot(t, rates, color="C0")
        ax.set_title(label.replace(", warmup", ",\nwarmup"), fontsize=8)
        ax.set_ylim(0, base * 1.1)
    axes.flat[-1].plot(np.arange(epochs), losses, color="C1")
    axes.flat[-1].set_title("the loss ReduceOnPlateau monitors", fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].set_ylabel("rate (learning_rate_init=0.1)")
    axes[1, 0].set_ylabel("rate")
    _save(fig, path)


def c_header(path):
    """The C export's page shows a whole header: a [2, 3, 1] tanh network that learned XOR."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    Y = np.array([[0], [1], [1], [0]], dtype=float)
    net = fastmlp.Network([2, 3, 1], activation="tanh", output_activation="logistic", loss="log_loss",
                          random_state=0)
    net.fit(X, Y, epochs=300, batch_size=4, optimizer="adam", learning_rate=0.05)
    fastmlp.export_c(net, path, name="gate")  # ("xor" is a C++ keyword)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


FIGURES = [layers, forward_pass, gradient_check, activations, losses, optimizers, initialisation, schedules]


def draw_all(out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for draw in FIGURES:
        draw(out_dir / f"{draw.__name__}.png")
    c_header(out_dir / "gate.h")
