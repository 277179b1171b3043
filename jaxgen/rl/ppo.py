"""Proximal policy optimisation with the clipped surrogate (Schulman et al. 2017) over N
vectorised gymnax environments.

One iteration (:func:`update`) = a rollout of ``num_steps`` vector steps of the
``num_envs`` environments (one actor-critic forward per step), GAE(lambda)
(:mod:`jaxgen.rl.returns`: truncation bootstraps from ``V(final_obs)``, termination does
not), then ``update_epochs`` passes over the ``num_envs * num_steps`` transitions in
``num_minibatches`` shuffled minibatches of Adam steps on

    loss = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] + vf_coef * L_V - ent_coef * H[pi]

with ``rho = pi(a|s) / pi_old(a|s)``, advantages normalised per minibatch, ``L_V`` the
half squared error to the lambda-return (optionally clipped around the old value, as in
the reference implementations), global-norm gradient clipping and a learning rate
annealed linearly to 0 over the run.

Options for continuous control: ``normalize_obs`` (running mean/variance of the
observations, updated once per iteration from the rollout; acting and learning within an
iteration use the same statistics) and ``scale_rewards`` (rewards divided by the running
standard deviation of the discounted return, as gym's ``NormalizeReward``). Actions of a
Gaussian policy are clipped to the action space when sent to the environment; the
unclipped sample is what the log-probability is taken of.

Contract (DESIGN.md): ``init(key, config, hparams=None) -> PPOState``, ``update(state,
data=None)``, ``make_trainer(config)``, ``make_train(config) -> train(key, hparams=None)``
(``jax.jit(jax.vmap(make_train(cfg)))(keys)`` trains many seeds in one compile).
Traced (sweepable): learning_rate, gamma, gae_lambda, clip_eps, vf_clip, ent_coef,
vf_coef, max_grad_norm. Static: shapes and loop lengths. Per-iteration randomness is
``fold_in(state.key, state.step)``; the rollout draws its policy noise for all ``T x N``
steps in one call (a categorical action is the inverse CDF at one uniform) and its ``T``
environment keys in one call, as keys of JAX's ``unsafe_rbg`` implementation (seeded from
the threefry key): gymnax's per-step key split and reset draw then lower to XLA's
RngBitGenerator instead of a rolled threefry loop each, which on XLA:CPU dominated the cost
of stepping CartPole (measured: benchmarks/notes/policy_gradient.md). The default config is
the widely used CartPole one (4 envs x 128 steps, 5e5 steps, 4 epochs x 4 minibatches,
lr 2.5e-4 annealed, gamma 0.99, lambda 0.95, clip 0.2, entropy 0.01, value 0.5, grad-norm
0.5, tanh 64x64).
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
from jaxgen.core.errors import ConfigError, choice
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.rl import envs, policies
from jaxgen.rl.envs import EpisodeStats, VecEnv
from jaxgen.rl.returns import gae

NETWORKS = ("auto", "mlp", "minatar")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO config; defaults = the widely used CartPole-v1 configuration."""

    RETIRED = {"fused_net": False}  # removed options (see config.from_dict): old run dirs still load

    env: str = C.static("CartPole-v1", "any gymnax environment, discrete (CartPole-v1, Acrobot-v1, *-MinAtar) or continuous (Pendulum-v1, MountainCarContinuous-v0)")
    num_envs: int = C.static(4, "environments stepped in parallel")
    num_steps: int = C.static(128, "vector steps per rollout (batch = num_envs * num_steps transitions)")
    total_steps: int = C.static(500_000, "environment steps in the run (iterations = total_steps // batch)")
    update_epochs: int = C.static(4, "passes over each rollout")
    num_minibatches: int = C.static(4, "minibatches per pass (must divide the batch)")
    network: str = C.static("auto", "auto, mlp or minatar (conv torso); auto picks the conv net for image observations", NETWORKS)
    hidden: tuple = C.static((64, 64), "hidden layer sizes of the actor and of the critic")
    activation: str = C.static("tanh", "tanh or relu", ("tanh", "relu"))
    log_std: str = C.static("param", "Gaussian log-std: fixed, param (learned, state-independent) or state (learned head)", policies.LOG_STD_MODES)
    log_std_init: float = C.static(0.0, "initial log-std of a Gaussian policy")
    anneal_lr: bool = C.static(True, "anneal the learning rate linearly to 0 over the run")
    clip_value: bool = C.static(True, "clip the value loss around the old value (by vf_clip)")
    normalize_advantages: bool = C.static(True, "normalise advantages per minibatch")
    normalize_obs: bool = C.static(False, "running observation normalisation (continuous control)")
    scale_rewards: bool = C.static(False, "divide rewards by the running std of the discounted return")
    unroll: int = C.static(1, "lax.scan unroll of the rollout loop (1 is fastest on XLA:CPU; 2 and 4 measured slower)")
    learning_rate: float = C.traced(2.5e-4, "Adam learning rate (initial value when annealed)")
    gamma: float = C.traced(0.99, "discount")
    gae_lambda: float = C.traced(0.95, "GAE lambda")
    clip_eps: float = C.traced(0.2, "surrogate clip epsilon")
    vf_clip: float = C.traced(0.2, "value clip range (with clip_value)")
    ent_coef: float = C.traced(0.01, "entropy bonus weight")
    vf_coef: float = C.traced(0.5, "value loss weight")
    max_grad_norm: float = C.traced(0.5, "global gradient-norm clip (inf: none)")
    eval_greedy: float = C.traced(0.0, "1: evaluate with the greedy action / the mean; 0: sample")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.batch_size


