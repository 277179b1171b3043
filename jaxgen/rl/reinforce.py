"""REINFORCE (Williams 1992) with discounted Monte Carlo returns over N complete episodes
per update, an optional learned value baseline and optional return normalisation.

One iteration (:func:`update`) resets the ``num_envs`` environments and plays each for
``rollout_len`` vector steps (default: the environment's episode limit, so every env
finishes its episode); steps after an env's first episode ended are masked out. Then
one Adam step on

    loss = -sum_t m_t log pi(a_t|s_t) A_t / sum_t m_t  +  vf_coef * L_V  -  ent_coef * H

with ``R_t`` the discounted return of the rest of the episode
(:func:`jaxgen.rl.returns.discounted_returns`; a time-limit truncation bootstraps from the
baseline's ``V(final_obs)`` when there is a baseline, from 0 without), ``A_t = R_t`` or
``R_t - V(s_t)`` (``baseline``), standardised over the batch's valid steps
(``normalize_returns``), ``L_V`` the half squared error of ``V`` to ``R`` on valid steps.

:func:`reinforce_loss` is the estimator alone (log-probs, weights, mask), reused by SeqGAN.
Policies: categorical for discrete actions, diagonal Gaussian for continuous ones
(:mod:`jaxgen.rl.policies`, log-std fixed / learned state-independent / state-dependent).

Contract (DESIGN.md): ``init``, ``update(state, data=None)``, ``make_trainer``,
``make_train``; traced: learning_rate, gamma, vf_coef, ent_coef, max_grad_norm.
Metrics include ``env_steps`` (valid env steps so far: the sample cost of the run).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxgen.core import config as C
from jaxgen.core.errors import choice
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.rl import envs, policies
from jaxgen.rl.envs import VecEnv
from jaxgen.rl.returns import discounted_returns


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE config; defaults: CartPole-v1, 16 episodes per update, learned baseline,
    normalised advantages, tanh 64x64."""

    env: str = C.static("CartPole-v1", "any gymnax environment (discrete or continuous actions)")
    num_envs: int = C.static(16, "complete episodes (Monte Carlo rollouts) per update")
    num_updates: int = C.static(200, "updates in the run")
    rollout_len: int = C.static(0, "vector steps per rollout (0: the environment's episode limit)")
    hidden: tuple = C.static((64, 64), "hidden layer sizes of the policy (and of the baseline)")
    activation: str = C.static("tanh", "tanh or relu", ("tanh", "relu"))
    log_std: str = C.static("param", "Gaussian log-std: fixed, param or state", policies.LOG_STD_MODES)
    log_std_init: float = C.static(0.0, "initial log-std of a Gaussian policy")
    baseline: bool = C.static(True, "learned value baseline V(s)")
    normalize_returns: bool = C.static(True, "standardise the weights (returns or advantages) over the batch")
    learning_rate: float = C.traced(3e-3, "Adam learning rate")
    gamma: float = C.traced(0.99, "discount")
    vf_coef: float = C.traced(0.5, "baseline loss weight")
    ent_coef: float = C.traced(0.0, "entropy bonus weight")
    max_grad_norm: float = C.traced(float("inf"), "global gradient-norm clip (inf: none)")


class Built(NamedTuple):
    env: Any
    env_params: Any
    venv: VecEnv
    net: policies.ActorCritic
    tx: optax.GradientTransformation
    discrete: bool
    action_shape: tuple
    low: Any
    high: Any
    rollout_len: int


@functools.lru_cache(maxsize=None)
def build(config: ReinforceConfig) -> Built:
    env, params = envs.make(config.env)
    discrete, dim, shape, low, high = policies.action_spec(env, params)
    net = policies.ActorCritic(dim, discrete, tuple(config.hidden), config.activation, False, config.log_std,
                               config.log_std_init)
    tx = policies.adam_tx(config.learning_rate, config.max_grad_norm)
    t = config.rollout_len or int(getattr(params, "max_steps_in_episode", 1000))
    return Built(env, params, VecEnv(env, params, config.num_envs), net, tx, discrete, shape, low, high, t)


