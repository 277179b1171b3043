"""PPO throughput: the whole compiled run (default CartPole-v1 config: 4 envs x 128 steps,
5e5 env steps per seed), compile time apart, median of interleaved repeats, for 1, 8 and 64
seeds vmapped in one program; beside each, in the same session, a random-policy rollout of the
same env steps (same N envs, same seeds axis, same env-key scheme as the training rollout,
actions drawn in one batch) and the ratio training / rollout throughput; and Stable-Baselines3
PPO with the same hyper-parameters (``sb3_ppo.py`` in a subprocess: 2 torch threads,
``OMP_WAIT_POLICY=PASSIVE``) with the ratio jaxgen / SB3 env-steps/s. Final returns next to
each figure (jaxgen: mean over seeds of the last iteration's mean episode return).

    python benchmarks/bench_ppo.py                                   # 1, 8, 64 seeds + SB3
    python benchmarks/bench_ppo.py --seeds 1 8 --repeats 5 --no-sb3
    python benchmarks/bench_ppo.py --breakdown                       # where an iteration's time goes
    python benchmarks/bench_ppo.py --env Breakout-MinAtar --num-envs 64 --total-steps 10000000 --seeds 1 --no-sb3

``--breakdown`` (1 seed) times, for the same number of iterations: the random rollout, the
policy rollout alone (collect: forward + sampling + env), collect + the critic's bootstrap
values + GAE, and the full iteration (+ 4 epochs x 4 minibatches of Adam); the differences
say where the time goes. Wall and process CPU seconds are both printed (the CPU time is
steadier on a shared machine).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402

from jaxgen.core.train import scan_steps  # noqa: E402
from jaxgen.rl import envs, ppo  # noqa: E402
from jaxgen.rl.returns import gae  # noqa: E402

HERE = Path(__file__).resolve().parent


def _gymnax_version() -> str:
    from importlib.metadata import version

    return version("gymnax")


def random_rollout(cfg: ppo.PPOConfig):
    """``fn(key) -> total reward``: ``num_iterations * rollout_len`` vector steps of the N envs
    with uniform random actions (drawn per iteration in one call, like the policy noise),
    stepped exactly as :func:`jaxgen.rl.ppo.collect` steps them (same env keys)."""
    b = ppo.build(cfg)
    t, n = cfg.rollout_len, cfg.num_envs

    def draw(key):
        if b.spec.discrete:
            return jax.random.randint(key, (t, n), 0, b.spec.action_dim)
        return jax.random.uniform(key, (t, n) + b.spec.action_shape, minval=b.spec.low, maxval=b.spec.high)

    def iteration(c, k):
        st, acc = c
        k_act, k_env = jax.random.split(k)

        def step(st, xs):
            a, ke = xs
            st, out = b.spec.vec(cfg.num_envs).step(ke, st, a)
            return st, out.reward

        st, rew = jax.lax.scan(step, st, (draw(k_act), envs.rbg_keys(k_env, t)))
        return (st, acc + jnp.sum(rew)), None

    def run(key):
        _, st = b.spec.vec(cfg.num_envs).reset(key)
        (_, acc), _ = jax.lax.scan(iteration, (st, jnp.zeros(())), jax.random.split(key, cfg.num_iterations))
        return acc

    return run


def _compile(fn, seeds: int):
    keys = jax.random.split(jax.random.PRNGKey(0), seeds) if seeds > 1 else jax.random.PRNGKey(0)
    f = jax.vmap(fn) if seeds > 1 else fn
    c, compile_s = _timing.timed(lambda: jax.jit(f).lower(keys).compile())
    return c, keys, compile_s


def bench(cfg: ppo.PPOConfig, seeds: int, repeats: int) -> dict:
    """One row: compile and run times of the whole training run for ``seeds`` seeds (vmapped)
    and of the random rollout of the same env steps; the final return from the warm-up call."""
    steps = cfg.num_iterations * cfg.batch_size * seeds
    train, keys, compile_s = _compile(ppo.make_train(cfg), seeds)
    rand, rkeys, rand_compile_s = _compile(random_rollout(cfg), seeds)
    _, m = jax.block_until_ready(train(keys))  # warm-up; its metrics give the final return
    jax.block_until_ready(rand(rkeys))
    st = _timing.interleaved({"train": lambda: jax.block_until_ready(train(keys)),
                              "random": lambda: jax.block_until_ready(rand(rkeys))}, repeats=repeats, warmup=0)
    final = np.asarray(m["episode_return"])[..., -1]
    tr, rr = st["train"].per_second(steps), st["random"].per_second(steps)
    return {"env": cfg.env, "seeds": seeds, "env_steps": steps, "compile_s": round(compile_s, 2),
            "run_s": round(st["train"].median, 3), "run_s_all": [round(x, 3) for x in st["train"].times],
            "env_steps_per_s": round(tr), "random_run_s": round(st["random"].median, 3),
            "random_env_steps_per_s": round(rr), "train_over_random": round(tr / rr, 3),
            "final_train_return": round(float(np.mean(final)), 1),
            "final_train_return_min": round(float(np.min(final)), 1), "random_compile_s": round(rand_compile_s, 2)}


def sb3(steps: int, threads: int) -> dict:
    """``sb3_ppo.py`` in a subprocess (torch with ``threads`` threads, OMP_WAIT_POLICY=PASSIVE)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, str(HERE / "sb3_ppo.py"), "--steps", str(steps), "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def breakdown(cfg: ppo.PPOConfig, iters: int, repeats: int) -> list:
    """Wall and CPU milliseconds per iteration of nested parts of the PPO iteration (1 seed)."""
    cfg = dataclasses.replace(cfg, total_steps=iters * cfg.batch_size)
    b = ppo.build(cfg)
    state0 = ppo.init(jax.random.PRNGKey(0), cfg)
    t, n = cfg.rollout_len, cfg.num_envs
    used = lambda traj: sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree_util.tree_leaves(traj))

    def collect_only(s, _):  # every rollout output is used, so XLA keeps all of the loop's work
        s, traj = ppo.collect(s, jax.random.fold_in(s.key, s.step))
        return s.replace(step=s.step + 1), used(traj)

    def collect_gae(s, _):
        s, traj = ppo.collect(s, jax.random.fold_in(s.key, s.step))
        nv = b.net.apply({"params": s.params}, traj["final_obs"].reshape((t * n,) + b.spec.obs_shape),
                         method="value").reshape(t, n)
        adv, tgt = gae(traj["reward"], traj["value"], nv, traj["terminated"], traj["truncated"], 0.99, 0.95)
        return s.replace(step=s.step + 1), jnp.sum(adv) + jnp.sum(tgt) + used(traj)

    rand = jax.jit(random_rollout(cfg)).lower(jax.random.PRNGKey(0)).compile()
    calls = {"random rollout": lambda: jax.block_until_ready(rand(jax.random.PRNGKey(0)))}
    for name, step in (("collect (policy + env)", collect_only), ("+ bootstrap values + GAE", collect_gae),
                       ("full iteration (+ 4x4 Adam minibatches)", ppo.update)):
        c = jax.jit(lambda s, step=step: scan_steps(step, s, None, iters)).lower(state0).compile()
        calls[name] = lambda c=c: jax.block_until_ready(c(state0))
    for fn in calls.values():
        fn()
    wall = {k: [] for k in calls}
    cpu = {k: [] for k in calls}
    for _ in range(repeats):
        for k, fn in calls.items():
            w, p = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - w)
            cpu[k].append(time.process_time() - p)
    ms = lambda xs: round(float(np.median(xs)) / iters * 1e3, 3)
    return [{"part": k, "wall_ms_per_iteration": ms(wall[k]), "cpu_ms_per_iteration": ms(cpu[k])} for k in calls]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--num-envs", type=int, default=None)
    ap.add_argument("--total-steps", type=int, default=None)
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 8, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-sb3", action="store_true", help="skip the Stable-Baselines3 run")
    ap.add_argument("--sb3-threads", type=int, default=2)
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument("--iters", type=int, default=200, help="iterations timed by --breakdown")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    over = {"env": a.env}
    if a.num_envs:
        over["num_envs"] = a.num_envs
    if a.total_steps:
        over["total_steps"] = a.total_steps
    cfg = ppo.validate(dataclasses.replace(ppo.PPOConfig(), **over))
    head = _timing.header("jax", "flax", "optax") + " | gymnax " + _gymnax_version()
    print("# PPO benchmark |", head, flush=True)
    out = {"header": head}
    if a.breakdown:
        rows = out["breakdown"] = breakdown(cfg, a.iters, a.repeats)
        print(_timing.markdown_table(["part", "wall ms / iteration", "CPU ms / iteration"],
                                     [[r["part"], r["wall_ms_per_iteration"], r["cpu_ms_per_iteration"]] for r in rows]))
    else:
        rows = out["rows"] = []
        for s in a.seeds:
            rows.append(bench(cfg, s, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
        ref = sb = None
        if not a.no_sb3 and cfg.env == "CartPole-v1":
            sb = out["sb3"] = sb3(cfg.num_iterations * cfg.batch_size, a.sb3_threads)
            print(json.dumps(sb), flush=True)
            ref = sb["env_steps_per_s"]
        one = next((r for r in rows if r["seeds"] == 1), None)
        table = []
        for r in rows:
            scaling = r["env_steps_per_s"] / one["env_steps_per_s"] if one else None
            table.append([r["env"], r["seeds"], r["env_steps"], r["compile_s"], r["run_s"], r["env_steps_per_s"],
                          scaling, r["random_env_steps_per_s"], r["train_over_random"],
                          r["env_steps_per_s"] / ref if ref else None,
                          f'{r["final_train_return"]} (min {r["final_train_return_min"]})'])
        if sb:
            table.append(["CartPole-v1 (SB3)", 1, sb["env_steps"], None, sb["wall_s"], sb["env_steps_per_s"], None, None,
                          None, 1.0, f'{sb["final_train_return_last20"]} (eval {sb["eval_return"]})'])
        print(_timing.markdown_table(
            ["env", "seeds", "env steps", "compile s", "run s (median)", "env-steps/s", "vmap scaling vs 1 seed",
             "random env-steps/s", "train / random", "x SB3", "final return"], table))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
