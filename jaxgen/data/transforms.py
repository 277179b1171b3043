"""On-device image transforms used inside compiled steps (all pure, jit/vmap-able)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

BINARIZE = ("threshold", "stochastic", "none")
NOISE = ("none", "mask", "gaussian")


def to_unit(images: jax.Array) -> jax.Array:
    """uint8 [..] in 0..255 -> float32 in [0, 1]."""
    return images.astype(jnp.float32) / 255.0


def binarize(key: jax.Array, x: jax.Array, mode: str) -> jax.Array:
    """Binarise pixel intensities ``x`` in [0, 1] for a Bernoulli likelihood.

    ``"threshold"``: 1[x > 0.5] (fixed); ``"stochastic"``: a fresh draw Bernoulli(x) per call
    (Salakhutdinov & Murray 2008); ``"none"``: x unchanged (soft targets).
    """
    if mode == "threshold":
        return (x > 0.5).astype(x.dtype)
    if mode == "stochastic":
        return jax.random.bernoulli(key, x).astype(x.dtype)
    return x


def corrupt(key: jax.Array, x: jax.Array, kind: str, level: jax.Array) -> jax.Array:
    """Denoising-autoencoder input corruption of ``x`` in [0, 1].

    ``"mask"``: each pixel is set to 0 with probability ``level`` (Vincent et al. 2008);
    ``"gaussian"``: x + level * N(0, 1), clipped to [0, 1]; ``"none"``: unchanged.
    """
    if kind == "mask":
        return x * jax.random.bernoulli(key, 1.0 - level, x.shape).astype(x.dtype)
    if kind == "gaussian":
        return jnp.clip(x + level * jax.random.normal(key, x.shape, x.dtype), 0.0, 1.0)
    return x
