"""Deep Q-networks (Mnih et al. 2015) over N vectorised gymnax environments.

One iteration (:func:`update`) = one epsilon-greedy step of the ``num_envs`` environments
(the N transitions go into a device-resident ring buffer, :mod:`jaxgen.rl.buffers`),
then ``updates_per_step`` Adam steps on uniformly sampled minibatches of the Huber TD
loss, then the target-network refresh when the env-step counter crosses a multiple of
``target_period`` (``target_tau`` = 1: copy; < 1: Polyak averaging
``target <- tau * online + (1 - tau) * target``, e.g. period = num_envs, tau = 0.005).

* TD target ``r + gamma (1 - terminated) max_a' Q_target(s', a')`` (double DQN, van
  Hasselt et al. 2016: the online net chooses a', the target net values it). ``s'`` is the
  observation the action led to (gymnax's ``final_observation``), and truncation (time
  limit) bootstraps: only ``terminated`` stops it.
* epsilon schedule ``eps = eps_end + max((eps_start - eps_end)(1 - t / eps_decay_steps), 0)``
  in env steps t; exploration actions drawn from ``explore_probs`` (uniform by default;
  the course varied it, e.g. (0.3, 0.6, 0.1) for Freeway's NOOP/UP/DOWN).
* networks: ``"mlp"`` (``hidden`` ReLU layers; CartPole, Acrobot) or ``"minatar"`` (the
  MinAtar paper's 16-channel 3x3 convolution + 128 units); ``"auto"`` picks the conv net
  for image observations. ``dueling=True`` adds the value/advantage head (Wang et al. 2016).
* MinAtar frames (0/1) are stored as uint8 in the buffer (a quarter of the memory).
* the loss and targets are :mod:`jaxgen.losses.value`'s (``huber``, ``q_learning_target``,
  ``double_q_target``), exploration :mod:`jaxgen.rl.exploration`'s, the target refresh
  :func:`jaxgen.core.optim.polyak`.
* the optimiser: global-norm clipping at the traced ``max_grad_norm`` (``inf``: none; a
  config.json that stored the old "0: none" loads as ``inf``), then
  :func:`jaxgen.core.optim.optimizer`'s Adam with the learning rate injected. The clip stays
  outside the injected Adam (``optax.chain(clip, adam)``, the clip norm read from
  ``state.hparams``), so the optimiser state keeps the structure that run directories
  written before hold, and their checkpoints restore.

Contract (DESIGN.md): ``init(key, config, hparams=None) -> DQNState``; ``update(state, data=None)``
(the Trainer's step; data is unused), ``make_trainer(config)``, ``make_train(config) ->
train(key, hparams=None)``. Traced (sweepable in one compile): learning_rate, max_grad_norm,
huber_delta, gamma, the epsilon numbers, learning_starts, target_period, target_tau,
eval_epsilon. Names as in every RL config: ``num_envs``, ``total_steps`` (environment steps
in the run), ``num_iterations`` (derived: calls of :func:`update`). Per-iteration
randomness is ``fold_in(state.key, state.step)``. Evaluation (:func:`evaluate`) plays
complete episodes at the fixed ``eval_epsilon``; :mod:`jaxgen.rl.dqn_fit` runs it between
chunks and draws the curves.
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
from jaxgen.losses.value import double_q_target, huber, q_learning_target
from jaxgen.nets.conv import PatchConv
from jaxgen.nets.mlp import MLP
from jaxgen.rl import buffers, envs
from jaxgen.rl.envs import EpisodeStats
from jaxgen.rl.exploration import epsilon_greedy, linear_epsilon

NETWORKS = ("auto", "mlp", "minatar")


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """DQN config. Defaults: CartPole-v1 with 10 envs, buffer 1e4, batch 128, one update
    per vector step, target period 500 env steps (the common JAX CartPole configuration)."""

    env: str = C.static("CartPole-v1", "any discrete-action gymnax environment (CartPole-v1, Acrobot-v1, Freeway-MinAtar, ...)",
                        accepts=C.Accepts("text", words="the name of a gymnax or jaxgen environment, e.g. CartPole-v1"))
    num_envs: int = C.static(10, "environments stepped in parallel", accepts=C.whole(1))
    total_steps: int = C.static(500_000, "environment steps in the run (iterations = total_steps // num_envs)", accepts=C.whole(1))
    buffer_size: int = C.static(10_000, "replay buffer capacity (transitions)", accepts=C.whole(1))
    batch_size: int = C.static(128, "minibatch size of each gradient step", accepts=C.whole(1))
    updates_per_step: int = C.static(1, "gradient steps per vector step", accepts=C.whole(1))
    network: str = C.static("auto", "auto, mlp or minatar (conv net)", NETWORKS)
    hidden: tuple = C.static((120, 84), "hidden layer sizes of the MLP", accepts=C.sizes(1, whole=True))
    dueling: bool = C.static(False, "dueling value/advantage head")
    double: bool = C.static(False, "double DQN target")
    explore_probs: tuple | None = C.static(None, "exploration distribution over actions (None: uniform)", accepts=C.sizes(
        0, optional=True, words="None (uniform) or a comma-separated list of probabilities >= 0, one per action, summing to 1"))
    learning_rate: float = C.traced(2.5e-4, "Adam learning rate", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    max_grad_norm: float = C.traced(10.0, "global gradient-norm clip (inf: none)",
                                    accepts=C.number(0, lo_open=True, words="a number > 0 (inf: no clipping)"))
    huber_delta: float = C.traced(float("inf"), "Huber loss threshold (1: the DQN paper; inf: squared error, stable on CartPole)",
                                  accepts=C.number(0, lo_open=True, words="a number > 0 (inf for the squared error)"))
    gamma: float = C.traced(0.99, "discount", accepts=C.number(0, 1))
    eps_start: float = C.traced(1.0, "initial exploration epsilon", accepts=C.number(0, 1, words="a probability in [0, 1]"))
    eps_end: float = C.traced(0.05, "final exploration epsilon", accepts=C.number(0, 1, words="a probability in [0, 1]"))
    eps_decay_steps: float = C.traced(250_000, "env steps over which epsilon falls linearly", accepts=C.number(0, lo_open=True))
    learning_starts: float = C.traced(10_000, "env steps collected before the first gradient step", accepts=C.number(0))
    target_period: float = C.traced(500, "env steps between target-network refreshes",
                                    accepts=C.number(1, words="a number of env steps >= 1"))
    target_tau: float = C.traced(1.0, "refresh weight (1: copy; <1: Polyak averaging)", accepts=C.number(0, 1, lo_open=True))
    eval_epsilon: float = C.traced(0.05, "epsilon of the evaluation episodes", accepts=C.number(0, 1, words="a probability in [0, 1]"))

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.num_envs

    @staticmethod
    def upgrade(values: dict) -> dict:
        """``max_grad_norm`` 0 meant "no clipping" when it was static; now that is ``inf``."""
        if values.get("max_grad_norm") == 0:
            values = {**values, "max_grad_norm": float("inf")}
        return values


class QNetwork(nn.Module):
    """``obs [B, ...] -> Q [B, num_actions]``."""

    num_actions: int
    arch: str = "mlp"
    hidden: tuple = (120, 84)
    dueling: bool = False

    @nn.compact
    def __call__(self, obs):
        x = obs.astype(jnp.float32)
        if self.arch == "minatar":
            x = nn.relu(PatchConv(16, (3, 3), name="Conv_0")(x))  # = nn.Conv VALID, fast on CPU
            x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        else:
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(MLP(tuple(self.hidden))(x)) if self.hidden else x
        if not self.dueling:
            return nn.Dense(self.num_actions)(x)
        v = nn.Dense(1)(x)
        a = nn.Dense(self.num_actions)(x)
        return v + a - jnp.mean(a, axis=-1, keepdims=True)


class Built(NamedTuple):
    """What a config builds on its environment's :class:`~jaxgen.rl.envs.EnvSpec`."""

    spec: envs.EnvSpec
    net: QNetwork


