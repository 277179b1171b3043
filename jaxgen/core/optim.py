"""Optimisers with traced hyperparameters, schedules and parameter averaging: written once.

* :func:`optimizer` builds an optax optimiser whose numeric hyperparameters (the learning
  rate, the clip norm, Adam's betas, ...) are **injected** (``optax.inject_hyperparams``):
  they live in the optimiser state as arrays, so a sweep ``vmap``s over them in one compile
  and a schedule sets them from inside the compiled step.
* :func:`init_opt_state` initialises it and copies the run's traced values (``hparams``)
  into the injected ones; :func:`set_hyperparams` / :func:`hyperparam` write / read them.
* :func:`linear_decay` is the one linear schedule (PPO's annealing, the GAN's decay).
* :func:`polyak` is the one parameter average (DQN's target network, the GAN's weight EMA).
* :func:`flat_view` lets a loop of many small optimiser steps run on one flat parameter vector
  (PPO's minibatch loop): the same optimiser, the same maths, a fraction of the operations.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

BASES = {"adam": optax.adam, "rmsprop": optax.rmsprop, "sgd": optax.sgd, "adamw": optax.adamw}


def optimizer(name: str = "adam", *, max_grad_norm: float | None = None, static: Mapping[str, Any] | None = None,
              **injected: float) -> optax.GradientTransformation:
    """``optax.inject_hyperparams`` over ``name`` (adam, rmsprop, sgd, adamw).

    Args:
      name: the base optimiser.
      max_grad_norm: None: no clipping; a number: global-norm clipping first, the norm
        injected (so it may be traced; ``inf`` clips nothing).
      static: keyword arguments of the base that stay Python constants (e.g. ``eps``).
      injected: keyword arguments of the base that become injected hyperparameters;
        ``learning_rate`` is required.
    Returns:
      A transformation whose state's ``hyperparams`` holds ``injected`` (and ``max_grad_norm``).
    """
    if name not in BASES:
        raise ValueError(f"optimizer {name!r} is not one of {', '.join(BASES)}")
    if "learning_rate" not in injected:
        raise TypeError("optimizer() needs learning_rate")
    base, fixed = BASES[name], dict(static or {})
    if max_grad_norm is None:
        return optax.inject_hyperparams(_named(lambda **hp: base(**hp, **fixed), injected))(**injected)

    def chain(max_grad_norm, **hp):
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), base(**hp, **fixed))

    return optax.inject_hyperparams(_named(chain, {"max_grad_norm": None, **injected}))(
        max_grad_norm=max_grad_norm, **injected)


def _named(factory, names):
    """``factory(**kw)`` with an explicit keyword-only signature over ``names``:
    ``inject_hyperparams`` binds its arguments through the signature, and a bare ``**kw``
    would arrive as one dict named ``kw`` (neither injected nor accepted by the base)."""
    factory.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names])
    return factory


def _inject_state(opt_state):
    """The ``InjectHyperparamsState`` of ``opt_state`` (itself, or inside a chain tuple)."""
    if hasattr(opt_state, "hyperparams"):
        return opt_state
    for s in opt_state if isinstance(opt_state, tuple) else ():
        if hasattr(s, "hyperparams"):
            return s
    raise TypeError("this optimiser state holds no injected hyperparameters")


def set_hyperparams(opt_state, values: Mapping[str, Any]):
    """A new ``opt_state`` whose injected hyperparameters named in ``values`` are replaced
    (copies: the caller's state is never mutated, and buffers stay distinct for donation)."""
    inj = _inject_state(opt_state)
    hyper = {**inj.hyperparams, **{k: jnp.array(v, jnp.asarray(inj.hyperparams[k]).dtype, copy=True)
                                   for k, v in values.items()}}
    new = inj._replace(hyperparams=hyper)
    if inj is opt_state:
        return new
    return tuple(new if s is inj else s for s in opt_state)


def hyperparam(opt_state, name: str) -> jax.Array:
    """The current value of injected hyperparameter ``name``."""
    return _inject_state(opt_state).hyperparams[name]


def init_opt_state(tx: optax.GradientTransformation, params, hparams: Mapping[str, Any] | None = None,
                   names: Mapping[str, str] | None = None):
    """``tx.init(params)`` with the injected hyperparameters taken from the run's traced values.

    ``names`` maps an injected name to its key in ``hparams`` (default: the same name); only
    the names present in both are set."""
    opt_state = tx.init(params)
    if not hparams:
        return opt_state
    inj = _inject_state(opt_state)
    names = names or {k: k for k in inj.hyperparams}
    values = {k: hparams[src] for k, src in names.items() if src in hparams and k in inj.hyperparams}
    return set_hyperparams(opt_state, values)


def linear_decay(step, start, end) -> jax.Array:
    """Factor 1 until ``step = start``, then linear to 0 at ``step = end`` (0 after), float32.

    ``linear_decay(t, 0, T) = 1 - t / T`` is PPO's annealing; the GAN's decay starts later."""
    t = jnp.asarray(step, jnp.float32)
    start = jnp.asarray(start, jnp.float32)
    span = jnp.maximum(jnp.asarray(end, jnp.float32) - start, 1.0)
    return jnp.clip(1.0 - (t - start) / span, 0.0, 1.0)


def polyak(target, online, tau) -> Any:
    """``tau * online + (1 - tau) * target`` leaf by leaf (Polyak / exponential moving average).

    ``tau = 1`` copies ``online``; an EMA of decay ``d`` is ``tau = 1 - d``. ``tau`` may be traced."""
    return jax.tree_util.tree_map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def ema_decay(decay, step) -> jax.Array:
    """A warmed-up EMA decay ``min(decay, (1 + step) / (10 + step))`` (as TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``): a short run does not average in its
    random initial weights."""
    t = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def flat_view(params, opt_state):
    """The run's parameters and optimiser state as one flat vector, for a loop of updates.

    Every elementwise optimiser (Adam, RMSprop, SGD) and global-norm clipping compute the same
    update on ``ravel(params)`` as leaf by leaf; on one vector it is a handful of fused
    operations instead of several per leaf, and the gradient of ``loss(unravel(flat))`` arrives
    as one vector. Measured (2026-12-07, 2-core AMD EPYC, XLA:CPU): a PPO minibatch step of two
    64x64 tanh MLPs on 128 transitions, median of 25 interleaved rounds of 400 steps, 248 -> 219
    us (minimum 216 -> 174 us). Results equal the leaf-by-leaf loop's up to float32 rounding (the
    global norm sums in another order).

    Args:
      params: a pytree of arrays (the parameters).
      opt_state: ``tx.init(params)``'s structure (e.g. :func:`optimizer`'s).
    Returns:
      ``(flat [P], flat_opt_state, unravel, restore)``: ``flat_opt_state`` holds ``[P]`` vectors
      where ``opt_state`` held parameter-shaped trees (Adam's moments), and the same ``tx``
      updates it; ``unravel(flat)`` is the parameter pytree; ``restore(flat, flat_opt_state)``
      gives back ``(params, opt_state)`` in their original structures.
    """
    flat, unravel = ravel_pytree(params)
    treedef, shapes = jax.tree_util.tree_structure(params), [jnp.shape(x) for x in jax.tree_util.tree_leaves(params)]

    def is_params(x) -> bool:  # a parameter-shaped subtree of the optimiser state (Adam's mu, nu)
        return (x is not None and jax.tree_util.tree_structure(x) == treedef
                and [jnp.shape(v) for v in jax.tree_util.tree_leaves(x)] == shapes)

    flat_opt = jax.tree_util.tree_map(lambda x: ravel_pytree(x)[0] if is_params(x) else x, opt_state, is_leaf=is_params)

    def restore(new_flat, new_opt):
        new_opt = jax.tree_util.tree_map(lambda old, new: unravel(new) if is_params(old) else new, opt_state, new_opt,
                                         is_leaf=is_params)
        return unravel(new_flat), new_opt

    return flat, flat_opt, unravel, restore
