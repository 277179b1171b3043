"""Autoencoders, denoising autoencoders and VAEs (one module, chosen by config).

* ``model="ae"``: deterministic code ``h = enc(x)``, loss = Bernoulli cross-entropy of
  ``dec(h)`` against ``x`` + ``sparsity * |h|_1`` (the penalty that makes an over-complete
  code, ``latent > 784``, useful).
* ``model="dae"``: the same, but the encoder reads a corrupted ``x~`` (masking or Gaussian
  noise, ``noise_level``) and the loss compares ``dec(enc(x~))`` with the clean ``x``
  (Vincent et al. 2008).
* ``model="vae"``: ``enc(x) = (mu, log sigma^2)``, ``z = mu + sigma * eps``, Bernoulli decoder
  (logits), loss = -ELBO = E_q[-log p(x|z)] + ``kl_weight`` * KL(q(z|x) || N(0, I))
  (Kingma & Welling 2014).

Architectures: ``"mlp"`` (784 -> hidden -> code; code -> hidden -> 784) and ``"conv"`` (two
stride-2 4x4 convolutions; two stride-2 4x4 up-convolutions in the sub-pixel formulation of
:mod:`jaxgen.nets.conv`). Inputs are ``[B, 28, 28, 1]`` in [0, 1].

Contract (DESIGN.md): ``init(key, config, hparams=None) -> AEState``,
``train_step(state, batch) -> (state, metrics)``, ``make_train(config, data) -> train(key)``.
The per-step randomness is ``fold_in(state.key, state.step)``, so a run is a pure function
of its seed, and a resumed run is bit-identical.
"""
from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training.train_state import TrainState

from jaxgen.core import config as C
from jaxgen.core import optim
from jaxgen.core.distributions import bernoulli_log_prob, kl_diag_gaussian_std_normal, reparameterize
from jaxgen.core.sharding import shard_batch
from jaxgen.core.train import Trainer, batch_indices
from jaxgen.core.train import make_train as _make_train
from jaxgen.data.transforms import BINARIZE, NOISE, binarize, corrupt, to_unit
from jaxgen.eval.likelihood import LikelihoodModel
from jaxgen.nets.conv import ConvDecoder, ConvEncoder
from jaxgen.nets.mlp import MLP

IMAGE_SHAPE = (28, 28, 1)
MODELS = ("ae", "dae", "vae")
ARCHS = ("mlp", "conv")
DECONVS = ("auto", "matmul", "subpixel", "xla", "transpose")
DATA_SEED = 0x5EED
BATCH_WORDS = "a whole number from 1 to the training-set size"


