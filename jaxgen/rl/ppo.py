"""Proximal policy optimisation with the clipped surrogate (Schulman et al. 2017) over N
vectorised gymnax environments.

One iteration (:func:`update`) is three public pure functions, so that a caller can put its
own reward between them (GAIL: a discriminator's):

1. :func:`collect`: a rollout of ``rollout_len`` vector steps of the ``num_envs``
   environments (one actor-critic forward per step): ``traj`` with leaves ``[T, N, ...]``;
2. :func:`advantages`: GAE(lambda) of a reward ``[T, N]`` -- the environment's, or the
   caller's (:mod:`jaxgen.rl.returns`: truncation bootstraps from ``V(final_obs)``,
   termination does not);
3. :func:`learn`: ``update_epochs`` passes over the ``num_envs * rollout_len`` transitions in
   ``num_minibatches`` shuffled minibatches of Adam steps on

    loss = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] + vf_coef * L_V - ent_coef * H[pi]

with ``rho = pi(a|s) / pi_old(a|s)``, advantages normalised per minibatch, ``L_V`` the
half squared error to the lambda-return (optionally clipped around the old value, as in
the reference implementations), global-norm gradient clipping and a learning rate
annealed linearly to 0 over the run. The loss terms are :mod:`jaxgen.losses`'
(:func:`~jaxgen.losses.policy_gradient.clipped_surrogate_loss`,
:func:`~jaxgen.losses.value.clipped_value_loss`, :func:`~jaxgen.losses.masked.masked_standardize`).
``update(state, reward_fn=f)`` runs the same iteration on the reward ``f(traj) [T, N]``.

Options for continuous control: ``normalize_obs`` (running mean/variance of the
observations, updated once per iteration from the rollout; acting and learning within an
iteration use the same statistics) and ``scale_rewards`` (rewards divided by the running
standard deviation of the discounted return, as gym's ``NormalizeReward``). Actions of a
Gaussian policy are clipped to the action space when sent to the environment
(:func:`jaxgen.rl.envs.env_action`); the unclipped sample is what the log-probability is
taken of. The network is :func:`jaxgen.rl.policies.actor_critic` of the nested ``policy``
config (:class:`~jaxgen.rl.policies.PolicyNetConfig`: ``--policy.hidden`` etc.).

Names (the same word for the same thing in every RL config): ``num_envs`` environments
stepped together, ``rollout_len`` vector steps per rollout (as REINFORCE's), ``total_steps``
environment steps in the run (as DQN's), ``num_iterations`` the derived number of
:func:`update` calls. A config.json written before the renames still loads (``MOVED``:
``num_steps`` -> ``rollout_len``, ``network``/``hidden``/``activation``/``log_std``/
``log_std_init`` -> ``policy.*``), and its checkpoint restores (the state's structure is
unchanged).

Contract (DESIGN.md): ``init(key, config, hparams=None) -> PPOState``, ``update(state,
data=None, reward_fn=None)``, ``make_trainer(config)``, ``make_train(config) -> train(key,
hparams=None)`` (``jax.jit(jax.vmap(make_train(cfg)))(keys)`` trains many seeds in one compile).
Traced (sweepable): learning_rate, gamma, gae_lambda, clip_eps, vf_clip, ent_coef,
vf_coef, max_grad_norm (``inf``: no clipping), eval_greedy. Static: shapes and loop lengths.
Per-iteration randomness is ``fold_in(state.key, state.step)``; the rollout draws its policy
noise for all ``T x N`` steps in one call (a categorical action is the inverse CDF at one
uniform) and its ``T`` environment keys in one call, as keys of JAX's ``unsafe_rbg``
implementation (seeded from the threefry key): gymnax's per-step key split and reset draw
then lower to XLA's RngBitGenerator instead of a rolled threefry loop each, which on XLA:CPU
dominated the cost of stepping CartPole (measured: benchmarks/notes/policy_gradient.md). The
default config is the widely used CartPole one (4 envs x 128 steps, 5e5 steps, 4 epochs x 4
minibatches, lr 2.5e-4 annealed, gamma 0.99, lambda 0.95, clip 0.2, entropy 0.01, value 0.5,
grad-norm 0.5, tanh 64x64).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxgen.core import config as C
from jaxgen.core import optim
from jaxgen.core.errors import ConfigError
from jaxgen.core.stats import RunningStats
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.losses.masked import masked_standardize
from jaxgen.losses.policy_gradient import approx_kl, clip_fraction, clipped_surrogate_loss
from jaxgen.losses.value import clipped_value_loss, value_loss
from jaxgen.rl import envs, policies
from jaxgen.rl.envs import EpisodeStats
from jaxgen.rl.policies import PolicyNetConfig
from jaxgen.rl.returns import gae


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO config; defaults = the widely used CartPole-v1 configuration."""

    RETIRED = {"fused_net": False}  # removed options (see config.from_dict): old run dirs still load
    MOVED = {"num_steps": "rollout_len", "network": "policy.network", "hidden": "policy.hidden",
             "activation": "policy.activation", "log_std": "policy.log_std", "log_std_init": "policy.log_std_init"}

    env: str = C.static("CartPole-v1", "any gymnax environment, discrete (CartPole-v1, Acrobot-v1, *-MinAtar) or continuous (Pendulum-v1, MountainCarContinuous-v0)",
                        accepts=C.Accepts("text", words="the name of a gymnax or jaxgen environment, e.g. CartPole-v1"))
    num_envs: int = C.static(4, "environments stepped in parallel", accepts=C.whole(1))
    rollout_len: int = C.static(128, "vector steps per rollout (batch = num_envs * rollout_len transitions)", accepts=C.whole(1))
    total_steps: int = C.static(500_000, "environment steps in the run (iterations = total_steps // batch)", accepts=C.whole(1))
    update_epochs: int = C.static(4, "passes over each rollout", accepts=C.whole(1))
    num_minibatches: int = C.static(4, "minibatches per pass (must divide the batch)", accepts=C.whole(1))
    policy: PolicyNetConfig = C.nested(PolicyNetConfig(), "the actor-critic network (policy.network, policy.hidden, ...)")
    anneal_lr: bool = C.static(True, "anneal the learning rate linearly to 0 over the run")
    clip_value: bool = C.static(True, "clip the value loss around the old value (by vf_clip)")
    normalize_advantages: bool = C.static(True, "normalise advantages per minibatch")
    normalize_obs: bool = C.static(False, "running observation normalisation (continuous control)")
    scale_rewards: bool = C.static(False, "divide rewards by the running std of the discounted return")
    unroll: int = C.static(1, "lax.scan unroll of the rollout loop (1 is fastest on XLA:CPU; 2 and 4 measured slower)", accepts=C.whole(1))
    learning_rate: float = C.traced(2.5e-4, "Adam learning rate (initial value when annealed)", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    gamma: float = C.traced(0.99, "discount", accepts=C.number(0, 1))
    gae_lambda: float = C.traced(0.95, "GAE lambda", accepts=C.number(0, 1))
    clip_eps: float = C.traced(0.2, "surrogate clip epsilon", accepts=C.number(0, lo_open=True))
    vf_clip: float = C.traced(0.2, "value clip range (with clip_value)", accepts=C.number())
    ent_coef: float = C.traced(0.01, "entropy bonus weight", accepts=C.number())
    vf_coef: float = C.traced(0.5, "value loss weight", accepts=C.number())
    max_grad_norm: float = C.traced(0.5, "global gradient-norm clip (inf: none)", accepts=C.number(0, lo_open=True, words="a number > 0 (inf: no clipping)"))
    eval_greedy: float = C.traced(0.0, "1: evaluate with the greedy action / the mean; 0: sample",
                                  accepts=C.number(words="a number: above 0.5 evaluates greedily (1), else by sampling (0)"))

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.rollout_len

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.batch_size


# Continuous-control preset (Pendulum-v1): the usual PPO settings for it (cf. the RL Zoo).
PENDULUM = PPOConfig(env="Pendulum-v1", num_envs=16, rollout_len=64, total_steps=1_000_000, update_epochs=10,
                     num_minibatches=8, learning_rate=3e-4, gamma=0.95, gae_lambda=0.95, ent_coef=0.0,
                     normalize_obs=True, scale_rewards=True, clip_value=False, max_grad_norm=0.5)

# MinAtar preset (Breakout-MinAtar and the other MinAtar games): 64 envs x 128 steps, 1e7 steps,
# 4 epochs x 8 minibatches, gamma 0.999, constant lr 5e-4, ReLU MLP 256x256 on the flattened
# frame (the settings of gymnax's own PPO baselines). gamma 0.99 with an annealed lr and the conv
# torso stalled at return 6.5 on Breakout for 6e6 steps (measured).
MINATAR = PPOConfig(env="Breakout-MinAtar", num_envs=64, rollout_len=128, total_steps=10_000_000, update_epochs=4,
                    num_minibatches=8, policy=PolicyNetConfig(network="mlp", hidden=(256, 256), activation="relu"),
                    learning_rate=5e-4, anneal_lr=False, gamma=0.999)

# Reacher-misc (gymnax's 2-joint reacher: torques in [-1, 1]^2 accelerate the two link angles,
# reward exp(-|tip - goal|^2) per step, 100 steps, no termination): the Pendulum settings with
# gamma 0.99 (a reach takes tens of steps at these accelerations) and 2e6 steps. Measured, 2 seeds:
# greedy return 54.8 / 55.2 (gamma 0.95: 28.7 / 53.6); a uniform random policy: 17.4.
REACHER = dataclasses.replace(PENDULUM, env="Reacher-misc", gamma=0.99, total_steps=2_000_000)

PRESETS = {"cartpole": PPOConfig(), "pendulum": PENDULUM, "reacher": REACHER, "minatar": MINATAR}


@functools.lru_cache(maxsize=None)
def build(config: PPOConfig) -> policies.Built:
    """The environment's spec, the network and the optimiser (Adam, eps 1e-5, after global-norm
    clipping) of a config (cached: same objects, same treedef). The optimiser's numbers are
    the config's; :func:`init` sets the run's own."""
    tx = optim.optimizer("adam", max_grad_norm=config.max_grad_norm, static={"eps": 1e-5},
                         learning_rate=config.learning_rate)
    return policies.build(config.env, config.policy, tx)


def validate(config: PPOConfig) -> PPOConfig:
    """ConfigError (one sentence) for an out-of-range config; return it unchanged. Each
    field's own range is declared on it (:func:`jaxgen.core.config.check_fields`, nested
    ``policy.*`` included); the checks here relate fields."""
    C.check_fields(config)
    if config.batch_size % config.num_minibatches:
        raise ConfigError(f"num_minibatches={config.num_minibatches} does not divide the batch of "
                          f"num_envs x rollout_len = {config.batch_size} transitions; accepted: a divisor of {config.batch_size}.")
    C.require(config, "total_steps", config.total_steps >= config.batch_size,
              f"a whole number >= num_envs x rollout_len ({config.batch_size})")
    build(config)  # unknown env raises here
    return config


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
    obs, env_state = b.spec.vec(config.num_envs).reset(k_env)
    params = b.net.init(k_net, jnp.asarray(obs, jnp.float32))["params"]
    return PPOState(params=params, opt_state=optim.init_opt_state(b.tx, params, hp), env_state=env_state, obs=obs,
                    stats=EpisodeStats.create(config.num_envs), obs_rms=RunningStats.create(b.spec.obs_shape),
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


def loss_fn(params, batch: dict, state: PPOState):
    """PPO loss on a minibatch: leaves ``[B, ...]`` obs (normalised already), action, logp,
    value (the rollout's), adv, target. Returns ``(loss, metrics)``."""
    cfg, hp = state.config, state.hparams
    b = build(cfg)
    out, value = b.net.apply({"params": params}, batch["obs"])
    log_ratio = policies.log_prob(out, batch["action"], b.spec.discrete) - batch["logp"]
    ratio = jnp.exp(log_ratio)
    adv = masked_standardize(batch["adv"]) if cfg.normalize_advantages else batch["adv"]
    pg_loss = clipped_surrogate_loss(ratio, adv, hp["clip_eps"])
    if cfg.clip_value:
        v_loss = clipped_value_loss(value, batch["value"], batch["target"], hp["vf_clip"])
    else:
        v_loss = value_loss(value, batch["target"])
    ent = jnp.mean(policies.entropy(out, b.spec.discrete))
    loss = pg_loss + hp["vf_coef"] * v_loss - hp["ent_coef"] * ent
    metrics = {"loss": loss, "pg_loss": pg_loss, "v_loss": v_loss, "entropy": ent,
               "approx_kl": approx_kl(log_ratio), "clipfrac": clip_fraction(ratio, hp["clip_eps"])}
    return loss, metrics


def collect(state: PPOState, key: jax.Array) -> tuple[PPOState, dict]:
    """Roll the policy ``rollout_len`` vector steps.

    Returns the state with the envs, the observation to act on and the episode statistics
    advanced, and the rollout ``traj``, leaves ``[T, N, ...]`` (T = ``rollout_len``, N =
    ``num_envs``): ``obs`` (the network's input, normalised), ``action`` (``[T, N]`` int32 or
    the unclipped Gaussian sample ``[T, N, D]``), ``logp`` and ``value`` ``[T, N]``, ``reward``
    ``[T, N]``, ``terminated`` / ``truncated`` bool ``[T, N]``, ``final_obs`` (raw: the
    observation each action led to). The policy noise ``[T, N(, D)]`` and the ``T`` env keys
    are drawn before the loop, one call each; the episode statistics are recorded after it,
    from the stacked rewards and episode ends (fewer ops per step)."""
    cfg = state.config
    b = build(cfg)
    venv = b.spec.vec(cfg.num_envs)
    k_act, k_env = jax.random.split(key)
    noise = policies.draw_noise(k_act, (cfg.rollout_len, cfg.num_envs), b.spec.action_dim, b.spec.discrete)

    def step(carry, xs):
        env_state, obs = carry
        eps, k_env = xs
        x = normalize(state, obs)
        out, value = b.net.apply({"params": state.params}, x)
        action, logp = policies.sample_from_noise(eps, out, b.spec.discrete)
        env_state, so = venv.step(k_env, env_state, envs.env_action(b.spec, action))
        tr = {"obs": x, "action": action, "logp": logp, "value": value, "reward": so.reward,
              "terminated": so.terminated, "truncated": so.truncated, "final_obs": so.final_obs}
        return (env_state, so.obs), tr

    (env_state, obs), traj = jax.lax.scan(step, (state.env_state, state.obs),
                                          (noise, envs.rbg_keys(k_env, cfg.rollout_len)), unroll=cfg.unroll)
    done = jnp.logical_or(traj["terminated"], traj["truncated"])
    stats, _ = jax.lax.scan(lambda st, rd: (st.record(*rd), None), state.stats, (traj["reward"], done))
    return state.replace(env_state=env_state, obs=obs, stats=stats), traj


def _scale_rewards(state: PPOState, reward: jax.Array, done: jax.Array) -> tuple[PPOState, jax.Array]:
    """``reward [T, N]`` divided by the running std of the discounted return (updated with it)."""
    gamma = state.hparams["gamma"]

    def body(g, xs):
        r, d = xs
        g = gamma * g + r
        return g * (1.0 - d), g

    disc, gs = jax.lax.scan(body, state.disc_ret, (reward, done.astype(jnp.float32)))
    ret_rms = state.ret_rms.update(gs.reshape(-1))
    return state.replace(ret_rms=ret_rms, disc_ret=disc), reward / jnp.sqrt(ret_rms.var + 1e-8)


def advantages(state: PPOState, traj: dict, reward: jax.Array) -> tuple[PPOState, jax.Array, jax.Array]:
    """GAE(lambda) of ``reward [T, N]`` over the rollout ``traj`` of :func:`collect`.

    ``reward`` is the environment's (``traj["reward"]``) or any other of the same shape (GAIL's
    discriminator reward); with ``scale_rewards`` it is divided by the running std of its
    discounted return (the statistics, in the returned state, are updated with it). The
    critic's ``V(final_obs)`` is the bootstrap through truncations and at the rollout's end.
    Returns ``(state, adv [T, N], target [T, N])`` (``target = adv + value``, the
    lambda-return the critic regresses on)."""
    cfg, hp = state.config, state.hparams
    t, n = cfg.rollout_len, cfg.num_envs
    chex.assert_shape(reward, (t, n))
    # value of the observation each step led to (bootstrap through truncation / at the rollout's end)
    final = normalize(state, traj["final_obs"].reshape((t * n,) + traj["final_obs"].shape[2:]))
    next_value = build(cfg).net.apply({"params": state.params}, final, method="value").reshape(t, n)
    if cfg.scale_rewards:
        state, reward = _scale_rewards(state, reward, jnp.logical_or(traj["terminated"], traj["truncated"]))
    adv, target = gae(reward, traj["value"], next_value, traj["terminated"], traj["truncated"], hp["gamma"],
                      hp["gae_lambda"])
    return state, adv, target


def _epochs(state: PPOState, opt_state, batch: dict, key: jax.Array) -> tuple[Any, Any, dict]:
    """``update_epochs`` x ``num_minibatches`` Adam steps on shuffled minibatches of ``batch``
    (leaves ``[batch_size, ...]``); returns ``(params, opt_state, mean metrics)``."""
    cfg = state.config
    tx = build(cfg).tx
    n, m = cfg.batch_size, cfg.num_minibatches
    # the Adam steps run on one flat parameter vector (core.optim.flat_view: same maths, fewer ops)
    flat, flat_opt, unravel, restore = optim.flat_view(state.params, opt_state)
    grad_fn = jax.grad(lambda p, mb: loss_fn(unravel(p), mb, state), has_aux=True)

    def minibatch(carry, mb):
        params, opt_state = carry
        grads, metrics = grad_fn(params, mb)
        upd, opt_state = tx.update(grads, opt_state, params)
        return (params + upd, opt_state), metrics

    def epoch(carry, k):
        perm = jax.random.permutation(k, n)
        mbs = jax.tree_util.tree_map(lambda x: jnp.take(x, perm, axis=0).reshape((m, n // m) + x.shape[1:]), batch)
        return jax.lax.scan(minibatch, carry, mbs)

    (flat, flat_opt), metrics = jax.lax.scan(epoch, (flat, flat_opt), jax.random.split(key, cfg.update_epochs))
    params, opt_state = restore(flat, flat_opt)
    return params, opt_state, jax.tree_util.tree_map(jnp.mean, metrics)


def learn(state: PPOState, traj: dict, adv: jax.Array, target: jax.Array, key: jax.Array) -> tuple[PPOState, dict]:
    """The learning half of an iteration, and its end.

    Args:
      state: the state :func:`advantages` returned.
      traj: the rollout of :func:`collect` (its obs, action, logp, value ``[T, N, ...]`` are used).
      adv, target: ``[T, N]`` from :func:`advantages`.
      key: the shuffling key.
    Returns:
      ``(state, metrics)``: the learning rate annealed (``anneal_lr``), ``update_epochs`` x
      ``num_minibatches`` Adam steps on the ``T * N`` transitions, then the observation
      statistics updated from this rollout (``normalize_obs``, for the next iteration), the
      episode statistics reported and ``step + 1``; the metrics are the episode report, the
      mean losses and the learning rate used.
    """
    cfg, hp = state.config, state.hparams
    t, n = cfg.rollout_len, cfg.num_envs
    chex.assert_shape([adv, target], (t, n))
    flat = lambda x: x.reshape((t * n,) + x.shape[2:])
    batch = {"obs": flat(traj["obs"]), "action": flat(traj["action"]), "logp": flat(traj["logp"]),
             "value": flat(traj["value"]), "adv": flat(adv), "target": flat(target)}
    opt_state = state.opt_state
    if cfg.anneal_lr:  # a new optimiser state: never mutate the caller's
        frac = optim.linear_decay(state.step, 0, cfg.num_iterations)
        opt_state = optim.set_hyperparams(opt_state, {"learning_rate": hp["learning_rate"] * frac})
    params, opt_state, lm = _epochs(state, opt_state, batch, key)
    if cfg.normalize_obs:  # statistics for the next iteration, from this rollout's raw observations
        state = state.replace(obs_rms=state.obs_rms.update(flat(traj["final_obs"]).astype(jnp.float32)))
    stats, metrics = state.stats.report()
    state = state.replace(params=params, opt_state=opt_state, stats=stats, step=state.step + 1)
    metrics.update(lm)
    metrics["learning_rate"] = optim.hyperparam(opt_state, "learning_rate")
    return state, metrics


def update(state: PPOState, data=None, reward_fn: Callable[[dict], jax.Array] | None = None) -> tuple[PPOState, dict]:
    """One iteration: :func:`collect`, :func:`advantages`, :func:`learn` (see the module docstring).

    ``reward_fn(traj) -> reward [T, N]`` (traced with the rollout of :func:`collect`) replaces
    the environment's reward in the advantages (GAIL's discriminator reward); None: the
    environment's. The episode statistics always report the environment's returns."""
    k_roll, k_learn = jax.random.split(jax.random.fold_in(state.key, state.step))
    state, traj = collect(state, k_roll)
    reward = traj["reward"] if reward_fn is None else reward_fn(traj)
    state, adv, target = advantages(state, traj, reward)
    return learn(state, traj, adv, target, k_learn)


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
    spec = build(state.config).spec
    out, _ = policy_and_value(state, obs)
    a = jnp.where(jnp.asarray(greedy) > 0.5, policies.mode(out, spec.discrete), policies.sample(key, out, spec.discrete))
    return envs.env_action(spec, a)


def evaluate(state: PPOState, key: jax.Array, num_episodes: int = 10) -> tuple[jax.Array, jax.Array]:
    """``(returns [E], lengths [E])`` of complete episodes in parallel; sampled actions unless
    ``hparams["eval_greedy"]``. Pure; vmap it over a sweep's runs."""
    spec = build(state.config).spec
    policy = lambda k, obs: act(state, k, obs, state.hparams["eval_greedy"])
    return envs.rollout_returns(spec.env, spec.params, policy, key, num_episodes)
