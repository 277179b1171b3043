"""Weight initialisers that are safe to vmap over many runs on XLA:CPU.

:func:`orthogonal` is ``jax.nn.initializers.orthogonal`` (the same numbers, bit for bit) except
that, under ``vmap``, its QR decompositions run one run after the other instead of as one
batched LAPACK call. The reason is a deadlock in jaxlib 0.10.2 on CPU:

* a batched ``jnp.linalg.qr`` (``lapack_sgeqrf_ffi`` / ``lapack_sorgqr_ffi`` with a batch
  dimension -- what a vmapped orthogonal init lowers to) splits its batch over XLA's intra-op
  thread pool (``jax::ParallelBatchMap``) and *blocks the calling thread* until the pieces
  are done;
* XLA:CPU's thunk executor runs independent thunks (two layers' inits, or the programs of two
  CPU devices) *on that same pool*; once every pool thread (one per core) is such a blocked
  QR, nobody is left to run the pieces: every thread sleeps on a futex and the call never
  returns (native stacks: all ``tf_XLAEigen`` threads in ``ParallelBatchMap`` under
  ``QrFactorization::Kernel``).

Smallest reproducer, plain JAX, on a 2-core machine (it hangs; with 1 run per device, one
layer, or one device it returns)::

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python -c "
    import jax, numpy as np; from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    sh = NamedSharding(Mesh(np.asarray(jax.devices()), ('b',)), P('b'))
    orth = jax.nn.initializers.orthogonal()
    init = lambda k: [orth(kk, (64, 64)) for kk in jax.random.split(k, 2)]
    keys = jax.device_put(jax.random.split(jax.random.PRNGKey(0), 4), sh)
    print(jax.jit(jax.vmap(init), out_shardings=sh)(keys)[0].sum())"

It is what made a PPO CartPole sweep over 2 CPU devices never return (the vmapped init of
the actor-critic, 6 orthogonal layers), and very likely the "3-run wide-MLP init" hang that
``--xla_cpu_enable_concurrency_optimized_scheduler=false`` (once set by ``import jaxgen``; no longer,
since this fix) only made rarer. ``--xla_cpu_multi_thread_eigen=false`` does not help. The same class of bug (a thunk
re-entering the pool it runs on) is reported for XLA:CPU's FFT (PyAutoLabs/PyAutoFit#1530);
jax-ml/jax#39292 / #39383 describe ``ParallelBatchMap`` dispatching batched LAPACK calls over
the XLA pool. With the QRs in a ``lax.map`` each call has a batch of 1 and runs inline.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap


def one_run_at_a_time(f):
    """``f`` (arrays -> arrays) whose vmap is a ``lax.map`` over the batch: each call of ``f``
    sees unbatched arguments. For ops whose batched CPU kernel can deadlock (see the module
    docstring); the values are those of the batched call."""
    g = custom_vmap(f)

    @g.def_vmap
    def _rule(axis_size, in_batched, *args):
        args = [a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a))) for a, b in zip(args, in_batched)]
        out = jax.lax.map(lambda xs: g(*xs), tuple(args))
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return g


@one_run_at_a_time
def _qr(z: jax.Array):
    """``(q, r)`` of ``z [n, m]`` (reduced)."""
    return jnp.linalg.qr(z)


def orthogonal(scale: float = 1.0, column_axis: int = -1, dtype=None):
    """``jax.nn.initializers.orthogonal(scale, column_axis)``: a uniformly distributed orthogonal
    matrix (orthonormal rows or columns, whichever side is smaller) times ``scale``, of any
    shape with >= 2 dimensions; its QR runs one run at a time under vmap."""

    def init(key, shape, dtype=dtype):
        dtype = jnp.float32 if dtype is None else dtype
        if len(shape) < 2:
            raise ValueError(f"the orthogonal initializer needs a shape of >= 2 dimensions, not {tuple(shape)}.")
        if any(d == 0 for d in shape):
            return jnp.zeros(shape, dtype)
        n_rows, n_cols = math.prod(shape) // shape[column_axis], shape[column_axis]
        z = jax.random.normal(key, (max(n_rows, n_cols), min(n_rows, n_cols)), dtype)
        q, r = _qr(z)
        q = q * jnp.expand_dims(jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1)), -2)
        q = q.T if n_rows < n_cols else q
        q = jnp.reshape(q, tuple(np.delete(shape, column_axis)) + (shape[column_axis],))
        return jnp.array(scale, dtype) * jnp.moveaxis(q, -1, column_axis)

    return init