@dataclasses.dataclass(frozen=True)
class AEConfig:
    """Autoencoder-family config. Defaults: the course's MLP VAE on binarised MNIST."""

    model: str = C.static("vae", "ae (autoencoder), dae (denoising) or vae", MODELS)
    arch: str = C.static("mlp", "mlp (784-hidden-code) or conv (two stride-2 4x4 convs each way)", ARCHS)
    latent: int = C.static(16, "code / latent size (e.g. 2, 16, 64; >784 gives an over-complete AE)", accepts=C.whole(1))
    hidden: int = C.static(512, "hidden units of the MLP encoder and decoder", accepts=C.whole(1))
    deconv: str = C.static("auto", "conv decoder up-convolution: auto (matmul on CPU, xla on GPU/TPU), matmul (GEMM + col2im), "
                           "subpixel, xla (lax.conv_transpose), all with the same params; or transpose (flax ConvTranspose)", DECONVS)
    noise: str = C.static("mask", "dae input corruption: mask (drop pixels) or gaussian (additive)", NOISE)
    binarize: str = C.static("threshold", "pixel binarisation: threshold (x>0.5), stochastic (x~Bernoulli) or none", BINARIZE)
    batch_size: int = C.static(128, "minibatch size", accepts=C.whole(1, words=BATCH_WORDS))
    epochs: int = C.static(20, "passes over the training set", accepts=C.whole(1))
    adam_b1: float = C.static(0.9, "Adam beta1", accepts=C.number(0, 1, hi_open=True))
    adam_b2: float = C.static(0.999, "Adam beta2", accepts=C.number(0, 1, hi_open=True))
    learning_rate: float = C.traced(1e-3, "Adam learning rate", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    kl_weight: float = C.traced(1.0, "vae: weight of the KL term (1 = the ELBO)", accepts=C.number(0))
    sparsity: float = C.traced(0.0, "ae/dae: weight of the L1 penalty on the code", accepts=C.number(0))
    noise_level: float = C.traced(0.25, "dae: masking probability or Gaussian noise std",
                                  accepts=C.number(words="a number (a probability in [0, 1] unless noise='gaussian')"))

    @property
    def variational(self) -> bool:
        return self.model == "vae"

    def steps_per_epoch(self, num_examples: int) -> int:
        return num_examples // self.batch_size


def validate(config: AEConfig, num_examples: int | None = None) -> AEConfig:
    """Raise ConfigError (one sentence) for an out-of-range config; return it unchanged.

    Each field's own range is declared on it (:func:`jaxgen.core.config.check_fields`); the
    checks here relate fields. ``num_examples``: the training-set size, where known (the
    batch-size sentence then names it, whatever the batch size's fault)."""
    if num_examples is not None:
        bs = config.batch_size
        ok = isinstance(bs, int) and not isinstance(bs, bool) and 1 <= bs <= num_examples
        C.require(config, "batch_size", ok, f"{BATCH_WORDS} ({num_examples})")
    C.check_fields(config)
    C.require(config, "noise_level", 0 <= config.noise_level <= 1 or config.noise == "gaussian", "a probability in [0, 1]")
    return config


class AutoEncoder(nn.Module):
    """Encoder/decoder pair. ``encode: [B,28,28,1] -> code [B,L]`` (VAE: ``(mu, log_var)``);
    ``decode: [B,L] -> logits [B,28,28,1]``."""

    arch: str
    latent: int
    hidden: int
    variational: bool
    deconv: str = "auto"

    def setup(self):
        out = 2 * self.latent if self.variational else self.latent
        if self.arch == "mlp":
            self.encoder = MLP((self.hidden, out))
            self.decoder = MLP((self.hidden, 28 * 28))
        else:
            self.encoder = ConvEncoder(out)
            self.decoder = ConvDecoder(1, deconv=self.deconv)

    def encode(self, x):
        h = self.encoder(x.reshape(x.shape[0], -1) if self.arch == "mlp" else x)
        if self.variational:
            return jnp.split(h, 2, axis=-1)
        return h

    def decode(self, z):
        return self.decoder(z).reshape(z.shape[0], *IMAGE_SHAPE)

    def __call__(self, x):
        code = self.encode(x)
        return self.decode(code[0] if self.variational else code)


class AEState(TrainState):
    """Params, Adam state, step (from TrainState), the run's key and its hyperparameters."""

    key: jax.Array  # uint32[2]
    hparams: dict  # traced hyperparameters (float32 scalars)
    config: AEConfig = struct.field(pytree_node=False)


@functools.lru_cache(maxsize=None)
def build(config: AEConfig) -> tuple[AutoEncoder, optax.GradientTransformation]:
    """Model and optimiser of a config (cached: the same objects, so the same treedef)."""
    model = AutoEncoder(config.arch, config.latent, config.hidden, config.variational, config.deconv)
    # optax's defaults eps / eps_root injected too, as in run directories written before
    tx = optim.optimizer("adam", learning_rate=config.learning_rate, b1=config.adam_b1, b2=config.adam_b2,
                         eps=1e-8, eps_root=0.0)
    return model, tx


def init(key: jax.Array, config: AEConfig, hparams: dict | None = None) -> AEState:
    """Initial state. ``key``: uint32[2]; ``hparams``: traced overrides (scalars)."""
    model, tx = build(config)
    hp = C.hparams(config, hparams)
    k_param, k_run = jax.random.split(key)
    params = model.init(k_param, jnp.zeros((1, *IMAGE_SHAPE)))["params"]
    state = AEState.create(apply_fn=model.apply, params=params, tx=tx, key=k_run, hparams=hp, config=config)
    return state.replace(opt_state=optim.set_hyperparams(state.opt_state, {"learning_rate": hp["learning_rate"]}))


def _encode(state, params, x):
    return state.apply_fn({"params": params}, x, method=AutoEncoder.encode)


def _decode(state, params, z):
    return state.apply_fn({"params": params}, z, method=AutoEncoder.decode)


@functools.lru_cache(maxsize=None)
def _coders(arch: str, latent: int, hidden: int, variational: bool, deconv: str):
    """Pure ``encode(params, x)`` / ``decode(params, z)`` of one architecture (cached: the same
    function objects each time, so a metric that compiles them compiles once)."""
    model = AutoEncoder(arch, latent, hidden, variational, deconv)

    def encode(params, x):
        return model.apply({"params": params}, x, method=AutoEncoder.encode)

    def decode(params, z):
        return model.apply({"params": params}, z, method=AutoEncoder.decode)

    return encode, decode


def likelihood_model(state: AEState) -> LikelihoodModel:
    """The state as :class:`jaxgen.eval.likelihood.LikelihoodModel` (its params, pure encode /
    decode, whether it is variational, its binarisation), for ``likelihood.evaluate``."""
    cfg = state.config
    encode, decode = _coders(cfg.arch, cfg.latent, cfg.hidden, cfg.variational, cfg.deconv)
    return LikelihoodModel(params=state.params, encode=encode, decode=decode, variational=cfg.variational,
                           binarize=cfg.binarize)


def loss_fn(params, state: AEState, x: jax.Array, key: jax.Array):
    """Per-batch loss of the config's model. ``x``: [B, 28, 28, 1] targets in [0, 1]."""
    cfg, hp = state.config, state.hparams
    k_noise, k_z = jax.random.split(key)
    x_in = corrupt(k_noise, x, cfg.noise, hp["noise_level"]) if cfg.model == "dae" else x
    if cfg.variational:
        mean, log_var = _encode(state, params, x_in)
        z = reparameterize(k_z, mean, log_var)
        rec = -bernoulli_log_prob(_decode(state, params, z), x)
        kl = kl_diag_gaussian_std_normal(mean, log_var)
        loss = jnp.mean(rec + hp["kl_weight"] * kl)
        return loss, {"loss": loss, "recon": jnp.mean(rec), "kl": jnp.mean(kl), "neg_elbo": jnp.mean(rec + kl)}
    code = _encode(state, params, x_in)
    rec = -bernoulli_log_prob(_decode(state, params, code), x)
    l1 = jnp.sum(jnp.abs(code), axis=-1)
    loss = jnp.mean(rec + hp["sparsity"] * l1)
    return loss, {"loss": loss, "recon": jnp.mean(rec), "code_l1": jnp.mean(l1)}


def train_step(state: AEState, batch: jax.Array) -> tuple[AEState, dict]:
    """One Adam step on ``batch`` [B, 28, 28, 1] (targets in [0, 1])."""
    key = jax.random.fold_in(state.key, state.step)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, state, batch, key)
    return state.apply_gradients(grads=grads), metrics


