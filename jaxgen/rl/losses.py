"""Value-learning math shared by the value-based agents: TD targets, the Huber loss, the
epsilon schedule and epsilon-greedy action selection. Small pure functions, shapes in
the docstrings, tested against hand-computed values (tests/rl/test_losses.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def huber(x: jax.Array, delta: float = 1.0) -> jax.Array:
    """Elementwise Huber (smooth L1) loss of the error ``x``: ``x^2/2`` for ``|x| <= delta``,
    ``delta * (|x| - delta/2)`` beyond (Huber 1964; the DQN paper's clipped-error loss).
    ``delta = inf`` gives the squared error ``x^2/2``; ``delta`` may be traced."""
    a = jnp.abs(x)
    quad = jnp.minimum(a, delta)
    finite = jnp.where(jnp.isfinite(delta), delta, 0.0)
    return 0.5 * quad**2 + finite * (a - quad)


def q_learning_target(reward: jax.Array, terminated: jax.Array, q_next: jax.Array, gamma) -> jax.Array:
    """``r + gamma * (1 - terminated) * max_a' Q(s', a')``.

    Args: reward [B], terminated [B] (bool; truncation must NOT be passed here: a
    truncated step bootstraps), q_next [B, A] (target network at s'). Returns [B].
    """
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * jnp.max(q_next, axis=-1)


def double_q_target(reward: jax.Array, terminated: jax.Array, q_next_target: jax.Array, q_next_online: jax.Array, gamma) -> jax.Array:
    """Double DQN (van Hasselt et al. 2016): the online net picks ``a* = argmax Q_online(s')``,
    the target net values it: ``r + gamma (1 - terminated) Q_target(s', a*)``. Shapes as above."""
    a_star = jnp.argmax(q_next_online, axis=-1)
    v = jnp.take_along_axis(q_next_target, a_star[:, None], axis=-1)[:, 0]
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * v


def linear_epsilon(t, start, end, decay_steps) -> jax.Array:
    """``end + max((start - end) (1 - t / decay_steps), 0)``: linear from ``start`` at t = 0
    to ``end`` at ``t = decay_steps``, constant after."""
    t = jnp.asarray(t, jnp.float32)
    return end + jnp.maximum((start - end) * (1.0 - t / decay_steps), 0.0)


def epsilon_greedy(key: jax.Array, q: jax.Array, epsilon, explore_probs: jax.Array | None = None) -> jax.Array:
    """Actions ``int32[B]`` for ``q [B, A]``: greedy with probability ``1 - epsilon``, else
    drawn from ``explore_probs [A]`` (uniform when None)."""
    k_coin, k_act = jax.random.split(key)
    b, n = q.shape
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    if explore_probs is None:
        rand = jax.random.randint(k_act, (b,), 0, n, dtype=jnp.int32)
    else:
        rand = jax.random.categorical(k_act, jnp.log(explore_probs), shape=(b,)).astype(jnp.int32)
    explore = jax.random.uniform(k_coin, (b,)) < epsilon
    return jnp.where(explore, rand, greedy)
