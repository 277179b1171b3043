"""GAN training steps/s, jaxgen vs PyTorch, same architectures, same machine, same run.

One step = one discriminator update + one generator update (minimax BCE, Adam). Models: the
MLP GAN (G 100-256-512-1024-784, D 784-1024-512-256-1) and the MNIST DCGAN (width 64:
G 4x4x256 -> 7x7x128 -> 14x14x64 -> 28x28x1; D mirrored), batch 64 and 128, on real MNIST
(the bundled 5k training images). JAX: the jitted ``gan.data_step`` with the state donated,
dispatched step by step (the runner's "loop" mode, the faster on CPU; ``--mode scan`` times a
K-step ``lax.scan`` instead); compile time measured apart. PyTorch: the eager step of
``benchmarks/torch_gan.py``. Figures are medians of ``--repeats`` timings of ``--steps``
steps each, after one warm-up repeat.

    python benchmarks/bench_gan.py [--steps 20 --repeats 5 --markdown]
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import header, markdown_table, repeat, text_table, timed  # noqa: E402

from jaxgen.core.train import scan_steps  # noqa: E402
from jaxgen.data.mnist import load_mnist  # noqa: E402
from jaxgen.generative import gan  # noqa: E402


def jax_case(arch: str, batch: int, images, labels, steps: int, repeats: int, mode: str):
    cfg = gan.GANConfig(arch=arch, batch_size=batch, epochs=1)
    tr = gan.make_trainer(cfg, {"images": images, "labels": labels})
    state = tr.init(jax.random.PRNGKey(0), None)
    state = jax.tree_util.tree_map(lambda x: x.copy() if isinstance(x, jax.Array) else x, state)
    if mode == "loop":
        compiled, compile_s = timed(lambda: jax.jit(tr.step, donate_argnums=0).lower(state, tr.data).compile())
        box = [state]

        def run():
            s = box[0]
            for _ in range(steps):
                s, m = compiled(s, tr.data)
            jax.block_until_ready(m)
            box[0] = s
    else:
        f = jax.jit(lambda s, d: scan_steps(tr.step, s, d, steps), donate_argnums=0)
        compiled, compile_s = timed(lambda: f.lower(state, tr.data).compile())
        box = [state]

        def run():
            s, m = compiled(box[0], tr.data)
            jax.block_until_ready(m)
            box[0] = s
    st = repeat(run, repeats=repeats, warmup=1)
    return st.per_second(steps), compile_s, st.spread


def torch_case(arch: str, batch: int, images, steps: int, repeats: int):
    """Best of 1 and all threads (on a loaded machine PyTorch's multi-threaded kernels can be
    10x slower than one thread); returns (steps/s, spread, threads)."""
    import torch
    import torch_gan

    best = None
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        step = torch_gan.make(arch, batch, images)

        def run():
            for _ in range(steps):
                step()

        st = repeat(run, repeats=repeats, warmup=1)
        if best is None or st.per_second(steps) > best[0]:
            best = (st.per_second(steps), st.spread, threads)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--archs", default="mlp,dcgan")
    p.add_argument("--batches", default="64,128")
    p.add_argument("--mode", default="loop", choices=("loop", "scan"))
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    mn = load_mnist("train", "bundled")
    images, labels = mn.images, mn.labels
    try:
        import torch  # noqa: F401
        have_torch = not a.no_torch
    except ImportError:
        have_torch = False
    print(header("jax", "flax", "torch"), f"| JAX backend {jax.default_backend()}")
    rows = []
    import torch

    n_threads = torch.get_num_threads() if have_torch else 0
    for arch in a.archs.split(","):
        for b in (int(x) for x in a.batches.split(",")):
            js, jc, jsp = jax_case(arch, b, images, labels, a.steps, a.repeats, a.mode)
            if have_torch:
                torch.set_num_threads(n_threads)
            ts, tsp, tth = torch_case(arch, b, images, a.steps, a.repeats) if have_torch else (None, None, None)
            rows.append([f"{arch} GAN" if arch == "mlp" else "DCGAN 28x28", b, js, jc, jsp, ts, tsp, tth,
                         js / ts if ts else None])
            print(f"  {rows[-1][0]} batch {b}: jax {js:.2f} steps/s (compile {jc:.1f}s), torch {ts or float('nan'):.2f}", flush=True)
    hdr = ["model", "batch", "jaxgen steps/s", "compile s", "spread", "PyTorch steps/s", "spread", "torch threads", "speed-up"]
    print(markdown_table(hdr, rows) if a.markdown else text_table(hdr, rows))


if __name__ == "__main__":
    main()
