"""Where an iteration's time goes: each piece of jaxgen's PPO and DQN iteration (CartPole-v1,
the default configs), compiled and timed alone, vmapped over 1 and 8 seeds, against the whole
iteration -- the per-component table of issue 21 (``benchmarks/notes/profile.md``).

    python benchmarks/bench_components.py                      # PPO and DQN, 1 and 8 seeds
    python benchmarks/bench_components.py --algos dqn --seeds 8 --repeats 5
    python benchmarks/bench_components.py --algos maddpg --seeds 1   # simple_spread, the study's config

Every piece runs ``--iters`` times in one ``lax.scan`` whose carry is the state the piece
changes (or an accumulator fed back into its input), so XLA can neither hoist it out of the
loop nor drop it; the figure is the median over repeats of the wall time divided by the
iterations. The pieces do not sum exactly to the whole: the whole also carries the bookkeeping
between them (key folding, metrics stacking, the ``lax.cond`` around DQN's learning step).

PPO pieces (one iteration = 4 envs x 128 steps, 4 epochs x 4 minibatches): ``collect`` (policy
forward, sampling and the env step, 128 times), ``advantages`` (the critic on the final
observations, GAE), ``learn`` (the 16 minibatch gathers, gradient and Adam steps). DQN pieces
(one iteration = 10 envs one step, one gradient step at batch 128): act (Q forward, epsilon-greedy)
+ env step + replay add, the replay sample, the gradient + Adam step, the target refresh (Polyak
select), the episode statistics. MADDPG pieces (simple_spread, 16 envs, batch 256, 3 agents):
acting + stepping the envs, the replay sample, the learning step.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
import jaxgen  # noqa: E402,F401
from _timing import header, markdown_table, repeat  # noqa: E402
from jaxgen.core import optim  # noqa: E402
from jaxgen.rl import buffers, dqn, envs, maddpg, ppo  # noqa: E402


def _tree_sum(*trees) -> jax.Array:
    return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree_util.tree_leaves(trees))


def ppo_pieces(iters: int) -> tuple[dict, object]:
    """``{name: fn(state) -> scalar}`` of PPO's pieces, and the init function."""
    cfg = ppo.validate(ppo.PPOConfig())
    key = jax.random.PRNGKey(1)

    def whole(s):
        o = jax.lax.scan(lambda s, _: (ppo.update(s)[0], None), s, None, iters)[0]
        return _tree_sum(o.params, o.opt_state)

    def collect(s):
        def body(s, i):
            s, traj = ppo.collect(s, jax.random.fold_in(key, i))
            return s, jnp.sum(traj["reward"])
        s, r = jax.lax.scan(body, s, jnp.arange(iters))
        return r.sum() + _tree_sum(s.obs)

    def advantages(s):
        _, traj = ppo.collect(s, key)

        def body(c, _):
            _, adv, target = ppo.advantages(s, traj, traj["reward"] + c * 1e-30)
            return c + jnp.sum(adv) + jnp.sum(target), None
        return jax.lax.scan(body, 0.0, None, iters)[0]

    def learn(s):
        s2, traj = ppo.collect(s, key)
        s2, adv, target = ppo.advantages(s2, traj, traj["reward"])
        o = jax.lax.scan(lambda st, i: (ppo.learn(st, traj, adv, target, jax.random.fold_in(key, i))[0], None),
                         s2, jnp.arange(iters))[0]
        return _tree_sum(o.params, o.opt_state)

    return {"whole iteration": whole, "collect (128 steps x 4 envs)": collect,
            "advantages (final values, GAE)": advantages, "learn (4 epochs x 4 minibatches)": learn}, \
        (lambda k: ppo.init(k, cfg)), cfg


