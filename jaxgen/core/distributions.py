"""Log-densities and KL terms, written once for every family (VAE, PPO, GAIL, ...)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)


def diag_gaussian_log_prob(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """log N(x; mean, diag(exp(log_var))), summed over the last axis. ``[..., D] -> [...]``."""
    return -0.5 * jnp.sum(LOG_2PI + log_var + (x - mean) ** 2 * jnp.exp(-log_var), axis=-1)


def kl_diag_gaussian_std_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)), summed over the last axis. ``[..., D] -> [...]``.

    = 0.5 * sum(exp(log_var) + mean^2 - 1 - log_var)  (Kingma & Welling 2014, app. B).
    """
    return 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)


def reparameterize(key: jax.Array, mean: jax.Array, log_var: jax.Array, num_samples: int | None = None) -> jax.Array:
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I). ``[..., D]`` (or ``[S, ..., D]``)."""
    shape = mean.shape if num_samples is None else (num_samples, *mean.shape)
    eps = jax.random.normal(key, shape, mean.dtype)
    return mean + jnp.exp(0.5 * log_var) * eps


def bernoulli_log_prob(logits: jax.Array, x: jax.Array, axes=(-3, -2, -1)) -> jax.Array:
    """log Bernoulli(x; sigmoid(logits)) summed over ``axes`` (stable: x*l - softplus(l)).

    ``x`` may be fractional (the cross-entropy with a soft target).
    """
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=axes)