# Continuous-control preset (Pendulum-v1): the usual PPO settings for it (cf. the RL Zoo).
PENDULUM = PPOConfig(env="Pendulum-v1", num_envs=16, num_steps=64, total_steps=1_000_000, update_epochs=10,
                     num_minibatches=8, learning_rate=3e-4, gamma=0.95, gae_lambda=0.95, ent_coef=0.0,
                     normalize_obs=True, scale_rewards=True, clip_value=False, max_grad_norm=0.5)

# MinAtar preset (Breakout-MinAtar and the other MinAtar games): 64 envs x 128 steps, 1e7 steps,
# 4 epochs x 8 minibatches, gamma 0.999, constant lr 5e-4, ReLU MLP 256x256 on the flattened
# frame (the settings of gymnax's own PPO baselines). gamma 0.99 with an annealed lr and the conv
# torso stalled at return 6.5 on Breakout for 6e6 steps (measured).
MINATAR = PPOConfig(env="Breakout-MinAtar", num_envs=64, num_steps=128, total_steps=10_000_000, update_epochs=4,
                    num_minibatches=8, network="mlp", hidden=(256, 256), activation="relu", learning_rate=5e-4,
                    anneal_lr=False, gamma=0.999)

PRESETS = {"cartpole": PPOConfig(), "pendulum": PENDULUM, "minatar": MINATAR}


class Built(NamedTuple):
    env: Any
    env_params: Any
    venv: VecEnv
    net: policies.ActorCritic
    tx: optax.GradientTransformation
    discrete: bool
    action_dim: int
    action_shape: tuple
    low: Any
    high: Any
    obs_shape: tuple


@functools.lru_cache(maxsize=None)
def build(config: PPOConfig) -> Built:
    """Environment, network and optimiser of a config (cached: same objects, same treedef)."""
    env, params = envs.make(config.env)
    discrete, dim, shape, low, high = policies.action_spec(env, params)
    obs_shape = envs.obs_shape(env, params)
    conv = config.network == "minatar" or (config.network == "auto" and len(obs_shape) == 3)
    net = policies.ActorCritic(dim, discrete, tuple(config.hidden), config.activation, conv, config.log_std,
                               config.log_std_init)
    tx = policies.adam_tx(config.learning_rate, config.max_grad_norm, eps=1e-5)
    return Built(env, params, VecEnv(env, params, config.num_envs), net, tx, discrete, dim, shape, low, high, obs_shape)


