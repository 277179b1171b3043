"""The GAN family as one module: every variant is a :class:`GANConfig`.

* ``arch``: ``"mlp"`` (MLP generator / discriminator) or ``"dcgan"`` (Radford et al. 2016;
  28x28 for MNIST with one block fewer, 64x64 for faces); networks in :mod:`jaxgen.nets.gan`.
* ``loss``: ``"bce"`` (minimax, non-saturating generator), ``"wgan"`` (weight clipping,
  RMSProp), ``"wgan-gp"`` (gradient penalty lambda = 10, Adam(1e-4, 0.5, 0.9)), ``"hinge"``;
  the math is in :mod:`jaxgen.losses.adversarial` (shared with GAIL's discriminator).
* ``sn``: spectral normalisation on every discriminator layer (power-iteration vectors in the
  discriminator's ``aux["spectral"]``, part of the train state).
* ``conditional``: the label conditions G (embedding concatenated to z) and D (projection or
  concatenation, ``cond_d``).
* ``augment``: DiffAugment (Zhao et al. 2020) of every image the discriminator sees, real
  and fake, in both updates (:mod:`jaxgen.generative.augment`): against D memorising a small
  training set.
* ``r1_weight``: the R1 penalty on the discriminator's input gradient at real images
  (Mescheder et al. 2018), another brake on a discriminator that memorises a small set.
* ``label_smoothing``: one-sided label smoothing of the bce discriminator's real target
  (Salimans et al. 2016), a brake on an over-confident discriminator.
* ``ema``: an exponential moving average of the generator's weights (Yazici et al. 2019), kept
  in the generator's ``aux["ema"]`` (so in the train state and its checkpoints) and used for
  samples and evaluation; 0 (the default) keeps none, and the state is as without the field.
* ``info_codes``: InfoGAN (Chen et al. 2016) for the unconditional GAN: G also takes a
  categorical code c ~ U{0..info_codes-1} (one-hot, appended to z), a Q head on D's last features predicts c from G(z, c), and both players add
  ``info_weight`` x the cross-entropy of that prediction (the mutual-information lower bound).
  No labels are used; on MNIST the codes tend to become the digits, which keeps G from
  spending samples on the boundaries between classes.
* ``lr_decay_start``: from that epoch on, both learning rates fall linearly to 0 at the end of
  the last epoch (:func:`lr_factor`, :func:`jaxgen.core.optim.linear_decay`); 0 (the default)
  keeps them constant. The rates live in the optimisers' injected hyperparameters
  (:func:`jaxgen.core.optim.optimizer`), so ``train_step`` uses whatever rate the state holds
  and the epoch-wise trainer step (``data_step``) sets it from the schedule.

**Traced loss weights, compiled terms.** ``g_learning_rate``, ``d_learning_rate``, ``clip``,
``gp_weight``, ``r1_weight``, ``label_smoothing``, ``ema``, ``info_weight`` and ``augment_p``
are traced hyperparameters (``state.hparams``): ``jaxgen.core.sweep.sweep(trainer,
grid={"r1_weight": [1, 5]})`` trains every value in one compile. *Whether* a term is computed
at all is a static decision taken from the config's value, so that a default run costs what
it did: a config value of 0 means the term is not compiled (no R1 gradient, no smoothing
term, no weight average in the state, no InfoGAN cross-entropy), and a traced value for it is
refused (:func:`check_hparams`); a nonzero config value compiles the term and the traced
value weights it (a sweep's values may include 0, which then weights it by 0). The loss picks
its own terms the same way (``gp_weight`` for wgan-gp, ``clip`` for wgan, ``label_smoothing``
for bce only), as do ``info_codes`` (``info_weight``) and ``augment`` (``augment_p``); a value
other than the config's own for a term left out is refused too. :func:`init` checks concrete
values; inside a vmapped sweep they are tracers, so a sweep front end should call
:func:`check_hparams` on its grid. ``augment_p`` has no "off" value: with an ``augment``
policy the per-image Bernoulli(p) choice is always compiled (a draw and a select per image,
negligible beside D), and p = 1 applies every augmentation, as DiffAugment.

One iteration (``train_step``) = ``n_critic`` discriminator updates (each on its own real
minibatch) + one generator update. Optimiser defaults follow the loss (``resolve``): Adam(2e-4,
0.5, 0.999) and n_critic 1 for bce / hinge; RMSProp(5e-5) with clipping 0.01 and n_critic 5
for wgan; Adam(1e-4, 0.5, 0.9), n_critic 5, lambda 10 for wgan-gp.

Choices made here (not covered by the house rules):

* Images are scaled to [-1, 1] (tanh generator). The discriminator runs in training mode
  (batch statistics) in both updates, as the DCGAN reference code does; only its own update
  writes its batch-norm statistics and spectral-norm vectors (``u`` advances once per D
  update, on the real pass). Samples are drawn with the generator's batch statistics
  (``train_bn=True``), in chunks of ``batch_size``, i.e. as it was trained.
* The discriminator's default normalisation (``d_norm="auto"``): batch norm for the DCGAN
  with bce / wgan / hinge, layer norm for wgan-gp (a per-example penalty forbids batch norm,
  Gulrajani et al. 2017), none with spectral normalisation or for the MLP.
* Conditional D updates generate fakes with the real batch's labels (so the penalty
  interpolates within a label); the G update draws labels uniformly.
* The weight average's decay is warmed up as ``min(ema, (1 + t) / (10 + t))`` at iteration
  ``t`` (:func:`jaxgen.core.optim.ema_decay`, as TensorFlow's ``ExponentialMovingAverage`` with
  ``num_updates``), so that a short run does not average in its random initial weights; the
  average itself is :func:`jaxgen.core.optim.polyak`. Batch norm still uses batch statistics
  when sampling from the averaged weights.
* Names follow the house words (``learning_rate``, ``adam_b1`` / ``adam_b2`` as the
  autoencoder's); run directories written with the old names (``lr_g``, ``lr_d``, ``beta1``,
  ``beta2``) still load (``GANConfig.MOVED``).

Contract (DESIGN.md): ``init(key, config, hparams=None) -> GANState``,
``train_step(state, batch) -> (state, metrics)``, ``make_trainer(config, data) -> Trainer``,
``make_train(config, data) -> train(key, hparams=None)``. Step randomness is
``fold_in(state.key, state.step)``. For the metrics of :mod:`jaxgen.eval.fid`,
:func:`sampler` turns a state into the sampling function they take.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training.train_state import TrainState

from jaxgen.core import config as C
from jaxgen.core import optim
from jaxgen.core.errors import ConfigError, choice
from jaxgen.core.sharding import shard_batch, zeros_rows_like
from jaxgen.core.train import Trainer, batch_indices
from jaxgen.core.train import make_train as _make_train
from jaxgen.data.transforms import to_unit
from jaxgen.generative import augment as A
from jaxgen.losses import adversarial as L
from jaxgen.nets import gan as nets
from jaxgen.nets.conv import UPCONV_METHODS

ARCHS = ("dcgan", "mlp")
OPTIMIZERS = ("auto", "adam", "rmsprop")
D_NORMS = ("auto",) + nets.NORMS
DATA_SEED = 0x6A7
EMA = "ema"  # key of the generator's averaged weights in its ``aux``

#: Per-loss defaults: optimiser, learning rate (G and D), Adam betas, n_critic.
LOSS_DEFAULTS = {
    "bce": dict(optimizer="adam", learning_rate=2e-4, adam_b1=0.5, adam_b2=0.999, n_critic=1),
    "hinge": dict(optimizer="adam", learning_rate=2e-4, adam_b1=0.5, adam_b2=0.999, n_critic=1),
    "wgan": dict(optimizer="rmsprop", learning_rate=5e-5, adam_b1=0.5, adam_b2=0.999, n_critic=5),
    "wgan-gp": dict(optimizer="adam", learning_rate=1e-4, adam_b1=0.5, adam_b2=0.9, n_critic=5),
}

#: Traced hyperparameters that weight a term compiled only for some configs (see the module
#: docstring): name -> the term, for the error of :func:`check_hparams`.
GATED = {"r1_weight": "the R1 penalty", "label_smoothing": "the label smoothing",
         "ema": "the generator weight average", "info_weight": "the InfoGAN term",
         "augment_p": "the augmentation", "gp_weight": "the gradient penalty", "clip": "the weight clipping"}


@dataclasses.dataclass(frozen=True)
class GANConfig:
    """GAN-family config. Defaults: DCGAN on MNIST (28x28x1), minimax BCE, batch 64.

    Fields left at their "by loss" value (0 / -1 / "auto") take the loss's published
    defaults (``LOSS_DEFAULTS``) through :func:`resolve`."""

    #: ``--resume`` may extend a run to more epochs and start (or move) the learning-rate
    #: decay: the only schedule is ``lr_factor``, a function of the step and these two fields
    RESUME_MAY_CHANGE: ClassVar[tuple] = ("epochs", "lr_decay_start")
    #: run directories written before the house names
    MOVED: ClassVar[dict] = {"lr_g": "g_learning_rate", "lr_d": "d_learning_rate", "beta1": "adam_b1", "beta2": "adam_b2"}

    arch: str = C.static("dcgan", "dcgan (strided convs) or mlp", ARCHS)
    loss: str = C.static("bce", "bce (minimax, non-saturating G), wgan (clipping), wgan-gp (gradient penalty) or hinge", L.LOSSES)
    sn: bool = C.static(False, "spectral normalisation on every discriminator layer")
    conditional: bool = C.static(False, "condition G and D on the class label")
    cond_d: str = C.static("projection", "conditional D: projection (Miyato & Koyama) or concat (one-hot label input)", nets.COND_D)
    num_classes: int = C.static(10, "number of labels (conditional)", accepts=C.whole(1))
    image_size: int = C.static(28, "image side: 28 (MNIST) or 64 (faces, RGB)", (28, 64))
    channels: int = C.static(1, "image channels: 1 (grey) or 3 (RGB)", (1, 3))
    z_dim: int = C.static(100, "noise size", accepts=C.whole(1))
    width: int = C.static(64, "DCGAN base channels w (G: 4x4x4w at 28, 4x4x8w at 64; D mirrors)", accepts=C.whole(1))
    deconv: str = C.static("auto", "DCGAN generator up-convolutions: auto (matmul on CPU, xla on GPU/TPU), matmul (GEMM + col2im), "
                           "subpixel or xla (lax.conv_transpose); the same function and params", UPCONV_METHODS)
    mlp_hidden: tuple = C.static((256, 512, 1024), "MLP generator hidden sizes (the discriminator uses them reversed)",
                                 accepts=C.sizes(1, whole=True))
    d_norm: str = C.static("auto", "DCGAN discriminator norm: auto (by loss, see docs), batch, layer or none", D_NORMS)
    n_power: int = C.static(1, "power iterations per D update (spectral norm)", accepts=C.whole(1))
    n_critic: int = C.static(0, "D updates per G update (0: by loss: 5 for wgan / wgan-gp, else 1)",
                             accepts=C.whole(0, 100, words="0 (by loss) or 1 to 100"))
    optimizer: str = C.static("auto", "auto (by loss: rmsprop for wgan, else adam), adam or rmsprop", OPTIMIZERS)
    adam_b1: float = C.static(-1.0, "Adam beta1 (-1: by loss, 0.5)", accepts=C.number(hi=1, hi_open=True, words="a number below 1 (negative: by loss)"))
    adam_b2: float = C.static(-1.0, "Adam beta2 (-1: by loss, 0.999; wgan-gp 0.9)", accepts=C.number(hi=1, hi_open=True, words="a number below 1 (negative: by loss)"))
    batch_size: int = C.static(64, "minibatch size (real images per D update)", accepts=C.whole(1))
    epochs: int = C.static(5, "passes over the training set (each iteration reads n_critic minibatches)", accepts=C.whole(1))
    g_learning_rate: float = C.traced(0.0, "generator learning rate (0: by loss: 2e-4; wgan 5e-5; wgan-gp 1e-4)", accepts=C.number(0, 1, hi_open=True, words="0 (by loss) or a number in (0, 1)"))
    d_learning_rate: float = C.traced(0.0, "discriminator learning rate (0: by loss, as g_learning_rate)", accepts=C.number(0, 1, hi_open=True, words="0 (by loss) or a number in (0, 1)"))
    clip: float = C.traced(0.01, "wgan: critic weights are clipped to [-clip, clip]", accepts=C.number(0, lo_open=True))
    gp_weight: float = C.traced(10.0, "wgan-gp: weight lambda of the gradient penalty", accepts=C.number(0))
    augment: str = C.static("none", "DiffAugment of D's inputs, real and fake: none, translation (1/8 of the side), cutout (half the side) or translation,cutout", A.POLICIES)
    augment_p: float = C.traced(1.0, "probability that each augmentation is applied to an image (1: DiffAugment; < 1: ADA-style, less leaking into G); traced, always compiled with an augment policy",
                                accepts=C.number(0, 1, lo_open=True, words="a probability in (0, 1]"))
    r1_weight: float = C.traced(0.0, "gamma of the R1 penalty gamma/2 E|grad D(real)|^2 on the discriminator (0: not computed; e.g. 1 to 10); traced, compiled when nonzero", accepts=C.number(0))
    label_smoothing: float = C.traced(0.0, "bce: one-sided label smoothing, D's target for real images is 1 - this (0: not computed; e.g. 0.1); traced, compiled when nonzero", accepts=C.number(0, 0.5, hi_open=True))
    ema: float = C.traced(0.0, "decay of a moving average of G's weights used for samples and evaluation (0: none kept; e.g. 0.999); traced, kept when nonzero",
                            accepts=C.number(0, 1, hi_open=True, words="0 (no average) or a decay in (0, 1)"))
    info_codes: int = C.static(0, "InfoGAN: size of a categorical latent code given to G and predicted by a Q head on D (0: none; e.g. 10 for MNIST)",
                               accepts=C.whole(0, 1000, words="0 (none) or a whole number up to 1000"))
    info_weight: float = C.traced(1.0, "InfoGAN: weight lambda of the code's cross-entropy (the mutual-information term) in both losses (0: not computed); traced, compiled when nonzero with info_codes", accepts=C.number(0))
    lr_decay_start: int = C.static(0, "epoch from which both learning rates fall linearly to 0 at the end of the last epoch (0: constant rates)",
                                   accepts=C.whole(0, words="0 (constant rates) or a whole epoch below epochs"))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    @property
    def g_classes(self) -> int:
        """Size of the generator's categorical input: the labels (conditional), the InfoGAN
        code (``info_codes``), else 0."""
        return self.num_classes if self.conditional else self.info_codes

    def steps_per_epoch(self, num_examples: int) -> int:
        return (num_examples // self.batch_size) // resolve(self).n_critic


def resolve(config: GANConfig) -> GANConfig:
    """``config`` with every "by loss" field replaced by the loss's default (idempotent)."""
    d = LOSS_DEFAULTS.get(config.loss, LOSS_DEFAULTS["bce"])
    norm = config.d_norm
    if norm == "auto":
        norm = "none" if (config.sn or config.arch == "mlp") else ("layer" if config.loss == "wgan-gp" else "batch")
    return dataclasses.replace(
        config,
        optimizer=d["optimizer"] if config.optimizer == "auto" else config.optimizer,
        g_learning_rate=config.g_learning_rate or d["learning_rate"],
        d_learning_rate=config.d_learning_rate or d["learning_rate"],
        adam_b1=d["adam_b1"] if config.adam_b1 < 0 else config.adam_b1,
        adam_b2=d["adam_b2"] if config.adam_b2 < 0 else config.adam_b2,
        n_critic=config.n_critic or d["n_critic"],
        d_norm=norm,
    )


