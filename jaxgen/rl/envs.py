"""Environments: ``make`` over gymnax 1.x (plus jaxgen's own small ones), the one description
of an environment that every agent builds on (:class:`EnvSpec`), N environments stepped as
one, and running episode statistics.

:func:`spec` reads, once per name, what an agent needs to know of an environment: its action
space (discrete with ``action_dim`` actions, or a box of ``action_shape`` flattened to
``action_dim`` numbers in ``[low, high]``), its observation shape and its episode limit.
:func:`env_action` turns what a policy emits into what the environment takes (a Gaussian
sample clipped to the box and reshaped; a discrete action unchanged).

gymnax 1.x ``env.step(key, state, action, params)`` returns
``(obs, state, reward, terminated, truncated, info)`` and resets a finished episode itself:
the returned ``obs``/``state`` are already those of the next episode, and
``info["final_observation"]`` is the observation the action actually led to. A
learner must therefore

* store ``final_obs`` (not ``obs``) as the transition's next observation, and
* bootstrap through a truncation (time limit: the state still has a future) but not
  through a termination (``terminated``: the episode's natural end).

:class:`VecEnv` keeps those two flags apart and hands them to the learner as
:class:`StepOut`. :class:`EpisodeStats` keeps running returns/lengths per environment and
reports, once per iteration, the mean return of the episodes finished in it (with their
count); an iteration with none repeats the last reported mean, so curves have no NaN.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxgen.core.errors import ConfigError

# jaxgen's own environments (gymnax-style, in jaxgen.rl.probes), imported on first use:
# name -> class name (importing gymnax's environment base costs seconds; `import jaxgen.rl.envs` stays light).
LOCAL_ENVS = {
    "LineWorld": "LineWorld",
    "Probe-OneAction": "OneAction",
    "Probe-TwoActions": "TwoActions",
    "Probe-Discount": "Discount",
    "Probe-TimeLimit": "TimeLimit",
    "Probe-Continuous": "Continuous",
}


def registered() -> list[str]:
    """All accepted environment names: gymnax's and jaxgen's own."""
    import gymnax

    return list(gymnax.registered_envs) + list(LOCAL_ENVS)


def make(name: str, **kwargs) -> tuple[Any, Any]:
    """``(env, env_params)`` for a gymnax (or jaxgen) environment name.

    ``kwargs`` go to the environment's constructor (e.g. ``is_slippery=False`` for
    ``FrozenLake-misc``). An unknown name raises ConfigError naming a few accepted ones.
    """
    if name in LOCAL_ENVS:
        env = getattr(importlib.import_module("jaxgen.rl.probes"), LOCAL_ENVS[name])(**kwargs)
        return env, env.default_params
    import gymnax

    if name not in gymnax.registered_envs:
        some = ["CartPole-v1", "Acrobot-v1", "Freeway-MinAtar", "Breakout-MinAtar", "FrozenLake-misc", "LineWorld"]
        raise ConfigError(
            f"env={name!r} is not a known environment; accepted are gymnax's and jaxgen's names, "
            f"e.g. {', '.join(some)} (all: jaxgen.rl.envs.registered())."
        )
    try:
        return gymnax.make(name, **kwargs)
    except TypeError as e:
        raise ConfigError(f"environment {name!r} does not accept the options {sorted(kwargs)} ({e}).") from None


def obs_shape(env, params) -> tuple[int, ...]:
    """Shape of one observation (a scalar observation, e.g. FrozenLake's cell, is ``()``)."""
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    return tuple(jnp.shape(obs))


@dataclasses.dataclass(frozen=True, eq=False)
class EnvSpec:
    """What an agent needs to know of an environment (one object per name: :func:`spec`).

    Attributes:
      name: the environment's name.
      env, params: the gymnax environment and its default parameters.
      discrete: True for a ``Discrete`` action space (one integer action).
      action_dim: the number of actions (discrete) or of action numbers D (continuous).
      action_shape: ``()`` (discrete) or the box's shape (its D numbers, flattened, are what a
        Gaussian policy emits).
      low, high: float32 arrays of ``action_shape`` (continuous), else None.
      obs_shape: the shape of one observation (``()`` for a scalar cell index).
      max_steps: the episode limit (``params.max_steps_in_episode``), None if the env has none.
    """

    name: str
    env: Any
    params: Any
    discrete: bool
    action_dim: int
    action_shape: tuple
    low: np.ndarray | None
    high: np.ndarray | None
    obs_shape: tuple
    max_steps: int | None

    def vec(self, num_envs: int) -> "VecEnv":
        """``num_envs`` copies stepped as one."""
        return VecEnv(self.env, self.params, num_envs)


@functools.lru_cache(maxsize=None)
def spec(name: str) -> EnvSpec:
    """The :class:`EnvSpec` of environment ``name`` (cached: the same object every call).
    An unknown name raises ConfigError naming a few accepted ones."""
    from gymnax.environments import spaces

    env, params = make(name)
    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        discrete, dim, shape, low, high = True, int(space.n), (), None, None
    else:
        discrete, shape = False, tuple(space.shape) or (1,)
        dim = int(np.prod(shape))
        low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
        high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
    limit = getattr(params, "max_steps_in_episode", None)
    return EnvSpec(name, env, params, discrete, dim, shape, low, high, obs_shape(env, params),
                   None if limit is None else int(limit))


def env_action(spec: EnvSpec, action: jax.Array) -> jax.Array:
    """The action sent to the environment for what a policy emits: a discrete ``action [...]``
    unchanged; a Gaussian sample ``[..., D]`` clipped to ``[low, high]`` and reshaped to
    ``[..., *action_shape]`` (the log-probability is taken of the unclipped sample)."""
    if spec.discrete:
        return action
    clipped = jnp.clip(action, jnp.asarray(spec.low).reshape(-1), jnp.asarray(spec.high).reshape(-1))
    return clipped.reshape(action.shape[:-1] + spec.action_shape)


def require_discrete(spec: EnvSpec, algorithm: str) -> None:
    """ConfigError unless the environment has a discrete action space."""
    if not spec.discrete:
        space = type(spec.env.action_space(spec.params)).__name__
        raise ConfigError(
            f"env={spec.name!r} has a continuous action space ({space}); {algorithm} needs a discrete one, "
            f"e.g. CartPole-v1, Acrobot-v1, MountainCar-v0 or a MinAtar game."
        )


class StepOut(NamedTuple):
    """One vector step, each field with leading axis ``[N]``.

    obs: the observation to act on next (already reset where an episode ended).
    reward: float32.
    terminated: bool, natural end (no bootstrap).
    truncated: bool, time limit (bootstrap from ``final_obs``).
    final_obs: the observation the action led to (= ``obs`` unless the episode ended).
    """

    obs: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: Any

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


def strong(x: jax.Array) -> jax.Array:
    """``x`` with its weak type removed (same dtype and value)."""
    return jax.lax.convert_element_type(x, jnp.asarray(x).dtype) if jax.typeof(x).weak_type else x


def rbg_keys(key: jax.Array, num: int) -> jax.Array:
    """``num`` keys ``[num]`` (typed, JAX's ``unsafe_rbg`` implementation) from one threefry
    ``key``, for the random draws inside a compiled step (env keys, exploration, replay
    sampling): the env's own splits, reset draws and our draws then lower to XLA's
    RngBitGenerator instead of a rolled threefry loop each (on XLA:CPU those loops were most
    of the cost of stepping CartPole: benchmarks/notes/policy_gradient.md). Caveat: rbg
    streams are not vmap-invariant, so seed ``s`` inside a vmapped sweep draws other numbers
    than the same seed trained alone; each program stays deterministic for its seeds."""
    seed = jax.random.bits(key, (4,), jnp.uint32)
    return jax.random.split(jax.random.wrap_key_data(seed, impl="unsafe_rbg"), num)


@dataclasses.dataclass(frozen=True)
class VecEnv:
    """``num_envs`` copies of ``env`` stepped together (vmapped reset/step with auto-reset).

    Pure and static: the env state lives in the caller's state pytree.
    """

    env: Any
    params: Any
    num_envs: int

    def reset(self, key: jax.Array) -> tuple[Any, Any]:
        """``(obs [N, ...], env_state [N, ...])``, every leaf strongly typed (some gymnax
        resets return Python-int fields as weak int32; a state that changes weak type after
        one step makes every jitted function that takes it compile twice)."""
        keys = jax.random.split(key, self.num_envs)
        obs, state = jax.vmap(self.env.reset, in_axes=(0, None))(keys, self.params)
        return jax.tree_util.tree_map(strong, (obs, state))

    def step(self, key: jax.Array, env_state: Any, action: jax.Array) -> tuple[Any, StepOut]:
        """Step all N envs with ``action [N]``; return ``(env_state, StepOut)``."""
        keys = jax.random.split(key, self.num_envs)
        obs, env_state, reward, term, trunc, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
            keys, env_state, action, self.params
        )
        term = jnp.asarray(term, bool)
        trunc = jnp.logical_and(jnp.asarray(trunc, bool), jnp.logical_not(term))  # a terminal step is not a truncation
        return env_state, StepOut(obs, jnp.asarray(reward, jnp.float32), term, trunc, info["final_observation"])


