"""Exploration of the value-based agents: the linear epsilon schedule and epsilon-greedy
action selection (DQN, its evaluation episodes; tabular Q-learning draws its own).
Small pure functions, shapes in the docstrings, tested against hand-computed values
(tests/rl/test_plumbing.py)."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def linear_epsilon(t, start, end, decay_steps) -> jax.Array:
    """``end + max((start - end) (1 - t / decay_steps), 0)``: linear from ``start`` at t = 0
    to ``end`` at ``t = decay_steps``, constant after (all scalars, may be traced)."""
    t = jnp.asarray(t, jnp.float32)
    return end + jnp.maximum((start - end) * (1.0 - t / decay_steps), 0.0)


def epsilon_greedy(key: jax.Array, q: jax.Array, epsilon, explore_probs: jax.Array | None = None) -> jax.Array:
    """Actions ``int32[B]`` for ``q [B, A]``: greedy with probability ``1 - epsilon``, else
    drawn from ``explore_probs [A]`` (uniform when None)."""
    chex.assert_rank(q, 2)
    k_coin, k_act = jax.random.split(key)
    b, n = q.shape
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    if explore_probs is None:
        rand = jax.random.randint(k_act, (b,), 0, n, dtype=jnp.int32)
    else:
        rand = jax.random.categorical(k_act, jnp.log(explore_probs), shape=(b,)).astype(jnp.int32)
    explore = jax.random.uniform(k_coin, (b,)) < epsilon
    return jnp.where(explore, rand, greedy)
