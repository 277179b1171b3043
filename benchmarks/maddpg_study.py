"""The MADDPG study: MADDPG against independent DDPG (``--independent``) on jaxmarl's particle
tasks, the same env steps and seeds for both, each variant's seeds in ONE compile; the final
policies evaluated on 100 deterministic episodes per seed; a uniform random policy measured in
the same conventions.

    python benchmarks/maddpg_study.py --env simple_spread --seeds 8
    python benchmarks/maddpg_study.py --env simple_adversary --seeds 8 --total-steps 200000

Conventions (README, "Multi-agent RL"): returns are per agent and per jaxmarl episode (26 steps):
``mean_return`` is the mean over agents (jaxmarl's per-agent convention), ``sum_return`` their sum
(= jaxmarl's LogWrapper). simple_spread: ``min_dist`` is the mean over the episode's steps of the
mean over landmarks of the nearest agent's distance; ``collisions`` the agent pairs touching,
summed over the episode. simple_adversary: at the episode's last step, ``adv_reaches`` (the
adversary within its radius + the landmark's of the target) and ``good_closer`` (the nearest good
agent nearer the target than the adversary), as fractions of episodes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import numpy as np

import jaxgen  # noqa: F401
from jaxgen.rl import ma_envs, maddpg, maddpg_fit


def study_config(env: str, total_steps: int, num_envs: int, batch_size: int, update_every: int, buffer: int):
    return dataclasses.replace(maddpg.OPENAI, env=env, num_envs=num_envs, total_steps=total_steps, batch_size=batch_size,
                               update_every=update_every, buffer_size=buffer, learning_starts=batch_size * 25)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="simple_spread", choices=list(ma_envs.TASKS))
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--total-steps", type=int, default=200_000)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--update-every", type=int, default=16)
    p.add_argument("--buffer", type=int, default=200_000)
    p.add_argument("--variants", default="maddpg,independent")
    p.add_argument("--out", default=None, help="JSON of the results (default benchmarks/results/maddpg_<env>.json)")
    p.add_argument("--plot", nargs="+", default=None, metavar="JSON", help="only draw the figures of these result files")
    a = p.parse_args()
    if a.plot:
        print(plot(a.plot, os.path.join(os.path.dirname(__file__), "results", "maddpg_curves.png")))
        return
    out = {"uptime": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    sp = ma_envs.spec(a.env)
    rnd = jax.device_get(jax.jit(lambda k: ma_envs.random_returns(sp, k, 1000))(jax.random.PRNGKey(0)))
    r = np.asarray(rnd.pop("returns"))
    out["random"] = {"mean_return": float(r.mean()), "sum_return": float(r.sum(1).mean()),
                     "agent_returns": r.mean(0).round(3).tolist(), **{k: float(np.mean(v)) for k, v in rnd.items()}}
    print("random policy:", json.dumps(out["random"]))
    for v in a.variants.split(","):
        cfg = dataclasses.replace(study_config(a.env, a.total_steps, a.num_envs, a.batch_size, a.update_every, a.buffer),
                                  independent=(v == "independent"))
        res = maddpg_fit.seeds_run(cfg, a.seeds)
        res["config"] = dataclasses.asdict(cfg)
        out[v] = res
        keys = [k for k in ("per_seed_mean_return", "agent_returns", "min_dist", "collisions", "adv_reaches", "good_closer") if k in res]
        print(v, f"compile {res['compile_s']}s run {res['run_s']}s", {k: res[k] for k in keys}, flush=True)
        path = a.out or os.path.join(os.path.dirname(__file__), "results", f"maddpg_{a.env}.json")
        with open(path, "w") as f:
            json.dump(out, f)
    print("load average at the end:", os.getloadavg())


def plot(paths, out):
    """The study's figures from its JSON files: per-agent training returns and each critic's loss,
    MADDPG against independent DDPG (one row per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(len(paths), 2, figsize=(11, 3.6 * len(paths)), squeeze=False)
    for row, path in zip(axs, paths):
        with open(path) as f:
            res = json.load(f)
        for v, style in (("maddpg", "-"), ("independent", "--")):
            if v not in res:
                continue
            r = res[v]
            x = np.asarray(r["curve_env_steps"])
            for i in range(3):
                row[0].plot(x, r["curves"][f"episode_return_{i}"], style, color=f"C{i}", label=f"{v} agent {i}")
                row[1].plot(x, r["curves"][f"critic_loss_{i}"], style, color=f"C{i}", label=f"{v} critic {i}")
        row[0].set_title(f"{res['maddpg']['env']}: training return per agent (solid MADDPG, dashed independent)", fontsize=8)
        row[1].set_title(f"{res['maddpg']['env']}: critic loss per agent", fontsize=8)
        row[1].set_yscale("log")
        for ax in row:
            ax.set_xlabel("env steps")
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    return out


if __name__ == "__main__":
    main()