class EpisodeStats(struct.PyTreeNode):
    """Running episode returns/lengths of N envs and the per-iteration report.

    ``record`` after every vector step, ``report`` once per iteration (after one or many
    ``record`` calls): it returns ``episode_return`` / ``episode_length`` (mean over the
    episodes finished since the previous report; the previous value if none finished) and
    ``episodes`` (how many finished), and clears the accumulators.
    """

    ret: jax.Array  # float32[N] return of the running episode
    length: jax.Array  # int32[N]
    sum_ret: jax.Array  # float32: finished returns since the last report
    sum_len: jax.Array  # float32
    count: jax.Array  # int32: episodes finished since the last report
    last_ret: jax.Array  # float32: last reported mean return
    last_len: jax.Array  # float32
    total: jax.Array  # int32: episodes finished in the whole run

    @classmethod
    def create(cls, num_envs: int) -> "EpisodeStats":
        return cls(
            ret=jnp.zeros((num_envs,), jnp.float32), length=jnp.zeros((num_envs,), jnp.int32),
            sum_ret=jnp.zeros((), jnp.float32), sum_len=jnp.zeros((), jnp.float32), count=jnp.zeros((), jnp.int32),
            last_ret=jnp.zeros((), jnp.float32), last_len=jnp.zeros((), jnp.float32), total=jnp.zeros((), jnp.int32),
        )

    def record(self, reward: jax.Array, done: jax.Array) -> "EpisodeStats":
        """Add one vector step: ``reward [N]``, ``done [N]`` (terminated or truncated)."""
        ret = self.ret + reward
        length = self.length + 1
        d = done.astype(jnp.float32)
        n = jnp.sum(done.astype(jnp.int32))
        return self.replace(
            ret=ret * (1 - d), length=jnp.where(done, 0, length),
            sum_ret=self.sum_ret + jnp.sum(ret * d), sum_len=self.sum_len + jnp.sum(length * d),
            count=self.count + n, total=self.total + n,
        )

    def report(self) -> tuple["EpisodeStats", dict]:
        """``(stats with cleared accumulators, metrics)``; see the class docstring."""
        some = self.count > 0
        denom = jnp.maximum(self.count, 1).astype(jnp.float32)
        mean_ret = jnp.where(some, self.sum_ret / denom, self.last_ret)
        mean_len = jnp.where(some, self.sum_len / denom, self.last_len)
        metrics = {"episode_return": mean_ret, "episode_length": mean_len, "episodes": self.count.astype(jnp.float32)}
        zero_f = jnp.zeros((), jnp.float32)
        new = self.replace(sum_ret=zero_f, sum_len=zero_f + 0.0, count=jnp.zeros((), jnp.int32),
                           last_ret=mean_ret, last_len=mean_len)
        return new, metrics


