"""DDPG (Lillicrap et al. 2016) and TD3 (Fujimoto et al. 2018) as options of one module, over N
vectorised gymnax environments with a continuous action box.

One iteration (:func:`update`) = one step of the ``num_envs`` environments (actions: the actor's
plus Gaussian noise of std ``expl_noise * (high - low) / 2``, clipped to the box; uniform in the
box before ``learning_starts`` env steps), the N transitions into the device-resident replay
buffer (:mod:`jaxgen.rl.buffers`), then ``updates_per_step`` gradient steps on uniformly drawn
minibatches:

* critic(s): regression of ``Q_c(s, a)`` on the target
  :func:`jaxgen.losses.value.clipped_double_q_target` ``r + gamma (1 - terminated) min_c
  Q'_c(s', a')``, ``a' = clip(mu'(s') + clip(eps, -noise_clip, noise_clip), low, high)``,
  ``eps ~ N(0, (target_noise * (high - low) / 2)^2)``; loss ``sum_c mean((Q_c - y)^2)``
  (:func:`critic_loss`). ``twin=False`` is DDPG's one critic, ``twin=True`` TD3's two.
* actor, every ``policy_delay``-th gradient step: ``-mean Q_1(s, mu(s))`` (:func:`actor_loss`,
  the deterministic policy gradient), then the targets of actor and critics move by Polyak
  averaging :func:`jaxgen.core.optim.polyak` with ``tau``.
* DDPG = ``twin=False, policy_delay=1, target_noise=0``; TD3 = ``twin=True, policy_delay=2,
  target_noise=0.2`` (:data:`PRESETS` ``td3``; the registry's ``td3`` entry fixes ``twin``).

Networks (:class:`Actor`, :class:`Critic`): ReLU MLPs; the actor's output ``tanh`` is mapped
affinely onto the box, :func:`squash` (for MPE's ``[0, 1]`` box that is ``(tanh(x) + 1) / 2``).
The critics' parameters are stacked on a leading ``[C]`` axis and applied with ``jax.vmap`` (one
compiled forward for both twins); MADDPG (:mod:`jaxgen.rl.maddpg`) reuses these networks, the
target, the losses and the noise functions over its agent axis.

``s'`` is the observation the action led to (gymnax's final observation); a truncation (time
limit: Pendulum's 200 steps) bootstraps, only ``terminated`` stops it.

Contract (DESIGN.md): ``init(key, config, hparams=None) -> DDPGState``, ``update(state,
data=None)``, ``make_trainer``, ``make_train(config) -> train(key, hparams=None)``,
``evaluate``, ``act``. Traced: learning rates, gamma, tau, the noises, learning_starts,
max_grad_norm, eval_noise. Per-iteration randomness is ``fold_in(state.key, state.step)``.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxgen.core import config as C
from jaxgen.core import optim
from jaxgen.core.errors import ConfigError
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.losses.value import clipped_double_q_target
from jaxgen.nets.mlp import MLP
from jaxgen.rl import buffers, envs
from jaxgen.rl.envs import EpisodeStats


@dataclasses.dataclass(frozen=True)
class DDPGConfig:
    """DDPG / TD3 config. Defaults: DDPG on Pendulum-v1 (Fujimoto et al.'s "our DDPG": 256x256
    ReLU, Adam 1e-3, batch 256, tau 0.005, exploration noise 0.1), 20k env steps."""

    env: str = C.static("Pendulum-v1", "a gymnax environment with a continuous action box (Pendulum-v1, MountainCarContinuous-v0)",
                        accepts=C.Accepts("text", words="the name of a continuous-action gymnax environment, e.g. Pendulum-v1"))
    num_envs: int = C.static(1, "environments stepped in parallel", accepts=C.whole(1))
    total_steps: int = C.static(20_000, "environment steps in the run (iterations = total_steps // num_envs)", accepts=C.whole(1))
    buffer_size: int = C.static(100_000, "replay buffer capacity (transitions)", accepts=C.whole(1))
    batch_size: int = C.static(256, "minibatch size of each gradient step", accepts=C.whole(1))
    updates_per_step: int = C.static(1, "gradient steps per vector step", accepts=C.whole(1))
    hidden: tuple = C.static((256, 256), "hidden ReLU layer sizes of the actor and the critic(s)", accepts=C.sizes(1, whole=True))
    twin: bool = C.static(False, "TD3's twin critics and clipped double-Q target (False: DDPG's one critic)")
    policy_delay: int = C.static(1, "gradient steps per actor and target update (TD3: 2)", accepts=C.whole(1))
    actor_lr: float = C.traced(1e-3, "Adam learning rate of the actor", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    critic_lr: float = C.traced(1e-3, "Adam learning rate of the critic(s)", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    max_grad_norm: float = C.traced(float("inf"), "global gradient-norm clip of each network (inf: none)",
                                    accepts=C.number(0, lo_open=True, words="a number > 0 (inf: no clipping)"))
    gamma: float = C.traced(0.99, "discount", accepts=C.number(0, 1))
    tau: float = C.traced(0.005, "Polyak weight of the target update", accepts=C.number(0, 1, lo_open=True))
    expl_noise: float = C.traced(0.1, "exploration noise std, in half-widths of the action box", accepts=C.number(0))
    target_noise: float = C.traced(0.0, "target-policy smoothing noise std, in half-widths (TD3: 0.2)", accepts=C.number(0))
    noise_clip: float = C.traced(0.5, "clip of the smoothing noise, in half-widths", accepts=C.number(0))
    learning_starts: float = C.traced(1_000, "env steps of uniform random actions before the first gradient step", accepts=C.number(0))
    eval_noise: float = C.traced(0.0, "exploration noise of the evaluation episodes (0: the deterministic policy)",
                                 accepts=C.number(0))

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.num_envs


#: Pendulum-v1 as measured (benchmarks/bench_ddpg.py: 8 seeds >= -200): 15k env steps, 64x64, batch 128.
PENDULUM = DDPGConfig(total_steps=15_000, hidden=(64, 64), batch_size=128)
TD3 = dataclasses.replace(PENDULUM, twin=True, policy_delay=2, target_noise=0.2)
# Named base configs (jaxgen train ddpg|td3 --preset NAME); options on the command line override them.
PRESETS = {"pendulum": PENDULUM, "td3": TD3, "fujimoto": DDPGConfig(),
           "mountaincar": dataclasses.replace(TD3, env="MountainCarContinuous-v0", total_steps=50_000, expl_noise=0.5,
                                              learning_starts=10_000)}


# --- pieces shared with MADDPG --------------------------------------------------------------------

def squash(x: jax.Array, low, high) -> jax.Array:
    """``low + (tanh(x) + 1) (high - low) / 2``: pre-activations ``[..., D]`` onto the box."""
    return low + 0.5 * (jnp.tanh(x) + 1.0) * (high - low)


class Actor(nn.Module):
    """Deterministic policy ``obs [B, O] -> action [B, D]`` in ``[low, high]`` (:func:`squash`)."""

    action_dim: int
    hidden: tuple
    low: Any = -1.0
    high: Any = 1.0

    @nn.compact
    def __call__(self, obs):
        x = nn.relu(MLP(tuple(self.hidden))(obs.astype(jnp.float32)))
        return squash(nn.Dense(self.action_dim)(x), jnp.asarray(self.low), jnp.asarray(self.high))


class Critic(nn.Module):
    """``Q(x, a)``: ``x [B, O]``, ``a [B, D] -> [B]`` (an MLP on their concatenation)."""

    hidden: tuple

    @nn.compact
    def __call__(self, x, a):
        h = nn.relu(MLP(tuple(self.hidden))(jnp.concatenate([x.astype(jnp.float32), a], axis=-1)))
        return nn.Dense(1)(h)[..., 0]


def explore(key: jax.Array, action: jax.Array, std, low, high) -> jax.Array:
    """``clip(action + N(0, std^2), low, high)``; ``action [..., D]``, ``std`` in action units."""
    return jnp.clip(action + std * jax.random.normal(key, action.shape, action.dtype), low, high)


def smooth(key: jax.Array, action: jax.Array, std, clip, low, high) -> jax.Array:
    """TD3's target-policy smoothing: ``clip(action + clip(N(0, std^2), -clip, clip), low, high)``."""
    eps = jnp.clip(std * jax.random.normal(key, action.shape, action.dtype), -clip, clip)
    return jnp.clip(action + eps, low, high)


