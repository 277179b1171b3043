"""A small MNIST classifier, trained in the project, cached as an orbax checkpoint.

It is the feature extractor of the "MNIST FID" and the classifier score
(:mod:`jaxgen.eval.fid`). Architecture: two stride-2 3x3 convolutions (32, 64 channels,
ReLU), a 128-unit ReLU layer (the *penultimate features*), 10 logits. Trained with Adam on
whatever MNIST training split :func:`jaxgen.data.mnist.load_mnist` finds (``source="auto"``;
offline that is the 5,000-image subset), with random shifts of up to 2 pixels.
Test accuracy on the 10k test split (measured, see benchmarks/notes/gan.md): >= 97 % from the 5k subset.

:func:`load_classifier` trains it on first use and saves it under
``<cache dir>/mnist_classifier/<data>-<config fingerprint>/`` (``config.json``,
``metrics.json``, ``checkpoints/`` written by orbax — no pickles); later calls restore it.
The cache dir is the ``cache_dir`` argument, else ``$JAXGEN_CACHE_DIR``, else
``~/.cache/jaxgen``. Inputs are images in [0, 1], ``[B, 28, 28, 1]``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import config as C
from jaxgen.core.errors import CheckpointError
from jaxgen.data.transforms import to_unit

CACHE_ENV = "JAXGEN_CACHE_DIR"
DEFAULT_CACHE = "~/.cache/jaxgen"


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Training recipe of the metric's classifier (changing it trains a new cached one)."""

    features: int = C.static(128, "penultimate feature size (the FID feature space)")
    epochs: int = C.static(15, "passes over the training split")
    batch_size: int = C.static(128, "minibatch size")
    shift: int = C.static(2, "random translation augmentation, in pixels")
    learning_rate: float = C.static(2e-3, "Adam learning rate (cosine-decayed to 0)")
    seed: int = C.static(0, "initialisation / data-order seed")


class Classifier(nn.Module):
    """``[B, 28, 28, 1]`` in [0, 1] -> (logits [B, 10], features [B, F])."""

    features: int = 128

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(32, (3, 3), (2, 2), padding="SAME")(x))
        x = nn.relu(nn.Conv(64, (3, 3), (2, 2), padding="SAME")(x))
        h = nn.relu(nn.Dense(self.features)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(h), h


@dataclasses.dataclass
class MnistClassifier:
    """A trained classifier: ``params``, its config, and where it is cached."""

    params: dict
    config: ClassifierConfig
    path: Path | None = None
    test_accuracy: float | None = None

    def __post_init__(self):
        net = Classifier(self.config.features)
        self._apply = jax.jit(lambda p, x: net.apply({"params": p}, x))

    def logits_and_features(self, images01: jax.Array, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """(logits [N, 10], features [N, F]) of images in [0, 1] ``[N, 28, 28, 1]`` (host arrays)."""
        outs_l, outs_f = [], []
        for i in range(0, len(images01), batch):
            lo, fe = self._apply(self.params, jnp.asarray(images01[i:i + batch], jnp.float32))
            outs_l.append(np.asarray(lo))
            outs_f.append(np.asarray(fe))
        return np.concatenate(outs_l), np.concatenate(outs_f)

    def accuracy(self, images_uint8: np.ndarray, labels: np.ndarray) -> float:
        logits, _ = self.logits_and_features(np.asarray(images_uint8, np.float32) / 255.0)
        return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))


def _shift(key, x, s):
    """Random translation by up to ``s`` pixels (zero fill) of each image of ``x`` [B, H, W, C]."""
    b, h, w, _ = x.shape
    xp = jnp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))
    off = jax.random.randint(key, (b, 2), 0, 2 * s + 1)
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(xp, off)


def train_classifier(images: np.ndarray, labels: np.ndarray, config: ClassifierConfig = ClassifierConfig()) -> dict:
    """Train on uint8 ``images [N, 28, 28, 1]`` / ``labels [N]``; return the params."""
    net = Classifier(config.features)
    key = jax.random.PRNGKey(config.seed)
    params = net.init(key, jnp.zeros((1, 28, 28, 1)))["params"]
    n = len(images)
    spe = n // config.batch_size
    tx = optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.epochs * spe))
    opt = tx.init(params)
    data_x, data_y = jnp.asarray(images, jnp.uint8), jnp.asarray(labels, jnp.int32)

    @jax.jit
    def step(params, opt, i):
        k = jax.random.fold_in(key, i)
        epoch, j = jnp.divmod(i, spe)
        perm = jax.random.permutation(jax.random.fold_in(key, 10_000 + epoch), n)
        idx = jax.lax.dynamic_slice_in_dim(perm, j * config.batch_size, config.batch_size)
        x = _shift(k, to_unit(data_x[idx]), config.shift) if config.shift else to_unit(data_x[idx])
        y = data_y[idx]

        def loss_fn(p):
            logits, _ = net.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        g = jax.grad(loss_fn)(params)
        upd, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, upd), opt

    for i in range(config.epochs * spe):
        params, opt = step(params, opt, jnp.int32(i))
    return jax.block_until_ready(params)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    d = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(os.path.expanduser(os.fspath(d))).absolute()


def load_classifier(cache_dir: str | os.PathLike | None = None, source: str = "auto",
                    config: ClassifierConfig = ClassifierConfig(), verbose: bool = True) -> MnistClassifier:
    """The cached classifier for ``config`` trained on MNIST ``source``; trained (and its test
    accuracy measured on the 10k test split) on first use."""
    from jaxgen.data.mnist import load_mnist

    train = load_mnist("train", source)
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", train.source)
    path = cache_root(cache_dir) / "mnist_classifier" / f"{tag}-{C.fingerprint(config)}"
    template = Classifier(config.features).init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))["params"]
    if (path / "checkpoints").is_dir() and any((path / "checkpoints").iterdir()):
        ckpt.check_same_config(path, config)
        c = ckpt.Checkpointer(path)
        try:
            params = c.restore(template)
        finally:
            c.close()
        acc = json.loads((path / "metrics.json").read_text()).get("test_accuracy") if (path / "metrics.json").is_file() else None
        return MnistClassifier(params, config, path, acc)
    if verbose:
        print(f"training the MNIST metric classifier on {train.source} ({len(train)} images); cached in {path}")
    params = train_classifier(train.images, train.labels, config)
    clf = MnistClassifier(params, config, path)
    test = load_mnist("test", "auto")
    clf.test_accuracy = clf.accuracy(test.images, test.labels)
    ckpt.write_config(path, config, {"train_source": train.source, "train_size": len(train)})
    c = ckpt.Checkpointer(path)
    try:
        c.save(0, jax.device_get(params))
    finally:
        c.close()
    (path / "metrics.json").write_text(json.dumps({"test_accuracy": clf.test_accuracy, "test_source": test.source,
                                                   "train_source": train.source, "train_size": len(train)}, indent=2))
    if verbose:
        print(f"metric classifier test accuracy {clf.test_accuracy:.4f} on {test.source}")
    return clf


__all__ = ["Classifier", "ClassifierConfig", "MnistClassifier", "load_classifier", "train_classifier", "CheckpointError"]
