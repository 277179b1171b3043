"""Discounted returns and generalised advantage estimation over ``[T, N]`` rollouts.

Written once; used by REINFORCE and PPO (and later GAIL, SeqGAN). A rollout of T vector
steps of N environments may hold episode ends anywhere (gymnax auto-resets). Each step
``t`` carries:

* ``reward[t]``: the reward of the action at ``t``;
* ``terminated[t]``: the episode ended naturally -- nothing follows, no bootstrap;
* ``truncated[t]``: the episode was cut (time limit) -- the state had a future, so the
  value of the observation the action led to (``next_value[t] = V(final_obs[t])``)
  stands in for it;
* ``next_value[t]``: the critic's value of the observation step ``t`` led to (gymnax's
  ``final_observation``); where no episode ended it equals ``value[t + 1]``, and at the
  last step of the rollout it is the bootstrap value of the unfinished episode.

The recursion is cut where ``done = terminated | truncated`` and at the end of the
rollout, and the bootstrap there is ``(1 - terminated[t]) * next_value[t]``.

Both functions are a reverse ``lax.scan`` over T (Sutton & Barto 2018, ch. 3 and 12;
Schulman et al. 2016, "High-dimensional continuous control using GAE", eq. 16).
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def _check(reward, terminated, truncated, next_value):
    chex.assert_rank(reward, 2)
    chex.assert_equal_shape([reward, terminated, truncated, next_value])


def discounted_returns(reward: jax.Array, terminated: jax.Array, truncated: jax.Array, next_value: jax.Array,
                       gamma) -> jax.Array:
    """Discounted Monte Carlo returns ``R_t = r_t + gamma * B_t`` with
    ``B_t = R_{t+1}`` inside an episode and ``(1 - terminated_t) * next_value_t`` where the
    episode ended or the rollout stops.

    Args:
      reward, next_value: float ``[T, N]`` (``next_value = 0`` everywhere gives the plain
        Monte Carlo return of complete episodes, without any bootstrap).
      terminated, truncated: bool ``[T, N]``.
      gamma: discount (may be traced).
    Returns:
      float32 ``[T, N]``.
    """
    _check(reward, terminated, truncated, next_value)
    term = terminated.astype(jnp.float32)
    cont = 1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32)
    boot = (1.0 - term) * next_value

    def body(later, xs):
        r, c, b = xs
        ret = r + gamma * (c * later + (1.0 - c) * b)
        return ret, ret

    last = boot[-1]  # the rollout's end: bootstrap (0 if it terminated)
    _, out = jax.lax.scan(body, last, (reward, cont, boot), reverse=True)
    return out


def gae(reward: jax.Array, value: jax.Array, next_value: jax.Array, terminated: jax.Array, truncated: jax.Array,
        gamma, lam) -> tuple[jax.Array, jax.Array]:
    """GAE(lambda): ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}`` with the TD error
    ``delta_t = r_t + gamma * (1 - terminated_t) * next_value_t - value_t``; ``A`` after the
    last step is 0.

    Args:
      reward, value, next_value: float ``[T, N]`` (``value[t] = V(obs[t])``).
      terminated, truncated: bool ``[T, N]``.
      gamma, lam: discount and GAE lambda (may be traced).
    Returns:
      ``(advantages, targets)``, float32 ``[T, N]`` each; ``targets = advantages + value``
      (the lambda-return, the critic's regression target). ``lam = 1`` gives
      :func:`discounted_returns` minus ``value``; ``lam = 0`` gives ``delta``.
    """
    _check(reward, terminated, truncated, next_value)
    chex.assert_equal_shape([reward, value])
    term = terminated.astype(jnp.float32)
    cont = 1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32)
    delta = reward + gamma * (1.0 - term) * next_value - value
    decay = gamma * lam * cont

    def body(later, xs):
        d, k = xs
        adv = d + k * later
        return adv, adv

    _, adv = jax.lax.scan(body, jnp.zeros_like(delta[0]), (delta, decay), reverse=True)
    return adv, adv + value


def next_values(value: jax.Array, final_value: jax.Array, done: jax.Array, last_value: jax.Array) -> jax.Array:
    """``next_value[t]`` from the critic's values: ``value[t + 1]`` inside an episode,
    ``final_value[t] = V(final_obs[t])`` where the episode ended, ``last_value`` (= V of the
    observation after the rollout) at ``t = T - 1``. All ``[T, N]`` but ``last_value [N]``.
    """
    following = jnp.concatenate([value[1:], last_value[None]], axis=0)
    return jnp.where(done, final_value, following)