def critic_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """``sum_c mean_b (q[c, b] - target[b])^2`` for ``q [C, B]``, ``target [B]`` (gradient stopped)."""
    return jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)[None]) ** 2, axis=-1))


def actor_loss(q: jax.Array) -> jax.Array:
    """The deterministic policy gradient's loss ``-mean(Q(s, mu(s)))`` for ``q [B]``."""
    return -jnp.mean(q)


def stacked_init(init_fn, key: jax.Array, n: int):
    """Parameters of ``n`` networks stacked on a leading ``[n]`` axis: ``init_fn(key_i)`` each."""
    return jax.vmap(init_fn)(jax.random.split(key, n))


def copy(tree):
    """Distinct buffers (the runner donates the state; a target must not alias its network)."""
    return jax.tree_util.tree_map(lambda x: x + 0, tree)


# --- the agent ---------------------------------------------------------------------------------------

class Built(NamedTuple):
    spec: envs.EnvSpec
    actor: Actor
    critic: Critic
    low: np.ndarray  # [D]
    high: np.ndarray


@functools.lru_cache(maxsize=None)
def build(config: DDPGConfig) -> Built:
    """The environment's spec and the networks of a config (cached: same objects, same treedef)."""
    spec = envs.spec(config.env)
    if spec.discrete:
        raise ConfigError(f"env={config.env!r} has a discrete action space; DDPG and TD3 need a continuous box, "
                          "e.g. Pendulum-v1 or MountainCarContinuous-v0.")
    low, high = tuple(spec.low.reshape(-1).tolist()), tuple(spec.high.reshape(-1).tolist())
    return Built(spec, Actor(spec.action_dim, tuple(config.hidden), low, high), Critic(tuple(config.hidden)),
                 np.asarray(low, np.float32), np.asarray(high, np.float32))  # numpy: safe to cache inside a trace


