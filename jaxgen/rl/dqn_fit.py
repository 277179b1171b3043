"""Host-side orchestration of DQN: the one runner plus evaluation episodes, plots and studies.

* :func:`fit` trains one seed through :func:`jaxgen.core.runner.run`; between chunks an
  :class:`EvalHook` plays ``eval_episodes`` complete episodes at ``eval_epsilon`` and logs
  ``eval_return``; at the end ``curves.png`` (training and evaluation return, loss,
  Q, epsilon) and ``results.json`` go to the run directory.
* :func:`study` runs many seeds x traced hyper-parameters as ONE vmapped compile
  (:func:`jaxgen.core.sweep.sweep`), evaluating every run between chunks, and writes a
  table of final training/evaluation returns and one learning-curve plot per factor.
  :func:`freeway_study` is the course's study (eps decay x learning rate x gamma) on
  Freeway-MinAtar, with an optional ``scale`` that shortens the horizon and the decays alike.
* :func:`inspect` is the Q-value inspection: for states drawn from the replay buffer, the Q
  of each action, the greedy action and the mean Q (a table and, for MinAtar, pictures).
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from jaxgen.core import plotting, runner
from jaxgen.rl import dqn
from jaxgen.rl.evaluation import EvalHook, first_reaching
from jaxgen.rl.study import run_study



def env_steps(history: list, config: dqn.DQNConfig) -> list:
    """Add ``env_steps`` (= iterations x num_envs) to each logged row; return the rows."""
    for r in history:
        r["env_steps"] = r["step"] * config.num_envs
    return history



def fit(
    config: dqn.DQNConfig,
    seed: int = 0,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    chunk_steps: int | None = None,
    eval_episodes: int = 10,
    eval_every: int = 1,
    mode: str = "scan",
    progress: bool = True,
    hparams: dict | None = None,
    threshold: float | None = None,
) -> dict:
    """Train one seed; return ``history``, ``final`` (last row), ``timings`` (compile_s,
    run_s, host_s, eval_s, env_steps_per_s), ``first_eval_reaching`` (env steps at which
    the evaluation return first reached ``threshold``) and the final ``state``."""
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    trainer = dqn.make_trainer(config)
    chunk_steps = chunk_steps or max(1, trainer.num_steps // 50)
    hook = EvalHook(dqn.evaluate, eval_episodes, eval_every)
    res = runner.run(trainer, seed, run_dir=run_dir, chunk_steps=chunk_steps, resume=resume, hooks=[hook],
                     mode=mode, progress=progress, hparams=hparams)
    hist = env_steps(res.history, config)
    t = res.timings
    steps = t["steps"] * config.num_envs
    out = {
        "env": config.env, "seed": seed,
        "final": hist[-1] if hist else {},
        "timings": {**{k: t[k] for k in ("compile_s", "run_s", "host_s", "mode")}, "eval_s": hook.seconds,
                    "env_steps_per_s": steps / t["run_s"] if t["run_s"] else None},
        "first_eval_reaching": first_reaching(hist, "eval_return", threshold) if threshold is not None else None,
        "history": hist,
        "state": res.state,
    }
    if run_dir is not None:
        plot_curves(run_dir / "curves.png", hist, f"DQN {config.env} seed {seed}")
        (run_dir / "results.json").write_text(json.dumps({k: v for k, v in out.items() if k not in ("state", "history")}, indent=2))
    return out


def plot_curves(path: Path, history: list, title: str) -> Path:
    """Training and evaluation returns, loss, mean Q and epsilon against env steps."""
    return plotting.save_curves(path, history, ["episode_return", "eval_return", "loss", "q_mean", "epsilon"], title,
                                x="env_steps")


def study(
    config: dqn.DQNConfig,
    seeds=4,
    grid: dict | None = None,
    run_dir: str | Path | None = None,
    **kwargs,
) -> dict:
    """Every (grid point, seed) of a DQN config in ONE vmapped compile: see
    :func:`jaxgen.rl.study.run_study` (its keyword options pass through); evaluation episodes
    are played at ``config.eval_epsilon``."""
    return run_study(dqn.make_trainer(config), dqn.evaluate, config.num_envs, seeds, grid, run_dir,
                     label=f"DQN {config.env}", **kwargs)


# Freeway-MinAtar: the course's study. Full length is 5e6 env steps with decays {5e5, 1e6, 4e6}.
FREEWAY = dqn.DQNConfig(
    env="Freeway-MinAtar", num_envs=8, total_steps=5_000_000, buffer_size=100_000, batch_size=32,
    network="minatar", huber_delta=1.0, learning_rate=1e-4, gamma=0.99, eps_start=1.0, eps_end=0.1,
    eps_decay_steps=1_000_000, learning_starts=5_000, target_period=8_000, eval_epsilon=0.1,
)
# Named base configs of `jaxgen train dqn --preset NAME` (options given on the command line override them).
PRESETS = {"cartpole": dqn.DQNConfig(), "minatar": FREEWAY}
FREEWAY_GRID = {"eps_decay_steps": [5e5, 1e6, 4e6], "learning_rate": [1e-3, 1e-4], "gamma": [0.8, 0.9, 0.99]}


def freeway_study(seeds=2, scale: float = 1.0, run_dir=None, config: dqn.DQNConfig = FREEWAY, **kwargs) -> dict:
    """The course's Freeway study as one compile. ``scale < 1`` shortens the run and the three
    epsilon decays by the same factor (and the buffer, keeping ``buffer_size >= batch_size``)."""
    import dataclasses

    total = int(config.total_steps * scale) // config.num_envs * config.num_envs
    buf = max(config.batch_size, int(config.buffer_size * min(1.0, scale * 2)))
    cfg = dataclasses.replace(config, total_steps=total, buffer_size=buf)
    grid = dict(FREEWAY_GRID)
    grid["eps_decay_steps"] = [d * scale for d in grid["eps_decay_steps"]]
    return study(cfg, seeds, grid, run_dir, **kwargs)


def inspect(state: dqn.DQNState, n: int = 8, seed: int = 0, path: str | Path | None = None) -> dict:
    """Q values of ``n`` states drawn from the replay buffer: ``q [n, A]``, ``action [n]``,
    ``mean_q [n]`` (lists), and for image observations a picture of each state with its Q
    values as title (``path``)."""
    obs = dqn.sample_states(state, jax.random.PRNGKey(seed), n)
    out = {k: np.asarray(v).tolist() for k, v in jax.jit(dqn.inspect_q)(state, obs).items()}
    if path is not None and obs.ndim == 4:
        save_states(Path(path), np.asarray(obs), out)
    return out


def minatar_rgb(obs: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` 0/1 MinAtar channels -> ``[H, W, 3]`` RGB (one colour per channel, white background)."""
    import matplotlib

    c = obs.shape[-1]
    cmap = matplotlib.colormaps["tab10"]
    colours = np.asarray([cmap(i % 10)[:3] for i in range(c)])
    img = np.ones(obs.shape[:2] + (3,))
    for i in range(c):
        img[obs[..., i] > 0.5] = colours[i]
    return img


def save_states(path: Path, obs: np.ndarray, q: dict) -> Path:
    plt = plotting._plt()
    n = len(obs)
    fig, axs = plt.subplots(1, n, figsize=(2 * n, 2.4), squeeze=False)
    for i, ax in enumerate(axs[0]):
        ax.imshow(minatar_rgb(obs[i]), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("Q " + " ".join(f"{v:.2f}" for v in q["q"][i]) + f"\na*={q['action'][i]}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
