"""GAIL's sample efficiency (CartPole-v1 or Pendulum-v1, 4 trajectories): static variants of the generator
x a traced grid of PPO learning rates x 8 seeds, each variant ONE compiled program; greedy
evaluation (32 episodes per seed) at the end. How GAIL's CartPole default was chosen
(``jaxgen.rl.gail.CARTPOLE_PPO``).

    python benchmarks/gail_sweep.py 150000 base,scale,du4,const 2.5e-4,1e-3
    python benchmarks/gail_sweep.py 60000 scale 2.5e-4,1e-3,2.5e-3
    python benchmarks/gail_sweep.py 1000000 preset 3e-4,1e-3 --env Pendulum-v1

Variants (``+`` joins them), on GAIL's preset of the env (on CartPole: on PPO's plain CartPole
settings, GAIL's CartPole default before 2026-12-04, unless ``preset`` is named): ``preset`` /
``base`` = that starting point as it is; ``scale`` = ``ppo.scale_rewards`` (reward / running std of its
discounted return); ``const`` = no learning-rate annealing; ``duN`` = N D updates per iteration;
``logit`` = the log D - log(1 - D) reward; ``gp`` = D's gradient penalty.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import config as C
from jaxgen.core.sharding import place_runs
from jaxgen.core.sweep import vmap_runs
from jaxgen.rl import gail
from jaxgen.rl.ppo import PPOConfig

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "expert_rollouts"
FILES = {"CartPole-v1": "cartpole.npz", "Pendulum-v1": "pendulum.npz"}
PRESETS = {"CartPole-v1": "cartpole", "Pendulum-v1": "pendulum"}


def variant(name: str, steps: int, k: int, env: str = "CartPole-v1") -> gail.GAILConfig:
    preset = gail.PRESETS[PRESETS[env]]
    parts = name.split("+")
    if env == "CartPole-v1" and "preset" not in parts:  # the recorded CartPole sweep's starting point
        p, d = PPOConfig(total_steps=steps), gail.DiscConfig()
    else:
        p, d = dataclasses.replace(preset.ppo, total_steps=steps), preset.disc
    extra = {}
    for part in parts:
        if part in ("preset", "base"):
            pass
        elif part == "scale":
            p = dataclasses.replace(p, scale_rewards=True)
        elif part == "const":
            p = dataclasses.replace(p, anneal_lr=False)
        elif part.startswith("du") and part[2:].isdigit():
            d = dataclasses.replace(d, updates=int(part[2:]))
        elif part == "logit":
            extra["reward"] = "logit"
        elif part == "gp":
            d = dataclasses.replace(d, gradient_penalty=True)
        else:
            raise SystemExit(f"variant part {part!r} is not known; accepted: preset, base, scale, const, duN, logit, gp.")
    return dataclasses.replace(preset, ppo=p, disc=d, demos=str(DATA / FILES[env]), num_trajectories=float(k), **extra)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("steps", type=int)
    ap.add_argument("variants")
    ap.add_argument("lrs", nargs="?", default="2.5e-4")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--trajectories", type=int, default=4)
    ap.add_argument("--env", default="CartPole-v1", choices=list(FILES))
    a = ap.parse_args(argv)
    lrs = [float(x) for x in a.lrs.split(",")]
    for name in a.variants.split(","):
        cfg = variant(name, a.steps, a.trajectories, a.env)
        n = a.seeds * len(lrs)
        hp = {k: jnp.full((n,), v) for k, v in C.hparams(cfg).items()}
        hp["ppo.eval_greedy"] = jnp.ones((n,))
        hp["ppo.learning_rate"] = jnp.repeat(jnp.array(lrs), a.seeds)
        keys, hp = place_runs((jax.random.split(jax.random.PRNGKey(0), n), hp))  # JAX_NUM_CPU_DEVICES=2: split
        t = time.perf_counter()
        state, m = jax.jit(vmap_runs(gail.make_train(cfg), n))(keys, hp)
        jax.block_until_ready(m)
        wall = time.perf_counter() - t
        ret, _ = jax.jit(jax.vmap(lambda s, kk: gail.evaluate(s, kk, 32), in_axes=(0, None)))(state, jax.random.PRNGKey(1))
        ret = np.asarray(ret).mean(axis=1).reshape(len(lrs), a.seeds)
        for i, lr in enumerate(lrs):
            print(f"{a.steps} {name:20s} lr {lr:.1e}: mean {ret[i].mean():6.1f}  min {ret[i].min():6.1f}  "
                  f"seeds {' '.join(f'{x:.0f}' for x in ret[i])}  (compile + run {wall:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
