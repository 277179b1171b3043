"""Test-set likelihood bounds and reconstruction error for the autoencoder family.

* negative ELBO (nats/image): E_q[-log p(x|z)] + KL(q(z|x) || p(z)) with one z ~ q per image;
* IWAE bound (Burda et al. 2016): -log (1/k) sum_k p(x, z_k) / q(z_k|x), z_k ~ q, k >= 100
  (an upper bound on -log p(x) that tightens with k; always <= the -ELBO in expectation);
* reconstruction error: Bernoulli cross-entropy (nats/image) and squared error (per image)
  of the mean reconstruction.

Everything is one compiled ``lax.map`` over test batches.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxgen.core.distributions import (
    bernoulli_log_prob,
    diag_gaussian_log_prob,
    kl_diag_gaussian_std_normal,
    reparameterize,
)
from jaxgen.data.transforms import binarize, to_unit
from jaxgen.generative import autoencoder as ae


def _targets(key, images, mode):
    return binarize(key, to_unit(images), mode)


def _batch_metrics(state, x, key, iwae_k: int):
    """Per-image metrics of ``x`` [B, 28, 28, 1] (binarised targets)."""
    params = state.params
    out = {}
    if state.config.variational:
        mean, log_var = ae._encode(state, params, x)
        k1, k2 = jax.random.split(key)
        z = reparameterize(k1, mean, log_var)
        rec = -bernoulli_log_prob(ae._decode(state, params, z), x)
        out["neg_elbo"] = rec + kl_diag_gaussian_std_normal(mean, log_var)
        if iwae_k:
            zk = reparameterize(k2, mean, log_var, iwae_k)  # [K, B, L]
            logits = jax.vmap(lambda zz: ae._decode(state, params, zz))(zk)  # [K, B, 28, 28, 1]
            log_w = (
                bernoulli_log_prob(logits, x[None])
                + diag_gaussian_log_prob(zk, 0.0, jnp.zeros_like(zk))
                - diag_gaussian_log_prob(zk, mean[None], log_var[None])
            )
            out["iwae"] = -(jax.nn.logsumexp(log_w, axis=0) - math.log(iwae_k))
        code = mean
    else:
        code = ae._encode(state, params, x)
    logits = ae._decode(state, params, code)
    out["recon_bce"] = -bernoulli_log_prob(logits, x)
    out["recon_sq"] = jnp.sum((jax.nn.sigmoid(logits) - x) ** 2, axis=(1, 2, 3))
    return out


@functools.partial(jax.jit, static_argnames=("iwae_k", "batch_size", "mode"))
def _evaluate(state, images, key, iwae_k, batch_size, mode):
    n = images.shape[0]
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    imgs = jnp.concatenate([images, jnp.zeros((pad, *images.shape[1:]), images.dtype)]) if pad else images
    x = _targets(jax.random.fold_in(key, 1), imgs, mode).reshape(nb, batch_size, *images.shape[1:])
    keys = jax.random.split(key, nb)
    per = jax.lax.map(lambda a: _batch_metrics(state, a[0], a[1], iwae_k), (x, keys))
    mask = (jnp.arange(nb * batch_size) < n).astype(jnp.float32)
    return {k: jnp.sum(v.reshape(-1) * mask) / n for k, v in per.items()}


def evaluate(state: "ae.AEState", images, key=None, iwae_k: int = 0, batch_size: int = 250, binarize_mode: str | None = None) -> dict:
    """Mean per-image metrics on ``images`` (uint8 [N, 28, 28, 1]); floats (nats or squared error).

    ``binarize_mode`` defaults to the training config's (stochastic binarisation uses a fixed key).
    """
    key = jax.random.PRNGKey(1234) if key is None else key
    mode = binarize_mode or state.config.binarize
    batch_size = min(batch_size, int(images.shape[0]))
    out = _evaluate(state, jnp.asarray(images), key, int(iwae_k), int(batch_size), mode)
    return {k: float(v) for k, v in jax.device_get(out).items()}
