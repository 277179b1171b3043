"""Host side of the policy-gradient agents (PPO, REINFORCE): what ``jaxgen train ppo|reinforce``,
``jaxgen eval`` and ``jaxgen render`` call.

* :func:`fit` trains one seed through :func:`jaxgen.core.runner.run` (mode "scan");
  between chunks an :class:`EvalHook` plays complete evaluation episodes; at the end
  ``curves.png`` (training/evaluation return and the losses against env steps) and
  ``results.json`` go to the run directory, whose orbax checkpoint (the runner's) is the
  saved policy.
* :func:`load` restores the final state of a run directory (PPO or REINFORCE, read from
  its ``config.json``); :func:`evaluate_run` plays episodes with it; :func:`render` plays
  one episode and writes a PNG strip or an animated GIF of its frames (MinAtar frames, or drawings of the
  classic-control states: CartPole, Pendulum, Acrobot, MountainCar).
* :func:`study` trains seeds x traced hyper-parameters as ONE vmapped compile, chunked, with
  evaluation between chunks, a table and one curve plot per factor (``jaxgen sweep ppo``).
* :func:`seeds_check` trains many seeds as ONE vmapped compile and reports the final
  training and evaluation returns per seed (the learning checks of benchmarks/notes/policy_gradient.md).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import plotting, runner
from jaxgen.core.errors import ConfigError
from jaxgen.rl import envs, ppo, reinforce
from jaxgen.rl.evaluation import EVAL_SEED, EvalHook, first_reaching
from jaxgen.rl.study import run_study

ALGOS = {"ppo": ppo, "reinforce": reinforce}
CONFIGS = {"PPOConfig": ppo, "ReinforceConfig": reinforce}


def module_of(config):
    """The agent module (``ppo`` or ``reinforce``) of a config."""
    mod = CONFIGS.get(type(config).__name__)
    if mod is None:
        raise ConfigError(f"config of type {type(config).__name__} is not a policy-gradient config; "
                          f"accepted: {', '.join(CONFIGS)}.")
    return mod


def steps_per_iteration(config) -> int:
    """Env steps per iteration (PPO: the batch; REINFORCE: the episodes' slots, an upper bound)."""
    if isinstance(config, ppo.PPOConfig):
        return config.batch_size
    return config.num_envs * reinforce.build(config).rollout_len


def fit(config, seed: int = 0, run_dir: str | Path | None = None, *, resume: bool = False,
        chunk_steps: int | None = None, eval_episodes: int = 10, eval_every: int = 1, mode: str = "scan",
        progress: bool = True, hparams: dict | None = None, threshold: float | None = None) -> dict:
    """Train one seed of a :class:`~jaxgen.rl.ppo.PPOConfig` or
    :class:`~jaxgen.rl.reinforce.ReinforceConfig`; return ``final`` (last logged row),
    ``timings`` (compile_s, run_s, host_s, eval_s, env_steps_per_s), ``first_eval_reaching``
    (env steps where the evaluation return first reached ``threshold``), ``history`` and
    the final ``state``. With ``run_dir``: curves.png, results.json, metrics.jsonl and the
    checkpoint (the saved policy, see :func:`load`)."""
    mod = module_of(config)
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    trainer = mod.make_trainer(config)
    chunk_steps = chunk_steps or max(1, trainer.num_steps // 25)
    hook = EvalHook(mod.evaluate, eval_episodes, eval_every)
    res = runner.run(trainer, seed, run_dir=run_dir, chunk_steps=chunk_steps, resume=resume, hooks=[hook],
                     mode=mode, progress=progress, hparams=hparams)
    hist = res.history
    per = steps_per_iteration(config)
    for r in hist:  # REINFORCE logs its own (valid) env-step count
        r["env_steps"] = r["env_steps"] if "env_steps" in r and isinstance(config, reinforce.ReinforceConfig) else r["step"] * per
    t = res.timings
    done_steps = hist[-1]["env_steps"] if hist else 0
    out = {
        "algorithm": type(config).__name__, "env": config.env, "seed": seed,
        "final": hist[-1] if hist else {},
        "timings": {**{k: t[k] for k in ("compile_s", "run_s", "host_s", "mode")}, "eval_s": hook.seconds,
                    "env_steps_per_s": t["steps"] * per / t["run_s"] if t["run_s"] else None},
        "first_eval_reaching": first_reaching(hist, "eval_return", threshold) if threshold is not None else None,
        "env_steps": done_steps, "history": hist, "state": res.state,
    }
    if run_dir is not None:
        name = "PPO" if isinstance(config, ppo.PPOConfig) else "REINFORCE"
        plotting.save_curves(run_dir / "curves.png", hist,
                             ["episode_return", "eval_return", "pg_loss", "v_loss", "entropy", "approx_kl"],
                             f"{name} {config.env} seed {seed}", x="env_steps")
        (run_dir / "results.json").write_text(json.dumps({k: v for k, v in out.items() if k not in ("state", "history")},
                                                         indent=2, default=str))
    return out


def load(run_dir: str | Path):
    """The final state (the saved policy) of a PPO or REINFORCE run directory."""
    run_dir = Path(run_dir)
    kind = ckpt.read_config(run_dir).get("type")
    if kind not in ("PPOConfig", "ReinforceConfig"):
        raise ConfigError(f"{run_dir} holds a {kind} run; eval/render need a PPO or REINFORCE run.")
    mod = ppo if kind == "PPOConfig" else reinforce
    return ckpt.restore_run(run_dir, ppo.PPOConfig if mod is ppo else reinforce.ReinforceConfig, mod.init)


def evaluate_run(state_or_dir, episodes: int = 100, seed: int = 0, greedy: bool = False) -> dict:
    """Mean/std/min/max return and mean length of ``episodes`` complete episodes."""
    state = load(state_or_dir) if isinstance(state_or_dir, (str, Path)) else state_or_dir
    mod = module_of(state.config)
    b = mod.build(state.config)
    policy = lambda k, o: mod.act(state, k, o, greedy)
    ret, length = jax.device_get(jax.jit(lambda k: envs.rollout_returns(b.env, b.env_params, policy, k, episodes))(
        jax.random.PRNGKey(seed)))
    ret = np.asarray(ret, np.float64)
    return {"env": state.config.env, "episodes": episodes, "greedy": greedy, "mean_return": float(ret.mean()),
            "std_return": float(ret.std()), "min_return": float(ret.min()), "max_return": float(ret.max()),
            "mean_length": float(np.mean(length))}


def play(state, seed: int = 0, max_steps: int = 500, greedy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Observations ``[T, ...]`` and rewards ``[T]`` of one episode (up to ``max_steps``)."""
    mod = module_of(state.config)
    b = mod.build(state.config)
    env, params = b.env, b.env_params

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        obs, es = env.reset(k0, params)

        def body(c, k):
            obs, es, done = c
            ka, ks = jax.random.split(k)
            a = mod.act(state, ka, obs[None], greedy)[0]
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
        from jaxgen.rl.dqn_fit import minatar_rgb

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


def study(config, seeds=4, grid: dict | None = None, run_dir: str | Path | None = None, **kwargs) -> dict:
    """Every (grid point, seed) of a PPO or REINFORCE config in ONE vmapped compile: see
    :func:`jaxgen.rl.study.run_study` (its keyword options pass through)."""
    mod = module_of(config)
    return run_study(mod.make_trainer(config), mod.evaluate, steps_per_iteration(config), seeds, grid, run_dir,
                     label=f"{type(config).__name__[:-6]} {config.env}", **kwargs)


def seeds_check(config, seeds: int = 16, eval_episodes: int = 16, seed0: int = 0) -> dict:
    """Train ``seeds`` seeds as ONE vmapped compile (``jax.jit(jax.vmap(make_train(cfg)))``);
    return compile/run seconds, the final training return per seed (mean of the last
    iteration's finished episodes), the evaluation return per seed (``eval_episodes``
    sampled episodes) and the mean training-return curve."""
    mod = module_of(config)
    keys = jax.random.split(jax.random.PRNGKey(seed0), seeds)
    train = jax.jit(jax.vmap(mod.make_train(config)))
    t = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    state, m = compiled(keys)
    jax.block_until_ready(m)
    run_s = time.perf_counter() - t
    r = np.asarray(m["episode_return"])
    ev = jax.jit(jax.vmap(lambda s, k: mod.evaluate(s, k, eval_episodes), in_axes=(0, None)))
    ret, _ = jax.device_get(ev(state, jax.random.PRNGKey(EVAL_SEED)))
    per_seed_eval = np.asarray(ret).mean(axis=1)
    env_steps = np.asarray(m["env_steps"])[:, -1].tolist() if "env_steps" in m else [config.total_steps] * seeds
    stride = max(1, r.shape[1] // 20)
    return {"algorithm": type(config).__name__, "env": config.env, "seeds": seeds, "compile_s": round(compile_s, 2),
            "run_s": round(run_s, 2), "env_steps_per_seed": env_steps,
            "final_train_return": r[:, -1].round(1).tolist(), "mean_final_train_return": float(r[:, -1].mean()),
            "eval_return": per_seed_eval.round(1).tolist(), "mean_eval_return": float(per_seed_eval.mean()),
            "curve_iterations": list(range(0, r.shape[1], stride)),
            "curve_mean_train_return": r.mean(0)[::stride].round(1).tolist()}