@functools.lru_cache(maxsize=None)
def build(config: DQNConfig) -> Built:
    """The environment's spec and the Q-network of a validated config (cached: same objects, same treedef)."""
    spec = envs.spec(config.env)
    envs.require_discrete(spec, "DQN")
    arch = config.network if config.network != "auto" else ("minatar" if len(spec.obs_shape) == 3 else "mlp")
    return Built(spec, QNetwork(spec.action_dim, arch, tuple(config.hidden), config.dueling))


def optimizer(config: DQNConfig, max_grad_norm) -> optax.GradientTransformation:
    """Global-norm clipping at ``max_grad_norm`` (a traced value: ``state.hparams``; ``inf``
    clips nothing), then Adam with the injected learning rate (see the module docstring).
    Adam's other numbers are injected too, at optax's defaults: the optimiser state then
    holds the same hyperparameters as the ``inject_hyperparams(optax.adam)`` state of run
    directories written before (their checkpoints restore)."""
    adam = optim.optimizer("adam", learning_rate=config.learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), adam)


def obs_dtype(config: DQNConfig):
    """Storage dtype of observations in the buffer: uint8 for MinAtar's 0/1 frames, else float32."""
    return jnp.uint8 if config.env.endswith("-MinAtar") else jnp.float32


def explore_probs(config: DQNConfig) -> jax.Array | None:
    """The exploration distribution ``[A]`` (None: uniform)."""
    return None if config.explore_probs is None else jnp.asarray(np.asarray(config.explore_probs, np.float32))


