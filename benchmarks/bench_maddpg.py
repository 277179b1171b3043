"""MADDPG training speed on simple_spread: env-steps/s of 1 and 8 seeds in one compile at several
env counts (compile apart, median of repeats), against a uniform random-policy rollout of the same
vector env (the ceiling: stepping alone).

    python benchmarks/bench_maddpg.py --seeds 1 8 --envs 16 64 --total-steps 32000

Per piece of one iteration (acting + env step, replay sample, learning step):
``python benchmarks/bench_components.py --algos maddpg --seeds 1``.

The training config is the study's (batch 256, one gradient step per agent every 16 env steps);
``update_every`` is raised to the env count where that is larger (one gradient step per iteration).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import jax

sys.path.insert(0, os.path.dirname(__file__))
import jaxgen  # noqa: E402,F401
from _timing import repeat, timed  # noqa: E402
from jaxgen.rl import ma_envs, maddpg  # noqa: E402


def random_rollout(n_envs: int, steps: int):
    sp = ma_envs.spec("simple_spread")
    venv = sp.vec(n_envs)

    def run(key):
        obs, st = venv.reset(key)

        def body(st, k):
            a = jax.random.uniform(k, (n_envs, sp.num_agents, sp.action_dim))
            st, out = venv.step(k, st, a)
            return st, out.reward.sum()

        return jax.lax.scan(body, st, jax.random.split(key, steps // n_envs))[1].sum()

    return jax.jit(run)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--envs", type=int, nargs="+", default=[16, 64])
    p.add_argument("--total-steps", type=int, default=32_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    print(f"load average at the start: {os.getloadavg()}")
    print("| what | seeds | envs | env steps / seed | compile s | run s (median) | env-steps/s |")
    print("|---|---|---|---|---|---|---|")
    key = jax.random.PRNGKey(0)
    for n in a.envs:
        f = random_rollout(n, a.total_steps)
        c, comp = timed(lambda: f.lower(key).compile())
        st = repeat(lambda: jax.block_until_ready(c(key)), a.repeats)
        print(f"| random rollout | 1 | {n} | {a.total_steps} | {comp:.1f} | {st.median:.2f} | {a.total_steps / st.median:.0f} |", flush=True)
        for s in a.seeds:
            cfg = dataclasses.replace(maddpg.OPENAI, num_envs=n, total_steps=a.total_steps, batch_size=256,
                                      update_every=max(16, n), buffer_size=max(a.total_steps, 256), learning_starts=0)
            keys = jax.random.split(key, s)
            train = jax.jit(jax.vmap(maddpg.make_train(cfg)))
            c, comp = timed(lambda: train.lower(keys).compile())
            st = repeat(lambda: jax.block_until_ready(c(keys)), a.repeats)
            print(f"| MADDPG training | {s} | {n} | {a.total_steps} | {comp:.1f} | {st.median:.2f} | "
                  f"{s * a.total_steps / st.median:.0f} |", flush=True)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