def validate(config: ReinforceConfig) -> ReinforceConfig:
    choice("activation", config.activation, ("tanh", "relu"))
    choice("log_std", config.log_std, policies.LOG_STD_MODES)
    pos_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1
    for name in ("num_envs", "num_updates"):
        C.require(config, name, pos_int(getattr(config, name)), "a whole number >= 1")
    C.require(config, "rollout_len", isinstance(config.rollout_len, int) and config.rollout_len >= 0,
              "a whole number >= 0 (0: the episode limit)")
    if config.normalize_returns:
        C.require(config, "num_envs", config.num_envs >= 2, "at least 2 episodes per update when normalize_returns")
    C.require(config, "learning_rate", 0 < config.learning_rate < 1, "a number in (0, 1)")
    C.require(config, "gamma", 0 <= config.gamma <= 1, "a number in [0, 1]")
    build(config)
    return config


class ReinforceState(struct.PyTreeNode):
    params: Any
    opt_state: Any
    key: jax.Array
    step: jax.Array  # int32: updates done
    env_steps: jax.Array  # int32: valid env steps so far
    hparams: dict
    config: ReinforceConfig = struct.field(pytree_node=False)


def init(key: jax.Array, config: ReinforceConfig, hparams: dict | None = None) -> ReinforceState:
    b = build(config)
    hp = C.hparams(config, hparams)
    k_net, k_run = jax.random.split(key)
    obs, _ = b.venv.reset(jax.random.fold_in(k_net, 1))
    params = b.net.init(k_net, jnp.asarray(obs, jnp.float32))["params"]
    opt_state = policies.init_opt_state(b.tx, params, hp)
    return ReinforceState(params=params, opt_state=opt_state, key=k_run, step=jnp.zeros((), jnp.int32),
                          env_steps=jnp.zeros((), jnp.int32), hparams=hp, config=config)