def validate(config: GANConfig, num_examples: int | None = None) -> GANConfig:
    """Raise ConfigError (one sentence) for an out-of-range config; return it resolved.

    Each field's own range is declared on it (:func:`jaxgen.core.config.check_fields`); the
    checks here relate fields. ``num_examples``: the training-set size, where known (the
    batch-size sentence then names it, whatever the batch size's fault)."""
    bs = config.batch_size
    if num_examples is not None and not (isinstance(bs, int) and not isinstance(bs, bool) and bs >= 1):
        C.require(config, "batch_size", False, f"a whole number from 1 to the training-set size ({num_examples})")
    C.check_fields(config)
    C.require(config, "info_codes", not (config.info_codes and config.conditional),
              "0 (none) or a whole number up to 1000, and 0 when conditional=True")
    C.require(config, "mlp_hidden", len(config.mlp_hidden) >= 1, "a non-empty comma-separated list of whole numbers >= 1")
    C.require(config, "label_smoothing", config.label_smoothing == 0 or config.loss == "bce",
              "a number in [0, 0.5), and 0 unless loss='bce'")
    C.require(config, "lr_decay_start", config.lr_decay_start < config.epochs,
              f"0 (constant rates) or a whole epoch below epochs ({config.epochs})")
    r = resolve(config)
    if r.loss == "wgan-gp" and r.arch == "dcgan" and r.d_norm == "batch":
        raise ConfigError("d_norm='batch' is not accepted with loss='wgan-gp' (the per-example gradient penalty "
                          "forbids batch norm in the critic); choose one of: 'layer', 'none', 'auto'.")
    if num_examples is not None:
        C.require(config, "batch_size", bs * r.n_critic <= num_examples,
                  f"a whole number >= 1 with batch_size * n_critic ({r.n_critic}) <= the training-set size ({num_examples})")
    return r


