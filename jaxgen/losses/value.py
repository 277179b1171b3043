"""Value learning: the critic's regression loss (plain and PPO's clipped one), the Huber loss
and the one-step Q-learning targets -- for PPO, REINFORCE's baseline, DQN and any critic.

* :func:`value_loss`: ``0.5 * mean((V - target)^2)`` over valid entries.
* :func:`clipped_value_loss`: PPO's value loss clipped around the rollout's value
  (the reference implementations' ``clip_range_vf``).
* :func:`huber`: elementwise Huber / smooth-L1 loss (Huber 1964; Mnih et al. 2015).
* :func:`q_learning_target`, :func:`double_q_target`: ``r + gamma (1 - terminated) V(s')``
  (Watkins 1989; van Hasselt et al. 2016). Only ``terminated`` stops the bootstrap: a
  time-limit truncation bootstraps (``s'`` is the observation the action led to).
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxgen.losses.masked import masked_mean


def value_loss(value: jax.Array, target: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """``0.5 * sum(mask * (value - target)^2) / max(sum(mask), 1)`` (the mean when ``mask`` is None).

    Args:
      value: the critic's ``V(s)``, e.g. ``[T, B]``.
      target: its regression target (a return, a lambda-return), ``value``'s shape; the
        caller stops its gradient where it depends on the critic.
      mask: 1 on valid entries, or None.
    Returns:
      A scalar.
    """
    chex.assert_equal_shape([value, target])
    return 0.5 * masked_mean((value - target) ** 2, mask)


def clipped_value_loss(value: jax.Array, old_value: jax.Array, target: jax.Array, clip,
                       mask: jax.Array | None = None) -> jax.Array:
    """``0.5 * mean(max((V - t)^2, (V_old + clip(V - V_old, -c, c) - t)^2))``: PPO's value loss,
    pessimistic about a value that moved more than ``c`` from the rollout's ``V_old``.

    Args:
      value, old_value, target: ``[B]`` (any one shape): the current ``V``, the value recorded
        in the rollout, the target.
      clip: ``c`` (may be traced).
      mask: 1 on valid entries, or None.
    Returns:
      A scalar.
    """
    chex.assert_equal_shape([value, old_value, target])
    err = (value - target) ** 2
    v_clipped = old_value + jnp.clip(value - old_value, -clip, clip)
    return 0.5 * masked_mean(jnp.maximum(err, (v_clipped - target) ** 2), mask)


def huber(x: jax.Array, delta=1.0) -> jax.Array:
    """Elementwise Huber (smooth L1) loss of the error ``x`` (any shape): ``x^2 / 2`` for
    ``|x| <= delta``, ``delta * (|x| - delta / 2)`` beyond (the DQN paper's clipped error is
    ``delta = 1``). ``delta = inf`` gives the squared error ``x^2 / 2``; ``delta`` may be traced."""
    a = jnp.abs(x)
    quad = jnp.minimum(a, delta)
    finite = jnp.where(jnp.isfinite(delta), delta, 0.0)
    return 0.5 * quad**2 + finite * (a - quad)


def _check_target(reward, terminated, *q_next):
    chex.assert_rank(reward, 1)
    chex.assert_equal_shape([reward, terminated])
    chex.assert_rank(q_next, 2)
    chex.assert_equal_shape(q_next)
    chex.assert_equal_shape_prefix([reward, *q_next], 1)


def q_learning_target(reward: jax.Array, terminated: jax.Array, q_next: jax.Array, gamma) -> jax.Array:
    """``r + gamma * (1 - terminated) * max_a' Q(s', a')``.

    Args:
      reward: ``[B]``.
      terminated: bool ``[B]``, the episode's natural end (never pass a truncation: a
        truncated step bootstraps).
      q_next: ``[B, A]``, the target network at ``s'``.
      gamma: discount (may be traced).
    Returns:
      ``[B]``.
    """
    _check_target(reward, terminated, q_next)
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * jnp.max(q_next, axis=-1)


def double_q_target(reward: jax.Array, terminated: jax.Array, q_next_target: jax.Array, q_next_online: jax.Array,
                    gamma) -> jax.Array:
    """Double DQN: the online network picks ``a* = argmax_a Q_online(s', a)``, the target
    network values it: ``r + gamma (1 - terminated) Q_target(s', a*)``.

    Args:
      reward, terminated: ``[B]`` as in :func:`q_learning_target`.
      q_next_target, q_next_online: ``[B, A]``, the target and the online network at ``s'``.
      gamma: discount (may be traced).
    Returns:
      ``[B]``.
    """
    _check_target(reward, terminated, q_next_target, q_next_online)
    a_star = jnp.argmax(q_next_online, axis=-1)
    v = jnp.take_along_axis(q_next_target, a_star[:, None], axis=-1)[:, 0]
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * v


def clipped_double_q_target(reward: jax.Array, terminated: jax.Array, q_next: jax.Array, gamma) -> jax.Array:
    """The continuous-action TD target ``r + gamma (1 - terminated) min_c Q_c(s', a')`` of DDPG
    (one critic: ``C = 1``, no minimum; Lillicrap et al. 2016) and TD3 (``C = 2``: the clipped
    double-Q target, Fujimoto et al. 2018); ``a'`` is the target actor's (smoothed) action.

    Args:
      reward, terminated: ``[B]`` as in :func:`q_learning_target` (a truncation bootstraps).
      q_next: ``[C, B]``, each target critic at ``(s', a')``.
      gamma: discount (may be traced).
    Returns:
      ``[B]``.
    """
    chex.assert_rank([reward, q_next], [1, 2])
    chex.assert_equal_shape([reward, terminated, q_next[0]])
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * jnp.min(q_next, axis=0)
