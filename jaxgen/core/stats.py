"""Running statistics kept in a train state (observation normalisation, reward scaling)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


class RunningStats(struct.PyTreeNode):
    """Running mean/variance of ``[..., *shape]`` values (the parallel-variance update of
    Chan et al. 1979): ``mean [*shape]``, ``var [*shape]``, ``count []``."""

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