# --------------------------------------------------------------------------- state

class Player(TrainState):
    """One player's params and optimiser state, plus its mutable variable collections
    (``aux``: ``batch_stats`` of batch norm, ``spectral`` power-iteration vectors)."""

    aux: dict


class GANState(struct.PyTreeNode):
    """The whole train state: both players, the run's key, the iteration count, the traced
    hyperparameters (float32 scalars) and the static config."""

    g: Player
    d: Player
    key: jax.Array  # uint32[2]
    step: jax.Array  # int32 iterations (n_critic D updates + 1 G update each)
    hparams: dict
    config: GANConfig = struct.field(pytree_node=False)


def _optimizer(cfg: GANConfig):
    """Both players' optimiser (:func:`jaxgen.core.optim.optimizer`); the injected names are
    those of optax's defaults (``eps``, ``eps_root`` / ``initial_scale`` included), as in run
    directories written before, so their optimiser states still restore. The learning rate
    is set per player from ``hparams`` by :func:`init` (the 1e-4 here is a placeholder)."""
    if cfg.optimizer == "rmsprop":
        return optim.optimizer("rmsprop", learning_rate=1e-4, decay=0.99, eps=1e-8, initial_scale=0.0)
    return optim.optimizer("adam", learning_rate=1e-4, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=1e-8, eps_root=0.0)


