"""Per-layer and per-network timings of the DCGAN 28x28 / conv VAE convolutions, jaxgen vs PyTorch.

    python benchmarks/bench_conv_layers.py [--batch 128] [--repeats 7] [--parts up,down,nets]

Tables (ms per call, min / median of ``--repeats`` rounds; all rows of one table are timed
round-robin in one process, so load from other processes falls on all of them):

* ``up``: the stride-2 up-convolutions of the DCGAN generator (4->7 3x3, 7->14 and 14->28 4x4),
  forward + input and weight gradients, for each jaxgen method (``matmul``: GEMM + col2im,
  ``subpixel``, ``xla``: ``lax.conv_transpose``) and PyTorch ``ConvTranspose2d``;
* ``down``: the DCGAN discriminator's strided 4x4 convolutions (flax ``Conv`` on XLA vs PyTorch
  ``Conv2d``), forward and forward + backward;
* ``nets``: the whole generator and discriminator, forward and forward + backward, jaxgen's
  default (``deconv="auto"``) vs PyTorch (``benchmarks/torch_gan.py``).

Findings and figures: ``benchmarks/notes/profile.md``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import _timing as T  # noqa: E402
import torch_gan as tg  # noqa: E402
from jaxgen.nets.conv import conv_transpose4  # noqa: E402
from jaxgen.nets.gan import DCGANDiscriminator, DCGANGenerator, upconv3  # noqa: E402


def _nchw(shape):
    return (shape[0], shape[3], shape[1], shape[2])


def _rand(key, shape):
    return jax.random.normal(jax.random.key(key), shape)


def up_cases(b):
    """(name, fn) -> (callable, args): fwd + both gradients of each up-convolution."""
    out = {}
    for label, shape, f, k in [("4->7 (3x3)", (b, 4, 4, 256), 128, 3), ("7->14", (b, 7, 7, 128), 64, 4),
                               ("14->28", (b, 14, 14, 64), 1, 4)]:
        x, w = _rand(0, shape), 0.1 * _rand(1, (k, k, shape[-1], f))
        for method in ("matmul", "subpixel", "xla"):
            fn = (lambda x, w, m=method: upconv3(x, w, None, m)) if k == 3 else (lambda x, w, m=method: conv_transpose4(x, w, None, m))
            dy = _rand(2, jax.eval_shape(fn, x, w).shape)
            out[(label, f"jaxgen {method}")] = (jax.jit(jax.grad(lambda x, w, fn=fn, dy=dy: jnp.sum(fn(x, w) * dy), (0, 1))), (x, w))
        tm = torch.nn.ConvTranspose2d(shape[-1], f, k, 2, 1, bias=False)
        tx = torch.randn(*_nchw(shape), requires_grad=True)
        tdy = torch.randn(*_nchw(dy.shape))

        def tb(tm=tm, tx=tx, tdy=tdy):
            y = tm(tx)
            y.backward(tdy)
            return y

        out[(label, "PyTorch")] = (tb, ())
    return out


def down_cases(b):
    out = {}
    conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))  # noqa: E731
    for label, shape, f, pad in [("28->14 x64", (b, 28, 28, 1), 64, 1), ("14->7 x128", (b, 14, 14, 64), 128, 1),
                                 ("7->4 x256", (b, 7, 7, 128), 256, 2)]:
        x, w = _rand(0, shape), 0.1 * _rand(1, (4, 4, shape[-1], f))
        dy = _rand(2, jax.eval_shape(conv, x, w).shape)
        out[(label, "jaxgen fwd")] = (jax.jit(conv), (x, w))
        out[(label, "jaxgen fwd+bwd")] = (jax.jit(jax.grad(lambda x, w, dy=dy: jnp.sum(conv(x, w) * dy), (0, 1))), (x, w))
        tm = torch.nn.Conv2d(shape[-1], f, 4, 2, 0, bias=False)
        tx = torch.randn(*_nchw(shape), requires_grad=True)
        tdy = torch.randn(*_nchw(dy.shape))
        padf = lambda t, pad=pad: torch.nn.functional.pad(t, (1, pad, 1, pad))  # noqa: E731

        def tf(tm=tm, tx=tx, padf=padf):
            with torch.no_grad():
                return tm(padf(tx))

        def tb(tm=tm, tx=tx, tdy=tdy, padf=padf):
            y = tm(padf(tx))
            y.backward(tdy)
            return y

        out[(label, "PyTorch fwd")] = (tf, ())
        out[(label, "PyTorch fwd+bwd")] = (tb, ())
    return out


def net_cases(b):
    out = {}
    z, x = _rand(0, (b, 100)), _rand(1, (b, 28, 28, 1))
    G, D = DCGANGenerator(), DCGANDiscriminator()
    vg, vd = jax.jit(G.init)(jax.random.key(2), z), jax.jit(D.init)(jax.random.key(3), x)
    gf = lambda p, z: G.apply({"params": p, "batch_stats": vg["batch_stats"]}, z, mutable=["batch_stats"])[0]  # noqa: E731
    df = lambda p, x: D.apply({"params": p, "batch_stats": vd["batch_stats"]}, x, mutable=["batch_stats"])[0]  # noqa: E731
    out[("G", "jaxgen fwd")] = (jax.jit(gf), (vg["params"], z))
    out[("G", "jaxgen fwd+bwd")] = (jax.jit(jax.grad(lambda p, z: jnp.sum(gf(p, z) ** 2))), (vg["params"], z))
    out[("D", "jaxgen fwd")] = (jax.jit(df), (vd["params"], x))
    out[("D", "jaxgen fwd+bwd")] = (jax.jit(jax.grad(lambda p, x: jnp.sum(df(p, x) ** 2))), (vd["params"], x))
    g, d = tg.DCG(), tg.DCD()
    tz, tx = torch.randn(b, 100), torch.randn(b, 1, 28, 28)

    def fwd(m, t):
        with torch.no_grad():
            return m(t)

    def both(m, t):
        y = m(t)
        (y ** 2).sum().backward()
        return y

    out[("G", "PyTorch fwd")] = (lambda: fwd(g, tz), ())
    out[("G", "PyTorch fwd+bwd")] = (lambda: both(g, tz), ())
    out[("D", "PyTorch fwd")] = (lambda: fwd(d, tx), ())
    out[("D", "PyTorch fwd+bwd")] = (lambda: both(d, tx), ())
    return out


def time_all(fns: dict, repeats: int, calls: int = 3) -> dict:
    """Round-robin: ``{key: [ms per call of each round]}``."""
    for f, a in fns.values():
        jax.block_until_ready(f(*a))
    ts = {k: [] for k in fns}
    for _ in range(repeats):
        for k, (f, a) in fns.items():
            t = time.perf_counter()
            for _ in range(calls):
                o = f(*a)
            jax.block_until_ready(o)
            ts[k].append((time.perf_counter() - t) / calls * 1e3)
    return ts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    p.add_argument("--parts", default="up,down,nets")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(T.header("jax", "flax", "torch"), f"| torch threads {a.threads}, OMP_WAIT_POLICY {os.environ['OMP_WAIT_POLICY']}")
    builders = {"up": up_cases, "down": down_cases, "nets": net_cases}
    for part in a.parts.split(","):
        fns = builders[part](a.batch)
        ts = time_all(fns, a.repeats)
        rows = [[layer, impl, float(np.min(v)), float(np.median(v))] for (layer, impl), v in ts.items()]
        print(f"\n{part} (batch {a.batch}; ms per call; load {T.load_average()})")
        print(T.markdown_table(["layer", "implementation", "min ms", "median ms"], rows), flush=True)


if __name__ == "__main__":
    main()
