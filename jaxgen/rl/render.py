"""Pictures of RL episodes and states: one episode played by a trained policy as a PNG strip
or an animated GIF (``jaxgen render``), MinAtar frames as coloured cells, drawings of the
classic-control states (CartPole, Pendulum, Acrobot, MountainCar; any other vector
observation as bars). Host-side only; the policy comes from the agent's ``act(state, key,
obs, greedy)``, found through the registry.
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import plotting
from jaxgen.registry import algorithm_of
from jaxgen.rl import envs


def load(run_dir):
    from jaxgen.rl.fit import load as _load

    return _load(run_dir)


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


def play(state, seed: int = 0, max_steps: int = 500, greedy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Observations ``[T, ...]`` and rewards ``[T]`` of one episode (up to ``max_steps``)."""
    act = algorithm_of(state.config).mod.act
    env, params = envs.make(state.config.env)

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        obs, es = env.reset(k0, params)

        def body(c, k):
            obs, es, done = c
            ka, ks = jax.random.split(k)
            a = act(state, ka, obs[None], greedy)[0]
            obs2, es2, r, term, trunc, info = env.step(ks, es, a, params)
            return (obs2, es2, done | term | trunc), (obs, r, done)

        _, (o, r, d) = jax.lax.scan(body, (obs, es, jnp.array(False)), jax.random.split(k1, max_steps))
        return o, r, d

    o, r, d = jax.device_get(run(jax.random.PRNGKey(seed)))
    n = int(np.argmax(d)) if d.any() else len(d)  # steps before the episode ended
    return np.asarray(o[:n]), np.asarray(r[:n])


def _draw_classic(ax, env_name: str, obs: np.ndarray) -> None:
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if env_name.startswith("CartPole"):
        x, th = float(obs[0]), float(obs[2])
        ax.plot([-2.4, 2.4], [0, 0], "k-", lw=1)
        ax.add_patch(__import__("matplotlib").patches.Rectangle((x - 0.25, -0.1), 0.5, 0.2, color="tab:blue"))
        ax.plot([x, x + np.sin(th)], [0, np.cos(th)], "-", color="tab:orange", lw=3)
        ax.set_xlim(-2.6, 2.6)
        ax.set_ylim(-0.4, 1.3)
    elif env_name.startswith("Pendulum"):
        c, s = float(obs[0]), float(obs[1])
        ax.plot([0, s], [0, c], "-", color="tab:orange", lw=4)
        ax.plot([0], [0], "ko")
        ax.set_xlim(-1.2, 1.2)
        ax.set_ylim(-1.2, 1.2)
    elif env_name.startswith("Acrobot"):
        t1 = np.arctan2(obs[1], obs[0])
        t2 = np.arctan2(obs[3], obs[2])
        p1 = np.array([np.sin(t1), -np.cos(t1)])
        p2 = p1 + np.array([np.sin(t1 + t2), -np.cos(t1 + t2)])
        ax.plot([0, p1[0], p2[0]], [0, p1[1], p2[1]], "-o", color="tab:blue", lw=3)
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_xlim(-2.2, 2.2)
        ax.set_ylim(-2.2, 2.2)
    elif env_name.startswith("MountainCar"):
        xs = np.linspace(-1.2, 0.6, 100)
        ax.plot(xs, np.sin(3 * xs) * 0.45, "k-", lw=1)
        p = float(obs[0])
        ax.plot([p], [np.sin(3 * p) * 0.45], "s", color="tab:blue", ms=8)
        ax.axvline(0.5, color="tab:green", lw=0.5)
        ax.set_aspect("auto")
    else:  # any other vector observation: its values as bars
        ax.bar(range(np.size(obs)), np.ravel(obs))
        ax.set_aspect("auto")


def frame_rgb(env_name: str, obs: np.ndarray, ax=None, scale: int = 16) -> np.ndarray:
    """One state as a picture ``[H, W, 3]`` uint8: a MinAtar frame ``[10, 10, C]`` as coloured
    cells (``scale`` pixels each), a classic-control state drawn on ``ax`` (a matplotlib axes
    of its own figure, reused across frames)."""
    if np.ndim(obs) == 3:
        img = minatar_rgb(np.asarray(obs, np.float32))
        return (np.kron(img, np.ones((scale, scale, 1))) * 255).astype(np.uint8)
    ax.clear()
    _draw_classic(ax, env_name, np.asarray(obs))
    ax.figure.canvas.draw()
    return np.asarray(ax.figure.canvas.buffer_rgba())[..., :3].copy()


def save_gif(frames: list, path: str | Path, fps: int = 15) -> Path:
    """Animated GIF (looping) of ``frames`` (each ``[H, W, 3]`` uint8), with Pillow."""
    from PIL import Image

    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return Path(path)


def render(state_or_dir, path: str | Path, frames: int = 8, seed: int = 0, greedy: bool = True,
           max_steps: int = 500, fps: int = 15) -> dict:
    """Play one episode and write it to ``path``: a ``.gif`` animates every step (at most
    ``max_steps``); any other suffix gives a PNG strip of ``frames`` evenly spaced states.
    MinAtar frames are shown as pictures, classic-control states are drawn. Returns
    {path, return, length}."""
    state = load(state_or_dir) if isinstance(state_or_dir, (str, Path)) else state_or_dir
    obs, rew = play(state, seed, max_steps, greedy)
    n, name = len(obs), state.config.env
    plt = plotting._plt()
    if str(path).lower().endswith(".gif"):
        fig, ax = plt.subplots(figsize=(2.4, 2.4), dpi=80)
        save_gif([frame_rgb(name, o, ax) for o in obs], path, fps)
        plt.close(fig)
        return {"path": str(path), "return": float(np.sum(rew)), "length": n}
    idx = np.unique(np.linspace(0, max(n - 1, 0), min(frames, max(n, 1))).astype(int))
    fig, axs = plt.subplots(1, len(idx), figsize=(2 * len(idx), 2.3), squeeze=False)
    for ax, i in zip(axs[0], idx):
        if np.ndim(obs[i]) == 3:
            ax.imshow(frame_rgb(name, obs[i], scale=1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            _draw_classic(ax, name, np.asarray(obs[i]))
        ax.set_title(f"t={i}", fontsize=8)
    fig.suptitle(f"{name}: return {float(np.sum(rew)):.1f}, {n} steps", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {"path": str(path), "return": float(np.sum(rew)), "length": n}
