"""MADDPG's host side: the family (``jaxgen train|eval|render maddpg``), the per-agent curves, the
evaluation with the task measures, the GIF of an episode, and the study (MADDPG vs independent
DDPG over seeds in one compile per variant)."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import plotting
from jaxgen.core.sharding import place_runs
from jaxgen.core.sweep import vmap_runs
from jaxgen.core.timing import compile_and_run
from jaxgen.rl import ma_envs, maddpg
from jaxgen.rl.evaluation import EVAL_SEED
from jaxgen.rl.fit import RLFamily


def _per_iteration(config) -> int:
    return config.num_envs


def evaluate_run(state, episodes: int = 100, seed: int = 0) -> dict:
    """Means over ``episodes`` deterministic episodes: per-agent returns (jaxmarl's convention), their
    mean and sum (jaxmarl's LogWrapper), and the task measures (:func:`jaxgen.rl.ma_envs.summarise`)."""
    out = jax.device_get(jax.jit(lambda s, k: maddpg.evaluate_episodes(s, k, episodes))(state, jax.random.PRNGKey(seed)))
    ret = np.asarray(out.pop("returns"), np.float64)
    res = {"env": state.config.env, "independent": state.config.independent, "episodes": episodes,
           "mean_return": float(ret.mean()), "sum_return": float(ret.sum(1).mean()),
           "agent_returns": ret.mean(0).round(3).tolist(), "agents": list(maddpg.build(state.config).spec.agents)}
    res.update({k: float(np.mean(v)) for k, v in out.items()})
    return res


def draw(ax, spec: ma_envs.MASpec, world, t: int) -> None:
    """One frame of a particle task: agents (adversaries red), landmarks (the target ringed)."""
    ax.clear()
    pos, rad = np.asarray(world.p_pos), np.asarray(spec.env.rad)
    a = spec.num_agents
    for i in range(len(pos)):
        if i < a:
            colour = "tab:red" if spec.adversary[i] else "tab:blue"
        else:
            colour = "0.4"
        ax.add_patch(plotting._plt().Circle(pos[i], rad[i], color=colour, alpha=0.8))
    if spec.name == "simple_adversary":
        g = a + int(world.goal)
        ax.add_patch(plotting._plt().Circle(pos[g], rad[g] * 1.8, fill=False, color="tab:green", lw=2))
    ax.set_xlim(-2, 2)
    ax.set_ylim(-2, 2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{spec.name} t={t}", fontsize=8)


def render_gif(state, path, seed: int = 0, fps: int = 8) -> dict:
    """One deterministic episode of the trained agents as an animated GIF; returns {path, returns}."""
    from jaxgen.rl.render import save_gif

    sp = maddpg.build(state.config).spec
    venv = sp.vec(1)

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        obs, st = venv.reset(k0)

        def body(c, k):
            obs, st = c
            st2, out = venv.step(k, st, maddpg.act(state, k, obs, 0.0))
            return (out.obs, st2), (out.world, out.reward)

        return jax.lax.scan(body, (obs, st), jax.random.split(k1, sp.episode_steps))[1]

    worlds, rew = jax.device_get(run(jax.random.PRNGKey(seed)))
    plt = plotting._plt()
    fig, ax = plt.subplots(figsize=(3, 3), dpi=80)
    frames = []
    for t in range(sp.episode_steps):
        draw(ax, sp, jax.tree_util.tree_map(lambda x: x[t, 0], worlds), t)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    save_gif(frames, path, fps)
    return {"path": str(path), "returns": np.asarray(rew)[:, 0].sum(0).round(2).tolist()}


class MADDPGFamily(RLFamily):
    """RL family with MADDPG's evaluation (per-agent returns, task measures) and GIF rendering."""

    def label(self, algo, config) -> str:
        kind = "independent DDPG" if config.independent else "MADDPG"
        return f"{kind} on {config.env}: {config.num_envs} envs, one gradient step per agent every {config.update_every} env steps"

    def load(self, algo, run_dir: Path):
        return ckpt.restore_run(run_dir, algo.config_cls, algo.mod.init)

    def eval(self, algo, run_dir: Path, args) -> dict:
        return evaluate_run(self.load(algo, run_dir), args.episodes, args.seed or 0)

    def render(self, algo, run_dir: Path, args) -> list[str]:
        out = Path(args.out or run_dir / "episode.gif")
        if out.suffix.lower() != ".gif":
            out = out.with_suffix(".gif")
        r = render_gif(self.load(algo, run_dir), out, seed=args.seed)
        return [f"wrote {r['path']}: one episode, per-agent returns {r['returns']}"]


CURVES = ("episode_return", "eval_return", "episode_return_0", "episode_return_1", "episode_return_2",
          "critic_loss_0", "critic_loss_1", "critic_loss_2")
FAMILY = MADDPGFamily(per_iteration=_per_iteration, curve_keys=CURVES, greedy=("eval_noise", 0.0), chunks=20)


def seeds_run(config: maddpg.MADDPGConfig, seeds: int = 8, eval_episodes: int = 100, seed0: int = 0,
              keep_state: bool = False) -> dict:
    """``seeds`` seeds of ``config`` as ONE compile (vmapped); the final policies' evaluation (mean
    per seed of :func:`maddpg.evaluate_episodes`), wall times and the curves (training metrics, mean
    over seeds, every ~1/50 of the run); ``keep_state``: also the trained states (``"state"``, leaves ``[seeds, ...]``)."""
    keys = jax.random.split(jax.random.PRNGKey(seed0), seeds)
    keys = place_runs(keys)  # several devices: the seeds split over them
    (state, m), compile_s, run_s = compile_and_run(vmap_runs(maddpg.make_train(config), seeds), keys)
    ev = jax.jit(jax.vmap(lambda s, k: maddpg.evaluate_episodes(s, k, eval_episodes), in_axes=(0, None)))
    out = jax.device_get(ev(state, jax.random.PRNGKey(EVAL_SEED)))
    ret = np.asarray(out.pop("returns"))  # [S, E, A]
    m = jax.device_get(m)
    stride = max(1, config.num_iterations // 50)
    curves = {k: np.asarray(v)[:, ::stride].mean(0).round(4).tolist() for k, v in m.items()}
    res = {"env": config.env, "independent": config.independent, "seeds": seeds, "env_steps": config.total_steps,
           "compile_s": round(compile_s, 1), "run_s": round(run_s, 1),
           "per_seed_mean_return": ret.mean((1, 2)).round(3).tolist(), "agent_returns": ret.mean((0, 1)).round(3).tolist(),
           **{k: np.asarray(v).mean(1).round(4).tolist() for k, v in out.items()},
           "curve_env_steps": (np.arange(0, config.num_iterations, stride) * config.num_envs).tolist(), "curves": curves}
    if keep_state:
        res["state"] = state
    return res