def reinforce_loss(logp: jax.Array, weight: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """The REINFORCE estimator's surrogate ``-sum(mask * logp * stop_gradient(weight)) / sum(mask)``.

    ``logp``: log pi(a_t|s_t), ``weight``: R_t or an advantage, ``mask``: 1 on valid steps;
    any equal shapes (e.g. ``[T, N]``). Its gradient is the policy-gradient estimate."""
    w = jax.lax.stop_gradient(weight)
    if mask is None:
        return -jnp.mean(logp * w)
    mask = mask.astype(logp.dtype)
    return -jnp.sum(mask * logp * w) / jnp.maximum(jnp.sum(mask), 1.0)


def first_episode_mask(done: jax.Array) -> jax.Array:
    """float32 ``[T, N]``: 1 up to and including each env's first episode end, 0 after."""
    d = done.astype(jnp.float32)
    before = jnp.cumsum(d, axis=0) - d  # episode ends strictly before t
    return (before < 0.5).astype(jnp.float32)


def _env_action(b: Built, action):
    if b.discrete:
        return action
    return jnp.clip(action, jnp.asarray(b.low), jnp.asarray(b.high)).reshape(action.shape[:1] + b.action_shape)


def collect(state: ReinforceState, key: jax.Array) -> dict:
    """``rollout_len`` steps of the ``num_envs`` freshly reset envs: ``[T, N, ...]`` obs, action,
    reward, terminated, truncated, final_obs."""
    b = build(state.config)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = b.venv.reset(k_reset)

    def step(carry, k):
        env_state, obs = carry
        k_act, k_env = jax.random.split(k)
        x = jnp.asarray(obs, jnp.float32)
        out = b.net.apply({"params": state.params}, x, method="policy")
        action = policies.sample(k_act, out, b.discrete)
        env_state, so = b.venv.step(k_env, env_state, _env_action(b, action))
        return (env_state, so.obs), {"obs": x, "action": action, "reward": so.reward, "terminated": so.terminated,
                                     "truncated": so.truncated, "final_obs": so.final_obs}

    _, traj = jax.lax.scan(step, (env_state, obs), jax.random.split(k_run, b.rollout_len))
    return traj


def loss_fn(params, traj: dict, state: ReinforceState):
    cfg, hp = state.config, state.hparams
    b = build(cfg)
    t, n = traj["reward"].shape
    flat = lambda x: x.reshape((t * n,) + x.shape[2:])
    done = jnp.logical_or(traj["terminated"], traj["truncated"])
    mask = first_episode_mask(done)
    if cfg.baseline:
        out, value = b.net.apply({"params": params}, flat(traj["obs"]))
        value = value.reshape(t, n)
        final = jnp.asarray(flat(traj["final_obs"]), jnp.float32)
        next_value = jax.lax.stop_gradient(b.net.apply({"params": params}, final, method="value").reshape(t, n))
    else:
        out = b.net.apply({"params": params}, flat(traj["obs"]), method="policy")
        next_value = jnp.zeros((t, n), jnp.float32)
    ret = discounted_returns(traj["reward"], traj["terminated"], traj["truncated"], next_value, hp["gamma"])
    weight = ret - jax.lax.stop_gradient(value) if cfg.baseline else ret
    if cfg.normalize_returns:
        cnt = jnp.maximum(jnp.sum(mask), 1.0)
        mu = jnp.sum(weight * mask) / cnt
        sd = jnp.sqrt(jnp.sum(((weight - mu) * mask) ** 2) / cnt)
        weight = (weight - mu) / (sd + 1e-8)
    logp = policies.log_prob(out, flat(traj["action"]), b.discrete).reshape(t, n)
    pg = reinforce_loss(logp, weight, mask)
    ent = jnp.sum(policies.entropy(out, b.discrete).reshape(t, n) * mask) / jnp.maximum(jnp.sum(mask), 1.0)
    loss = pg - hp["ent_coef"] * ent
    metrics = {"pg_loss": pg, "entropy": ent}
    if cfg.baseline:
        v_loss = 0.5 * jnp.sum(mask * (value - ret) ** 2) / jnp.maximum(jnp.sum(mask), 1.0)
        loss = loss + hp["vf_coef"] * v_loss
        metrics["v_loss"] = v_loss
    metrics["loss"] = loss
    return loss, (metrics, mask)


def update(state: ReinforceState, data=None) -> tuple[ReinforceState, dict]:
    """One update from ``num_envs`` complete episodes (see the module docstring)."""
    b = build(state.config)
    k_roll = jax.random.fold_in(state.key, state.step)
    traj = collect(state, k_roll)
    grads, (metrics, mask) = jax.grad(loss_fn, has_aux=True)(state.params, traj, state)
    upd, opt_state = b.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, upd)
    steps = jnp.sum(mask).astype(jnp.int32)
    env_steps = state.env_steps + steps
    metrics.update(episode_return=jnp.mean(jnp.sum(traj["reward"] * mask, axis=0)),
                   episode_length=jnp.mean(jnp.sum(mask, axis=0)),
                   env_steps=env_steps.astype(jnp.float32))
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1, env_steps=env_steps), metrics


def make_trainer(config: ReinforceConfig) -> Trainer:
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update, num_steps=config.num_updates,
                   config=config)


def make_train(config: ReinforceConfig):
    """``train(key, hparams=None) -> (ReinforceState, metrics[num_updates])`` as one scan."""
    return _make_train(make_trainer(config))


def act(state: ReinforceState, key: jax.Array, obs: jax.Array, greedy=False) -> jax.Array:
    b = build(state.config)
    out = b.net.apply({"params": state.params}, jnp.asarray(obs, jnp.float32), method="policy")
    a = jnp.where(jnp.asarray(greedy) > 0.5, policies.mode(out, b.discrete), policies.sample(key, out, b.discrete))
    return _env_action(b, a)


def evaluate(state: ReinforceState, key: jax.Array, num_episodes: int = 10, greedy=False):
    """``(returns [E], lengths [E])`` of complete episodes with the (sampled) policy."""
    b = build(state.config)
    return envs.rollout_returns(b.env, b.env_params, lambda k, o: act(state, k, o, greedy), key, num_episodes)
