"""Multi-agent environments: jaxmarl's multi-agent particle tasks (MPE) with continuous actions,
N copies stepped as one, agents stacked on an axis, and per-agent episode statistics.

jaxmarl is imported lazily (importing it loads every environment and matplotlib and prints to
stdout): ``import jaxgen`` and the single-agent commands never pay for it.

Tasks (:data:`TASKS`): ``simple_spread`` (``MPE_simple_spread_v3``: 3 cooperative agents, 3
landmarks, observations of 18) and ``simple_adversary`` (``MPE_simple_adversary_v3``: 1
adversary, 2 good agents, 2 landmarks; observations of 8 for the adversary, 10 for the good
agents). Actions: ``Box(0, 1, (5,))`` per agent (no-op, -x, +x, -y, +y; the force is
``(a2 - a1, a4 - a3)``).

Agent axis and heterogeneous observations: every array has the agents on axis 1 after the
env axis (``obs [N, A, O]``, ``reward [N, A]``, ``action [N, A, 5]``), in jaxmarl's agent order
(``env.agents``; simple_adversary: ``adversary_0, agent_0, agent_1``). Observations shorter
than the longest (the adversary's 8 of 10) are **padded with zeros** at the end, not tagged
with an agent-id one-hot: jaxgen's multi-agent learners keep parameters *per agent* (stacked
and vmapped over the agent axis, never shared), so the weights that meet the padded zeros
contribute nothing and receive zero gradient -- a padded network computes exactly the function
of an unpadded one of the agent's own size (tests/rl/test_maddpg.py checks this), and a one-hot
would only matter to a network shared between agents. :attr:`MASpec.obs_sizes` gives each
agent's true size; :func:`unpad` / :func:`joint_obs` rebuild the concatenation of the true
observations in agent order (a centralised critic's input, no padding inside).

Episodes and flags: jaxmarl's MPE episodes are 26 steps: its ``done = step >= max_steps``
(``max_steps`` = 25) is evaluated before the step counter moves, so the 26th step is the
first to report done (the mpe2 package stops at 25). That end is a time limit:
:class:`MAStepOut` reports it as ``truncated`` (the learner bootstraps through it, as
openai/maddpg does, whose stored ``done`` is always False on these tasks) and ``terminated``
stays False (these tasks have no natural end). The vector env resets a finished copy itself
and hands back ``final_obs``, the observation the last action led to (jaxmarl's own
auto-reset discards it; we call ``step_env`` and reset ourselves).

Rewards as jaxmarl gives them, per agent. simple_spread: each agent's reward is half of its
own collision penalty (-1 per other agent it touches) plus half of the shared
``-sum_landmarks min_agents distance`` (``local_ratio`` 0.5). jaxmarl's own ``LogWrapper``
sums the agents' rewards (= N x the per-agent mean); the original OpenAI MPE gives every
agent the shared sum. :class:`MAEpisodeStats` logs each agent's own return.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxgen.core.errors import ConfigError
from jaxgen.rl.envs import EpisodeStats, strong

TASKS = {"simple_spread": "MPE_simple_spread_v3", "simple_adversary": "MPE_simple_adversary_v3"}
#: jaxgen's own multi-agent probe (no jaxmarl needed): see :class:`SumProbe`.
PROBES = ("probe_sum",)


def _jaxmarl():
    """``jaxmarl`` imported on first use, its import-time print silenced (at the file
    descriptor: one of the modules it imports rebinds ``sys.stdout``, so a Python-level
    redirect alone let the lines through onto, e.g., ``jaxgen bench``'s table)."""
    import contextlib
    import io
    import os
    import sys

    if "jaxmarl" in sys.modules:
        return sys.modules["jaxmarl"]
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        with contextlib.redirect_stdout(io.StringIO()):
            import jaxmarl
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    return jaxmarl


@dataclasses.dataclass(frozen=True, eq=False)
class MASpec:
    """What a multi-agent learner needs to know of a task (one object per name: :func:`spec`).

    Attributes:
      name: the task's short name (``simple_spread``); ``env``: the jaxmarl environment.
      agents: agent names in order; ``num_agents`` A.
      obs_sizes: each agent's observation size; ``obs_dim``: the largest (the padded size).
      action_dim: D (5); ``low``, ``high``: the box (0, 1).
      episode_steps: steps per episode (26 in jaxmarl).
      adversary: bool ``[A]``, True for adversaries (all False on simple_spread).
    """

    name: str
    env: Any
    agents: tuple
    obs_sizes: tuple
    action_dim: int
    low: float
    high: float
    episode_steps: int
    adversary: tuple

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def obs_dim(self) -> int:
        return max(self.obs_sizes)

    @property
    def joint_obs_dim(self) -> int:
        return sum(self.obs_sizes)

    def vec(self, num_envs: int) -> "MAVecEnv":
        return MAVecEnv(self, num_envs)


@functools.lru_cache(maxsize=None)
def spec(name: str) -> MASpec:
    """The :class:`MASpec` of task ``name`` (a key of :data:`TASKS` or its jaxmarl name). Call it
    outside a trace first (jaxmarl's constructors assert on arrays); it is cached after."""
    full = TASKS.get(name, name)
    if name in PROBES:
        env, short = SumProbe(), name
    elif full in TASKS.values():
        env = _jaxmarl().make(full, action_type="Continuous")
        short = {v: k for k, v in TASKS.items()}[full]
    else:
        raise ConfigError(f"env={name!r} is not a multi-agent task; accepted: {', '.join(list(TASKS) + list(PROBES))} "
                          f"(or {', '.join(TASKS.values())}).")
    agents = tuple(env.agents)
    space = env.action_space(agents[0])
    adv = tuple(a.startswith("adversary") for a in agents)
    return MASpec(short, env, agents, tuple(int(env.observation_space(a).shape[0]) for a in agents),
                  int(space.shape[0]), float(np.min(space.low)), float(np.max(space.high)), int(env.max_steps) + 1, adv)


def pad(spec: MASpec, obs: dict) -> jax.Array:
    """jaxmarl's ``{agent: obs [..., O_i]}`` -> ``[..., A, O_max]`` (zeros after each agent's own)."""
    o = spec.obs_dim
    rows = [jnp.pad(obs[a], [(0, 0)] * (obs[a].ndim - 1) + [(0, o - obs[a].shape[-1])]) for a in spec.agents]
    return jnp.stack(rows, axis=-2).astype(jnp.float32)


def unpad(spec: MASpec, obs: jax.Array) -> list:
    """``[..., A, O_max]`` -> each agent's true observation ``[..., O_i]``, in agent order."""
    return [obs[..., i, :n] for i, n in enumerate(spec.obs_sizes)]


def joint_obs(spec: MASpec, obs: jax.Array) -> jax.Array:
    """All agents' true observations concatenated in agent order: ``[..., A, O_max] -> [..., sum O_i]``."""
    return jnp.concatenate(unpad(spec, obs), axis=-1)


def to_dict(spec: MASpec, action: jax.Array) -> dict:
    """``[..., A, D]`` -> jaxmarl's ``{agent: [..., D]}``."""
    return {a: action[..., i, :] for i, a in enumerate(spec.agents)}


class MAStepOut(NamedTuple):
    """One vector step: ``obs [N, A, O]`` (already reset where an episode ended), ``reward [N, A]``,
    ``terminated [N]`` / ``truncated [N]`` (bool, kept apart), ``final_obs [N, A, O]`` (what the
    action led to), ``world``: the pre-reset env state (positions, for task metrics)."""

    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    world: Any

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


@dataclasses.dataclass(frozen=True)
class MAVecEnv:
    """``num_envs`` copies of a task stepped together, with auto-reset (pure; the env state lives
    in the caller's state)."""

    spec: MASpec
    num_envs: int

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        """``(obs [N, A, O], env_state [N, ...])``, strongly typed."""
        obs, state = jax.vmap(self.spec.env.reset)(jax.random.split(key, self.num_envs))
        return jax.tree_util.tree_map(strong, (pad(self.spec, obs), state))

    def step(self, key: jax.Array, env_state: Any, action: jax.Array) -> tuple[Any, MAStepOut]:
        """Step all N copies with ``action [N, A, D]``; return ``(env_state, MAStepOut)``."""
        env = self.spec.env
        k_step, k_reset = jax.random.split(key)
        obs, world, reward, dones, _ = jax.vmap(env.step_env)(jax.random.split(k_step, self.num_envs), env_state,
                                                              to_dict(self.spec, action))
        world = jax.tree_util.tree_map(strong, world)
        final = pad(self.spec, obs)
        done = jnp.asarray(dones["__all__"], bool)
        obs0, state0 = self.reset(k_reset)
        pick = lambda a, b: jnp.where(done.reshape(done.shape + (1,) * (a.ndim - 1)), a, b)
        new_state = jax.tree_util.tree_map(pick, state0, world)
        rew = jnp.stack([reward[a] for a in self.spec.agents], axis=-1).astype(jnp.float32)
        return new_state, MAStepOut(pick(obs0, final), rew, jnp.zeros_like(done), done, final, world)


class MAEpisodeStats(struct.PyTreeNode):
    """Per-agent running episode returns: :class:`jaxgen.rl.envs.EpisodeStats` vmapped over the
    agent axis (leaves ``[A, ...]``); all on the device. ``report`` gives ``episode_return_<i>``
    per agent and ``episode_return`` (their mean: jaxmarl's per-agent convention)."""

    per_agent: EpisodeStats

    @classmethod
    def create(cls, num_envs: int, num_agents: int) -> "MAEpisodeStats":
        return cls(jax.vmap(lambda _: EpisodeStats.create(num_envs))(jnp.arange(num_agents)))

    def record(self, reward: jax.Array, done: jax.Array) -> "MAEpisodeStats":
        """``reward [N, A]``, ``done [N]``."""
        return self.replace(per_agent=jax.vmap(lambda s, r: s.record(r, done), in_axes=(0, 1))(self.per_agent, reward))

    def report(self) -> tuple["MAEpisodeStats", dict]:
        stats, m = jax.vmap(lambda s: s.report())(self.per_agent)
        out = {f"episode_return_{i}": m["episode_return"][i] for i in range(m["episode_return"].shape[0])}
        out["episode_return"] = jnp.mean(m["episode_return"])
        out["episode_length"] = m["episode_length"][0]
        out["episodes"] = m["episodes"][0]
        return self.replace(per_agent=stats), out


def task_metrics(spec: MASpec, world: Any) -> dict:
    """Per-step measures of the task from env states ``world`` (leaves ``[..., ...]``), each ``[...]``.

    simple_spread: ``min_dist`` (mean over landmarks of the nearest agent's distance; openai's
    benchmark ``min_dists``), ``collisions`` (agent pairs touching), ``occupied`` (landmarks within
    0.1 of an agent). simple_adversary: ``adv_dist`` (the adversary's distance to the target),
    ``good_dist`` (the nearest good agent's), ``adv_reaches`` (adversary within reach of the target:
    its radius plus the landmark's), ``good_closer`` (the nearest good agent nearer than the adversary)."""
    env, a = spec.env, spec.num_agents
    if spec.name not in TASKS:
        return {}
    pos = world.p_pos  # [..., A + L, 2]
    agents, marks = pos[..., :a, :], pos[..., a:, :]
    d = jnp.linalg.norm(agents[..., :, None, :] - marks[..., None, :, :], axis=-1)  # [..., A, L]
    if spec.name == "simple_spread":
        rad = jnp.asarray(env.rad)
        dd = jnp.linalg.norm(agents[..., :, None, :] - agents[..., None, :, :], axis=-1)
        touch = (dd < rad[:a, None] + rad[None, :a]) & ~jnp.eye(a, dtype=bool)
        return {"min_dist": jnp.mean(jnp.min(d, axis=-2), axis=-1),
                "collisions": jnp.sum(touch, axis=(-2, -1)).astype(jnp.float32) / 2.0,
                "occupied": jnp.sum(jnp.min(d, axis=-2) < 0.1, axis=-1).astype(jnp.float32)}
    adv = np.asarray(spec.adversary)
    goal = world.goal
    d_goal = jnp.take_along_axis(d, goal[..., None, None] * jnp.ones(d.shape[:-1] + (1,), jnp.int32), axis=-1)[..., 0]
    adv_d = jnp.min(d_goal[..., adv], axis=-1)
    good_d = jnp.min(d_goal[..., ~adv], axis=-1)
    reach = jnp.asarray(env.rad)[0] + jnp.asarray(env.rad)[a]
    return {"adv_dist": adv_d, "good_dist": good_d, "adv_reaches": (adv_d < reach).astype(jnp.float32),
            "good_closer": (good_d < adv_d).astype(jnp.float32)}


def random_returns(spec: MASpec, key: jax.Array, num_episodes: int = 100) -> dict:
    """Per-agent returns ``[E, A]`` of uniform random actions in the box over one episode each (the
    reference every table states), and the task metrics summed over the episode (``[E]``)."""
    venv = spec.vec(num_episodes)
    k0, k1 = jax.random.split(key)
    obs, st = venv.reset(k0)

    def body(c, k):
        st, ret = c
        ka, ks = jax.random.split(k)
        act = jax.random.uniform(ka, (num_episodes, spec.num_agents, spec.action_dim), minval=spec.low, maxval=spec.high)
        st, out = venv.step(ks, st, act)
        return (st, ret + out.reward), task_metrics(spec, out.world)

    (st, ret), m = jax.lax.scan(body, (st, jnp.zeros((num_episodes, spec.num_agents))),
                                jax.random.split(k1, spec.episode_steps))
    return {"returns": ret, **summarise(m)}


#: How :func:`summarise` reduces each task measure over an episode's steps.
SUMMARY = {"min_dist": "mean", "collisions": "sum", "occupied": "mean", "adv_dist": "last", "good_dist": "last",
           "adv_reaches": "last", "good_closer": "last"}


def summarise(per_step: dict) -> dict:
    """Episode values ``[E]`` of :func:`task_metrics` over one episode (leaves ``[T, E]``):
    ``min_dist`` / ``occupied`` averaged over the steps, ``collisions`` summed (per episode), the
    adversary's measures at the last step."""
    red = {"mean": lambda v: jnp.mean(v, 0), "sum": lambda v: jnp.sum(v, 0), "last": lambda v: v[-1]}
    return {k: red[SUMMARY[k]](v) for k, v in per_step.items()}


@struct.dataclass
class ProbeState:
    c: jax.Array  # float32: the context bit
    step: jax.Array
    done: jax.Array


class SumProbe:
    """A one-step two-agent probe where coordination is required (jaxmarl's interface).

    Both agents see a context bit ``c`` in {0, 1} (agent 0 as ``[c]``, agent 1 as ``[c, 1]``:
    heterogeneous sizes 1 and 2) and emit one number in ``[0, 1]``; both receive the shared
    reward ``-(a_0 + a_1 - (0.5 + c))^2``: only the *sum* of the actions is judged, so each
    agent's best action depends on the other's. The optimum is 0 (e.g. 0.25 each for c = 0,
    0.75 each for c = 1); a uniform random pair scores about -0.42."""

    agents = ("agent_0", "agent_1")
    max_steps = 0  # one step per episode (MASpec.episode_steps = max_steps + 1)
    num_agents = 2

    def observation_space(self, agent):
        from gymnax.environments import spaces

        return spaces.Box(0.0, 1.0, (1 if agent == "agent_0" else 2,))

    def action_space(self, agent):
        from gymnax.environments import spaces

        return spaces.Box(0.0, 1.0, (1,))

    def _obs(self, c):
        return {"agent_0": c[None], "agent_1": jnp.stack([c, jnp.ones_like(c)])}

    def reset(self, key):
        c = jax.random.bernoulli(key).astype(jnp.float32)
        return self._obs(c), ProbeState(c, jnp.zeros((), jnp.int32), jnp.zeros((), bool))

    def step_env(self, key, state, actions):
        r = -(actions["agent_0"][0] + actions["agent_1"][0] - (0.5 + state.c)) ** 2
        done = jnp.ones((), bool)
        st = ProbeState(state.c, state.step + 1, done)
        return self._obs(state.c), st, {a: r for a in self.agents}, {"agent_0": done, "agent_1": done, "__all__": done}, {}
