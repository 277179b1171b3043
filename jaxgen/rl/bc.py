"""Behavioural cloning: supervised learning of a policy from expert (obs, action) pairs.

Losses (``loss``): ``ce`` -- the cross-entropy ``-log pi(a|s)`` of the categorical policy
(discrete actions); ``nll`` -- the Gaussian negative log-likelihood ``-log N(a; mu(s),
diag(sigma^2))`` (continuous; the log-std, learned as the policy config says, fits the
spread of the expert's actions); ``mse`` -- ``|mu(s) - a|^2`` on the mean alone
(continuous; the log-std stays at its initial value). ``auto``: ce or nll by the action space.
The log-probabilities are :mod:`jaxgen.rl.policies`' (one implementation).

The network is :func:`jaxgen.rl.policies.actor_critic` of the nested ``policy`` config
(:class:`~jaxgen.rl.policies.PolicyNetConfig`) on ``env``: the same module PPO builds from an
equal ``PolicyNetConfig``, so BC's parameters are a PPO actor-critic's parameters (only the
actor is trained; the critic keeps its initialisation) and warm-start PPO or GAIL by
construction (:func:`warm_start`). Observations go in raw (PPO's ``normalize_obs`` is not
mirrored here; warm-start a PPO config without it).

Data: the demonstrations file ``demos`` (empty: the shared expert file of ``env``,
:mod:`jaxgen.rl.demos`), its trajectories in the fixed order of ``demo_seed``; the first
``num_trajectories`` of them are used -- a traced value, so 1, 4 and 16 trajectories train
in one compile (pad/mask: the whole file is on the device, minibatches are drawn from the
prefix). A fixed share ``val_fraction`` of the transitions (a random flag per transition, by
``demo_seed``) is held out: minibatch rows that are held out get weight 0, and the
validation loss is the masked mean over the held-out rows of the prefix.

One iteration (``update``) is an epoch: ``updates_per_epoch`` Adam steps on minibatches of
``batch_size``, then the validation loss. ``early_stopping``: the parameters with the best
validation loss are kept and, after ``patience`` epochs without improvement, training stops
(the remaining iterations of the compiled loop change nothing; ``stopped`` reports it); the
final policy is the best one.

Contract (DESIGN.md): ``init(key, config, hparams=None, data=None)``, ``update(state, data)``,
``make_trainer(config)``, ``make_train(config)``, ``evaluate(state, key, num_episodes)``,
``act(state, key, obs, greedy)``. Traced: learning_rate, num_trajectories, eval_greedy.
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
from jaxgen.core.errors import ConfigError
from jaxgen.core.train import Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.losses.masked import masked_mean
from jaxgen.rl import demos as D
from jaxgen.rl import envs, policies
from jaxgen.rl.policies import PolicyNetConfig, PolicyOut

LOSSES = ("auto", "ce", "nll", "mse")


@dataclasses.dataclass(frozen=True)
class BCConfig:
    """Behavioural cloning config; defaults: CartPole-v1 from the shared expert, 4 trajectories."""

    env: str = C.static("CartPole-v1", "the gymnax environment the demonstrations were recorded on",
                        accepts=C.Accepts("text", words="the name of a gymnax or jaxgen environment, e.g. CartPole-v1"))
    demos: str = C.static("", "demonstrations .npz (empty: the shared expert file of env)",
                          accepts=C.Accepts("text", words="a path to a demonstrations .npz, or empty for the shared expert file"))
    demo_seed: int = C.static(0, "seed of the order in which trajectories are taken", accepts=C.whole(0))
    num_trajectories: float = C.traced(4.0, "expert trajectories used (the first of the demo_seed order)",
                                       accepts=C.number(1, words="a whole number >= 1, at most the trajectories in the file"))
    policy: PolicyNetConfig = C.nested(PolicyNetConfig(), "the policy network (policy.hidden, ...), as PPO's")
    loss: str = C.static("auto", "ce (discrete), nll or mse (continuous); auto: ce or nll by the action space", LOSSES)
    epochs: int = C.static(50, "epochs (iterations) of the run", accepts=C.whole(1))
    updates_per_epoch: int = C.static(50, "Adam steps per epoch", accepts=C.whole(1))
    batch_size: int = C.static(64, "transitions per minibatch", accepts=C.whole(1))
    val_fraction: float = C.static(0.2, "share of transitions held out for the validation loss", accepts=C.number(0, 0.9))
    early_stopping: bool = C.static(False, "keep the best-validation parameters and stop after `patience` epochs without improvement")
    patience: int = C.static(5, "epochs without a better validation loss before stopping (early_stopping)", accepts=C.whole(1))
    learning_rate: float = C.traced(1e-3, "Adam learning rate", accepts=C.number(0, 1, lo_open=True, hi_open=True))
    eval_greedy: float = C.traced(1.0, "1: evaluate with the greedy action / the mean; 0: sample",
                                  accepts=C.number(words="a number: above 0.5 evaluates greedily (1), else by sampling (0)"))


PRESETS = {"cartpole": BCConfig(), "pendulum": BCConfig(env="Pendulum-v1", loss="nll"),
           "reacher": BCConfig(env="Reacher-misc", loss="nll")}


def loss_kind(config: BCConfig) -> str:
    """The loss ``auto`` stands for: ce (discrete) or nll (continuous)."""
    if config.loss != "auto":
        return config.loss
    return "ce" if envs.spec(config.env).discrete else "nll"


def bc_loss(out: PolicyOut, action: jax.Array, discrete: bool, kind: str) -> jax.Array:
    """Per-example BC loss ``[B]`` of policy output ``out`` (``[B, ...]``) on expert ``action``
    (``[B]`` int or ``[B, D]``): ``ce``/``nll`` = ``-log pi(a|s)``, ``mse`` = ``sum_d (mu_d - a_d)^2``."""
    if kind == "mse":
        return jnp.sum((out.loc - action) ** 2, axis=-1)
    return -policies.log_prob(out, action, discrete)


@functools.lru_cache(maxsize=None)
def build(config: BCConfig) -> policies.Built:
    tx = optim.optimizer("adam", learning_rate=config.learning_rate)
    return policies.build(config.env, config.policy, tx)


@functools.lru_cache(maxsize=8)
def _demos(env: str, path: str) -> D.Demonstrations:
    return D.load(D.resolve(path, env), env)


def demonstrations(config) -> D.Demonstrations:
    """The demonstrations of a config with ``env`` and ``demos`` fields (BC's, GAIL's), checked against ``env``."""
    return _demos(config.env, config.demos)


def validate(config: BCConfig) -> BCConfig:
    C.check_fields(config)
    build(config)  # unknown env
    kind = loss_kind(config)
    discrete = envs.spec(config.env).discrete
    if discrete and kind != "ce" or not discrete and kind == "ce":
        ok = "ce or auto" if discrete else "nll, mse or auto"
        raise ConfigError(f"loss={config.loss!r} does not fit the {'discrete' if discrete else 'continuous'} actions of "
                          f"{config.env}; accepted: {ok}.")
    check_demos(config)
    return config


def check_demos(config) -> D.Demonstrations:
    """The config's demonstrations, with its ``num_trajectories`` checked against the file."""
    if config.demos == "" and config.env not in D.expert_envs():
        raise ConfigError(f"demos={config.demos!r} is not accepted for env={config.env!r}, which has no shared expert "
                          f"file; accepted: a demonstrations .npz path (record one with `jaxgen expert {config.env}`).")
    if config.demos and not D.Path(config.demos).is_file():
        raise ConfigError(f"demos={config.demos!r} is not accepted: no such file; accepted: a path to a demonstrations "
                          f".npz, or empty for the shared expert file of {config.env}.")
    d = demonstrations(config)
    k = config.num_trajectories
    if not (float(k).is_integer() and 1 <= k <= d.num_trajectories):
        raise ConfigError(f"num_trajectories={k!r} is out of range; accepted: a whole number in [1, "
                          f"{d.num_trajectories}] (the trajectories in the demonstrations file).")
    return d