def rollout_returns(env, params, policy, key: jax.Array, num_episodes: int, max_steps: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Undiscounted returns and lengths of ``num_episodes`` complete episodes, run in parallel.

    ``policy(key, obs [E, ...]) -> action [E]``. Each env counts only its first episode;
    the loop stops when all have finished (or after ``max_steps``; default the env's limit).
    Returns ``(returns float32[E], lengths int32[E])``. Pure and jit/vmap-able.
    """
    limit = int(max_steps if max_steps is not None else getattr(params, "max_steps_in_episode", 10_000))
    venv = VecEnv(env, params, num_episodes)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = venv.reset(k_reset)
    zeros = jnp.zeros((num_episodes,), jnp.float32)

    def cond(c):
        t, _, _, _, _, done, _ = c
        return jnp.logical_and(t < limit, jnp.logical_not(jnp.all(done)))

    def body(c):
        t, k, obs, env_state, ret, done, length = c
        k, k_a, k_s = jax.random.split(k, 3)
        action = policy(k_a, obs)
        env_state, out = venv.step(k_s, env_state, action)
        live = jnp.logical_not(done)
        ret = ret + jnp.where(live, out.reward, 0.0)
        length = length + live.astype(jnp.int32)
        return t + 1, k, out.obs, env_state, ret, jnp.logical_or(done, out.done), length

    c = (jnp.zeros((), jnp.int32), k_run, obs, env_state, zeros, jnp.zeros((num_episodes,), bool),
         jnp.zeros((num_episodes,), jnp.int32))
    c = jax.lax.while_loop(cond, body, c)
    return c[4], c[6]