@functools.lru_cache(maxsize=None)
def build(config: GANConfig):
    """(generator, discriminator, optimiser) of a resolved config (cached: stable treedefs)."""
    cfg = resolve(config)
    nc = cfg.num_classes if cfg.conditional else 0
    if cfg.arch == "mlp":
        g = nets.MLPGenerator(cfg.image_shape, tuple(cfg.mlp_hidden), cfg.g_classes, onehot=cfg.info_codes > 0)
        d = nets.MLPDiscriminator(tuple(reversed(cfg.mlp_hidden)), nc, cfg.cond_d, cfg.sn, cfg.n_power, cfg.info_codes)
    else:
        g = nets.DCGANGenerator(cfg.image_size, cfg.channels, cfg.width, cfg.g_classes, onehot=cfg.info_codes > 0,
                                deconv=cfg.deconv)
        d = nets.DCGANDiscriminator(cfg.image_size, cfg.width, nc, cfg.cond_d, cfg.d_norm, cfg.sn, cfg.n_power,
                                    cfg.info_codes)
    return g, d, _optimizer(cfg)


def _not_compiled(config: GANConfig, name: str) -> str | None:
    """Why the term weighted by traced ``name`` is not compiled for ``config`` (None: it is)."""
    if name in ("r1_weight", "label_smoothing", "ema") and getattr(config, name) == 0:
        return f"the config's {name}=0"
    if name == "info_weight" and not (config.info_codes and config.info_weight > 0):
        return "info_codes=0" if not config.info_codes else "the config's info_weight=0"
    if name == "augment_p" and config.augment == "none":
        return "augment='none'"
    if (name == "gp_weight" and config.loss != "wgan-gp") or (name == "clip" and config.loss != "wgan"):
        return f"loss={config.loss!r}"
    return None