def data_of(config: BCConfig) -> dict:
    """The device data of a run: :func:`jaxgen.rl.demos.device_arrays` plus ``val [S]`` bool
    (the held-out flag of each transition)."""
    d = demonstrations(config)
    arr = D.device_arrays(d, config.demo_seed)
    u = jax.random.uniform(jax.random.PRNGKey(config.demo_seed + 1), (d.num_transitions,))
    return {**arr, "val": u < config.val_fraction}


class BCState(struct.PyTreeNode):
    params: Any  # the actor-critic's parameters (the policy being trained)
    opt_state: Any
    best_params: Any  # the best-validation parameters (early_stopping)
    best_val: jax.Array  # float32
    bad_epochs: jax.Array  # int32: epochs since the best
    stopped: jax.Array  # bool
    key: jax.Array
    step: jax.Array
    hparams: dict
    config: BCConfig = struct.field(pytree_node=False)


def init(key: jax.Array, config: BCConfig, hparams: dict | None = None) -> BCState:
    b = build(config)
    hp = C.hparams(config, hparams)
    k_net, k_run = jax.random.split(key)
    params = b.net.init(k_net, jnp.zeros((1,) + tuple(b.spec.obs_shape), jnp.float32))["params"]
    return BCState(params=params, opt_state=optim.init_opt_state(b.tx, params, hp), best_params=params,
                   best_val=jnp.full((), jnp.inf, jnp.float32), bad_epochs=jnp.zeros((), jnp.int32),
                   stopped=jnp.zeros((), bool), key=k_run, step=jnp.zeros((), jnp.int32), hparams=hp, config=config)


def policy_out(config, params, obs: jax.Array) -> PolicyOut:
    """The policy output at ``obs [B, ...]`` (the actor alone)."""
    return build(config).net.apply({"params": params}, jnp.asarray(obs, jnp.float32), method="policy")


def minibatch_loss(params, config: BCConfig, obs, action, weight) -> jax.Array:
    """Weighted mean BC loss over a minibatch (``weight [B]``, 0 for held-out rows)."""
    out = policy_out(config, params, obs)
    return masked_mean(bc_loss(out, action, build(config).spec.discrete, loss_kind(config)), weight)