def draw_batch(state: AEState, images: jax.Array) -> jax.Array:
    """Minibatch ``state.step`` of the epoch-shuffled ``images`` (uint8 [N, 28, 28, 1]),
    as float targets [B, 28, 28, 1], binarised per the config."""
    cfg = state.config
    data_key = jax.random.fold_in(state.key, DATA_SEED)
    idx = batch_indices(data_key, state.step, images.shape[0], cfg.batch_size)
    x = shard_batch(to_unit(images[idx]))
    return binarize(jax.random.fold_in(data_key, state.step), x, cfg.binarize)


def data_step(state: AEState, data: dict) -> tuple[AEState, dict]:
    """One iteration on device-resident ``data = {"images": uint8 [N, 28, 28, 1]}``."""
    return train_step(state, draw_batch(state, data["images"]))


def make_trainer(config: AEConfig, data: dict) -> Trainer:
    """The run of ``config.epochs`` epochs over ``data["images"]`` (uint8 [N, 28, 28, 1])."""
    n = int(data["images"].shape[0])
    validate(config, n)
    spe = config.steps_per_epoch(n)
    return Trainer(
        init=lambda key, hp=None: init(key, config, hp),
        step=data_step,
        num_steps=config.epochs * spe,
        data={"images": jnp.asarray(data["images"], jnp.uint8)},
        steps_per_epoch=spe,
        config=config,
    )


def make_train(config: AEConfig, data: dict):
    """``train(key, hparams=None) -> (AEState, metrics[num_steps])`` as one scan (jit/vmap it)."""
    return _make_train(make_trainer(config, data))


# ---- inference helpers (pure, jit-able) ----

def reconstruct(state: AEState, x: jax.Array) -> jax.Array:
    """Mean reconstruction sigmoid(dec(enc(x))) (VAE: decoded at mu). [B,28,28,1] -> same."""
    return jax.nn.sigmoid(state.apply_fn({"params": state.params}, x))


def encode_mean(state: AEState, x: jax.Array) -> jax.Array:
    """Code (VAE: posterior mean mu) of ``x`` [B, 28, 28, 1] -> [B, L]."""
    code = _encode(state, state.params, x)
    return code[0] if state.config.variational else code


def sample_prior(state: AEState, key: jax.Array, n: int) -> jax.Array:
    """Decoder means sigmoid(dec(z)) for z ~ N(0, I): [n, 28, 28, 1]."""
    z = jax.random.normal(key, (n, state.config.latent))
    return jax.nn.sigmoid(_decode(state, state.params, z))