def check_hparams(config: GANConfig, values: Mapping[str, Any]) -> None:
    """Refuse (ConfigError) traced values, or a sweep grid's value lists, that would weight a
    term the config does not compile (see the module docstring): e.g. ``r1_weight`` 5 where the
    config's ``r1_weight`` is 0, ``augment_p`` without an ``augment`` policy, ``gp_weight``
    unless ``loss="wgan-gp"``. The config's own value is always accepted. Tracers (values
    inside a vmapped ``init``) are not inspected: a sweep should call this on its grid."""
    for name, what in GATED.items():
        if name not in values or isinstance(values[name], jax.core.Tracer):
            continue
        reason = _not_compiled(config, name)
        if reason and np.any(np.asarray(values[name], np.float32) != np.float32(getattr(config, name))):
            hint = (f"set {name} to a nonzero value (e.g. one of the values) so that it is compiled"
                    if reason.startswith("the config's") else "sweep it with a config that uses it")
            raise ConfigError(f"{name}={values[name]!r} weights {what}, which is not computed with {reason}; {hint}.")


def init(key: jax.Array, config: GANConfig, hparams: dict | None = None) -> GANState:
    """Initial state. ``key``: uint32[2]; ``hparams``: traced overrides (scalars)."""
    cfg = resolve(config)
    g_net, d_net, tx = build(cfg)
    check_hparams(cfg, hparams or {})
    hp = C.hparams(cfg, hparams)
    kg, kd, krun = jax.random.split(key, 3)
    z = jnp.zeros((2, cfg.z_dim))
    y = jnp.zeros((2,), jnp.int32)
    x = jnp.zeros((2, *cfg.image_shape))
    gv = dict(g_net.init({"params": kg}, z, y, train=True))
    dv = dict(d_net.init({"params": kd}, x, y, train=True, update_sn=False))
    players = []
    for net, v, lr in ((g_net, gv, hp["g_learning_rate"]), (d_net, dv, hp["d_learning_rate"])):
        params = v.pop("params")
        p = Player.create(apply_fn=net.apply, params=params, tx=tx, aux=v)
        players.append(p.replace(opt_state=optim.set_hyperparams(p.opt_state, {"learning_rate": lr})))
    g = players[0]
    if cfg.ema > 0:
        g = g.replace(aux={**g.aux, EMA: jax.tree_util.tree_map(jnp.copy, g.params)})
    return GANState(g=g, d=players[1], key=krun, step=jnp.zeros((), jnp.int32), hparams=hp, config=cfg)


# --------------------------------------------------------------------------- applying the nets

def g_forward(g: Player, params, z: jax.Array, y: jax.Array | None, update_stats: bool = False):
    """Generator images [B, H, W, C] (batch statistics) and its updated ``aux``."""
    variables = {"params": params, **{k: v for k, v in g.aux.items() if k != EMA}}
    if "batch_stats" in g.aux and update_stats:
        out, new = g.apply_fn(variables, z, y, train=True, mutable=["batch_stats"])
        return out, {**g.aux, **new}
    if "batch_stats" in g.aux:
        out, _ = g.apply_fn(variables, z, y, train=True, mutable=["batch_stats"])
        return out, g.aux
    return g.apply_fn(variables, z, y, train=True), g.aux


