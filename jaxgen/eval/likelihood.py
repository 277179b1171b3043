"""Test-set likelihood bounds and reconstruction error of a latent-variable image model.

* negative ELBO (nats/image): E_q[-log p(x|z)] + KL(q(z|x) || p(z)) with one z ~ q per image;
* IWAE bound (Burda et al. 2016): -log (1/k) sum_k p(x, z_k) / q(z_k|x), z_k ~ q, k >= 100
  (an upper bound on -log p(x) that tightens with k; always <= the -ELBO in expectation);
* reconstruction error: Bernoulli cross-entropy (nats/image) and squared error (per image)
  of the mean reconstruction.

The metric knows no model family (DESIGN.md: ``eval/`` takes callables): it is given a
:class:`LikelihoodModel`, a parameter pytree and two pure functions, which a family builds
(the autoencoder family's ``likelihood_model(state)``). Everything is one compiled
``lax.map`` over test batches; the functions are static arguments of that compile, so a
family should hand out the same function objects for the same architecture (then evaluating
every epoch compiles once).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.core.distributions import (
    bernoulli_log_prob,
    diag_gaussian_log_prob,
    kl_diag_gaussian_std_normal,
    reparameterize,
)
from jaxgen.data.transforms import binarize, to_unit


class LikelihoodModel(NamedTuple):
    """What the likelihood metrics need of a model, as pure functions of its parameters.

    Attributes:
      params: the parameter pytree handed to ``encode`` and ``decode``.
      encode: ``(params, x [B, H, W, C] in [0, 1]) -> code [B, L]``; variational:
        ``(mean [B, L], log_var [B, L])`` of a diagonal Gaussian q(z|x).
      decode: ``(params, z [B, L]) -> logits [B, H, W, C]`` of a Bernoulli p(x|z).
      variational: whether ``encode`` returns a posterior (then the -ELBO and IWAE bound are
        reported; else only the reconstruction error of the code).
      binarize: how uint8 test images become the Bernoulli targets (the training recipe's
        mode, :func:`jaxgen.data.transforms.binarize`).
    """

    params: Any
    encode: Callable
    decode: Callable
    variational: bool
    binarize: str = "threshold"


def _batch_metrics(params, x, key, encode, decode, variational: bool, iwae_k: int):
    """Per-image metrics of ``x`` [B, H, W, C] (binarised targets)."""
    out = {}
    if variational:
        mean, log_var = encode(params, x)
        k1, k2 = jax.random.split(key)
        z = reparameterize(k1, mean, log_var)
        rec = -bernoulli_log_prob(decode(params, z), x)
        out["neg_elbo"] = rec + kl_diag_gaussian_std_normal(mean, log_var)
        if iwae_k:
            zk = reparameterize(k2, mean, log_var, iwae_k)  # [K, B, L]
            logits = jax.vmap(lambda zz: decode(params, zz))(zk)  # [K, B, H, W, C]
            log_w = (
                bernoulli_log_prob(logits, x[None])
                + diag_gaussian_log_prob(zk, 0.0, jnp.zeros_like(zk))
                - diag_gaussian_log_prob(zk, mean[None], log_var[None])
            )
            out["iwae"] = -(jax.nn.logsumexp(log_w, axis=0) - math.log(iwae_k))
        code = mean
    else:
        code = encode(params, x)
    logits = decode(params, code)
    out["recon_bce"] = -bernoulli_log_prob(logits, x)
    out["recon_sq"] = jnp.sum((jax.nn.sigmoid(logits) - x) ** 2, axis=(1, 2, 3))
    return out


@functools.partial(jax.jit, static_argnames=("encode", "decode", "variational", "iwae_k", "batch_size", "mode"))
def _evaluate(params, images, key, *, encode, decode, variational, iwae_k, batch_size, mode):
    n = images.shape[0]
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    imgs = jnp.concatenate([images, jnp.zeros((pad, *images.shape[1:]), images.dtype)]) if pad else images
    x = binarize(jax.random.fold_in(key, 1), to_unit(imgs), mode).reshape(nb, batch_size, *images.shape[1:])
    keys = jax.random.split(key, nb)
    per = jax.lax.map(lambda a: _batch_metrics(params, a[0], a[1], encode, decode, variational, iwae_k), (x, keys))
    mask = (jnp.arange(nb * batch_size) < n).astype(jnp.float32)
    return {k: jnp.sum(v.reshape(-1) * mask) / n for k, v in per.items()}


def evaluate(model: LikelihoodModel, images, key=None, iwae_k: int = 0, batch_size: int = 250,
             binarize_mode: str | None = None) -> dict:
    """Mean per-image metrics of ``model`` on ``images`` (uint8 [N, H, W, C]).

    Returns floats: ``recon_bce`` (nats), ``recon_sq``; variational models add ``neg_elbo``
    (nats) and, with ``iwae_k > 0``, ``iwae`` (nats). ``binarize_mode`` defaults to
    ``model.binarize`` (stochastic binarisation uses a fixed key derived from ``key``).
    """
    key = jax.random.PRNGKey(1234) if key is None else key
    mode = binarize_mode or model.binarize
    batch_size = min(batch_size, int(images.shape[0]))
    out = _evaluate(model.params, jnp.asarray(images), key, encode=model.encode, decode=model.decode,
                    variational=bool(model.variational), iwae_k=int(iwae_k), batch_size=int(batch_size), mode=mode)
    return {k: float(v) for k, v in jax.device_get(out).items()}