def validation_loss(params, config: BCConfig, data: dict, n_valid) -> jax.Array:
    """Mean BC loss over the held-out transitions among the first ``n_valid`` (NaN-free: 0 if none)."""
    s = data["obs"].shape[0]
    mask = jnp.logical_and(data["val"], jnp.arange(s) < n_valid)
    out = policy_out(config, params, data["obs"])
    return masked_mean(bc_loss(out, data["action"], build(config).spec.discrete, loss_kind(config)), mask)


def train_epoch(params, opt_state, key, config: BCConfig, data: dict, n_valid, tx=None):
    """``updates_per_epoch`` Adam steps of BC on minibatches from the first ``n_valid``
    transitions of ``data``; returns ``(params, opt_state, mean training loss)``. GAIL's warm
    start phase calls this on PPO's parameters (``tx``: its own optimiser)."""
    tx = tx or build(config).tx
    grad_fn = jax.value_and_grad(minibatch_loss)

    def one(carry, k):
        params, opt_state = carry
        idx = D.sample_prefix(k, n_valid, config.batch_size)
        w = 1.0 - data["val"][idx].astype(jnp.float32) if "val" in data else jnp.ones((config.batch_size,))
        loss, g = grad_fn(params, config, data["obs"][idx], data["action"][idx], w)
        upd, opt_state = tx.update(g, opt_state, params)
        return (optax.apply_updates(params, upd), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(one, (params, opt_state), jax.random.split(key, config.updates_per_epoch))
    return params, opt_state, jnp.mean(losses)


def update(state: BCState, data: dict) -> tuple[BCState, dict]:
    """One epoch (see the module docstring); metrics ``train_loss``, ``val_loss``, ``stopped``."""
    cfg = state.config
    n_valid = D.prefix_size(data["ends"], state.hparams["num_trajectories"])
    key = jax.random.fold_in(state.key, state.step)
    params, opt_state, train_loss = train_epoch(state.params, state.opt_state, key, cfg, data, n_valid)
    if cfg.early_stopping:  # a stopped run keeps its parameters
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(state.stopped, b, a), new, old)
        params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
    val = validation_loss(params, cfg, data, n_valid)
    better = val < state.best_val
    best_params = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), params, state.best_params)
    bad = jnp.where(better, 0, state.bad_epochs + 1)
    stopped = jnp.logical_or(state.stopped, bad >= cfg.patience) if cfg.early_stopping else state.stopped
    state = state.replace(params=params, opt_state=opt_state, best_params=best_params,
                          best_val=jnp.minimum(val, state.best_val), bad_epochs=bad, stopped=stopped, step=state.step + 1)
    return state, {"train_loss": train_loss, "val_loss": val, "best_val_loss": state.best_val,
                   "stopped": stopped.astype(jnp.float32), "transitions": n_valid.astype(jnp.float32)}


def policy_params(state: BCState):
    """The parameters of the final policy: the best-validation ones with early stopping, else the last."""
    return state.best_params if state.config.early_stopping else state.params


def make_trainer(config: BCConfig) -> Trainer:
    validate(config)
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update, num_steps=config.epochs,
                   data=data_of(config), config=config)


def make_train(config: BCConfig):
    """``train(key, hparams=None, data=None) -> (BCState, metrics[epochs])`` as one scan."""
    return _make_train(make_trainer(config))


def act(state: BCState, key: jax.Array, obs: jax.Array, greedy=True) -> jax.Array:
    """Environment actions at raw ``obs [B, ...]``: the greedy action / mean, or sampled."""
    spec = build(state.config).spec
    out = policy_out(state.config, policy_params(state), obs)
    a = jnp.where(jnp.asarray(greedy) > 0.5, policies.mode(out, spec.discrete), policies.sample(key, out, spec.discrete))
    return envs.env_action(spec, a)


def evaluate(state: BCState, key: jax.Array, num_episodes: int = 10) -> tuple[jax.Array, jax.Array]:
    """``(returns [E], lengths [E])`` of complete episodes of the cloned policy (greedy unless
    ``eval_greedy`` is 0)."""
    spec = build(state.config).spec
    policy = lambda k, obs: act(state, k, obs, state.hparams["eval_greedy"])
    return envs.rollout_returns(spec.env, spec.params, policy, key, num_episodes)


def warm_start(ppo_state, bc_params):
    """A PPO (or GAIL generator) state whose actor-critic parameters are BC's (same
    ``PolicyNetConfig`` and env: the same tree); ConfigError if the trees differ."""
    a, b = jax.tree_util.tree_structure(ppo_state.params), jax.tree_util.tree_structure(bc_params)
    shapes = lambda t: [x.shape for x in jax.tree_util.tree_leaves(t)]
    if a != b or shapes(ppo_state.params) != shapes(bc_params):
        raise ConfigError("the BC parameters do not fit this PPO network; accepted: a BC run with the same env and "
                          "policy config (policy.hidden, policy.activation, ...).")
    return ppo_state.replace(params=bc_params)
