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
The estimator, the masked statistics and the value loss are :mod:`jaxgen.losses`'
(:func:`~jaxgen.losses.policy_gradient.policy_gradient_loss`, reused by SeqGAN;
:func:`~jaxgen.losses.masked.masked_standardize`, :func:`~jaxgen.losses.masked.masked_mean`,
:func:`~jaxgen.losses.value.value_loss`).
Policies: categorical for discrete actions, diagonal Gaussian for continuous ones
(:mod:`jaxgen.rl.policies`, log-std fixed / learned state-independent / state-dependent);
the network is :func:`jaxgen.rl.policies.actor_critic` of the nested ``policy`` config, by
default the MLP (``policy.network="mlp"``: REINFORCE never used the conv torso, and a
config.json written before the policy config existed loads with it).

Names (as in every RL config): ``num_envs`` environments (here: episodes per update),
``rollout_len`` vector steps per rollout (as PPO's), ``num_updates`` the iterations of the
run (one Adam step each; ``num_iterations`` is the same number, as in every RL config).
A config.json written before the policy config existed still loads (``MOVED``: ``hidden``,
``activation``, ``log_std``, ``log_std_init`` -> ``policy.*``).

Contract (DESIGN.md): ``init``, ``update(state, data=None)``, ``make_trainer``,
``make_train``; traced: learning_rate, gamma, vf_coef, ent_coef, max_grad_norm (``inf``: no
clipping), eval_greedy (:func:`evaluate` reads it from ``state.hparams``, as PPO's).
Metrics include ``env_steps`` (valid env steps so far: the sample cost of the run).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxgen.core import config as C
from jaxgen.core import optim
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.losses.masked import masked_mean, masked_standardize
from jaxgen.losses.policy_gradient import policy_gradient_loss
from jaxgen.losses.value import value_loss
from jaxgen.rl import envs, policies
from jaxgen.rl.policies import PolicyNetConfig
from jaxgen.rl.returns import discounted_returns

_MOVED_TO_POLICY = ("hidden", "activation", "log_std", "log_std_init")


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE config; defaults: CartPole-v1, 16 episodes per update, learned baseline,
    normalised advantages, tanh 64x64."""

    MOVED = {name: f"policy.{name}" for name in _MOVED_TO_POLICY}

    env: str = C.static("CartPole-v1", "any gymnax environment (discrete or continuous actions)",
                        accepts=C.Accepts("text", words="the name of a gymnax or jaxgen environment, e.g. CartPole-v1"))
    num_envs: int = C.static(16, "complete episodes (Monte Carlo rollouts) per update", accepts=C.whole(1))
    num_updates: int = C.static(200, "updates in the run", accepts=C.whole(1))
    rollout_len: int = C.static(0, "vector steps per rollout (0: the environment's episode limit)",
                                accepts=C.whole(0, words="a whole number >= 0 (0: the episode limit)"))
    policy: PolicyNetConfig = C.nested(PolicyNetConfig(network="mlp"), "the policy network and its baseline (policy.hidden, ...)")
    baseline: bool = C.static(True, "learned value baseline V(s)")
    normalize_returns: bool = C.static(True, "standardise the weights (returns or advantages) over the batch")
    learning_rate: float = C.traced(3e-3, "Adam learning rate", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    gamma: float = C.traced(0.99, "discount", accepts=C.number(0, 1))
    vf_coef: float = C.traced(0.5, "baseline loss weight", accepts=C.number())
    ent_coef: float = C.traced(0.0, "entropy bonus weight", accepts=C.number())
    max_grad_norm: float = C.traced(float("inf"), "global gradient-norm clip (inf: none)",
                                    accepts=C.number(0, lo_open=True, words="a number > 0 (inf: no clipping)"))
    eval_greedy: float = C.traced(0.0, "1: evaluate with the greedy action / the mean; 0: sample",
                                  accepts=C.number(words="a number: above 0.5 evaluates greedily (1), else by sampling (0)"))

    @property
    def num_iterations(self) -> int:
        return self.num_updates

    @staticmethod
    def upgrade(values: dict) -> dict:
        """A config stored before the nested policy config had no network choice: the MLP."""
        policy = values.get("policy")
        if isinstance(policy, dict) and "network" not in policy:
            values = {**values, "policy": {**policy, "network": "mlp"}}
        return values


@functools.lru_cache(maxsize=None)
def build(config: ReinforceConfig) -> policies.Built:
    """The environment's spec, the network and the optimiser (Adam after global-norm clipping)
    of a config (cached)."""
    tx = optim.optimizer("adam", max_grad_norm=config.max_grad_norm, learning_rate=config.learning_rate)
    return policies.build(config.env, config.policy, tx)


def rollout_len(config: ReinforceConfig) -> int:
    """Vector steps per rollout: ``config.rollout_len``, or the environment's episode limit (1000 if none)."""
    return config.rollout_len or build(config).spec.max_steps or 1000


def validate(config: ReinforceConfig) -> ReinforceConfig:
    """ConfigError (one sentence) for an out-of-range config; return it unchanged. Each
    field's own range is declared on it (:func:`jaxgen.core.config.check_fields`, nested
    ``policy.*`` included); the checks here relate fields."""
    C.check_fields(config)
    if config.normalize_returns:
        C.require(config, "num_envs", config.num_envs >= 2, "at least 2 episodes per update when normalize_returns")
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
    obs, _ = b.spec.vec(config.num_envs).reset(jax.random.fold_in(k_net, 1))
    params = b.net.init(k_net, jnp.asarray(obs, jnp.float32))["params"]
    return ReinforceState(params=params, opt_state=optim.init_opt_state(b.tx, params, hp), key=k_run,
                          step=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32), hparams=hp, config=config)


def first_episode_mask(done: jax.Array) -> jax.Array:
    """float32 ``[T, N]``: 1 up to and including each env's first episode end, 0 after."""
    d = done.astype(jnp.float32)
    before = jnp.cumsum(d, axis=0) - d  # episode ends strictly before t
    return (before < 0.5).astype(jnp.float32)


def collect(state: ReinforceState, key: jax.Array) -> dict:
    """``rollout_len`` steps of the ``num_envs`` freshly reset envs: ``[T, N, ...]`` obs, action,
    reward, terminated, truncated, final_obs."""
    cfg = state.config
    b = build(cfg)
    venv = b.spec.vec(cfg.num_envs)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = venv.reset(k_reset)

    def step(carry, k):
        env_state, obs = carry
        k_act, k_env = jax.random.split(k)
        x = jnp.asarray(obs, jnp.float32)
        out = b.net.apply({"params": state.params}, x, method="policy")
        action = policies.sample(k_act, out, b.spec.discrete)
        env_state, so = venv.step(k_env, env_state, envs.env_action(b.spec, action))
        return (env_state, so.obs), {"obs": x, "action": action, "reward": so.reward, "terminated": so.terminated,
                                     "truncated": so.truncated, "final_obs": so.final_obs}

    _, traj = jax.lax.scan(step, (env_state, obs), jax.random.split(k_run, rollout_len(cfg)))
    return traj


def loss_fn(params, traj: dict, state: ReinforceState):
    """The REINFORCE loss of a rollout ``traj`` (:func:`collect`); returns ``(loss, (metrics, mask [T, N]))``."""
    cfg, hp = state.config, state.hparams
    b = build(cfg)
    t, n = traj["reward"].shape
    flat = lambda x: x.reshape((t * n,) + x.shape[2:])
    mask = first_episode_mask(jnp.logical_or(traj["terminated"], traj["truncated"]))
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
        weight = masked_standardize(weight, mask)
    logp = policies.log_prob(out, flat(traj["action"]), b.spec.discrete).reshape(t, n)
    pg = policy_gradient_loss(logp, weight, mask)
    ent = masked_mean(policies.entropy(out, b.spec.discrete).reshape(t, n), mask)
    loss = pg - hp["ent_coef"] * ent
    metrics = {"pg_loss": pg, "entropy": ent}
    if cfg.baseline:
        v_loss = value_loss(value, ret, mask)
        loss = loss + hp["vf_coef"] * v_loss
        metrics["v_loss"] = v_loss
    metrics["loss"] = loss
    return loss, (metrics, mask)


def update(state: ReinforceState, data=None) -> tuple[ReinforceState, dict]:
    """One update from ``num_envs`` complete episodes (see the module docstring)."""
    tx = build(state.config).tx
    traj = collect(state, jax.random.fold_in(state.key, state.step))
    grads, (metrics, mask) = jax.grad(loss_fn, has_aux=True)(state.params, traj, state)
    upd, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, upd)
    env_steps = state.env_steps + jnp.sum(mask).astype(jnp.int32)
    metrics.update(episode_return=jnp.mean(jnp.sum(traj["reward"] * mask, axis=0)),
                   episode_length=jnp.mean(jnp.sum(mask, axis=0)),
                   env_steps=env_steps.astype(jnp.float32))
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1, env_steps=env_steps), metrics


