"""The published RL learning bars, re-measured: many seeds of the default CartPole configs in
one compile each, with the per-seed figures and the wall time.

    python benchmarks/learning_checks.py                 # PPO and DQN, 16 seeds each
    python benchmarks/learning_checks.py --algos ppo reinforce --seeds 16

* PPO / REINFORCE: ``jaxgen.rl.fit.seeds_check`` (``jax.jit(jax.vmap(make_train(cfg)))``);
  bar: every seed's final training return 500 (PPO).
* DQN: ``jaxgen.rl.fit.study`` with evaluation between chunks; bar: >= 80 % of the seeds reach
  an evaluation return >= 475 within the 5e5-step run.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import jaxgen  # noqa: F401  (sets the XLA:CPU scheduler flag before JAX runs)
from jaxgen.rl import dqn, fit, ppo, reinforce

CONFIGS = {"ppo": ppo.PPOConfig(), "reinforce": reinforce.ReinforceConfig(), "dqn": dqn.DQNConfig()}


def check(algo: str, seeds: int) -> dict:
    t = time.perf_counter()
    if algo == "dqn":
        out = fit.study(CONFIGS[algo], seeds=seeds, eval_episodes=10, threshold=475, progress=False)
        first = np.asarray(out["first_eval_reaching"], np.float64).ravel()
        row = {"algo": algo, "seeds": seeds, "bar": ">= 80 % of seeds reach eval 475",
               "reached": int(np.sum(~np.isnan(first))), "first_reaching": first.tolist(),
               "compile_s": out["timings"]["compile_s"], "run_s": out["timings"]["run_s"]}
        row["met"] = row["reached"] >= 0.8 * seeds
    else:
        out = fit.seeds_check(CONFIGS[algo], seeds=seeds)
        final = out["final_train_return"]
        row = {"algo": algo, "seeds": seeds, "bar": "final training return 500 on every seed" if algo == "ppo" else "report",
               "at_500": int(sum(r >= 500 for r in final)), "final_train_return": final,
               "eval_return": out["eval_return"], "compile_s": out["compile_s"], "run_s": out["run_s"]}
        row["met"] = row["at_500"] == seeds if algo == "ppo" else None
    row["wall_s"] = round(time.perf_counter() - t, 1)
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", default=["ppo", "dqn"], choices=tuple(CONFIGS))
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args(argv)
    rows = [check(a, args.seeds) for a in args.algos]
    print(f"machine: {platform.processor() or platform.machine()}, date {time.strftime('%Y-%m-%d')}")
    print("| algo | seeds | bar | figure | met | compile s | run s | wall s |")
    print("|:--|--:|:--|:--|:--|--:|--:|--:|")
    for r in rows:
        fig = f"{r['reached']}/{r['seeds']} reach 475" if r["algo"] == "dqn" else f"{r['at_500']}/{r['seeds']} at 500"
        print(f"| {r['algo']} | {r['seeds']} | {r['bar']} | {fig} | {r['met']} | {r['compile_s']:.1f} | {r['run_s']:.1f} | {r['wall_s']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
