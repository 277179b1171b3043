"""MADDPG training speed on simple_spread: env-steps/s of 1 and 8 seeds in one compile at several
env counts (compile apart, median of repeats), against a uniform random-policy rollout of the same
vector env (the ceiling: stepping alone).

    python benchmarks/bench_maddpg.py --seeds 1 8 --envs 16 64 --total-steps 32000
    python benchmarks/bench_maddpg.py --components        # ms per iteration of each compiled piece (16 envs)

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


def components(iters: int = 200, repeats: int = 3) -> None:
    """Milliseconds per iteration of each piece of one MADDPG iteration, compiled alone (the study's
    config, 16 envs, batch 256): the whole ``update``, acting + stepping the envs, the replay sample,
    the learning step. Every timed program returns a sum over the state it changes, so XLA cannot
    drop the work."""
    from maddpg_study import study_config

    cfg = dataclasses.replace(study_config("simple_spread", 200_000, 16, 256, 16, 200_000), learning_starts=0)
    maddpg.validate(cfg)
    st = jax.jit(lambda k: maddpg.init(k, cfg))(jax.random.PRNGKey(0))
    leaves_sum = lambda *trees: sum(x.sum() for x in jax.tree_util.tree_leaves(trees))
    venv = maddpg.build(cfg).spec.vec(cfg.num_envs)
    batch = jax.tree_util.tree_map(lambda x: x[0], maddpg.sample(st, jax.random.PRNGKey(1)))

    def whole(s):
        o = jax.lax.scan(lambda s, _: (maddpg.update(s)[0], None), s, None, iters)[0]
        return leaves_sum(o.actor, o.critic, o.actor_target, o.critic_target, o.buffer)

    def env(s):
        def body(c, k):
            es, obs = c
            es, out = venv.step(k, es, maddpg.act(s, k, obs, 0.1))
            return (es, out.obs), None
        return jax.lax.scan(body, (s.env_state, s.obs), jax.random.split(s.key, iters))[0][1].sum()

    def sample(s):
        return jax.lax.scan(lambda c, k: (c + maddpg.sample(s, k)["reward"].sum(), None), 0.0,
                            jax.random.split(s.key, iters))[0]

    def learn(s):
        o = jax.lax.scan(lambda s, _: (maddpg.learn_step(s, batch)[0], None), s.replace(buffer=None), None, iters)[0]
        return leaves_sum(o.actor, o.critic, o.actor_target, o.critic_target)

    print("| piece (16 envs, batch 256, 3 agents) | ms / iteration (median) |\n|---|---|")
    for name, f in (("whole iteration (update)", whole), ("act + step 16 envs", env), ("replay sample", sample),
                    ("learning step (critics, actors, targets)", learn)):
        c = jax.jit(f).lower(st).compile()
        t = repeat(lambda: jax.block_until_ready(c(st)), repeats)
        print(f"| {name} | {t.median / iters * 1e3:.3f} |", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--envs", type=int, nargs="+", default=[16, 64])
    p.add_argument("--total-steps", type=int, default=32_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--components", action="store_true", help="only the per-piece timing of one iteration")
    a = p.parse_args()
    if a.components:
        return components(repeats=a.repeats)
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