def validate(config: PPOConfig) -> PPOConfig:
    """ConfigError (one sentence) for an out-of-range config; return it unchanged."""
    choice("network", config.network, NETWORKS)
    choice("activation", config.activation, ("tanh", "relu"))
    choice("log_std", config.log_std, policies.LOG_STD_MODES)
    pos_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1
    for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "unroll"):
        C.require(config, name, pos_int(getattr(config, name)), "a whole number >= 1")
    if config.batch_size % config.num_minibatches:
        raise ConfigError(f"num_minibatches={config.num_minibatches} does not divide the batch of "
                          f"num_envs x num_steps = {config.batch_size} transitions; accepted: a divisor of {config.batch_size}.")
    C.require(config, "total_steps", pos_int(config.total_steps) and config.total_steps >= config.batch_size,
              f"a whole number >= num_envs x num_steps ({config.batch_size})")
    C.require(config, "learning_rate", 0 < config.learning_rate < 1, "a number in (0, 1)")
    C.require(config, "gamma", 0 <= config.gamma <= 1, "a number in [0, 1]")
    C.require(config, "gae_lambda", 0 <= config.gae_lambda <= 1, "a number in [0, 1]")
    C.require(config, "clip_eps", config.clip_eps > 0, "a number > 0")
    C.require(config, "max_grad_norm", config.max_grad_norm > 0, "a number > 0 (inf: no clipping)")
    build(config)  # unknown env raises here
    return config


class RunningStats(struct.PyTreeNode):
    """Running mean/variance (parallel-variance update of Chan et al.) of ``[...]`` values."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape=()) -> "RunningStats":
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.full((), 1e-4, jnp.float32))

    def update(self, x: jax.Array) -> "RunningStats":
        """Add a batch ``x [B, *shape]``."""
        b_mean, b_var, b = jnp.mean(x, axis=0), jnp.var(x, axis=0), x.shape[0]
        delta = b_mean - self.mean
        tot = self.count + b
        mean = self.mean + delta * b / tot
        m2 = self.var * self.count + b_var * b + delta**2 * self.count * b / tot
        return self.replace(mean=mean, var=m2 / tot, count=tot)


class PPOState(struct.PyTreeNode):
    """Everything of a run: a checkpoint of it is a complete resume point."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [N, ...] observation to act on (raw)
    stats: EpisodeStats
    obs_rms: RunningStats  # observation statistics (unused unless normalize_obs)
    ret_rms: RunningStats  # discounted-return statistics (unused unless scale_rewards)
    disc_ret: jax.Array  # [N] running discounted return (reward scaling)
    key: jax.Array
    step: jax.Array  # int32: iterations done
    hparams: dict
    config: PPOConfig = struct.field(pytree_node=False)


def init(key: jax.Array, config: PPOConfig, hparams: dict | None = None) -> PPOState:
    b = build(config)
    hp = C.hparams(config, hparams)
    k_net, k_env, k_run = jax.random.split(key, 3)
    obs, env_state = b.venv.reset(k_env)
    params = b.net.init(k_net, jnp.asarray(obs, jnp.float32))["params"]
    opt_state = policies.init_opt_state(b.tx, params, hp)
    return PPOState(params=params, opt_state=opt_state, env_state=env_state, obs=obs,
                    stats=EpisodeStats.create(config.num_envs), obs_rms=RunningStats.create(b.obs_shape),
                    ret_rms=RunningStats.create(), disc_ret=jnp.zeros((config.num_envs,), jnp.float32),
                    key=k_run, step=jnp.zeros((), jnp.int32), hparams=hp, config=config)


def normalize(state: PPOState, obs: jax.Array) -> jax.Array:
    """The network's input: float32 obs, standardised by the running statistics if enabled."""
    x = jnp.asarray(obs, jnp.float32)
    if not state.config.normalize_obs:
        return x
    return jnp.clip((x - state.obs_rms.mean) / jnp.sqrt(state.obs_rms.var + 1e-8), -10.0, 10.0)


def policy_and_value(state: PPOState, obs: jax.Array, params=None):
    """``(PolicyOut, value [B])`` at raw ``obs [B, ...]`` (normalised as in training)."""
    return build(state.config).net.apply({"params": state.params if params is None else params}, normalize(state, obs))


def env_action(state: PPOState, action: jax.Array) -> jax.Array:
    """The action sent to the environment (a Gaussian sample clipped to the action space)."""
    b = build(state.config)
    if b.discrete:
        return action
    return jnp.clip(action, jnp.asarray(b.low), jnp.asarray(b.high)).reshape(action.shape[:1] + b.action_shape)


def clipped_surrogate(ratio: jax.Array, adv: jax.Array, clip_eps) -> jax.Array:
    """Per-sample clipped surrogate objective (to maximise): ``min(rho A, clip(rho, 1-eps, 1+eps) A)``."""
    return jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)