def d_forward(d: Player, params, aux: dict, x: jax.Array, y: jax.Array | None, update_sn: bool = False):
    """Discriminator scores [B], InfoGAN code logits [B, info_codes] (None without a Q head) and
    the new ``aux`` (batch stats always, ``u`` if ``update_sn``)."""
    mutable = [k for k in aux if k == "batch_stats" or (k == nets.SPECTRAL and update_sn)]
    variables = {"params": params, **aux}
    if not mutable:
        out, new = d.apply_fn(variables, x, y, train=True, update_sn=False), aux
    else:
        out, new = d.apply_fn(variables, x, y, train=True, update_sn=update_sn, mutable=mutable)
        new = {**aux, **new}
    scores, q = out if isinstance(out, tuple) else (out, None)
    return scores, q, new


def _labels(cfg: GANConfig, key, n):
    """Random generator labels / InfoGAN codes ``int [n]`` (None for a plain GAN)."""
    return jax.random.randint(key, (n,), 0, cfg.g_classes) if cfg.g_classes else None


def _info_term(cfg: GANConfig, hp: dict, q_logits, codes) -> tuple[jax.Array, dict]:
    """InfoGAN: (``hp["info_weight"]`` x cross-entropy of the code logits ``[B, K]`` against the
    codes ``[B]``, metrics ``info_ce`` / ``info_acc``); zero and no metrics without codes or with
    the config's ``info_weight`` 0 (the term is then not computed)."""
    if not (cfg.info_codes and cfg.info_weight > 0):
        return jnp.zeros(()), {}
    ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(q_logits, codes))
    return hp["info_weight"] * ce, {"info_ce": ce, "info_acc": jnp.mean(jnp.argmax(q_logits, -1) == codes)}


def d_update(state: GANState, real: jax.Array, labels: jax.Array | None, key: jax.Array):
    """One discriminator update on ``real`` [B, H, W, C] in [-1, 1]. Returns (d Player, metrics)."""
    cfg, hp, g, d = state.config, state.hparams, state.g, state.d
    kz, kgp = jax.random.split(key)
    ka = jax.random.fold_in(key, 2)
    y = labels if cfg.conditional else None
    z = jax.random.normal(kz, (real.shape[0], cfg.z_dim))
    codes = _labels(cfg, jax.random.fold_in(key, 3), real.shape[0]) if cfg.info_codes else None
    fake = jax.lax.stop_gradient(g_forward(g, g.params, z, y if cfg.conditional else codes)[0])
    # the penalty interpolates between the augmented real and fake images
    real = A.augment(cfg.augment, jax.random.fold_in(ka, 0), real, hp["augment_p"])
    fake = A.augment(cfg.augment, jax.random.fold_in(ka, 1), fake, hp["augment_p"])
    smoothing = hp["label_smoothing"] if cfg.label_smoothing > 0 else 0.0  # 0: the term is not compiled

    def loss_fn(params):
        s_real, _, aux = d_forward(d, params, d.aux, real, y, update_sn=True)
        s_fake, q_fake, aux = d_forward(d, params, aux, fake, y)
        loss = L.d_loss(cfg.loss, s_real, s_fake, smoothing)
        m = {"d_loss": loss, "d_real": jnp.mean(s_real), "d_fake": jnp.mean(s_fake),
             "d_acc": L.d_accuracy(s_real, s_fake)}
        info, mi = _info_term(cfg, hp, q_fake, codes)
        loss, m = loss + info, {**m, **mi}
        if cfg.loss == "wgan-gp":
            xh = L.interpolate(kgp, real, fake)
            gp = L.gradient_penalty(lambda xx: d_forward(d, params, aux, xx, y)[0], xh)
            loss = loss + hp["gp_weight"] * gp
            m["gp"] = gp
        if cfg.r1_weight > 0:
            r1 = L.r1_penalty(lambda xx: d_forward(d, params, d.aux, xx, y)[0], real)
            loss = loss + hp["r1_weight"] * r1
            m["r1"] = r1
        return loss, (aux, m)

    grads, (aux, m) = jax.grad(loss_fn, has_aux=True)(d.params)
    d = d.apply_gradients(grads=grads).replace(aux=aux)
    if cfg.loss == "wgan":
        d = d.replace(params=L.clip_weights(d.params, hp["clip"]))
    return d, m