def validate(config: DQNConfig) -> DQNConfig:
    """ConfigError (one sentence) for an out-of-range config; return it unchanged. Each
    field's own range is declared on it (:func:`jaxgen.core.config.check_fields`); the checks
    here relate fields."""
    C.check_fields(config)
    C.require(config, "total_steps", config.total_steps >= config.num_envs,
              f"a whole number >= num_envs ({config.num_envs})")
    if config.buffer_size < config.batch_size:
        raise ConfigError(f"buffer_size={config.buffer_size} is smaller than batch_size={config.batch_size}; "
                          f"accepted: a buffer that holds at least one batch (buffer_size >= {config.batch_size}).")
    if config.buffer_size < config.num_envs:
        raise ConfigError(f"buffer_size={config.buffer_size} is smaller than num_envs={config.num_envs}; "
                          f"accepted: buffer_size >= {config.num_envs}.")
    n = build(config).spec.action_dim  # unknown env / continuous actions raise here
    if config.explore_probs is not None:
        p = np.asarray(config.explore_probs, np.float64)
        ok = p.shape == (n,) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-5
        C.require(config, "explore_probs", ok, f"{n} non-negative probabilities summing to 1 (one per action of {config.env})")
    return config


class DQNState(struct.PyTreeNode):
    """Everything of a run: a checkpoint of it is a complete resume point."""

    params: Any
    target_params: Any
    opt_state: Any
    buffer: buffers.ReplayBuffer
    env_state: Any
    obs: jax.Array  # [N, ...] observation to act on
    stats: EpisodeStats
    key: jax.Array  # uint32[2]
    step: jax.Array  # int32: iterations done
    hparams: dict
    config: DQNConfig = struct.field(pytree_node=False)


