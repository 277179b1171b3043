"""GAN training steps/s, jaxgen vs PyTorch, same architectures, same machine, same run.

One step = one discriminator update + one generator update (minimax BCE, Adam). Models: the
MLP GAN (G 100-256-512-1024-784, D 784-1024-512-256-1) and the MNIST DCGAN (width 64:
G 4x4x256 -> 7x7x128 -> 14x14x64 -> 28x28x1; D mirrored), batch 64 and 128, on real MNIST
(the bundled 5k training images). JAX: the jitted ``gan.data_step`` with the state donated,
dispatched step by step (the runner's "loop" mode, the faster on CPU; ``--mode scan`` times a
K-step ``lax.scan`` instead); compile time measured apart. PyTorch: the eager step of
``benchmarks/torch_gan.py``. Figures are medians of ``--repeats`` timings of ``--steps``
steps each, after one warm-up repeat. All variants of one (model, batch) -- jaxgen with each
``--deconv`` up-convolution method and PyTorch at 1 and 2 threads -- are timed round-robin
(``_timing.interleaved``), so load from other processes falls on all of them; the ratio is
against the faster PyTorch row.

    python benchmarks/bench_gan.py [--steps 20 --repeats 5 --markdown] [--deconv auto,subpixel]
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import header, interleaved, load_average, markdown_table, text_table, timed  # noqa: E402

from jaxgen.core.train import scan_steps  # noqa: E402
from jaxgen.data.mnist import load_mnist  # noqa: E402
from jaxgen.generative import gan  # noqa: E402


def jax_fn(arch: str, batch: int, images, labels, steps: int, mode: str, deconv: str = "auto"):
    """(compile_s, run): ``run()`` does ``steps`` jaxgen GAN steps and blocks."""
    cfg = gan.GANConfig(arch=arch, batch_size=batch, epochs=1, deconv=deconv)
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
    return compile_s, run


def torch_fn(arch: str, batch: int, images, steps: int, threads: int, device: str = "cpu"):
    import torch
    import torch_gan

    torch.set_num_threads(threads)
    step = torch_gan.make(arch, batch, images, device=device)

    def run():
        torch.set_num_threads(threads)
        for _ in range(steps):
            step()

    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--archs", default="mlp,dcgan")
    p.add_argument("--batches", default="64,128")
    p.add_argument("--mode", default="loop", choices=("loop", "scan"))
    p.add_argument("--deconv", default="auto", help="comma-separated DCGAN up-convolution methods to time (auto, matmul, subpixel, xla)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--torch-device", default="cpu", help="cpu, or cuda (PyTorch CUDA, where installed)")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    mn = load_mnist("train", "bundled")
    images, labels = mn.images, mn.labels
    try:
        import torch
        have_torch = not a.no_torch
    except ImportError:
        have_torch = False
    print(header("jax", "flax", "torch"), f"| JAX backend {jax.default_backend()} | load {load_average()}")
    rows = []
    threads = sorted({1, torch.get_num_threads()}) if have_torch else []
    if have_torch and a.torch_device != "cpu":
        threads = [torch.get_num_threads()]
    for arch in a.archs.split(","):
        for b in (int(x) for x in a.batches.split(",")):
            fns, comp = {}, {}
            for dc in (a.deconv.split(",") if arch == "dcgan" else ["auto"]):
                comp[f"jaxgen deconv={dc}"], fns[f"jaxgen deconv={dc}"] = jax_fn(arch, b, images, labels, a.steps, a.mode, dc)
            for t in threads:
                name = f"PyTorch {t} thread(s)" if a.torch_device == "cpu" else f"PyTorch {a.torch_device}"
                fns[name] = torch_fn(arch, b, images, a.steps, t, a.torch_device)
            stats = interleaved(fns, a.repeats, warmup=1)
            ts = max((stats[n].per_second(a.steps) for n in fns if n.startswith("PyTorch")), default=None)
            model = f"{arch} GAN" if arch == "mlp" else "DCGAN 28x28"
            for n in fns:
                sps = stats[n].per_second(a.steps)
                ratio = (sps / ts if n.startswith("jaxgen") else "-") if ts else None
                rows.append([model, b, n, comp.get(n, "-"), sps, f"{100 * stats[n].spread:.0f} %", ratio])
                print("  " + " | ".join(str(c) for c in rows[-1]), flush=True)
    hdr = ["model", "batch", "implementation", "compile s", "steps/s (median)", "spread", "jaxgen / fastest PyTorch"]
    print(markdown_table(hdr, rows) if a.markdown else text_table(hdr, rows))
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
