"""DQN's own host pieces (the common ones are :mod:`jaxgen.rl.fit`'s: ``fit``, ``study``, ``eval``).

* ``PRESETS``: the named base configs of ``jaxgen train dqn --preset NAME`` (cartpole, minatar).
* :func:`freeway_study` is the course's study (eps decay x learning rate x gamma) on
  Freeway-MinAtar as one compile, with an optional ``scale`` that shortens the horizon and
  the decays alike (``jaxgen sweep dqn --freeway-study --scale 0.1``).
* :func:`inspect` is the Q-value inspection (``jaxgen inspect RUN_DIR``): for states drawn
  from the replay buffer, the Q of each action, the greedy action and the mean Q (a table
  and, for MinAtar, pictures).
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxgen.core import plotting
from jaxgen.rl import dqn, render
from jaxgen.rl.fit import study


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


def save_states(path: Path, obs: np.ndarray, q: dict) -> Path:
    plt = plotting._plt()
    n = len(obs)
    fig, axs = plt.subplots(1, n, figsize=(2 * n, 2.4), squeeze=False)
    for i, ax in enumerate(axs[0]):
        ax.imshow(render.minatar_rgb(obs[i]), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("Q " + " ".join(f"{v:.2f}" for v in q["q"][i]) + f"\na*={q['action'][i]}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
