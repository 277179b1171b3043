"""DQN throughput: env-steps/s of the compiled run, compile time apart, median of repeats,
1 seed and n seeds vmapped in one program, with the vmap scaling efficiency
``throughput(n) / (n * throughput(1))``.

    python benchmarks/bench_dqn.py                       # CartPole-v1 and Freeway-MinAtar, 1 and 8 seeds
    python benchmarks/bench_dqn.py --env CartPole-v1 --seeds 1 8 64 --iters 5000
    python benchmarks/bench_dqn.py --full                # the whole 5e5-step CartPole run (1 and 8 seeds)

Every iteration steps ``num_envs`` environments and does one gradient step (learning
starts at once so the timed steps are the steady state). ``--full`` times the complete
default CartPole run (5e5 env steps, learning after 1e4) as one compiled call.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time

import jax
import numpy as np

from jaxgen.rl import dqn

CONFIGS = {
    "CartPole-v1": dqn.DQNConfig(),
    "Freeway-MinAtar": dqn.DQNConfig(env="Freeway-MinAtar", num_envs=8, buffer_size=20_000, batch_size=32,
                                     network="minatar", huber_delta=1.0),
}


def timed_program(cfg: dqn.DQNConfig, seeds: int):
    """(compiled fn, its argument, compile seconds) of ``seeds`` vmapped runs of ``cfg``."""
    train = jax.vmap(dqn.make_train(cfg)) if seeds > 1 else dqn.make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds) if seeds > 1 else jax.random.PRNGKey(0)
    t = time.perf_counter()
    fn = jax.jit(train).lower(keys).compile()
    return fn, keys, time.perf_counter() - t


def bench(cfg: dqn.DQNConfig, seeds: int, repeats: int) -> dict:
    fn, keys, compile_s = timed_program(cfg, seeds)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(keys))
        times.append(time.perf_counter() - t)
    run_s = statistics.median(times)
    steps = cfg.num_iterations * cfg.num_envs * seeds
    return {"env": cfg.env, "seeds": seeds, "env_steps": steps, "compile_s": round(compile_s, 2),
            "run_s": round(run_s, 3), "run_s_all": [round(x, 3) for x in times],
            "env_steps_per_s": round(steps / run_s)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 8])
    ap.add_argument("--iters", type=int, default=None, help="iterations per timed run (default 5000 CartPole, 1000 Freeway)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="time the whole default 5e5-step CartPole run instead")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    a = ap.parse_args(argv)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads visible, backend {jax.default_backend()}"
    print(f"# DQN benchmark on {machine}; jax {jax.__version__}")
    rows = []
    if a.full:
        cfg = CONFIGS["CartPole-v1"]
        for s in a.seeds:
            rows.append(bench(cfg, s, a.repeats))
            print(json.dumps(rows[-1]))
    else:
        for env in a.env:
            base = CONFIGS[env]
            iters = a.iters or (5000 if env == "CartPole-v1" else 1000)
            cfg = dataclasses.replace(base, total_steps=iters * base.num_envs, learning_starts=0)
            single = None
            for s in a.seeds:
                r = bench(cfg, s, a.repeats)
                single = single or (r["env_steps_per_s"] if s == 1 else None)
                if single:
                    r["vmap_efficiency"] = round(r["env_steps_per_s"] / (s * single), 3)
                rows.append(r)
                print(json.dumps(r))
    print("\n| env | seeds | env steps | compile s | run s (median) | env-steps/s | vmap efficiency |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['env']} | {r['seeds']} | {r['env_steps']} | {r['compile_s']} | {r['run_s']} | "
              f"{r['env_steps_per_s']:,} | {r.get('vmap_efficiency', '')} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