def init(key: jax.Array, config: DQNConfig, hparams: dict | None = None) -> DQNState:
    """Initial state: fresh network (target = a distinct copy), empty buffer, reset envs."""
    b = build(config)
    hp = C.hparams(config, hparams)
    k_net, k_env, k_run = jax.random.split(key, 3)
    obs, env_state = b.spec.vec(config.num_envs).reset(k_env)
    params = b.net.init(k_net, obs)["params"]
    target = jax.tree_util.tree_map(lambda x: x + 0, params)  # distinct buffers (the runner donates)
    opt_state = optim.init_opt_state(optimizer(config, hp["max_grad_norm"]), params, hp)
    one = jax.tree_util.tree_map(lambda x: x[0], obs)
    dtype = obs_dtype(config)
    example = {"obs": one.astype(dtype), "action": jnp.zeros((), jnp.int32), "reward": jnp.zeros((), jnp.float32),
               "next_obs": one.astype(dtype), "terminated": jnp.zeros((), jnp.bool_)}
    return DQNState(params=params, target_params=target, opt_state=opt_state,
                    buffer=buffers.init(example, config.buffer_size), env_state=env_state, obs=obs,
                    stats=EpisodeStats.create(config.num_envs), key=k_run, step=jnp.zeros((), jnp.int32),
                    hparams=hp, config=config)


def epsilon(state: DQNState) -> jax.Array:
    """Exploration epsilon at the state's env-step count."""
    hp = state.hparams
    t = state.step * state.config.num_envs
    return linear_epsilon(t, hp["eps_start"], hp["eps_end"], hp["eps_decay_steps"])


def q_values(state: DQNState, obs: jax.Array, params=None) -> jax.Array:
    """``Q [B, A]`` of the online network (or ``params``) at ``obs [B, ...]``."""
    return build(state.config).net.apply({"params": state.params if params is None else params}, obs)


def loss_fn(params, target_params, batch: dict, state: DQNState):
    """Mean Huber TD loss on ``batch`` (obs [B,...], action [B], reward [B], next_obs [B,...], terminated [B])."""
    cfg, hp = state.config, state.hparams
    net = build(cfg).net
    b = batch["action"].shape[0]
    if cfg.double:
        q_both = net.apply({"params": params}, jnp.concatenate([batch["obs"], batch["next_obs"]]))
        q, q_next_online = q_both[:b], jax.lax.stop_gradient(q_both[b:])
    else:
        q = net.apply({"params": params}, batch["obs"])
    q_next = net.apply({"params": target_params}, batch["next_obs"])
    if cfg.double:
        y = double_q_target(batch["reward"], batch["terminated"], q_next, q_next_online, hp["gamma"])
    else:
        y = q_learning_target(batch["reward"], batch["terminated"], q_next, hp["gamma"])
    q_a = jnp.take_along_axis(q, batch["action"][:, None], axis=-1)[:, 0]
    loss = jnp.mean(huber(q_a - jax.lax.stop_gradient(y), hp["huber_delta"]))
    return loss, {"loss": loss, "q_mean": jnp.mean(q_a)}


def sample_batches(state: DQNState, key: jax.Array) -> dict:
    """The ``updates_per_step`` minibatches of one iteration, drawn up front: leaves
    ``[updates_per_step, batch_size, ...]`` (batch ``i`` from ``fold_in(key, i)``)."""
    cfg = state.config
    draw = lambda i: buffers.sample(state.buffer, jax.random.fold_in(key, i), cfg.batch_size)
    return jax.vmap(draw)(jnp.arange(cfg.updates_per_step))


def learn(state: DQNState, batches: dict) -> tuple[Any, Any, dict]:
    """One Adam step per minibatch of ``batches`` (leaves ``[U, batch_size, ...]``); returns
    ``(params, opt_state, metrics of the last step)``. Takes the sampled batches, not the
    buffer: inside ``lax.cond`` a buffer operand is copied every iteration (measured: 100k
    MinAtar transitions made a Freeway iteration ~10x slower)."""
    tx = optimizer(state.config, state.hparams["max_grad_norm"])

    def one(carry, batch):
        params, opt_state = carry
        grads, m = jax.grad(loss_fn, has_aux=True)(params, state.target_params, batch, state)
        upd, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, upd), opt_state), m

    carry = (state.params, state.opt_state)
    if state.config.updates_per_step == 1:  # no loop around a single step
        (params, opt_state), m = one(carry, jax.tree_util.tree_map(lambda x: x[0], batches))
        return params, opt_state, m
    (params, opt_state), m = jax.lax.scan(one, carry, batches)
    return params, opt_state, jax.tree_util.tree_map(lambda x: x[-1], m)