def optimizer() -> optax.GradientTransformation:
    """Global-norm clipping (injected ``max_grad_norm``), then Adam with the injected learning rate."""
    return optim.optimizer("adam", max_grad_norm=float("inf"), learning_rate=1e-3)


def validate(config: DDPGConfig) -> DDPGConfig:
    """ConfigError (one sentence) for an out-of-range config; return it unchanged."""
    C.check_fields(config)
    C.require(config, "total_steps", config.total_steps >= config.num_envs, f"a whole number >= num_envs ({config.num_envs})")
    if config.buffer_size < max(config.batch_size, config.num_envs):
        need = max(config.batch_size, config.num_envs)
        raise ConfigError(f"buffer_size={config.buffer_size} is smaller than a batch (batch_size={config.batch_size}) or "
                          f"one vector step (num_envs={config.num_envs}); accepted: buffer_size >= {need}.")
    build(config)  # unknown env / discrete actions raise here
    return config


class DDPGState(struct.PyTreeNode):
    """Everything of a run: a checkpoint of it is a complete resume point."""

    actor: Any
    critic: Any  # leaves [C, ...] (C = 2 with twin critics)
    actor_target: Any
    critic_target: Any
    actor_opt: Any
    critic_opt: Any
    buffer: buffers.ReplayBuffer
    env_state: Any
    obs: jax.Array  # [N, O]
    stats: EpisodeStats
    key: jax.Array
    step: jax.Array  # int32: iterations done
    updates: jax.Array  # int32: gradient steps done
    hparams: dict
    config: DDPGConfig = struct.field(pytree_node=False)


def num_critics(config) -> int:
    return 2 if config.twin else 1


