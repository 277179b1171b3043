"""Device placement: one ``Mesh`` over all local devices with a single ``batch`` axis.

The same code runs on 1 CPU, 8 GPUs or a TPU slice. Two uses:

* sweeps: the run axis (seeds x hyperparameters) is sharded over ``batch``;
* data parallelism: a step calls :func:`shard_batch` on its minibatch; under a mesh
  (``jax.set_mesh``) XLA splits the batch over devices and all-reduces the gradients,
  and with no mesh it is the identity.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "batch"


def device_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``batch`` over ``devices`` (default: all local devices)."""
    devices = jax.local_devices() if devices is None else devices
    return Mesh(np.asarray(devices), (AXIS,))


def replicate(tree, mesh: Mesh):
    """Place every leaf of ``tree`` whole on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(x: jax.Array) -> jax.Array:
    """Constrain ``x`` [B, ...] to be split over the ``batch`` axis of the current mesh, if any."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or AXIS not in mesh.axis_names or mesh.shape[AXIS] == 1:
        return x
    if x.shape[0] % mesh.shape[AXIS]:
        return x
    return jax.lax.with_sharding_constraint(x, P(AXIS))