def g_update(state: GANState, key: jax.Array):
    """One generator update against the current discriminator. Returns (g Player, metrics)."""
    cfg, hp, g, d = state.config, state.hparams, state.g, state.d
    kz, ky = jax.random.split(key)
    y = _labels(cfg, ky, cfg.batch_size)
    z = jax.random.normal(kz, (cfg.batch_size, cfg.z_dim))

    y_d = y if cfg.conditional else None  # InfoGAN's codes go to G only

    def loss_fn(params):
        fake, aux = g_forward(g, params, z, y, update_stats=True)
        s, q, _ = d_forward(d, d.params, d.aux, A.augment(cfg.augment, jax.random.fold_in(key, 2), fake, hp["augment_p"]), y_d)
        loss = L.g_loss(cfg.loss, s)
        info, mi = _info_term(cfg, hp, q, y)
        return loss + info, (aux, {"g_loss": loss, **{"g_" + k: v for k, v in mi.items()}})

    (_, (aux, m)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
    return g.apply_gradients(grads=grads).replace(aux=aux), m


def train_step(state: GANState, batch: dict) -> tuple[GANState, dict]:
    """One iteration: ``n_critic`` D updates then one G update.

    Args:
      batch: ``{"real": float [n_critic, B, H, W, C] in [-1, 1], "labels": int32 [n_critic, B]}``.
    Returns:
      (new state, metrics): d_loss, d_real, d_fake, d_acc (means over the D updates),
      wdist (= d_real - d_fake), gp (wgan-gp), r1 (r1_weight > 0), g_loss (the adversarial
      part); InfoGAN adds info_ce / info_acc (Q on D's fakes) and g_info_ce / g_info_acc (on G's).
    """
    cfg = state.config
    key = jax.random.fold_in(state.key, state.step)
    ms = []
    for i in range(cfg.n_critic):
        d, m = d_update(state, batch["real"][i], batch["labels"][i], jax.random.fold_in(key, i))
        state = state.replace(d=d)
        ms.append(m)
    metrics = jax.tree_util.tree_map(lambda *x: sum(x) / len(x), *ms)
    metrics["wdist"] = metrics["d_real"] - metrics["d_fake"]
    g, mg = g_update(state, jax.random.fold_in(key, cfg.n_critic))
    if cfg.ema > 0:  # the average after iteration t: decay = min(ema, (1 + t) / (10 + t))
        decay = optim.ema_decay(state.hparams["ema"], state.step)
        g = g.replace(aux={**g.aux, EMA: optim.polyak(g.aux[EMA], g.params, 1.0 - decay)})
    return state.replace(g=g, step=state.step + 1), {**metrics, **mg}


def averaged_params(state: GANState):
    """The generator's averaged weights (``config.ema > 0``), else None."""
    return state.g.aux.get(EMA)


# --------------------------------------------------------------------------- data

def to_signed(images: jax.Array) -> jax.Array:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return to_unit(images) * 2.0 - 1.0


def draw_batch(state: GANState, data: dict) -> dict:
    """The ``n_critic`` minibatches of iteration ``state.step`` from device-resident ``data``
    (``images`` uint8 [N, H, W, C], ``labels`` int32 [N]), epoch-wise shuffled."""
    cfg = state.config
    n = data["images"].shape[0]
    data_key = jax.random.fold_in(state.key, DATA_SEED)
    idx = jnp.stack([batch_indices(data_key, state.step * cfg.n_critic + i, n, cfg.batch_size)
                     for i in range(cfg.n_critic)])
    return {"real": shard_batch(to_signed(data["images"][idx])), "labels": data["labels"][idx]}


def lr_factor(config: GANConfig, step: jax.Array, steps_per_epoch: int) -> jax.Array:
    """Multiplier of both base learning rates at iteration ``step`` (float32 scalar): 1 before
    epoch ``lr_decay_start``, then linear down to 0 at iteration ``epochs * steps_per_epoch``."""
    if config.lr_decay_start <= 0:
        return jnp.ones((), jnp.float32)
    return optim.linear_decay(step, config.lr_decay_start * steps_per_epoch, config.epochs * steps_per_epoch)


def with_learning_rates(state: GANState, factor: jax.Array) -> GANState:
    """``state`` whose optimisers use ``factor`` times the base rates
    ``hparams["g_learning_rate" / "d_learning_rate"]``."""
    def set_lr(p: Player, base) -> Player:
        return p.replace(opt_state=optim.set_hyperparams(p.opt_state, {"learning_rate": base * factor}))
    return state.replace(g=set_lr(state.g, state.hparams["g_learning_rate"]),
                         d=set_lr(state.d, state.hparams["d_learning_rate"]))


def data_step(state: GANState, data: dict) -> tuple[GANState, dict]:
    """One iteration on device-resident data (the Trainer's step), at the scheduled learning rates."""
    cfg = state.config
    if cfg.lr_decay_start > 0:
        spe = cfg.steps_per_epoch(int(data["images"].shape[0]))
        state = with_learning_rates(state, lr_factor(cfg, state.step, spe))
    return train_step(state, draw_batch(state, data))


def make_trainer(config: GANConfig, data: dict) -> Trainer:
    """The run of ``config.epochs`` epochs over ``data`` (``images`` uint8 [N, H, W, C]; ``labels``
    int [N], required when conditional; without them zeros). Either may be a global array split
    by rows over the processes (:func:`jaxgen.core.sharding.split_rows_over_processes`): it is
    kept as it is (no host copy), and default labels are split alike."""
    images = data["images"]
    n = int(images.shape[0])
    cfg = validate(config, n)
    if tuple(images.shape[1:]) != cfg.image_shape:
        raise ConfigError(f"the images have shape {tuple(images.shape[1:])} but the config expects "
                          f"{cfg.image_shape} (image_size={cfg.image_size}, channels={cfg.channels}); "
                          "set image_size and channels to match the data.")
    labels = data.get("labels")
    if labels is None:
        if cfg.conditional:
            raise ConfigError("conditional=True needs labels; give data={'images': ..., 'labels': ...} or set conditional=False.")
        labels = zeros_rows_like(images)  # split by rows as the images are (several processes)
    spe = cfg.steps_per_epoch(n)
    return Trainer(
        init=lambda key, hp=None: init(key, cfg, hp),
        step=data_step,
        num_steps=cfg.epochs * spe,
        data={"images": jnp.asarray(images, jnp.uint8), "labels": jnp.asarray(labels, jnp.int32)},
        steps_per_epoch=spe,
        config=cfg,
    )


def make_train(config: GANConfig, data: dict):
    """``train(key, hparams=None) -> (GANState, metrics[num_steps])`` as one scan (jit/vmap it)."""
    return _make_train(make_trainer(config, data))


# --------------------------------------------------------------------------- sampling

def generate(state: GANState, z: jax.Array, labels: jax.Array | None = None, average: bool = True) -> jax.Array:
    """Images in [-1, 1], ``[N, H, W, C]``, for noise ``z [N, Z]`` (and labels or InfoGAN codes
    ``int [N]``; zeros if None).

    Uses the averaged generator weights when the state has them (``config.ema > 0``) and
    ``average`` is True, else the trained ones. Batch-norm statistics come from chunks of
    ``batch_size`` samples (as in training); N is padded to a whole number of chunks.
    """
    avg = averaged_params(state)
    params = avg if (average and avg is not None) else state.g.params
    cfg = state.config
    n = z.shape[0]
    b = min(cfg.batch_size, n)
    chunks = math.ceil(n / b)
    pad = chunks * b - n
    y = jnp.zeros((n,), jnp.int32) if labels is None else jnp.asarray(labels, jnp.int32)
    zp = jnp.concatenate([z, z[:pad]]) if pad else z
    yp = jnp.concatenate([y, y[:pad]]) if pad else y
    zs, ys = zp.reshape(chunks, b, -1), yp.reshape(chunks, b)
    out = jax.lax.map(lambda zy: g_forward(state.g, params, zy[0], zy[1] if cfg.g_classes else None)[0],
                      (zs, ys))
    return out.reshape(chunks * b, *cfg.image_shape)[:n]


def sample(state: GANState, key: jax.Array, n: int, labels: jax.Array | None = None,
           truncation: float | jax.Array = 1.0) -> jax.Array:
    """``n`` images in [0, 1] ``[n, H, W, C]`` from z ~ N(0, I); ``labels`` ``int [n]``: the requested
    classes (conditional) or codes (InfoGAN), drawn uniformly if None.

    ``truncation`` ψ in (0, 1] scales the noise, z = ψ·ε (the truncation trick: ψ < 1 trades
    diversity, hence FID, for sharper, more confidently classified samples; 1 = none).
    """
    kz, ky = jax.random.split(key)
    z = truncation * jax.random.normal(kz, (n, state.config.z_dim))
    if labels is None:
        labels = _labels(state.config, ky, n)
    return (generate(state, z, labels) + 1.0) / 2.0


_sample_jit = jax.jit(sample, static_argnums=2)


def sampler(state: GANState, truncation: float = 1.0):
    """``sample_fn(key, n) -> (images [n, H, W, C] in [0, 1], labels, codes)`` for the metrics of
    :mod:`jaxgen.eval.fid` (``evaluate_generator``): balanced requested labels
    ``arange(n) % num_classes`` for a conditional GAN (returned as ``labels``), balanced InfoGAN
    codes (returned as ``codes``), else both None; noise scaled by ``truncation`` (see
    :func:`sample`). One compile per state structure and ``n``."""
    cfg = state.config
    truncation = jnp.float32(truncation)

    def sample_fn(key: jax.Array, n: int):
        requested = jnp.arange(n) % cfg.g_classes if cfg.g_classes else None
        images = _sample_jit(state, key, n, requested, truncation)
        return images, (requested if cfg.conditional else None), (requested if cfg.info_codes else None)

    return sample_fn