def update(state: DQNState, data=None) -> tuple[DQNState, dict]:
    """One iteration: act in the N envs, store, learn (after ``learning_starts``), refresh the target."""
    cfg, hp = state.config, state.hparams
    n = cfg.num_envs
    # this iteration's keys as unsafe_rbg keys: ~11 % less CPU per CartPole iteration than threefry splits
    k_act, k_env, k_learn = envs.rbg_keys(jax.random.fold_in(state.key, state.step), 3)
    eps = epsilon(state)
    actions = epsilon_greedy(k_act, q_values(state, state.obs), eps, explore_probs(cfg))
    env_state, out = build(cfg).spec.vec(n).step(k_env, state.env_state, actions)
    dtype = obs_dtype(cfg)
    buffer = buffers.add(state.buffer, {
        "obs": state.obs.astype(dtype), "action": actions, "reward": out.reward,
        "next_obs": out.final_obs.astype(dtype), "terminated": out.terminated})
    stats, metrics = state.stats.record(out.reward, out.done).report()
    state = state.replace(buffer=buffer, env_state=env_state, obs=out.obs, stats=stats)

    t0 = state.step * n
    t1 = t0 + n
    ready = t1 >= hp["learning_starts"]
    zero = {"loss": jnp.zeros((), jnp.float32), "q_mean": jnp.zeros((), jnp.float32)}
    batches = sample_batches(state, k_learn)
    learner = state.replace(buffer=None)  # nothing of the buffer enters the cond
    params, opt_state, lm = jax.lax.cond(ready, lambda: learn(learner, batches),
                                         lambda: (state.params, state.opt_state, zero))
    period = jnp.maximum(hp["target_period"], 1.0).astype(jnp.int32)
    refresh = (t1 // period) > (t0 // period)
    target = optim.polyak(state.target_params, params, jnp.where(refresh, hp["target_tau"], 0.0))
    state = state.replace(params=params, opt_state=opt_state, target_params=target, step=state.step + 1)
    metrics.update(lm)
    metrics["epsilon"] = eps
    return state, metrics


def make_trainer(config: DQNConfig) -> Trainer:
    """The whole run: ``config.num_iterations`` iterations of :func:`update`."""
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update,
                   num_steps=config.num_iterations, config=config)


def make_train(config: DQNConfig):
    """``train(key, hparams=None) -> (DQNState, metrics[num_iterations])`` as one scan."""
    return _make_train(make_trainer(config))


def evaluate(state: DQNState, key: jax.Array, num_episodes: int = 10) -> tuple[jax.Array, jax.Array]:
    """``(returns [E], lengths [E])`` of ``num_episodes`` complete episodes played in parallel,
    epsilon-greedy at ``hparams["eval_epsilon"]``. Pure; vmap it over a sweep's runs."""
    spec, probs = build(state.config).spec, explore_probs(state.config)
    policy = lambda k, obs: epsilon_greedy(k, q_values(state, obs), state.hparams["eval_epsilon"], probs)
    return envs.rollout_returns(spec.env, spec.params, policy, key, num_episodes)


def inspect_q(state: DQNState, obs: jax.Array) -> dict:
    """Q-value inspection at ``obs [B, ...]``: ``q [B, A]``, greedy ``action [B]``, ``mean_q [B]``."""
    q = q_values(state, obs)
    return {"q": q, "action": jnp.argmax(q, axis=-1), "mean_q": jnp.mean(q, axis=-1)}


def sample_states(state: DQNState, key: jax.Array, n: int) -> jax.Array:
    """``n`` observations drawn uniformly from the replay buffer (float32)."""
    return buffers.sample(state.buffer, key, n)["obs"].astype(jnp.float32)