def init(key: jax.Array, config: DDPGConfig, hparams: dict | None = None) -> DDPGState:
    """Fresh networks (targets = distinct copies), empty buffer, reset envs."""
    b = build(config)
    hp = C.hparams(config, hparams)
    k_a, k_c, k_env, k_run = jax.random.split(key, 4)
    obs, env_state = b.spec.vec(config.num_envs).reset(k_env)
    obs = obs.reshape(config.num_envs, -1).astype(jnp.float32)
    a0 = jnp.zeros((config.num_envs, b.spec.action_dim), jnp.float32)
    actor = b.actor.init(k_a, obs)["params"]
    critic = stacked_init(lambda k: b.critic.init(k, obs, a0)["params"], k_c, num_critics(config))
    tx = optimizer()
    example = {"obs": obs[0], "action": a0[0], "reward": jnp.zeros((), jnp.float32), "next_obs": obs[0],
               "terminated": jnp.zeros((), jnp.bool_)}
    return DDPGState(
        actor=actor, critic=critic, actor_target=copy(actor), critic_target=copy(critic),
        actor_opt=optim.init_opt_state(tx, actor, {"learning_rate": hp["actor_lr"], "max_grad_norm": hp["max_grad_norm"]}),
        critic_opt=optim.init_opt_state(tx, critic, {"learning_rate": hp["critic_lr"], "max_grad_norm": hp["max_grad_norm"]}),
        buffer=buffers.init(example, config.buffer_size), env_state=env_state, obs=obs,
        stats=EpisodeStats.create(config.num_envs), key=k_run, step=jnp.zeros((), jnp.int32),
        updates=jnp.zeros((), jnp.int32), hparams=hp, config=config)


def q_values(critic: Critic, params, x: jax.Array, a: jax.Array) -> jax.Array:
    """``[C, B]``: each of the stacked critics ``params`` (leaves ``[C, ...]``) at ``(x [B, O], a [B, D])``."""
    return jax.vmap(lambda p: critic.apply({"params": p}, x, a))(params)


def td_target(state: DDPGState, key: jax.Array, batch: dict) -> jax.Array:
    """``y [B]`` of :func:`jaxgen.losses.value.clipped_double_q_target` with the smoothed target action."""
    b, hp = build(state.config), state.hparams
    half = 0.5 * (b.high - b.low)
    mu = b.actor.apply({"params": state.actor_target}, batch["next_obs"])
    a_next = smooth(key, mu, hp["target_noise"] * half, hp["noise_clip"] * half, b.low, b.high)
    q_next = q_values(b.critic, state.critic_target, batch["next_obs"], a_next)
    return clipped_double_q_target(batch["reward"], batch["terminated"], q_next, hp["gamma"])


def learn_step(state: DDPGState, batch_key: tuple) -> tuple[DDPGState, dict]:
    """One gradient step on ``batch`` (leaves ``[B, ...]``): the critic(s), then -- every
    ``policy_delay``-th step -- the actor and the Polyak targets."""
    batch, key = batch_key
    b, hp, cfg = build(state.config), state.hparams, state.config
    y = td_target(state, key, batch)

    def c_loss(p):
        q = q_values(b.critic, p, batch["obs"], batch["action"])
        return critic_loss(q, y), jnp.mean(q[0])

    (cl, q_mean), g = jax.value_and_grad(c_loss, has_aux=True)(state.critic)
    upd, critic_opt = optimizer().update(g, state.critic_opt, state.critic)
    critic = optax.apply_updates(state.critic, upd)
    state = state.replace(critic=critic, critic_opt=critic_opt, updates=state.updates + 1)

    def actor_step(s: DDPGState):
        def a_loss(p):
            a = b.actor.apply({"params": p}, batch["obs"])
            return actor_loss(q_values(b.critic, jax.tree_util.tree_map(lambda x: x[:1], s.critic), batch["obs"], a)[0])

        al, g = jax.value_and_grad(a_loss)(s.actor)
        upd, actor_opt = optimizer().update(g, s.actor_opt, s.actor)
        actor = optax.apply_updates(s.actor, upd)
        return s.replace(actor=actor, actor_opt=actor_opt, actor_target=optim.polyak(s.actor_target, actor, hp["tau"]),
                         critic_target=optim.polyak(s.critic_target, s.critic, hp["tau"])), al

    if cfg.policy_delay == 1:
        state, al = actor_step(state)
    else:
        state, al = jax.lax.cond(state.updates % cfg.policy_delay == 0, actor_step,
                                 lambda s: (s, jnp.zeros((), jnp.float32)), state)
    return state, {"critic_loss": cl, "actor_loss": al, "q_mean": q_mean}


