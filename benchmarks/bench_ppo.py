"""PPO throughput: the whole compiled run (default CartPole-v1 config: 4 envs x 128 steps,
5e5 env steps), compile time apart, median of repeats, for 1 and n seeds vmapped in one
program; beside it, in the same session, a random-policy rollout of the same number of
env steps (same N envs, same seeds axis) and the ratio training / rollout throughput.

    python benchmarks/bench_ppo.py                                   # CartPole-v1, 1 and 8 seeds
    python benchmarks/bench_ppo.py --seeds 1 8 64 --repeats 3
    python benchmarks/bench_ppo.py --breakdown                       # where the time of one iteration goes
    python benchmarks/bench_ppo.py --env Breakout-MinAtar --num-envs 64 --total-steps 10000000 --seeds 1

``--breakdown`` (1 seed) times, for the same number of iterations: the random rollout,
the policy rollout alone (collect: forward + sampling + env), collect + GAE + the
critic's bootstrap values, and the full iteration (+ 4 epochs x 4 minibatches of Adam);
the differences say where the time goes. ``--unroll`` sets the rollout's scan unroll.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402

from jaxgen.core.train import scan_steps  # noqa: E402
from jaxgen.rl import ppo  # noqa: E402
from jaxgen.rl.envs import VecEnv  # noqa: E402
from jaxgen.rl.returns import gae  # noqa: E402


def _gymnax_version() -> str:
    from importlib.metadata import version

    return version("gymnax")


def random_rollout(cfg: ppo.PPOConfig):
    """``fn(key)``: ``num_iterations * num_steps`` vector steps of the N envs with uniform random actions."""
    b = ppo.build(cfg)
    venv = VecEnv(b.env, b.env_params, cfg.num_envs)
    space = b.env.action_space(b.env_params)
    steps = cfg.num_iterations * cfg.num_steps

    def run(key):
        obs, st = venv.reset(key)

        def body(c, k):
            st, acc = c
            ka, ks = jax.random.split(k)
            a = jax.vmap(space.sample)(jax.random.split(ka, cfg.num_envs))
            st, out = venv.step(ks, st, a)
            return (st, acc + jnp.sum(out.reward)), None

        (st, acc), _ = jax.lax.scan(body, (st, jnp.zeros(())), jax.random.split(key, steps), unroll=cfg.unroll)
        return acc

    return run


def compiled(fn, seeds: int):
    keys = jax.random.split(jax.random.PRNGKey(0), seeds) if seeds > 1 else jax.random.PRNGKey(0)
    f = jax.vmap(fn) if seeds > 1 else fn
    c, compile_s = _timing.timed(lambda: jax.jit(f).lower(keys).compile())
    return (lambda: jax.block_until_ready(c(keys))), c, keys, compile_s


def bench(cfg: ppo.PPOConfig, seeds: int, repeats: int) -> dict:
    steps = cfg.num_iterations * cfg.batch_size * seeds
    train, train_c, keys, compile_s = compiled(ppo.make_train(cfg), seeds)
    rand, _, _, rand_compile_s = compiled(random_rollout(cfg), seeds)
    st = _timing.interleaved({"train": train, "random": rand}, repeats=repeats, warmup=1)
    _, m = train_c(keys)
    final = float(np.mean(np.asarray(m["episode_return"])[..., -1]))
    tr, rr = st["train"].per_second(steps), st["random"].per_second(steps)
    return {"env": cfg.env, "seeds": seeds, "env_steps": steps, "compile_s": round(compile_s, 2),
            "run_s": round(st["train"].median, 3), "run_s_all": [round(x, 3) for x in st["train"].times],
            "env_steps_per_s": round(tr), "random_run_s": round(st["random"].median, 3),
            "random_env_steps_per_s": round(rr), "train_over_random": round(tr / rr, 4),
            "final_train_return": round(final, 1), "random_compile_s": round(rand_compile_s, 2)}


def breakdown(cfg: ppo.PPOConfig, iters: int, repeats: int) -> list:
    """Seconds per iteration of nested parts of the PPO iteration (1 seed)."""
    cfg = dataclasses.replace(cfg, total_steps=iters * cfg.batch_size)
    b = ppo.build(cfg)
    state0 = ppo.init(jax.random.PRNGKey(0), cfg)

    def collect_only(s, _):
        s, traj = ppo.collect(s, jax.random.fold_in(s.key, s.step))
        return s.replace(step=s.step + 1), jnp.sum(traj["logp"])

    def collect_gae(s, _):
        s, traj = ppo.collect(s, jax.random.fold_in(s.key, s.step))
        t, n = cfg.num_steps, cfg.num_envs
        nv = b.net.apply({"params": s.params}, traj["final_obs"].reshape(t * n, -1), method="value").reshape(t, n)
        adv, tgt = gae(traj["reward"], traj["value"], nv, traj["terminated"], traj["truncated"], 0.99, 0.95)
        return s.replace(step=s.step + 1), jnp.sum(adv) + jnp.sum(tgt)

    fns = {"random rollout": jax.jit(random_rollout(cfg))}
    for name, step in (("collect (policy + env)", collect_only), ("+ bootstrap values + GAE", collect_gae),
                       ("full iteration (+ 4x4 Adam minibatches)", ppo.update)):
        fns[name] = jax.jit(lambda s, step=step: scan_steps(step, s, None, iters))
    calls = {}
    for name, fn in fns.items():
        if name == "random rollout":
            c = fn.lower(jax.random.PRNGKey(0)).compile()
            calls[name] = lambda c=c: jax.block_until_ready(c(jax.random.PRNGKey(0)))
        else:
            c = fn.lower(state0).compile()
            calls[name] = lambda c=c: jax.block_until_ready(c(state0))
    st = _timing.interleaved(calls, repeats=repeats, warmup=1)
    return [{"part": k, "ms_per_iteration": round(v.median / iters * 1e3, 3), "spread": round(v.spread, 3)}
            for k, v in st.items()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--num-envs", type=int, default=None)
    ap.add_argument("--total-steps", type=int, default=None)
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--unroll", type=int, default=1)
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument("--iters", type=int, default=100, help="iterations timed by --breakdown")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    over = {"env": a.env, "unroll": a.unroll}
    if a.num_envs:
        over["num_envs"] = a.num_envs
    if a.total_steps:
        over["total_steps"] = a.total_steps
    cfg = ppo.validate(dataclasses.replace(ppo.PPOConfig(), **over))
    print("# PPO benchmark |", _timing.header("jax", "flax", "optax") + " | gymnax " + _gymnax_version())
    if a.breakdown:
        rows = breakdown(cfg, a.iters, a.repeats)
        print(_timing.markdown_table(["part", "ms / iteration", "spread"],
                                     [[r["part"], r["ms_per_iteration"], r["spread"]] for r in rows]))
    else:
        rows = []
        for s in a.seeds:
            rows.append(bench(cfg, s, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
        print(_timing.markdown_table(
            ["env", "seeds", "env steps", "compile s", "run s (median)", "env-steps/s", "random rollout s",
             "random env-steps/s", "train / random", "final return"],
            [[r["env"], r["seeds"], r["env_steps"], r["compile_s"], r["run_s"], r["env_steps_per_s"], r["random_run_s"],
              r["random_env_steps_per_s"], r["train_over_random"], r["final_train_return"]] for r in rows]))
    if a.json:
        Path(a.json).write_text(json.dumps({"header": _timing.header("jax", "flax", "optax") + " | gymnax " + _gymnax_version(), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
