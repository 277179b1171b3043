"""Host-side orchestration of an autoencoder-family run: the runner plus evaluation and plots.

``fit(config, train, test, ...)`` trains through :func:`jaxgen.core.runner.run` (one chunk per
epoch by default) and, between chunks, logs the held-out -ELBO / reconstruction error and
redraws ``reconstructions.png`` (one row per epoch). At the end it evaluates the test split
(-ELBO, IWAE bound with ``iwae_k`` samples, reconstruction error) and writes
``samples.png`` (prior samples), ``latent.png`` (test-set mu, first two coordinates, coloured
by label), ``curves.png`` and ``results.json`` into the run directory.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import plotting, runner
from jaxgen.core.runner import ChunkInfo
from jaxgen.data.transforms import binarize, to_unit
from jaxgen.eval.likelihood import evaluate
from jaxgen.generative import autoencoder as ae

N_SHOW = 12


class EpochHook:
    """Per-epoch held-out metrics and the reconstruction-through-training figure."""

    def __init__(self, config: ae.AEConfig, val_images: np.ndarray, show: np.ndarray, run_dir: Path | None):
        self.config, self.val, self.show, self.run_dir = config, val_images, show, run_dir
        self._recon = jax.jit(ae.reconstruct)
        self.rows_path = run_dir / "recon_rows.npy" if run_dir else None

    def __call__(self, info: ChunkInfo) -> dict:
        if info.steps_per_epoch and info.step % info.steps_per_epoch and info.step < info.num_steps:
            return {}
        out = {}
        if self.val is not None and len(self.val):
            m = evaluate(ae.likelihood_model(info.state), self.val, iwae_k=0)
            out = {f"val_{k}": v for k, v in m.items()}
        if self.run_dir is not None:
            x = binarize(jax.random.PRNGKey(0), to_unit(jnp.asarray(self.show)), self.config.binarize)
            row = np.asarray(self._recon(info.state, x))[None]
            rows = np.concatenate([np.load(self.rows_path), row]) if self.rows_path.exists() else np.concatenate([np.asarray(x)[None], row])
            np.save(self.rows_path, rows, allow_pickle=False)
            labels = ["input"] + [f"epoch {i}" for i in range(1, len(rows))]
            plotting.save_grid(self.run_dir / "reconstructions.png", rows.reshape(-1, *rows.shape[2:]), N_SHOW,
                               "reconstructions through training", labels)
        return out


def final_plots(state: ae.AEState, test_images: np.ndarray, test_labels: np.ndarray, history: list, run_dir: Path) -> None:
    """samples.png (VAE), latent.png and curves.png in ``run_dir``."""
    cfg = state.config
    if cfg.variational:
        s = np.asarray(jax.jit(ae.sample_prior, static_argnums=2)(state, jax.random.PRNGKey(7), 64))
        plotting.save_grid(run_dir / "samples.png", s, 8, f"samples from the prior (latent {cfg.latent})")
    x = binarize(jax.random.PRNGKey(0), to_unit(jnp.asarray(test_images[:5000])), cfg.binarize)
    mu = np.asarray(jax.jit(ae.encode_mean)(state, x))
    if mu.shape[1] >= 2:
        plotting.save_scatter(run_dir / "latent.png", mu[:, :2], np.asarray(test_labels[:5000]),
                              f"test-set {'mu' if cfg.variational else 'code'} (first two coordinates)")
    keys = ["loss", "recon", "kl", "val_neg_elbo"] if cfg.variational else ["loss", "recon", "code_l1", "val_recon_bce"]
    plotting.save_curves(run_dir / "curves.png", history, keys, f"{cfg.model} {cfg.arch} latent {cfg.latent}")


def fit(
    config: ae.AEConfig,
    train_images: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    val_images: np.ndarray | None = None,
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: bool = False,
    chunk_steps: int | None = None,
    mode: str = "auto",
    progress: bool = True,
    iwae_k: int = 100,
    hparams: dict | None = None,
) -> dict:
    """Train ``config`` on ``train_images`` (uint8 [N, 28, 28, 1]); return the test metrics.

    The returned dict holds ``test`` (neg_elbo, iwae, recon_bce, recon_sq; nats per image),
    ``timings`` (compile_s, run_s, host_s, steps_per_s) and ``run_dir``.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    trainer = ae.make_trainer(config, {"images": train_images})
    hook = EpochHook(config, val_images, test_images[:N_SHOW], run_dir)
    res = runner.run(trainer, seed, run_dir=run_dir, chunk_steps=chunk_steps, resume=resume, hooks=[hook],
                     mode=mode, progress=progress, hparams=hparams)
    test = evaluate(ae.likelihood_model(res.state), test_images, iwae_k=iwae_k if config.variational else 0)
    t = res.timings
    out = {
        "config": {"model": config.model, "arch": config.arch, "latent": config.latent},
        "test": test,
        "timings": {**{k: t[k] for k in ("compile_s", "run_s", "host_s", "mode", "steps")},
                    "steps_per_s": t["steps"] / t["run_s"] if t["run_s"] else None},
        "run_dir": str(run_dir) if run_dir else None,
        "state": res.state,
    }
    if run_dir is not None:
        final_plots(res.state, test_images, test_labels, res.history, run_dir)
        (run_dir / "results.json").write_text(json.dumps({k: v for k, v in out.items() if k != "state"}, indent=2))
    return out
