"""MADDPG (Lowe et al. 2017): decentralised actors, centralised critics, on jaxmarl's particle
tasks (:mod:`jaxgen.rl.ma_envs`), with independent DDPG as one flag of the same module.

* agent ``i``'s actor ``mu_i(o_i)`` sees only its own observation (padded to the longest,
  :mod:`jaxgen.rl.ma_envs`); its action is ``mu_i(o_i) + N(0, sigma^2)`` clipped to the box,
  ``sigma = expl_noise * (high - low) / 2``. The actor's output is squashed into the ``[0, 1]``
  box by :func:`jaxgen.rl.ddpg.squash`: ``(tanh(x) + 1) / 2``.
* agent ``i``'s critic ``Q_i(x, a_1, ..., a_N)`` takes all agents' true observations
  concatenated in agent order (``x = [o_1, ..., o_N]``, :func:`jaxgen.rl.ma_envs.joint_obs`)
  and all actions in agent order (:func:`critic_input`); ``independent=True`` gives each
  critic only ``(o_i, a_i)``: independent DDPG, the paper's baseline.
* targets ``y_i = r_i + gamma (1 - terminated) Q'_i(x', mu'_1(o'_1), ..., mu'_N(o'_N))``
  (:func:`jaxgen.losses.value.clipped_double_q_target` with one critic); critic loss
  ``mean((Q_i - y_i)^2)`` (:func:`jaxgen.rl.ddpg.critic_loss`); actor loss
  ``-mean Q_i(x, a_1, .., mu_i(o_i), .., a_N)`` with the other agents' actions from the replay
  (:func:`jaxgen.rl.ddpg.actor_loss`), computed after the critic step (as openai/maddpg);
  per-agent target networks moved by Polyak averaging with ``tau`` after each step.
* one shared replay of joint transitions (``obs [A, O]``, ``action [A, D]``, ``reward [A]``,
  ``next_obs``, ``terminated``); each agent draws its own minibatch indices (as openai/maddpg).
* agents are batched: every network's parameters are stacked on a leading agent axis ``[A]``
  and the losses, gradients and Adam steps are ``jax.vmap`` ped over it (one compiled forward
  for all agents; per-agent parameters, optimiser states and gradient clipping kept).
* cadence: one gradient step per agent every ``update_every`` env steps once
  ``learning_starts`` env steps are in the replay (openai/maddpg: every 100 steps after
  ``batch_size * 25``).

:data:`OPENAI` is the openai/maddpg preset: Adam 1e-2, gamma 0.95, batch 1024, two hidden layers
of 64 ReLU, tau 0.01, gradient-norm clip 0.5, an update every 100 env steps, 1e6 replay,
episodes of jaxmarl's 26 steps (openai: 25). Differences, stated: openai's continuous actors
sample a diagonal Gaussian whose mean and log-std the network emits (plus a 1e-3 penalty on
them); ours are deterministic with Gaussian exploration noise, squashed into the box.

Contract: ``init``, ``update(state, data=None)``, ``make_trainer``, ``make_train``, ``evaluate``
(``(mean-over-agents returns [E], lengths [E])``) and :func:`evaluate_episodes` (per-agent
returns and the task measures).
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
from jaxgen.core import optim
from jaxgen.core.errors import ConfigError
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.losses.value import clipped_double_q_target
from jaxgen.rl import buffers, ma_envs
from jaxgen.rl.ddpg import Actor, Critic, actor_loss, copy, critic_loss, explore, stacked_init
from jaxgen.rl.ma_envs import MAEpisodeStats


@dataclasses.dataclass(frozen=True)
class MADDPGConfig:
    """MADDPG config; defaults: the openai/maddpg ones (module docstring) on simple_spread."""

    env: str = C.static("simple_spread", "multi-agent particle task: simple_spread or simple_adversary (probe_sum: a test probe)",
                        tuple(ma_envs.TASKS) + ma_envs.PROBES)
    independent: bool = C.static(False, "independent DDPG: each critic sees only its own observation and action")
    num_envs: int = C.static(1, "environments stepped in parallel", accepts=C.whole(1))
    total_steps: int = C.static(1_560_000, "environment steps in the run (60k jaxmarl episodes of 26 steps)", accepts=C.whole(1))
    buffer_size: int = C.static(1_000_000, "replay capacity (joint transitions)", accepts=C.whole(1))
    batch_size: int = C.static(1024, "minibatch size of each agent's gradient step", accepts=C.whole(1))
    update_every: int = C.static(100, "env steps between gradient steps", accepts=C.whole(1))
    hidden: tuple = C.static((64, 64), "hidden ReLU layers of every actor and critic", accepts=C.sizes(1, whole=True))
    actor_lr: float = C.traced(1e-2, "Adam learning rate of the actors", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    critic_lr: float = C.traced(1e-2, "Adam learning rate of the critics", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    max_grad_norm: float = C.traced(0.5, "global gradient-norm clip of each network (inf: none)",
                                    accepts=C.number(0, lo_open=True, words="a number > 0 (inf: no clipping)"))
    gamma: float = C.traced(0.95, "discount", accepts=C.number(0, 1))
    tau: float = C.traced(0.01, "Polyak weight of the target updates", accepts=C.number(0, 1, lo_open=True))
    expl_noise: float = C.traced(0.1, "exploration noise std, in half-widths of the action box", accepts=C.number(0))
    learning_starts: float = C.traced(25_600, "env steps in the replay before the first gradient step", accepts=C.number(0))
    eval_noise: float = C.traced(0.0, "exploration noise of evaluation episodes (0: deterministic)", accepts=C.number(0))

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.num_envs

    @property
    def grads_per_update(self) -> int:
        """Gradient steps per agent in an iteration that updates (``num_envs // update_every``, at least 1)."""
        return max(1, self.num_envs // self.update_every)


OPENAI = MADDPGConfig()
#: The study's configuration: the openai numbers, 25 envs in parallel, 300k env steps, 2e5 replay.
STUDY = dataclasses.replace(OPENAI, num_envs=25, total_steps=300_000, buffer_size=200_000)
PRESETS = {"openai": OPENAI, "study": STUDY,
           "adversary": dataclasses.replace(STUDY, env="simple_adversary")}


class Built(NamedTuple):
    spec: ma_envs.MASpec
    actor: Actor
    critic: Critic


@functools.lru_cache(maxsize=None)
def build(config: MADDPGConfig) -> Built:
    spec = ma_envs.spec(config.env)
    return Built(spec, Actor(spec.action_dim, tuple(config.hidden), spec.low, spec.high), Critic(tuple(config.hidden)))


def validate(config: MADDPGConfig) -> MADDPGConfig:
    """ConfigError (one sentence) for an out-of-range config; return it unchanged."""
    C.check_fields(config)
    C.require(config, "total_steps", config.total_steps >= config.num_envs, f"a whole number >= num_envs ({config.num_envs})")
    n, u = config.num_envs, config.update_every
    if not (u % n == 0 or n % u == 0):
        raise ConfigError(f"update_every={u} and num_envs={n} do not divide one another; accepted: an update_every "
                          f"that is a multiple or a divisor of num_envs (e.g. {max(n, u - u % n)}).")
    if config.buffer_size < max(config.batch_size, n):
        raise ConfigError(f"buffer_size={config.buffer_size} is smaller than batch_size={config.batch_size} or "
                          f"num_envs={n}; accepted: buffer_size >= {max(config.batch_size, n)}.")
    build(config)  # the jaxmarl environment is made here, outside any trace (its constructor asserts on arrays)
    return config


class MADDPGState(struct.PyTreeNode):
    """A run's state; every network's leaves have a leading agent axis ``[A]``."""

    actor: Any
    critic: Any
    actor_target: Any
    critic_target: Any
    actor_opt: Any
    critic_opt: Any
    buffer: buffers.ReplayBuffer
    env_state: Any
    obs: jax.Array  # [N, A, O]
    stats: MAEpisodeStats
    key: jax.Array
    step: jax.Array
    updates: jax.Array
    hparams: dict
    config: MADDPGConfig = struct.field(pytree_node=False)


def critic_input(spec: ma_envs.MASpec, independent: bool, i, obs: jax.Array, action: jax.Array) -> tuple:
    """``(x, a)`` of agent ``i``'s critic for ``obs [B, A, O]``, ``action [B, A, D]``: all true
    observations and all actions, each concatenated in agent order (``[B, sum O_j]``, ``[B, A*D]``);
    ``independent``: agent ``i``'s own (padded) observation and action (``[B, O]``, ``[B, D]``)."""
    if independent:
        return jnp.take(obs, i, axis=1), jnp.take(action, i, axis=1)
    return ma_envs.joint_obs(spec, obs), action.reshape(action.shape[0], -1)


def actions(actor: Actor, params, obs: jax.Array) -> jax.Array:
    """Every agent's deterministic action: ``obs [B, A, O] -> [B, A, D]`` (params stacked ``[A]``)."""
    return jax.vmap(lambda p, o: actor.apply({"params": p}, o), in_axes=(0, 1), out_axes=1)(params, obs)


def _opt() -> optax.GradientTransformation:
    return optim.optimizer("adam", max_grad_norm=0.5, learning_rate=1e-2)


def init(key: jax.Array, config: MADDPGConfig, hparams: dict | None = None) -> MADDPGState:
    b = build(config)
    sp, hp = b.spec, C.hparams(config, hparams)
    a_n, n = sp.num_agents, config.num_envs
    k_a, k_c, k_env, k_run = jax.random.split(key, 4)
    obs, env_state = sp.vec(n).reset(k_env)
    act0 = jnp.zeros((n, a_n, sp.action_dim), jnp.float32)
    actor = stacked_init(lambda k: b.actor.init(k, obs[:, 0])["params"], k_a, a_n)
    x, a = critic_input(sp, config.independent, 0, obs, act0)
    critic = stacked_init(lambda k: b.critic.init(k, x, a)["params"], k_c, a_n)
    tx = _opt()
    opt = lambda p, lr: jax.vmap(lambda q: optim.init_opt_state(
        tx, q, {"learning_rate": lr, "max_grad_norm": hp["max_grad_norm"]}))(p)
    example = {"obs": obs[0], "action": act0[0], "reward": jnp.zeros((a_n,), jnp.float32), "next_obs": obs[0],
               "terminated": jnp.zeros((), jnp.bool_)}
    return MADDPGState(actor=actor, critic=critic, actor_target=copy(actor), critic_target=copy(critic),
                       actor_opt=opt(actor, hp["actor_lr"]), critic_opt=opt(critic, hp["critic_lr"]),
                       buffer=buffers.init(example, config.buffer_size), env_state=env_state, obs=obs,
                       stats=MAEpisodeStats.create(n, a_n), key=k_run, step=jnp.zeros((), jnp.int32),
                       updates=jnp.zeros((), jnp.int32), hparams=hp, config=config)


def critic_targets(state: MADDPGState, batches: dict) -> jax.Array:
    """``y [A, B]``: agent ``i``'s target on its own minibatch ``batches`` (leaves ``[A, B, ...]``)."""
    b, cfg, hp = build(state.config), state.config, state.hparams

    def one(i, batch, p_target):
        a_next = actions(b.actor, state.actor_target, batch["next_obs"])
        x, a = critic_input(b.spec, cfg.independent, i, batch["next_obs"], a_next)
        q_next = b.critic.apply({"params": p_target}, x, a)
        return clipped_double_q_target(batch["reward"][:, i], batch["terminated"], q_next[None], hp["gamma"])

    return jax.vmap(one)(jnp.arange(b.spec.num_agents), batches, state.critic_target)


def learn_step(state: MADDPGState, batches: dict) -> tuple[MADDPGState, dict]:
    """One gradient step of every agent on its minibatch (leaves ``[A, B, ...]``): critics, then
    actors (against the new critics), then the Polyak targets."""
    b, cfg, hp = build(state.config), state.config, state.hparams
    idx = jnp.arange(b.spec.num_agents)
    y = critic_targets(state, batches)
    tx = _opt()

    def c_loss(p, i, batch, y_i):
        x, a = critic_input(b.spec, cfg.independent, i, batch["obs"], batch["action"])
        q = b.critic.apply({"params": p}, x, a)
        return critic_loss(q[None], y_i), jnp.mean(q)

    (cl, q_mean), g = jax.vmap(jax.value_and_grad(c_loss, has_aux=True))(state.critic, idx, batches, y)
    upd, critic_opt = jax.vmap(tx.update)(g, state.critic_opt, state.critic)
    critic = optax.apply_updates(state.critic, upd)

    def a_loss(p, i, batch, p_critic):
        own = b.actor.apply({"params": p}, jnp.take(batch["obs"], i, axis=1))
        act = batch["action"].at[:, i].set(own)
        x, a = critic_input(b.spec, cfg.independent, i, batch["obs"], act)
        return actor_loss(b.critic.apply({"params": p_critic}, x, a))

    al, g = jax.vmap(jax.value_and_grad(a_loss))(state.actor, idx, batches, critic)
    upd, actor_opt = jax.vmap(tx.update)(g, state.actor_opt, state.actor)
    actor = optax.apply_updates(state.actor, upd)
    state = state.replace(actor=actor, critic=critic, actor_opt=actor_opt, critic_opt=critic_opt,
                          actor_target=optim.polyak(state.actor_target, actor, hp["tau"]),
                          critic_target=optim.polyak(state.critic_target, critic, hp["tau"]),
                          updates=state.updates + 1)
    m = {f"critic_loss_{i}": cl[i] for i in range(b.spec.num_agents)}
    m.update({f"actor_loss_{i}": al[i] for i in range(b.spec.num_agents)})
    m["q_mean"] = jnp.mean(q_mean)
    return state, m


def sample(state: MADDPGState, key: jax.Array) -> dict:
    """``[U, A, B, ...]``: ``grads_per_update`` minibatches per agent, each agent its own indices."""
    cfg, a_n = state.config, build(state.config).spec.num_agents
    keys = jax.random.split(key, cfg.grads_per_update * a_n).reshape(cfg.grads_per_update, a_n, -1)
    return jax.vmap(jax.vmap(lambda k: buffers.sample(state.buffer, k, cfg.batch_size)))(keys)


def act(state: MADDPGState, key: jax.Array, obs: jax.Array, noise) -> jax.Array:
    """Actions ``[N, A, D]`` at ``obs [N, A, O]``: each actor's plus ``N(0, (noise * half-width)^2)``, clipped."""
    b = build(state.config)
    half = 0.5 * (b.spec.high - b.spec.low)
    return explore(key, actions(b.actor, state.actor, obs), noise * half, b.spec.low, b.spec.high)


def update(state: MADDPGState, data=None) -> tuple[MADDPGState, dict]:
    """One iteration: act with noise, step the N envs, store the joint transitions, learn on cadence."""
    cfg, hp = state.config, state.hparams
    b = build(cfg)
    n = cfg.num_envs
    k_act, k_env, k_sample = jax.random.split(jax.random.fold_in(state.key, state.step), 3)
    action = act(state, k_act, state.obs, hp["expl_noise"])
    env_state, out = b.spec.vec(n).step(k_env, state.env_state, action)
    buffer = buffers.add(state.buffer, {"obs": state.obs, "action": action, "reward": out.reward,
                                        "next_obs": out.final_obs, "terminated": out.terminated})
    stats, metrics = state.stats.record(out.reward, out.done).report()
    tm = ma_envs.task_metrics(b.spec, out.world)
    metrics.update({k: jnp.mean(v) for k, v in tm.items()})
    state = state.replace(buffer=buffer, env_state=env_state, obs=out.obs, stats=stats)

    t0 = state.step * n
    t1 = t0 + n
    ready = (t1 >= jnp.maximum(hp["learning_starts"], cfg.batch_size)) & ((t1 // cfg.update_every) > (t0 // cfg.update_every))
    batches = sample(state, k_sample)
    learner = state.replace(buffer=None)
    zero = {f"{w}_loss_{i}": jnp.zeros((), jnp.float32) for w in ("critic", "actor") for i in range(b.spec.num_agents)}
    zero["q_mean"] = jnp.zeros((), jnp.float32)

    def learn(s):
        s, m = jax.lax.scan(learn_step, s, batches)
        return s, jax.tree_util.tree_map(lambda x: x[-1], m)

    learner, lm = jax.lax.cond(ready, learn, lambda s: (s, zero), learner)
    metrics.update(lm)
    return learner.replace(buffer=buffer, step=state.step + 1), metrics


def make_trainer(config: MADDPGConfig) -> Trainer:
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update, num_steps=config.num_iterations,
                   config=config)


def make_train(config: MADDPGConfig):
    """``train(key, hparams=None) -> (MADDPGState, metrics[num_iterations])`` as one scan."""
    return _make_train(make_trainer(config))


def evaluate_episodes(state: MADDPGState, key: jax.Array, num_episodes: int = 10) -> dict:
    """One episode in each of ``num_episodes`` envs at ``eval_noise``: ``returns [E, A]`` (per agent,
    jaxmarl's convention) and the task measures of :func:`jaxgen.rl.ma_envs.summarise` (``[E]``). Pure."""
    sp = build(state.config).spec
    venv = sp.vec(num_episodes)
    k0, k1 = jax.random.split(key)
    obs, st = venv.reset(k0)

    def body(c, k):
        obs, st, ret = c
        ka, ks = jax.random.split(k)
        st, out = venv.step(ks, st, act(state, ka, obs, state.hparams["eval_noise"]))
        return (out.obs, st, ret + out.reward), ma_envs.task_metrics(sp, out.world)

    (_, _, ret), m = jax.lax.scan(body, (obs, st, jnp.zeros((num_episodes, sp.num_agents))),
                                  jax.random.split(k1, sp.episode_steps))
    return {"returns": ret, **ma_envs.summarise(m)}


def evaluate(state: MADDPGState, key: jax.Array, num_episodes: int = 10) -> tuple[jax.Array, jax.Array]:
    """``(returns [E], lengths [E])``: the mean over agents of each episode's per-agent return."""
    r = evaluate_episodes(state, key, num_episodes)["returns"]
    return jnp.mean(r, axis=-1), jnp.full((num_episodes,), build(state.config).spec.episode_steps, jnp.int32)