def dqn_pieces(iters: int) -> tuple[dict, object]:
    cfg = dqn.validate(dataclasses.replace(dqn.DQNConfig(), learning_starts=0))
    key = jax.random.PRNGKey(1)

    def whole(s):
        o = jax.lax.scan(lambda s, _: (dqn.update(s)[0], None), s, None, iters)[0]
        return _tree_sum(o.params, o.opt_state, o.target_params)

    def act_step_add(s):
        venv = dqn.build(cfg).spec.vec(cfg.num_envs)

        def body(c, i):
            env_state, obs, buf = c
            k_act, k_env = envs.rbg_keys(jax.random.fold_in(key, i), 2)
            a = dqn.epsilon_greedy(k_act, dqn.q_values(s, obs), dqn.epsilon(s), dqn.explore_probs(cfg))
            env_state, out = venv.step(k_env, env_state, a)
            buf = buffers.add(buf, {"obs": obs, "action": a, "reward": out.reward, "next_obs": out.final_obs,
                                    "terminated": out.terminated})
            return (env_state, out.obs, buf), None
        c = jax.lax.scan(body, (s.env_state, s.obs, s.buffer), jnp.arange(iters))[0]
        return _tree_sum(c[1], c[2])

    def sample(s):
        def body(c, i):
            b = dqn.sample_batches(s, jax.random.fold_in(key, i))
            return c + jnp.sum(b["reward"]) + jnp.sum(b["obs"]), None
        return jax.lax.scan(body, 0.0, jnp.arange(iters))[0]

    def learn(s):
        b = dqn.sample_batches(s, key)

        def body(st, _):
            p, o, _ = dqn.learn(st, b)
            return st.replace(params=p, opt_state=o), None
        o = jax.lax.scan(body, s.replace(buffer=None), None, iters)[0]
        return _tree_sum(o.params, o.opt_state)

    def target(s):
        def body(c, i):
            tgt, p = c
            refresh = (i % 50) == 0
            return (optim.polyak(tgt, p, jnp.where(refresh, 1.0, 0.0)), p), None
        return _tree_sum(jax.lax.scan(body, (s.target_params, s.params), jnp.arange(iters))[0][0])

    def stats(s):
        def body(st, i):
            r = jnp.full((cfg.num_envs,), 1.0) * i
            st, m = st.record(r, (i % 7) == 0).report()
            return st, _tree_sum(m)
        st, r = jax.lax.scan(body, s.stats, jnp.arange(iters))
        return jnp.sum(r) + _tree_sum(st)

    return {"whole iteration": whole, "act + env step + replay add": act_step_add, "replay sample": sample,
            "gradient + Adam step": learn, "target refresh": target, "episode statistics": stats}, \
        (lambda k: dqn.init(k, cfg)), cfg


def maddpg_pieces(iters: int) -> tuple[dict, object]:
    """MADDPG on simple_spread at the study's config (16 envs, batch 256, one gradient step per
    agent per iteration, learning from the first step)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from maddpg_study import study_config

    cfg = dataclasses.replace(study_config("simple_spread", 200_000, 16, 256, 16, 200_000), learning_starts=0)
    maddpg.validate(cfg)  # makes the jaxmarl env outside any trace
    venv = maddpg.build(cfg).spec.vec(cfg.num_envs)

    def whole(s):
        o = jax.lax.scan(lambda s, _: (maddpg.update(s)[0], None), s, None, iters)[0]
        return _tree_sum(o.actor, o.critic, o.actor_target, o.critic_target, o.buffer)

    def act_step(s):
        def body(c, k):
            es, obs = c
            es, out = venv.step(k, es, maddpg.act(s, k, obs, 0.1))
            return (es, out.obs), None
        return _tree_sum(jax.lax.scan(body, (s.env_state, s.obs), jax.random.split(s.key, iters))[0][1])

    def sample(s):
        return jax.lax.scan(lambda c, k: (c + maddpg.sample(s, k)["reward"].sum(), None), 0.0,
                            jax.random.split(s.key, iters))[0]

    def learn(s):
        batch = jax.tree_util.tree_map(lambda x: x[0], maddpg.sample(s, jax.random.PRNGKey(1)))
        o = jax.lax.scan(lambda st, _: (maddpg.learn_step(st, batch)[0], None), s.replace(buffer=None), None, iters)[0]
        return _tree_sum(o.actor, o.critic, o.actor_target, o.critic_target)

    return {"whole iteration": whole, "act + step 16 envs": act_step, "replay sample": sample,
            "learning step (3 agents' critics, actors, targets)": learn}, (lambda k: maddpg.init(k, cfg)), cfg


PIECES = {"ppo": ppo_pieces, "dqn": dqn_pieces, "maddpg": maddpg_pieces}


def measure(algo: str, seeds: int, iters: int, repeats: int) -> list:
    pieces, init, cfg = PIECES[algo](iters)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state = jax.jit(jax.vmap(init))(keys)
    rows, whole = [], None
    for name, fn in pieces.items():
        c = jax.jit(jax.vmap(fn)).lower(state).compile()
        t = repeat(lambda: jax.block_until_ready(c(state)), repeats).median / iters * 1e3
        whole = t if whole is None else whole
        rows.append([algo, seeds, name, f"{t:.3f}", f"{100 * t / whole:.0f} %"])
        print(" | ".join(map(str, rows[-1])), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", nargs="+", default=["ppo", "dqn"], choices=list(PIECES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ppo-iters", type=int, default=50)
    ap.add_argument("--dqn-iters", type=int, default=2000)
    ap.add_argument("--maddpg-iters", type=int, default=200)
    a = ap.parse_args()
    print(header("jax", "jaxlib", "flax", "optax", "gymnax"), flush=True)
    rows = []
    for algo in a.algos:
        for s in a.seeds:
            rows += measure(algo, s, {"ppo": a.ppo_iters, "dqn": a.dqn_iters, "maddpg": a.maddpg_iters}[algo], a.repeats)
    print(markdown_table(["algo", "seeds", "piece", "ms / iteration (median)", "share of the whole"], rows))


if __name__ == "__main__":
    main()