def value_loss(value: jax.Array, old_value: jax.Array, target: jax.Array, vf_clip, clip: bool) -> jax.Array:
    """``0.5 * mean((V - target)^2)``; clipped: ``0.5 * mean(max((V - t)^2, (V_old + clip(V - V_old) - t)^2))``."""
    err = (value - target) ** 2
    if clip:
        v_clipped = old_value + jnp.clip(value - old_value, -vf_clip, vf_clip)
        err = jnp.maximum(err, (v_clipped - target) ** 2)
    return 0.5 * jnp.mean(err)


def loss_fn(params, batch: dict, state: PPOState):
    """PPO loss on a minibatch (obs normalised already, action, logp, value, adv, target)."""
    cfg, hp = state.config, state.hparams
    b = build(cfg)
    out, value = b.net.apply({"params": params}, batch["obs"])
    logp = policies.log_prob(out, batch["action"], b.discrete)
    log_ratio = logp - batch["logp"]
    ratio = jnp.exp(log_ratio)
    adv = batch["adv"]
    if cfg.normalize_advantages:
        adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
    pg_loss = -jnp.mean(clipped_surrogate(ratio, adv, hp["clip_eps"]))
    v_loss = value_loss(value, batch["value"], batch["target"], hp["vf_clip"], cfg.clip_value)
    ent = jnp.mean(policies.entropy(out, b.discrete))
    loss = pg_loss + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent
    metrics = {"loss": loss, "pg_loss": pg_loss, "v_loss": v_loss, "entropy": ent,
               "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
               "clipfrac": jnp.mean((jnp.abs(ratio - 1.0) > hp["clip_eps"]).astype(jnp.float32))}
    return loss, metrics


def collect(state: PPOState, key: jax.Array) -> tuple[PPOState, dict]:
    """Roll the policy ``num_steps`` vector steps; return the updated state (env, obs,
    episode stats) and the rollout ``[T, N, ...]``: obs (normalised), action, logp, value,
    reward, terminated, truncated, final_obs (raw). The policy noise ``[T, N(, D)]`` and the
    ``T`` env keys are drawn before the loop, one call each; the episode statistics are
    recorded after it, from the stacked rewards and episode ends (fewer ops per step)."""
    cfg = state.config
    b = build(cfg)
    k_act, k_env = jax.random.split(key)
    noise = policies.draw_noise(k_act, (cfg.num_steps, cfg.num_envs), b.action_dim, b.discrete)

    def step(carry, xs):
        env_state, obs = carry
        eps, k_env = xs
        x = normalize(state, obs)
        out, value = b.net.apply({"params": state.params}, x)
        action, logp = policies.sample_from_noise(eps, out, b.discrete)
        env_state, so = b.venv.step(k_env, env_state, env_action(state, action))
        tr = {"obs": x, "action": action, "logp": logp, "value": value, "reward": so.reward,
              "terminated": so.terminated, "truncated": so.truncated, "final_obs": so.final_obs}
        return (env_state, so.obs), tr

    (env_state, obs), traj = jax.lax.scan(step, (state.env_state, state.obs), (noise, envs.rbg_keys(k_env, cfg.num_steps)),
                                          unroll=cfg.unroll)
    done = jnp.logical_or(traj["terminated"], traj["truncated"])
    stats, _ = jax.lax.scan(lambda st, rd: (st.record(*rd), None), state.stats, (traj["reward"], done))
    return state.replace(env_state=env_state, obs=obs, stats=stats), traj


def _scale_rewards(state: PPOState, traj: dict) -> tuple[PPOState, jax.Array]:
    """Rewards divided by the running std of the discounted return (updated with this rollout)."""
    gamma = state.hparams["gamma"]
    done = jnp.logical_or(traj["terminated"], traj["truncated"]).astype(jnp.float32)

    def body(g, xs):
        r, d = xs
        g = gamma * g + r
        return g * (1.0 - d), g

    disc, gs = jax.lax.scan(body, state.disc_ret, (traj["reward"], done))
    ret_rms = state.ret_rms.update(gs.reshape(-1))
    return state.replace(ret_rms=ret_rms, disc_ret=disc), traj["reward"] / jnp.sqrt(ret_rms.var + 1e-8)


