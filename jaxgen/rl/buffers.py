"""A device-resident replay buffer: a ring of fixed capacity, uniform sampling.

The buffer is a pytree (so it lives in the train state, is vmapped over seeds and
checkpointed with it): ``data`` holds every field of a transition with a leading
``[capacity]`` axis, ``pos`` is the next slot to write and ``size`` how many slots hold
data. ``add`` writes a batch of N transitions at ``pos .. pos+N-1`` (mod capacity),
overwriting the oldest once full; ``sample`` draws uniformly, with replacement, among
the ``size`` written slots only.

Storage dtypes are those of the example transition given to :func:`init` (e.g. store
0/1 MinAtar frames as ``uint8`` and cast back when sampling, a quarter of the memory).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxgen.core.errors import ConfigError


class ReplayBuffer(struct.PyTreeNode):
    data: Any  # pytree of [capacity, ...] arrays
    pos: jax.Array  # int32: next slot to write
    size: jax.Array  # int32: slots written (<= capacity)

    @property
    def capacity(self) -> int:
        return int(jax.tree_util.tree_leaves(self.data)[0].shape[0])


def init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for transitions shaped like ``example`` (one transition, no batch axis)."""
    if not (isinstance(capacity, int) and capacity >= 1):
        raise ConfigError(f"buffer capacity={capacity!r} is out of range; accepted: a whole number >= 1.")
    data = jax.tree_util.tree_map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data=data, pos=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Write ``batch`` (the transition pytree with a leading ``[N]`` axis, N <= capacity)."""
    cap = buffer.capacity
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    if n > cap:
        raise ConfigError(f"a batch of {n} transitions does not fit a buffer of capacity {cap}; accepted: N <= capacity.")
    idx = (buffer.pos + jnp.arange(n, dtype=jnp.int32)) % cap
    data = jax.tree_util.tree_map(lambda d, x: d.at[idx].set(x.astype(d.dtype), unique_indices=True), buffer.data, batch)
    return buffer.replace(data=data, pos=(buffer.pos + n) % cap, size=jnp.minimum(buffer.size + n, cap))


def sample_indices(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> jax.Array:
    """``int32[batch_size]`` slots drawn uniformly from the written ones (``size`` >= 1 assumed)."""
    return jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1), dtype=jnp.int32)


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """A batch of ``batch_size`` transitions (leading ``[batch_size]`` axis), uniform over written slots."""
    idx = sample_indices(buffer, key, batch_size)
    return jax.tree_util.tree_map(lambda d: d[idx], buffer.data)
