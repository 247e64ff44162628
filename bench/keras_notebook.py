"""The original Keras notebook's model, measured on movierec's split.

The notebook: user and movie Embedding(K=10), each flattened, concatenated into
Dense(1024, relu) then Dense(1); MSE on ratings centred on the training mean; SGD lr 0.08
momentum 0.9; batch 1024; 25 epochs. It ran TF 2.0, whose Keras SGD moved only the
embedding rows in each batch (sparse momentum: the other rows keep their velocity but do
not move). Keras 3's SGD gives the same answer for a sparse gradient as for a dense one,
so every row with velocity moves at every step (dense momentum). ``--sparse-momentum``
trains with a custom loop that does what TF 2.0 did.

Needs TensorFlow, which movierec does not depend on; run it from its own venv (see
bench/README.md). Nothing in the package or tests imports this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from movierec.data.load import load
from movierec.data.ratings import Ratings
from movierec.data.splits import random_split, split_rows
from movierec.data.synthetic import Synthetic, SyntheticConfig, generate

TEST_FRACTION = 0.2
VAL_FRACTION = 0.05
K = 10
HIDDEN = 1024
LR = 0.08
MOMENTUM = 0.9
BATCH = 1024


# --- data and split: shared with bench/peers.py, and the same as movierec's trainer ----


def load_data(args: argparse.Namespace) -> tuple[Ratings, Synthetic | None]:
    """The ratings named by ``--data`` or ``--synthetic``, and the generator when synthetic."""
    if args.synthetic:
        n_users, n_items, n_ratings = (int(x) for x in args.synthetic.split(","))
        synth = generate(SyntheticConfig(n_users=n_users, n_items=n_items, n_ratings=n_ratings))
        return synth.ratings, synth
    return load(args.data), None


def protocol_rows(ratings: Ratings, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit, validation and test row positions: random 80/20, then 5% of train for validation.

    Test rows are ``split_rows(ratings, "random", 0.2, seed)``'s held-out part; the
    validation rows are ``random_split(n_train, 0.05, seed + 1)`` of the training part.
    The same parts as ``movierec.pipeline.split`` (checked for seeds 0-2 on ml-latest-small);
    positions rather than parts, so the synthetic noise floor can be read on the test rows.
    """
    train_rows, test_rows = split_rows(ratings, "random", TEST_FRACTION, seed)
    fit_pos, val_pos = random_split(len(train_rows), VAL_FRACTION, seed + 1)
    return train_rows[fit_pos], train_rows[val_pos], test_rows


def add_data_args(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="ratings.csv, a MovieLens folder or zip, or any ratings file")
    src.add_argument("--synthetic", metavar="N_USERS,N_ITEMS,N_RATINGS", help="movierec's synthetic log instead")
    parser.add_argument("--seed", type=int, default=0, help="split seed (validation uses seed + 1)")
    parser.add_argument("--json", metavar="OUT", help="write every figure to this JSON file")


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def scores(pred: np.ndarray, truth: np.ndarray, scale: tuple[float, float]) -> dict:
    """RMSE and MAE of predictions clipped to the rating scale, and RMSE unclipped."""
    clipped = np.clip(pred, *scale)
    return {
        "rmse": float(np.sqrt(np.mean((clipped - truth) ** 2))),
        "mae": float(np.mean(np.abs(clipped - truth))),
        "rmse_unclipped": float(np.sqrt(np.mean((pred - truth) ** 2))),
    }


# --- the notebook's model ---------------------------------------------------------------


def build_model(n_users: int, n_items: int):
    """The notebook's network, with Keras defaults: embeddings U(-0.05, 0.05), Dense glorot."""
    import keras
    from keras import layers

    user = keras.Input(shape=(1,), dtype="int32", name="user")
    movie = keras.Input(shape=(1,), dtype="int32", name="movie")
    u = layers.Flatten()(layers.Embedding(n_users, K)(user))
    m = layers.Flatten()(layers.Embedding(n_items, K)(movie))
    x = layers.Dense(HIDDEN, activation="relu")(layers.Concatenate()([u, m]))
    return keras.Model([user, movie], layers.Dense(1)(x))


def fit_keras(model, x: list, y: np.ndarray, epochs: int, on_epoch) -> None:
    """model.fit with Keras's own SGD, exactly as the notebook called it."""
    import keras

    class Log(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            on_epoch(epoch, logs["loss"], time.perf_counter() - self.t0)

    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM), loss="mse")
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0, callbacks=[Log()])


