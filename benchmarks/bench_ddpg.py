"""DDPG and TD3 on gymnax Pendulum-v1 (and MountainCarContinuous-v0): many seeds in ONE compile
each (``jax.jit(jax.vmap(make_train(cfg)))``), compile apart from run, env-steps/s, and the
evaluation return of the final policy per seed (16 deterministic episodes each).

    python benchmarks/bench_ddpg.py                          # DDPG and TD3 on Pendulum-v1, 8 seeds
    python benchmarks/bench_ddpg.py --presets mountaincar --seeds 4

Bar (issue 15): mean evaluation return >= -200 over 8 seeds on Pendulum-v1. rejax's DDPG/TD3 pin
gymnax < 1 and are not run here (see RESULTS.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import os

import jax
import numpy as np

import jaxgen  # noqa: F401
from jaxgen.core.timing import compile_and_run
from jaxgen.rl import ddpg


def run(name: str, seeds: int, total_steps: int | None) -> dict:
    cfg = ddpg.PRESETS[name]
    if total_steps:
        cfg = dataclasses.replace(cfg, total_steps=total_steps)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    (state, m), compile_s, run_s = compile_and_run(jax.vmap(ddpg.make_train(cfg)), keys)
    ev = jax.jit(jax.vmap(lambda s, k: ddpg.evaluate(s, k, 16), in_axes=(0, None)))
    ret = np.asarray(ev(state, jax.random.PRNGKey(1))[0]).mean(1)
    return {"preset": name, "algo": "TD3" if cfg.twin else "DDPG", "env": cfg.env, "seeds": seeds,
            "env_steps": cfg.total_steps, "compile_s": compile_s, "run_s": run_s,
            "env_steps_per_s": seeds * cfg.total_steps / run_s, "per_seed": ret.round(1).tolist(), "mean": float(ret.mean())}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--presets", nargs="+", default=["pendulum", "td3"])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--total-steps", type=int, default=None)
    a = p.parse_args()
    print(f"load average at the start: {os.getloadavg()}")
    print("| preset | algo | env | seeds | env steps/seed | compile s | run s | env-steps/s | mean eval return | per seed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in a.presets:
        r = run(name, a.seeds, a.total_steps)
        print(f"| {r['preset']} | {r['algo']} | {r['env']} | {r['seeds']} | {r['env_steps']} | {r['compile_s']:.1f} | "
              f"{r['run_s']:.1f} | {r['env_steps_per_s']:.0f} | {r['mean']:.1f} | {r['per_seed']} |", flush=True)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
