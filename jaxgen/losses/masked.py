"""Statistics over the valid entries of a batch: the steps of an episode before it ended, the
tokens of a sequence before its padding.

A ``mask`` is 1 (or True) where an entry counts and 0 where it does not; it has the shape of
the values (``[T, B]`` for a rollout of T steps of B environments, ``[B, L]`` for B sequences of
L tokens). ``mask=None`` means every entry counts: the plain mean / standardisation (PPO's
per-minibatch advantage normalisation is that case). A mask with no valid entry gives a mean
of 0 (the count is floored at 1), never NaN.

Used by REINFORCE (weights, entropy and baseline loss over each env's first episode), PPO
and the policy-gradient / value losses of :mod:`jaxgen.losses`.
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def _check(x: jax.Array, mask: jax.Array | None) -> None:
    if mask is not None:
        chex.assert_equal_shape([x, mask])


def masked_count(mask: jax.Array) -> jax.Array:
    """``max(sum(mask), 1)``: the number of valid entries (float, at least 1)."""
    return jnp.maximum(jnp.sum(mask), 1.0)


def masked_mean(x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """``sum(mask * x) / max(sum(mask), 1)``; ``mean(x)`` when ``mask`` is None.

    Args:
      x: values, any shape (e.g. ``[T, B]``).
      mask: 1 on valid entries, 0 elsewhere, the shape of ``x`` (or None: all valid).
    Returns:
      A scalar.
    """
    _check(x, mask)
    if mask is None:
        return jnp.mean(x)
    mask = mask.astype(x.dtype)
    return jnp.sum(mask * x) / masked_count(mask)


def masked_standardize(x: jax.Array, mask: jax.Array | None = None, eps: float = 1e-8) -> jax.Array:
    """``(x - mu) / (sd + eps)`` with ``mu`` and ``sd`` the mean and (population) standard
    deviation of the valid entries of ``x``; of all of them when ``mask`` is None.

    Args:
      x: values, any shape (e.g. ``[T, B]`` returns or advantages).
      mask: as in :func:`masked_mean`.
      eps: added to ``sd`` (a batch of equal values gives 0, not NaN).
    Returns:
      The shape of ``x``; entries outside the mask are transformed too (the caller masks them).
    """
    _check(x, mask)
    if mask is None:
        return (x - jnp.mean(x)) / (jnp.std(x) + eps)
    mask = mask.astype(x.dtype)
    cnt = masked_count(mask)
    mu = jnp.sum(x * mask) / cnt
    sd = jnp.sqrt(jnp.sum(((x - mu) * mask) ** 2) / cnt)
    return (x - mu) / (sd + eps)
