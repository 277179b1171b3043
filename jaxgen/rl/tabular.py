"""Tabular RL: Q-learning (many runs vmapped), value iteration and policy iteration (exact,
jitted) on the course's line world (:class:`jaxgen.rl.probes.LineWorld`, whose converged
table is :data:`~jaxgen.rl.probes.LINE_WORLD_Q`) and on gymnax's FrozenLake.

A known MDP is :class:`TabularMDP` (``P [S, A, S']``, expected reward ``R [S, A]``, terminal
states ``[S]`` whose value is 0). :func:`value_iteration` and :func:`policy_iteration`
solve it exactly; :func:`line_world_mdp` and :func:`frozen_lake_mdp` build it from the
environments' own rules.

Q-learning (Watkins 1989) follows the house contract: ``QLearningConfig``,
``init(key, config, hparams)``, ``update(state)`` (one epsilon-greedy step of ``num_envs``
envs and the update ``Q(s,a) += alpha (r + gamma (1 - terminated) max_a' Q(s',a') - Q(s,a))``),
``make_trainer`` / ``make_train``; ``jax.vmap(make_train(cfg))(keys)`` runs many independent
learners in one program. As in every RL config, ``total_steps`` counts environment steps
(``num_iterations = total_steps // num_envs`` updates); a stored config's ``num_steps`` (the
number of updates) is read as ``total_steps = num_steps * num_envs``.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from jaxgen.core import config as C
from jaxgen.core.errors import ConfigError
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.rl import envs
from jaxgen.rl.envs import EpisodeStats
from jaxgen.rl.probes import GOAL, HOLES, LINE_WORLD_Q, N_CELLS, LineParams, LineState, LineWorld  # noqa: F401

# ----------------------------------------------------------------------------- known MDPs

class TabularMDP(NamedTuple):
    """``P [S, A, S']`` transition probabilities, ``R [S, A]`` expected reward, ``terminal [S]``."""

    P: jax.Array
    R: jax.Array
    terminal: jax.Array


def line_world_mdp() -> TabularMDP:
    """The line world's model, read off the environment's own (deterministic) step."""
    env, params = LineWorld(), LineParams()
    P = np.zeros((N_CELLS, 2, N_CELLS), np.float32)
    R = np.zeros((N_CELLS, 2), np.float32)
    step = jax.jit(env.step_env)
    for s in range(N_CELLS):
        for a in range(2):
            _, ns, r, _, _ = step(jax.random.PRNGKey(0), LineState(cell=jnp.int32(s), time=0), a, params)
            P[s, a, int(ns.cell)] = 1.0
            R[s, a] = float(r)
    terminal = np.zeros(N_CELLS, bool)
    terminal[[*HOLES, GOAL]] = True
    return TabularMDP(jnp.asarray(P), jnp.asarray(R), jnp.asarray(terminal))


def frozen_lake_mdp(env) -> TabularMDP:
    """The model of a gymnax ``FrozenLake`` instance (its map, slipperiness, success rate
    and reward schedule): the intended move with probability ``success_rate``, each
    perpendicular one with ``(1 - success_rate) / 2`` when slippery; holes and goal terminal."""
    desc = np.asarray(env.desc)
    nrow, ncol = desc.shape
    S, A = nrow * ncol, 4
    moves = ((0, -1), (1, 0), (0, 1), (-1, 0))  # left, down, right, up (gymnax/gymnasium order)
    goal_r, hole_r, frozen_r = [float(x) for x in np.asarray(env.reward_schedule)]
    tile_r = {3: goal_r, 2: hole_r}
    sr = float(env.success_rate) if env.is_slippery else 1.0
    P = np.zeros((S, A, S), np.float64)
    R = np.zeros((S, A), np.float64)
    for s in range(S):
        r0, c0 = divmod(s, ncol)
        for a in range(A):
            outcomes = [(a, sr)] if sr == 1.0 else [(a, sr), ((a - 1) % 4, (1 - sr) / 2), ((a + 1) % 4, (1 - sr) / 2)]
            for b, p in outcomes:
                r = min(max(r0 + moves[b][0], 0), nrow - 1)
                c = min(max(c0 + moves[b][1], 0), ncol - 1)
                P[s, a, r * ncol + c] += p
                R[s, a] += p * tile_r.get(int(desc[r, c]), frozen_r)
    terminal = np.isin(desc.reshape(-1), (2, 3))
    return TabularMDP(jnp.asarray(P, jnp.float32), jnp.asarray(R, jnp.float32), jnp.asarray(terminal))


def bellman_q(mdp: TabularMDP, v: jax.Array, gamma) -> jax.Array:
    """``Q[s,a] = R[s,a] + gamma sum_s' P[s,a,s'] V[s']`` with terminal states' V and Q = 0."""
    v = jnp.where(mdp.terminal, 0.0, v)
    q = mdp.R + gamma * jnp.einsum("sat,t->sa", mdp.P, v)
    return jnp.where(mdp.terminal[:, None], 0.0, q)


@jax.jit
def value_iteration(mdp: TabularMDP, gamma, tol: float = 1e-6, max_iters: int = 10_000):
    """Iterate ``V <- max_a Q(V)`` to a sup-norm change below ``tol``. Returns ``(Q [S, A], V [S], iterations)``."""
    S = mdp.R.shape[0]

    def cond(c):
        _, delta, i = c
        return (delta > tol) & (i < max_iters)

    def body(c):
        v, _, i = c
        v_new = jnp.max(bellman_q(mdp, v, gamma), axis=-1)
        return v_new, jnp.max(jnp.abs(v_new - v)), i + 1

    v, _, iters = jax.lax.while_loop(cond, body, (jnp.zeros(S, jnp.float32), jnp.array(jnp.inf, jnp.float32), 0))
    q = bellman_q(mdp, v, gamma)
    return q, jnp.max(q, axis=-1), iters


def policy_evaluation(mdp: TabularMDP, policy: jax.Array, gamma) -> jax.Array:
    """Exact ``V^pi`` of a deterministic ``policy [S]`` (one linear solve; terminal V = 0)."""
    S = mdp.R.shape[0]
    idx = jnp.arange(S)
    P_pi = mdp.P[idx, policy] * (1.0 - mdp.terminal[None, :].astype(jnp.float32))
    R_pi = mdp.R[idx, policy]
    live = 1.0 - mdp.terminal.astype(jnp.float32)
    v = jnp.linalg.solve(jnp.eye(S) - gamma * P_pi * live[:, None], R_pi * live)
    return v


@jax.jit
def policy_iteration(mdp: TabularMDP, gamma, max_iters: int = 1_000):
    """Howard's policy iteration: exact evaluation, greedy improvement, until the policy is
    stable. Returns ``(Q [S, A], V [S], policy int32 [S], iterations)``."""
    S = mdp.R.shape[0]

    def cond(c):
        _, changed, i = c
        return changed & (i < max_iters)

    def body(c):
        pi, _, i = c
        q = bellman_q(mdp, policy_evaluation(mdp, pi, gamma), gamma)
        # keep the current action on ties (guarantees termination)
        best = jnp.max(q, axis=-1)
        keep = q[jnp.arange(S), pi] >= best - 1e-6
        new = jnp.where(keep, pi, jnp.argmax(q, axis=-1).astype(jnp.int32))
        return new, jnp.any(new != pi), i + 1

    pi, _, iters = jax.lax.while_loop(cond, body, (jnp.zeros(S, jnp.int32), jnp.array(True), 0))
    v = policy_evaluation(mdp, pi, gamma)
    return bellman_q(mdp, v, gamma), v, pi, iters


# ----------------------------------------------------------------------------- Q-learning

@dataclasses.dataclass(frozen=True)
class QLearningConfig:
    """Tabular Q-learning. Defaults: the course's line world."""

    env: str = C.static("LineWorld", "environment with a Discrete observation space (LineWorld, FrozenLake-misc)",
                        accepts=C.Accepts("text", words="the name of an environment with a Discrete observation space, e.g. LineWorld"))
    num_envs: int = C.static(1, "environments stepped together per update (1 = classic Q-learning)", accepts=C.whole(1))
    total_steps: int = C.static(10_000, "environment steps in a run (iterations = total_steps // num_envs)", accepts=C.whole(1))
    alpha: float = C.traced(0.5, "step size", accepts=C.number(0, 1, lo_open=True))
    gamma: float = C.traced(0.9, "discount", accepts=C.number(0, 1))
    epsilon: float = C.traced(0.3, "exploration probability of epsilon-greedy", accepts=C.number(0, 1, words="a probability in [0, 1]"))

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.num_envs

    @staticmethod
    def upgrade(values: dict) -> dict:
        """A stored ``num_steps`` counted updates: ``total_steps = num_steps * num_envs`` env steps
        (a change of meaning as well as of name, so it is here rather than in ``MOVED``)."""
        if "num_steps" in values:
            values = dict(values)
            values.setdefault("total_steps", int(values.pop("num_steps")) * int(values.get("num_envs", 1)))
        return values


class QLearningState(struct.PyTreeNode):
    q: jax.Array  # float32 [S, A]
    env_state: Any
    obs: jax.Array  # int32 [N]
    stats: EpisodeStats
    key: jax.Array
    step: jax.Array
    hparams: dict
    config: QLearningConfig = struct.field(pytree_node=False)


@functools.lru_cache(maxsize=None)
def _env(config: QLearningConfig) -> tuple[envs.EnvSpec, int]:
    """``(spec, number of states)``; ConfigError for continuous actions or observations."""
    spec = envs.spec(config.env)
    envs.require_discrete(spec, "Q-learning")
    space = spec.env.observation_space(spec.params)
    if not isinstance(space, spaces.Discrete):
        raise ConfigError(
            f"env={config.env!r} has a {type(space).__name__} observation space; tabular Q-learning needs a "
            f"Discrete one, e.g. LineWorld or FrozenLake-misc."
        )
    return spec, int(space.n)


def validate(config: QLearningConfig) -> QLearningConfig:
    """ConfigError (one sentence) for an out-of-range config; return it unchanged (each field's
    own range is declared on it, :func:`jaxgen.core.config.check_fields`)."""
    C.check_fields(config)
    C.require(config, "total_steps", config.total_steps >= config.num_envs,
              f"a whole number >= num_envs ({config.num_envs})")
    _env(config)
    return config


def init(key: jax.Array, config: QLearningConfig, hparams: dict | None = None) -> QLearningState:
    spec, S = _env(config)
    k_env, k_run = jax.random.split(key)
    obs, env_state = spec.vec(config.num_envs).reset(k_env)
    return QLearningState(q=jnp.zeros((S, spec.action_dim), jnp.float32), env_state=env_state, obs=obs.astype(jnp.int32),
                          stats=EpisodeStats.create(config.num_envs), key=k_run, step=jnp.zeros((), jnp.int32),
                          hparams=C.hparams(config, hparams), config=config)


def greedy(key: jax.Array, q_rows: jax.Array) -> jax.Array:
    """Argmax over the last axis with ties broken uniformly at random. ``[N, A] -> int32[N]``."""
    u = jax.random.uniform(key, q_rows.shape)
    return jnp.argmax(jnp.where(q_rows >= jnp.max(q_rows, -1, keepdims=True), u, -1.0), axis=-1).astype(jnp.int32)


def update(state: QLearningState, data=None) -> tuple[QLearningState, dict]:
    """One epsilon-greedy vector step and the Q-learning update of each visited (s, a)."""
    cfg, hp = state.config, state.hparams
    spec, _ = _env(cfg)
    A = spec.action_dim
    k_tie, k_coin, k_rand, k_env = jax.random.split(jax.random.fold_in(state.key, state.step), 4)
    s = state.obs
    n = s.shape[0]
    explore = jax.random.uniform(k_coin, (n,)) < hp["epsilon"]
    a = jnp.where(explore, jax.random.randint(k_rand, (n,), 0, A), greedy(k_tie, state.q[s]))
    env_state, out = spec.vec(n).step(k_env, state.env_state, a)
    s2 = out.final_obs.astype(jnp.int32)
    target = out.reward + hp["gamma"] * (1.0 - out.terminated.astype(jnp.float32)) * jnp.max(state.q[s2], axis=-1)
    td = target - state.q[s, a]
    q = state.q.at[s, a].add(hp["alpha"] * td)
    stats, metrics = state.stats.record(out.reward, out.done).report()
    metrics["abs_td"] = jnp.mean(jnp.abs(td))
    return state.replace(q=q, env_state=env_state, obs=out.obs.astype(jnp.int32), stats=stats, step=state.step + 1), metrics


def make_trainer(config: QLearningConfig) -> Trainer:
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update, num_steps=config.num_iterations,
                   config=config)


def make_train(config: QLearningConfig):
    """``train(key, hparams=None) -> (QLearningState, metrics[num_iterations])``; vmap it for many runs."""
    return _make_train(make_trainer(config))


def greedy_returns(env_name: str, q: jax.Array, key: jax.Array, num_episodes: int = 100, **env_kwargs) -> jax.Array:
    """Undiscounted returns ``[num_episodes]`` of the greedy policy of ``q [S, A]`` on ``env_name``."""
    env, params = envs.make(env_name, **env_kwargs)
    policy = lambda k, obs: jnp.argmax(q[obs.astype(jnp.int32)], axis=-1).astype(jnp.int32)
    return envs.rollout_returns(env, params, policy, key, num_episodes)[0]
