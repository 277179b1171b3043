"""The training contract shared by every algorithm.

Each algorithm module offers pure ``init(key, config, hparams=None) -> State`` and
``train_step(state, batch) -> (State, metrics)`` (RL: ``update(state, key)``), and builds a
:class:`Trainer`: the same run described as ``init`` plus one compiled ``step`` that does
everything of one iteration on the device (draw the batch from device-resident data, or
collect a rollout), so that

* :func:`make_train` turns it into ``train(key, hparams=None) -> (state, metrics)``, the
  whole run as one ``lax.scan`` (``jax.jit(jax.vmap(train))(keys)`` trains many seeds);
* :func:`jaxgen.core.runner.run` executes the same ``step`` in compiled chunks with the
  host work (progress, logs, checkpoints, plots) between chunks only.

``step(state, data)`` receives ``data`` as an argument (not a closure), so large device
arrays are never baked into the compiled program as constants.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class Trainer(NamedTuple):
    """A run of one algorithm, ready to compile.

    Attributes:
      init: ``(key uint32[2], hparams dict) -> State``.
      step: ``(State, data) -> (State, metrics)``; metrics is a dict of scalars.
      num_steps: iterations in the whole run.
      data: device-resident pytree passed to every ``step`` (``None`` for RL).
      steps_per_epoch: iterations per pass over ``data`` (runner's default chunk), or 0.
      config: the frozen config the trainer was built from.
    """

    init: Callable[[jax.Array, dict], PyTree]
    step: Callable[[PyTree, PyTree], tuple[PyTree, dict]]
    num_steps: int
    data: PyTree = None
    steps_per_epoch: int = 0
    config: Any = None


def as_key(key) -> jax.Array:
    """Accept a typed key or a raw uint32[2] key; return raw key data (checkpointable)."""
    if isinstance(key, int):
        return jax.random.PRNGKey(key)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def scan_steps(step: Callable, state: PyTree, data: PyTree, length: int, unroll: int = 1):
    """Run ``length`` iterations of ``step`` in one ``lax.scan``; metrics get a leading axis."""

    def body(carry, _):
        return step(carry, data)

    return jax.lax.scan(body, state, None, length=length, unroll=unroll)


def make_train(trainer: Trainer) -> Callable:
    """``train(key, hparams=None) -> (state, metrics[num_steps])``: the whole run, jit/vmap-able."""

    def train(key, hparams=None, data=None):
        state = trainer.init(as_key(key), hparams)
        d = trainer.data if data is None else data
        return scan_steps(trainer.step, state, d, trainer.num_steps)

    return train


def _feistel(key: jax.Array, x: jax.Array, half_bits: int, rounds: int = 4) -> jax.Array:
    """A keyed bijection of [0, 2^(2*half_bits)) (balanced Feistel network, threefry rounds)."""
    mask = jnp.uint32((1 << half_bits) - 1)
    left, right = x >> half_bits, x & mask
    for r in range(rounds):
        rk = jax.random.fold_in(key, r)
        f = jax.vmap(lambda v: jax.random.bits(jax.random.fold_in(rk, v), dtype=jnp.uint32))(right) & mask
        left, right = right, left ^ f
    return (left << half_bits) | right


def permute_indices(key: jax.Array, x: jax.Array, n: int) -> jax.Array:
    """``pi(x)`` for a pseudo-random permutation ``pi`` of [0, n) chosen by ``key``.

    Evaluated elementwise in O(len(x)) (a Feistel network over the next even power of two,
    cycle-walked back into [0, n)), so a minibatch of a shuffled epoch costs O(B), not the
    O(n log n) of materialising ``jax.random.permutation(key, n)``.
    ``x``: int [B] in [0, n) -> int32 [B] in [0, n), distinct for distinct ``x``.
    """
    bits = max(2, (n - 1).bit_length())
    half = (bits + 1) // 2
    y = _feistel(key, x.astype(jnp.uint32), half)
    y = jax.lax.while_loop(lambda y: jnp.any(y >= n), lambda y: jnp.where(y >= n, _feistel(key, y, half), y), y)
    return y.astype(jnp.int32)


def batch_indices(key: jax.Array, step: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """Indices of minibatch ``step`` of an epoch-wise shuffled pass (no example repeats in an epoch).

    Args:
      key: uint32[2], the data-order key of the run.
      step: int scalar, the global iteration number.
    Returns:
      int32[batch_size]; epoch ``step // (num_examples // batch_size)`` visits the examples in
      the order of the permutation keyed by ``fold_in(key, epoch)`` (:func:`permute_indices`);
      the remainder of each epoch is dropped. Costs O(batch_size) per call.
    """
    per_epoch = num_examples // batch_size
    epoch, i = jnp.divmod(step, per_epoch)
    x = i * batch_size + jnp.arange(batch_size)
    return permute_indices(jax.random.fold_in(key, epoch), x, num_examples)


def tree_stack(trees: list) -> PyTree:
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)