def learn(state: PPOState, batch: dict, key: jax.Array) -> tuple[Any, Any, dict]:
    """``update_epochs`` x ``num_minibatches`` Adam steps on shuffled minibatches of ``batch``
    (leaves ``[batch_size, ...]``); returns ``(params, opt_state, mean metrics)``."""
    cfg = state.config
    tx = build(cfg).tx
    n, m = cfg.batch_size, cfg.num_minibatches
    grad_fn = jax.grad(loss_fn, has_aux=True)

    def minibatch(carry, mb):
        params, opt_state = carry
        grads, metrics = grad_fn(params, mb, state)
        upd, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, upd), opt_state), metrics

    def epoch(carry, k):
        perm = jax.random.permutation(k, n)
        mbs = jax.tree_util.tree_map(lambda x: jnp.take(x, perm, axis=0).reshape((m, n // m) + x.shape[1:]), batch)
        return jax.lax.scan(minibatch, carry, mbs)

    (params, opt_state), metrics = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                jax.random.split(key, cfg.update_epochs))
    return params, opt_state, jax.tree_util.tree_map(jnp.mean, metrics)


def update(state: PPOState, data=None) -> tuple[PPOState, dict]:
    """One iteration: rollout, GAE, epochs of minibatch updates (see the module docstring)."""
    cfg, hp = state.config, state.hparams
    b = build(cfg)
    k_roll, k_learn = jax.random.split(jax.random.fold_in(state.key, state.step))
    state, traj = collect(state, k_roll)
    t, n = cfg.num_steps, cfg.num_envs
    # value of the observation each step led to (bootstrap through truncation / at the rollout's end)
    final = normalize(state, traj["final_obs"].reshape((t * n,) + traj["final_obs"].shape[2:]))
    next_value = b.net.apply({"params": state.params}, final, method="value").reshape(t, n)
    reward = traj["reward"]
    if cfg.scale_rewards:
        state, reward = _scale_rewards(state, traj)
    adv, target = gae(reward, traj["value"], next_value, traj["terminated"], traj["truncated"], hp["gamma"],
                      hp["gae_lambda"])
    flat = lambda x: x.reshape((t * n,) + x.shape[2:])
    batch = {"obs": flat(traj["obs"]), "action": flat(traj["action"]), "logp": flat(traj["logp"]),
             "value": flat(traj["value"]), "adv": flat(adv), "target": flat(target)}

    if cfg.anneal_lr:  # a new hyperparams dict: never mutate the caller's state
        frac = 1.0 - state.step.astype(jnp.float32) / cfg.num_iterations
        hyper = {**state.opt_state.hyperparams, "learning_rate": hp["learning_rate"] * frac}
        state = state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))
    params, opt_state, lm = learn(state, batch, k_learn)
    if cfg.normalize_obs:  # statistics for the next iteration, from this rollout's raw observations
        raw = traj["final_obs"]
        state = state.replace(obs_rms=state.obs_rms.update(raw.reshape((t * n,) + raw.shape[2:]).astype(jnp.float32)))
    stats, metrics = state.stats.report()
    state = state.replace(params=params, opt_state=opt_state, stats=stats, step=state.step + 1)
    metrics.update(lm)
    metrics["learning_rate"] = opt_state.hyperparams["learning_rate"]
    return state, metrics


def make_trainer(config: PPOConfig) -> Trainer:
    """The whole run: ``config.num_iterations`` iterations of :func:`update`."""
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update,
                   num_steps=config.num_iterations, config=config)


def make_train(config: PPOConfig):
    """``train(key, hparams=None) -> (PPOState, metrics[num_iterations])`` as one scan."""
    return _make_train(make_trainer(config))


def act(state: PPOState, key: jax.Array, obs: jax.Array, greedy=False) -> jax.Array:
    """Environment actions ``[B, ...]`` at raw ``obs [B, ...]``: sampled, or the greedy
    action / mean where ``greedy`` (may be traced)."""
    b = build(state.config)
    out, _ = policy_and_value(state, obs)
    a = jnp.where(jnp.asarray(greedy) > 0.5, policies.mode(out, b.discrete), policies.sample(key, out, b.discrete))
    return env_action(state, a)


def evaluate(state: PPOState, key: jax.Array, num_episodes: int = 10) -> tuple[jax.Array, jax.Array]:
    """``(returns [E], lengths [E])`` of complete episodes in parallel; sampled actions unless
    ``hparams["eval_greedy"]``. Pure; vmap it over a sweep's runs."""
    b = build(state.config)
    policy = lambda k, obs: act(state, k, obs, state.hparams["eval_greedy"])
    return envs.rollout_returns(b.env, b.env_params, policy, key, num_episodes)