def make_trainer(config: ReinforceConfig) -> Trainer:
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update, num_steps=config.num_iterations,
                   config=config)


def make_train(config: ReinforceConfig):
    """``train(key, hparams=None) -> (ReinforceState, metrics[num_updates])`` as one scan."""
    return _make_train(make_trainer(config))


def act(state: ReinforceState, key: jax.Array, obs: jax.Array, greedy=False) -> jax.Array:
    """Environment actions ``[B, ...]`` at raw ``obs [B, ...]``: sampled, or the greedy action /
    mean where ``greedy`` (may be traced)."""
    b = build(state.config)
    out = b.net.apply({"params": state.params}, jnp.asarray(obs, jnp.float32), method="policy")
    a = jnp.where(jnp.asarray(greedy) > 0.5, policies.mode(out, b.spec.discrete), policies.sample(key, out, b.spec.discrete))
    return envs.env_action(b.spec, a)


def evaluate(state: ReinforceState, key: jax.Array, num_episodes: int = 10) -> tuple[jax.Array, jax.Array]:
    """``(returns [E], lengths [E])`` of complete episodes in parallel; sampled actions unless
    ``hparams["eval_greedy"]``. Pure; vmap it over a sweep's runs."""
    spec = build(state.config).spec
    policy = lambda k, obs: act(state, k, obs, state.hparams["eval_greedy"])
    return envs.rollout_returns(spec.env, spec.params, policy, key, num_episodes)