def learn(state: DDPGState, batches: dict, keys: jax.Array) -> tuple[DDPGState, dict]:
    """``updates_per_step`` :func:`learn_step` s (batches ``[U, B, ...]``, keys ``[U, 2]``); metrics of the last."""
    buf = state.buffer
    state, m = jax.lax.scan(learn_step, state.replace(buffer=None), (batches, keys))
    return state.replace(buffer=buf), jax.tree_util.tree_map(lambda x: x[-1], m)


def act(state: DDPGState, key: jax.Array, obs: jax.Array, greedy=True) -> jax.Array:
    """Environment actions ``[B, *action_shape]`` at ``obs [B, ...]``: the actor's, plus the
    evaluation noise ``eval_noise`` unless ``greedy``."""
    b = build(state.config)
    mu = b.actor.apply({"params": state.actor}, obs.reshape(obs.shape[0], -1))
    std = jnp.where(jnp.asarray(greedy) > 0.5, 0.0, state.hparams["eval_noise"]) * 0.5 * (b.high - b.low)
    return envs.env_action(b.spec, explore(key, mu, std, b.low, b.high))


def update(state: DDPGState, data=None) -> tuple[DDPGState, dict]:
    """One iteration (module docstring): act, step, store, learn."""
    cfg, hp = state.config, state.hparams
    b = build(cfg)
    n = cfg.num_envs
    k_act, k_rand, k_env, k_sample, k_learn = jax.random.split(jax.random.fold_in(state.key, state.step), 5)
    t0 = state.step * n
    mu = b.actor.apply({"params": state.actor}, state.obs)
    noisy = explore(k_act, mu, hp["expl_noise"] * 0.5 * (b.high - b.low), b.low, b.high)
    rand = jax.random.uniform(k_rand, mu.shape, minval=b.low, maxval=b.high)
    action = jnp.where(t0 < hp["learning_starts"], rand, noisy)
    env_state, out = b.spec.vec(n).step(k_env, state.env_state, envs.env_action(b.spec, action))
    obs = out.obs.reshape(n, -1).astype(jnp.float32)
    buffer = buffers.add(state.buffer, {"obs": state.obs, "action": action, "reward": out.reward,
                                        "next_obs": out.final_obs.reshape(n, -1).astype(jnp.float32),
                                        "terminated": out.terminated})
    stats, metrics = state.stats.record(out.reward, out.done).report()
    state = state.replace(buffer=buffer, env_state=env_state, obs=obs, stats=stats)

    u = cfg.updates_per_step
    draw = lambda i: buffers.sample(buffer, jax.random.fold_in(k_sample, i), cfg.batch_size)
    batches = jax.vmap(draw)(jnp.arange(u))
    keys = jax.random.split(k_learn, u)
    zero = {"critic_loss": jnp.zeros((), jnp.float32), "actor_loss": jnp.zeros((), jnp.float32),
            "q_mean": jnp.zeros((), jnp.float32)}
    ready = t0 + n >= jnp.maximum(hp["learning_starts"], cfg.batch_size)
    learner = state.replace(buffer=None)
    learner, lm = jax.lax.cond(ready, lambda s: learn(s, batches, keys), lambda s: (s, zero), learner)
    state = learner.replace(buffer=buffer, step=state.step + 1)
    metrics.update(lm)
    return state, metrics


def make_trainer(config: DDPGConfig) -> Trainer:
    """The whole run: ``config.num_iterations`` iterations of :func:`update`."""
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update, num_steps=config.num_iterations,
                   config=config)


def make_train(config: DDPGConfig):
    """``train(key, hparams=None) -> (DDPGState, metrics[num_iterations])`` as one scan."""
    return _make_train(make_trainer(config))


def evaluate(state: DDPGState, key: jax.Array, num_episodes: int = 10) -> tuple[jax.Array, jax.Array]:
    """``(returns [E], lengths [E])`` of complete episodes in parallel, at ``eval_noise``. Pure."""
    spec = build(state.config).spec
    return envs.rollout_returns(spec.env, spec.params, lambda k, obs: act(state, k, obs, False), key, num_episodes)