def fit_sparse_momentum(model, x: list, y: np.ndarray, epochs: int, seed: int, on_epoch) -> None:
    """TF 2.0's Keras SGD: embedding rows outside the batch keep their velocity but do not move.

    Per step, for a sparse (embedding) gradient, as TF 2.0's ResourceSparseApplyKerasMomentum:
    sum the gradient rows of each distinct index, then v[rows] = m * v[rows] - lr * g;
    w[rows] += v[rows]. Dense weights: v = m * v - lr * g; w += v over the whole tensor.
    """
    import tensorflow as tf

    weights = [w.value for w in model.trainable_variables]  # the tf.Variables under Keras's
    velocity = [tf.Variable(tf.zeros_like(w), trainable=False) for w in weights]

    @tf.function
    def step(user, movie, target):
        with tf.GradientTape() as tape:
            pred = model([user, movie], training=True)[:, 0]
            loss = tf.reduce_mean(tf.square(target - pred))
        for w, v, g in zip(weights, velocity, tape.gradient(loss, model.trainable_variables), strict=True):
            if isinstance(g, tf.IndexedSlices):  # only embeddings give row gradients
                rows, pos = tf.unique(g.indices)
                g_rows = tf.math.unsorted_segment_sum(g.values, pos, tf.shape(rows)[0])
                v_rows = MOMENTUM * tf.gather(v, rows) - LR * g_rows
                v.scatter_update(tf.IndexedSlices(v_rows, rows))
                w.scatter_add(tf.IndexedSlices(v_rows, rows))
            else:
                v.assign(MOMENTUM * v - LR * g)
                w.assign_add(v)
        return loss

    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = rng.permutation(len(y))
        total = 0.0
        for s in range(0, len(y), BATCH):
            b = perm[s : s + BATCH]
            total += float(step(x[0][b], x[1][b], y[b])) * len(b)
        on_epoch(epoch, total / len(y), time.perf_counter() - t0)  # sample-weighted, as fit's


# --- the run ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(parser)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--sparse-momentum", action="store_true", help="TF 2.0's sparse momentum (custom loop)")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    ratings, synth = load_data(args)
    fit, val, test = protocol_rows(ratings, args.seed)
    mu = float(ratings.rating[fit].mean())
    scale = ratings.rating_scale()

    def inputs(rows: np.ndarray) -> list:
        return [ratings.user_idx[rows, None], ratings.item_idx[rows, None]]

    variant = "sparse momentum, custom loop (TF 2.0 semantics)" if args.sparse_momentum else "keras SGD, model.fit"
    info = {
        "script": "bench/keras_notebook.py",
        "variant": variant,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "machine": machine(),
        "data": ratings.name,
        "n_users": ratings.n_users,
        "n_items": ratings.n_items,
        "n_ratings": len(ratings),
        "split": {"how": "random", "test_fraction": TEST_FRACTION, "val_fraction": VAL_FRACTION, "seed": args.seed},
        "n_fit": len(fit),
        "n_val": len(val),
        "n_test": len(test),
        "train_mean": mu,
        "hyper": {"k": K, "hidden": HIDDEN, "lr": LR, "momentum": MOMENTUM, "batch": BATCH, "epochs": args.epochs},
        "epochs": [],
    }
    m = info["machine"]
    print(f"TensorFlow {info['tensorflow']}, Keras {info['keras']}; {variant}")
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['platform']}")
    print(f"data: {ratings.name}: {ratings.n_users} users, {ratings.n_items} items, {len(ratings)} ratings")
    print(f"split: random seed {args.seed}; n_fit {len(fit)}, n_val {len(val)}, n_test {len(test)}; mean {mu:.4f}")
    print(f"{'epoch':>5} {'train_mse':>10} {'val_rmse':>9} {'val_unclip':>10} {'seconds':>8}")

    keras.utils.set_random_seed(args.seed)
    model = build_model(ratings.n_users, ratings.n_items)

    def predict(rows: np.ndarray) -> np.ndarray:
        return model.predict(inputs(rows), batch_size=1 << 16, verbose=0)[:, 0] + mu

    def on_epoch(epoch: int, loss: float, seconds: float) -> None:
        val_scores = scores(predict(val), ratings.rating[val], scale)
        info["epochs"].append({"epoch": epoch + 1, "train_mse": loss, "seconds": seconds} | val_scores)
        print(f"{epoch + 1:>5} {loss:>10.4f} {val_scores['rmse']:>9.4f} {val_scores['rmse_unclipped']:>10.4f} "
              f"{seconds:>8.1f}", flush=True)  # fmt: skip

    y = ratings.rating[fit] - mu
    if args.sparse_momentum:
        fit_sparse_momentum(model, inputs(fit), y, args.epochs, args.seed, on_epoch)
    else:
        fit_keras(model, inputs(fit), y, args.epochs, on_epoch)

    info["test"] = scores(predict(test), ratings.rating[test], scale)
    info["seconds_per_epoch"] = float(np.mean([e["seconds"] for e in info["epochs"]]))
    t = info["test"]
    print(f"test: RMSE {t['rmse']:.4f} (unclipped {t['rmse_unclipped']:.4f}), MAE {t['mae']:.4f}; "
          f"{info['seconds_per_epoch']:.1f} s/epoch")  # fmt: skip
    if synth is not None:
        info["test_noise_floor"] = synth.noise_floor(test)
        print(f"synthetic noise floor on the test rows: RMSE {info['test_noise_floor']:.4f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
