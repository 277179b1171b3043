"""Policy-gradient surrogates: the one implementation of the score-function estimator and of
PPO's clipped surrogate, for REINFORCE, PPO, GAIL (PPO on a learned reward), SeqGAN and
LeakGAN (a generator's tokens as actions).

Each surrogate is a scalar whose gradient with respect to the policy's parameters is the
policy-gradient estimate; the weights (returns, advantages, rewards of generated tokens) are
data, never differentiated. The inputs are per-step or per-token arrays of one shape
(``[T, B]``: T steps of B environments, or ``[B, L]``: B sequences of L tokens), with an
optional ``mask`` of valid entries (:mod:`jaxgen.losses.masked`).

* :func:`policy_gradient_loss`: ``-sum(mask * log pi(a|s) * sg(w)) / sum(mask)``, the
  REINFORCE estimator (Williams 1992; Sutton & Barto 2018, sec. 13.3).
* :func:`clipped_surrogate` / :func:`clipped_surrogate_loss`: PPO's
  ``min(rho A, clip(rho, 1 - eps, 1 + eps) A)`` (Schulman et al. 2017, eq. 7).
* :func:`approx_kl`, :func:`clip_fraction`: PPO's diagnostics of how far the policy moved.
* :func:`rank_rescale`: LeakGAN's bootstrapped rescaled activation of rewards (rank-based).
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxgen.losses.masked import masked_mean


def policy_gradient_loss(logp: jax.Array, weight: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """The score-function (REINFORCE) surrogate ``-sum(mask * logp * stop_gradient(weight)) / max(sum(mask), 1)``.

    Its gradient is ``-E[grad log pi(a|s) w]``, the policy-gradient estimate (to minimise).

    Args:
      logp: ``log pi(a_t|s_t)`` of the actions taken, e.g. ``[T, B]``.
      weight: their weights (return ``R_t``, an advantage, a token's reward), ``logp``'s shape;
        no gradient flows into it.
      mask: 1 on valid entries (``logp``'s shape), or None (all valid: the plain mean).
    Returns:
      A scalar.
    """
    chex.assert_equal_shape([logp, weight])
    return -masked_mean(logp * jax.lax.stop_gradient(weight), mask)


def clipped_surrogate(ratio: jax.Array, adv: jax.Array, clip_eps) -> jax.Array:
    """PPO's per-sample objective (to maximise) ``min(rho A, clip(rho, 1 - eps, 1 + eps) A)``.

    Args:
      ratio: ``rho = pi(a|s) / pi_old(a|s)``, e.g. ``[B]``.
      adv: advantages, ``ratio``'s shape.
      clip_eps: ``eps`` (may be traced).
    Returns:
      ``ratio``'s shape. Outside ``[1 - eps, 1 + eps]`` on the side the advantage favours, the
      value is constant in ``rho`` (no gradient); on the other side it stays ``rho A``.
    """
    chex.assert_equal_shape([ratio, adv])
    return jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)


def clipped_surrogate_loss(ratio: jax.Array, adv: jax.Array, clip_eps, mask: jax.Array | None = None) -> jax.Array:
    """``-masked_mean(clipped_surrogate(ratio, adv, clip_eps), mask)``: PPO's policy loss (a scalar)."""
    return -masked_mean(clipped_surrogate(ratio, adv, clip_eps), mask)


def approx_kl(log_ratio: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """``mean((rho - 1) - log rho)``, an unbiased, non-negative estimate of ``KL(pi_old || pi)``
    from samples of ``pi_old`` (``log_ratio = log pi - log pi_old``, any shape); a scalar."""
    return masked_mean((jnp.exp(log_ratio) - 1.0) - log_ratio, mask)


def clip_fraction(ratio: jax.Array, clip_eps, mask: jax.Array | None = None) -> jax.Array:
    """Fraction of samples whose ``|rho - 1| > eps`` (where the clip is active); a scalar."""
    return masked_mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32), mask)


def rank_rescale(reward: jax.Array, delta=16.0) -> jax.Array:
    """LeakGAN's bootstrapped rescaled activation (Guo et al. 2018, sec. 3.3): each reward
    replaced by ``sigmoid(delta (rank / B - 1/2))`` of its rank (1 = the lowest .. B) among the
    B entries of its column.

    Args:
      reward: ``[B, L]`` (B sequences, L tokens: ranked over the batch at every token).
      delta: the smoothness (16 in the paper's code).
    Returns:
      ``reward``'s shape, in (0, 1), depending on the rewards' order only.
    """
    b = reward.shape[0]
    rank = jnp.argsort(jnp.argsort(reward, axis=0), axis=0) + 1
    return jax.nn.sigmoid(delta * (rank / b - 0.5))
