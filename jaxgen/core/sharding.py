"""Device placement: one ``Mesh`` over all devices with a single ``batch`` axis.

The same code runs on 1 CPU, 8 GPUs or a TPU slice, in one process or in several
(:mod:`jaxgen.core.distributed`: the mesh then spans every process's devices, and each
process places only the shards that live on its own devices). Two uses:

* sweeps: the run axis (seeds x hyperparameters) is sharded over ``batch``;
* data parallelism: a step calls :func:`shard_batch` on its minibatch; under a mesh
  (``jax.set_mesh``) XLA splits the batch over devices and all-reduces the gradients,
  and with no mesh it is the identity. The data set is replicated on every device, or --
  several processes -- split by rows: each process reads only :func:`process_rows` of it
  and :func:`from_process_rows` makes the one global array (in process order, so row ``i``
  is row ``i`` of the whole set and every minibatch is the single-process one);
  :func:`join_process_rows` does it for equal shares, :func:`zeros_rows_like` places a
  default column (e.g. labels) by rows as the data are.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "batch"


def device_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``batch`` over ``devices`` (default: all devices of all processes,
    in process order -- with one process, its local devices)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (AXIS,))


def _spans_processes(mesh: Mesh) -> bool:
    return any(d.process_index != jax.process_index() for d in mesh.devices.flat)


def _put(x, sharding: NamedSharding):
    """``x`` (the same whole value on every process) placed with ``sharding``; each process
    transfers only the pieces its own devices hold."""
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if not _spans_processes(sharding.mesh):
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return jax.jit(lambda v: v, out_shardings=sharding)(x)
    a = np.asarray(x)
    return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])


def replicate(tree, mesh: Mesh):
    """Place every leaf of ``tree`` whole on every device of ``mesh``."""
    sh = NamedSharding(mesh, P())
    return jax.tree_util.tree_map(lambda x: _put(x, sh), tree)


def shard_rows(tree, mesh: Mesh):
    """Split every leaf of ``tree`` ([R, ...], R a multiple of the mesh size, the same whole
    value on every process) over ``batch``: each device holds R / devices rows."""
    sh = NamedSharding(mesh, P(AXIS))
    return jax.tree_util.tree_map(lambda x: _put(x, sh), tree)


def place_runs(tree):
    """``tree`` (leaves ``[R, ...]``, R runs of a vmapped program, e.g. the seeds' keys) split
    over this process's devices when there are several and R divides over them, else unchanged.

    ``jit(vmap(train))`` follows its inputs' placement, so each device then runs R / devices of
    the runs at once with nothing exchanged between them. On a CPU, JAX shows one device unless
    told otherwise; ``JAX_NUM_CPU_DEVICES=2`` (one per core, set before JAX starts) makes two, and
    8 vmapped PPO CartPole seeds then run 2x faster on a 2-core machine (33.6 -> 16.9 s,
    ``benchmarks/RESULTS.md``).
    A multi-process run places its runs through :func:`jaxgen.core.sweep.sweep` instead."""
    devices = jax.local_devices()
    rows = {int(np.shape(x)[0]) for x in jax.tree_util.tree_leaves(tree)}
    if len(devices) == 1 or jax.process_count() > 1 or len(rows) != 1 or rows.pop() % len(devices):
        return tree
    return shard_rows(tree, device_mesh(devices))


def process_rows(n: int, index: int | None = None, count: int | None = None) -> tuple[int, int]:
    """``(start, stop)``: the contiguous rows of an ``n``-row data set that process ``index`` of
    ``count`` (default: this one, of all) reads -- equal shares in process order."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    if n % count:
        raise ValueError(f"{n} rows do not split evenly over {count} processes.")
    share = n // count
    return index * share, (index + 1) * share


def from_process_rows(tree, mesh: Mesh, n: int):
    """Global arrays ``[n, ...]`` split over ``batch`` from every process's own rows (its
    :func:`process_rows` of each leaf, ``[n / processes, ...]``): no process holds, or
    transfers, the others' rows. ``n`` must be a multiple of the mesh size."""
    sh = NamedSharding(mesh, P(AXIS))
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sh, np.asarray(x), (n, *np.shape(x)[1:])), tree)


def join_process_rows(tree, mesh: Mesh | None = None):
    """Global arrays ``[m * processes, ...]`` split over ``batch`` of ``mesh`` (default: all
    devices) from every process's own rows (each leaf ``[m, ...]``, the same ``m`` on every
    process; process ``i``'s rows become rows ``i * m`` to ``(i + 1) * m``), or None when ``m``
    does not divide over this process's devices of the mesh (the caller then uses the whole
    data, as with one process). ``m`` is the same on every process, so all decide alike."""
    mesh = device_mesh() if mesh is None else mesh
    counts = {int(np.shape(x)[0]) for x in jax.tree_util.tree_leaves(tree)}
    if len(counts) != 1:
        raise ValueError(f"the leaves have different numbers of rows {sorted(counts)}; accepted: one number.")
    m = counts.pop()
    owners = [d.process_index for d in mesh.devices.flat]
    local = owners.count(jax.process_index())
    if not m or not local or m % local:
        return None
    return from_process_rows(tree, mesh, m * len(set(owners)))


def zeros_rows_like(x, dtype=jnp.int32) -> jax.Array:
    """Zeros ``[n]`` (``n`` the rows of ``x``) placed by rows as ``x`` is: split over the same
    mesh axis when ``x`` is a global array split over processes (every process creates only
    its own rows; all must call it), else a plain array."""
    n = int(np.shape(x)[0])
    sh = getattr(x, "sharding", None)
    if is_split_over_processes(x) and isinstance(sh, NamedSharding):
        rows = NamedSharding(sh.mesh, P(*tuple(sh.spec)[:1]))
        return jax.jit(lambda: jnp.zeros((n,), dtype), out_shardings=rows)()
    return jnp.zeros((n,), dtype)


def split_rows_over_processes(x, mesh: Mesh | None = None):
    """``x [n, ...]`` (a data set every process has whole) as one global array split by rows
    over ``mesh`` (default: all devices), each process placing only its :func:`process_rows`;
    ``x`` unchanged with one process, or when ``n`` does not divide over the mesh's devices
    (it is then replicated, as in a single-process run)."""
    mesh = device_mesh() if mesh is None else mesh
    n = int(np.shape(x)[0])
    if jax.process_count() == 1 or n % mesh.size or isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x
    start, stop = process_rows(n)
    return from_process_rows(np.asarray(x[start:stop]), mesh, n)


def is_split_over_processes(x) -> bool:
    """True for a global array some of whose rows live only in other processes."""
    return isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated


def shard_batch(x: jax.Array) -> jax.Array:
    """Constrain ``x`` [B, ...] to be split over the ``batch`` axis of the current mesh, if any."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or AXIS not in mesh.axis_names or mesh.shape[AXIS] == 1:
        return x
    if x.shape[0] % mesh.shape[AXIS]:
        return x
    return jax.lax.with_sharding_constraint(x, P(AXIS))
