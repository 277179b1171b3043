"""Runner overhead: the chunked runner against one un-chunked compiled run of the same steps.

Both execute the MLP VAE (latent 16, batch 128) on the bundled 5k MNIST subset for the same
number of steps with the same (``scan``) step program. The un-chunked run is
``jax.jit(make_train(config, data))`` — the whole run as one ``lax.scan``. The runner adds,
per chunk, a host round-trip of the chunk's metrics, a JSON log row, a progress-bar update
and (optionally) an orbax checkpoint. Overhead = (runner run+host time) / un-chunked - 1.
The phased rows run the same steps as two phases ("first" / "second", half the epochs each,
the step in two distinct wrappers, so each phase compiles its own programs): the cost of a
phase boundary beyond its compile (which is counted in compile_s, not here).

    python benchmarks/bench_runner.py [--epochs 20] [--repeats 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import header, markdown_table, repeat, text_table, timed  # noqa: E402

from jaxgen.core import runner  # noqa: E402
from jaxgen.core.train import Phase, Trainer  # noqa: E402
from jaxgen.data import load_mnist  # noqa: E402
from jaxgen.generative import autoencoder as ae  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--arch", default="mlp")
    args = p.parse_args(argv)
    print(header("jax", "flax", "orbax-checkpoint"))
    images = load_mnist("train", "bundled").images
    cfg = ae.AEConfig(arch=args.arch, latent=16, epochs=args.epochs)
    trainer = ae.make_trainer(cfg, {"images": images})
    n = trainer.num_steps
    train = jax.jit(ae.make_train(cfg, {"images": images}))
    key = jax.random.PRNGKey(0)
    _, compile_s = timed(lambda: jax.block_until_ready(train.lower(key).compile()))
    whole = repeat(lambda: jax.block_until_ready(train(key)), repeats=args.repeats)

    spe = trainer.steps_per_epoch
    half = (args.epochs // 2) * spe
    phased = Trainer.phased(trainer.init, [Phase("first", lambda s, d: trainer.step(s, d), half, spe),
                                           Phase("second", lambda s, d: trainer.step(s, d), n - half, spe)],
                            trainer.data, trainer.config)

    def via_runner(tr, chunk, ckpt):
        def go():
            d = tempfile.mkdtemp() if ckpt else None
            every = 1 if ckpt == "chunk" else None  # None: the default, time-based (every 30 s and at the end)
            r = runner.run(tr, 0, chunk_steps=chunk, mode="scan", progress=True, run_dir=d, checkpoint_every=every)
            return r.timings["run_s"] + r.timings["host_s"], r.timings["host_s"], r.timings["chunks"]
        go()  # warm the compile caches
        return sorted(go() for _ in range(args.repeats))[args.repeats // 2]

    rows = [["one compiled run (lax.scan over all steps)", n, "-", f"{whole.median:.3f}", f"{n / whole.median:.0f}", "-", "-",
             "-"]]
    cases = [(trainer, spe, None), (trainer, spe, "default"), (trainer, spe, "chunk"), (trainer, spe * 5, None),
             (trainer, spe * 5, "default"), (phased, spe, None), (phased, spe, "default"), (phased, spe * 3, None)]
    for tr, chunk, ckpt in cases:
        t, host, chunks = via_runner(tr, chunk, ckpt)
        label = ("runner, 2 phases, " if tr.is_phased else "runner, ") + f"chunk {chunk} steps, " + {
            None: "no run dir", "default": "run dir, default checkpoints (30 s + end)",
            "chunk": "run dir, checkpoint every chunk"}[ckpt]
        rows.append([label, n, chunks, f"{t:.3f}", f"{n / t:.0f}", f"{100 * (t / whole.median - 1):+.1f} %",
                     f"{100 * host / t:.2f} %", f"{1e3 * host / chunks:.2f}"])
    heads = ["execution", "steps", "chunks", "seconds (median)", "steps/s", "vs one run", "host work between chunks",
             "host ms / chunk"]
    print(f"\nMLP VAE latent 16, batch 128, {n} steps; compile of the one-run program {compile_s:.1f}s\n")
    print(text_table(heads, rows))
    print("\n" + markdown_table(heads, rows))


if __name__ == "__main__":
    main()
