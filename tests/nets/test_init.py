"""jaxgen.nets.init.orthogonal: jax's numbers, and a vmapped init that returns on 2 CPU devices.

The regression: with jax's own initializer, a vmapped orthogonal init (the PPO actor-critic's)
sharded over 2 CPU devices of a 2-core machine never returns (batched LAPACK QR blocking every
thread of XLA's pool: jaxgen/nets/init.py). Checked by hand: the subprocess below, with
``jax.nn.initializers.orthogonal`` in place of jaxgen's, hung in 3 of 3 tries (killed at 60 s;
one call of the program hung in about 3 of 4 tries, hence 20 calls); with jaxgen's it returns
(~20 s under load 15, most of it importing and compiling). The subprocess has a timeout, so a
hang fails the test instead of blocking the suite.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxgen.nets.init import one_run_at_a_time, orthogonal

ROOT = Path(__file__).resolve().parents[2]
SHAPES = [(4, 64), (3, 3, 8, 16)]  # more rows than columns (a transposed Q), a conv kernel


@pytest.mark.parametrize("shape", SHAPES)
def test_orthogonal_is_jaxs_initializer_bit_for_bit(shape):
    key = jax.random.PRNGKey(7)
    mine = jax.jit(lambda k, g: orthogonal(g)(k, shape))
    theirs = jax.jit(lambda k, g: jax.nn.initializers.orthogonal(g)(k, shape))
    for gain in (0.01, 2 ** 0.5):
        np.testing.assert_array_equal(np.asarray(mine(key, gain)), np.asarray(theirs(key, gain)))
    flat = np.asarray(mine(key, 2 ** 0.5)).reshape(-1, shape[-1])  # orthonormal columns (or rows) x gain
    small = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(small, 2.0 * np.eye(len(small)), atol=1e-5)


def test_vmapped_orthogonal_runs_one_at_a_time_with_the_per_run_values():
    keys = jax.random.split(jax.random.PRNGKey(1), 6)
    one = jax.jit(lambda k: orthogonal(0.5)(k, (16, 8)))
    per_run = np.stack([np.asarray(one(k)) for k in keys])
    vmapped = jax.jit(jax.vmap(lambda k: orthogonal(0.5)(k, (16, 8))))
    np.testing.assert_array_equal(np.asarray(vmapped(keys)), per_run)
    nested = jax.jit(jax.vmap(jax.vmap(lambda k: orthogonal(0.5)(k, (16, 8)))))(keys.reshape(3, 2, 2))
    np.testing.assert_array_equal(np.asarray(nested).reshape(per_run.shape), per_run)
    # the program has no batched QR (the op whose batched CPU kernel deadlocks); jax's has
    qrs = [line for line in vmapped.lower(keys).as_text().splitlines() if "lapack_sgeqrf_ffi" in line]
    assert qrs and all('num_batch_dims = "0"' in line for line in qrs)
    theirs = jax.jit(jax.vmap(lambda k: jax.nn.initializers.orthogonal(0.5)(k, (16, 8)))).lower(keys).as_text()
    assert 'num_batch_dims = "1"' in theirs
    # an argument that is not batched is broadcast to the runs
    f = one_run_at_a_time(lambda a, b: a * b)
    np.testing.assert_array_equal(jax.vmap(f, in_axes=(0, None))(np.arange(3.0), 2.0), [0.0, 2.0, 4.0])


REPRO = textwrap.dedent("""
    import jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from jaxgen.nets.init import orthogonal
    assert jax.device_count() == 2
    sh = NamedSharding(Mesh(np.asarray(jax.devices()), ("b",)), P("b"))
    # the kernels of the PPO CartPole actor-critic (actor 4-64-64-2, critic 4-64-64-1), 4 runs per device
    shapes = [(4, 64), (64, 64), (64, 2), (4, 64), (64, 64), (64, 1)]
    init = lambda k: [orthogonal()(kk, s) for kk, s in zip(jax.random.split(k, len(shapes)), shapes)]
    f = jax.jit(jax.vmap(init), out_shardings=sh)
    total = 0.0
    for i in range(20):  # each call is another chance to deadlock (jax's initializer: most hang in the first)
        total += float(sum(x.sum() for x in f(jax.device_put(jax.random.split(jax.random.PRNGKey(i), 8), sh))))
    print(total, "done", flush=True)
""")


def test_the_ppo_actor_critic_init_has_no_batched_qr_under_vmap():
    from jaxgen.rl import policies

    net = policies.build("CartPole-v1", policies.PolicyNetConfig(), None).net
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    text = jax.jit(jax.vmap(lambda k: net.init(k, np.zeros((4,), np.float32)))).lower(keys).as_text()
    qrs = [line for line in text.splitlines() if "lapack_sgeqrf_ffi" in line]
    assert qrs and all('num_batch_dims = "0"' in line for line in qrs)


def test_vmapped_orthogonal_init_sharded_over_two_cpu_devices_returns():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="2", PYTHONPATH=str(ROOT))
    try:
        r = subprocess.run([sys.executable, "-c", REPRO], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:  # subprocess.run kills the child
        pytest.fail("the vmapped orthogonal init over 2 CPU devices did not return within 60 s (the LAPACK QR deadlock)")
    assert r.returncode == 0 and r.stdout.strip().endswith("done"), r.stderr[-3000:]
