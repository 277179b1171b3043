"""jaxgen against rejax (the JAX RL library on the package index) side by side in one run:
PPO and DQN on CartPole-v1, TD3 on Pendulum-v1 and MountainCarContinuous-v0 (``td3_mcc``) -- 1 seed and 8 seeds vmapped in one compile on
both sides, compile time apart, median run time of repeats, env-steps/s and the final policy's
evaluation return (128 episodes per seed on both sides).

    python benchmarks/rejax_peer.py                      # creates benchmarks/.venvs/rejax on first use
    python benchmarks/rejax_peer.py --algos td3 --seeds 1 8 --repeats 3
    python benchmarks/rejax_peer.py --skip-peer          # the jaxgen side only

rejax runs in its own virtual environment (``benchmarks/.venvs/rejax``: ``rejax==0.1.3`` and
``gymnax<1`` from the package index -- rejax's metadata admits gymnax 1.0.1, but its code
unpacks gymnax 0.0.x's five-value ``step`` and fails on 1.x; jax, flax and optax resolve to
jaxgen's versions), made by this script, which then runs itself there with ``--peer`` and reads one JSON line back.
rejax 0.1.3 has no DDPG (its algorithms: PPO, DQN, IQN, PQN, SAC, TD3), so the DDPG row is
jaxgen's alone; TD3 is compared.

Both sides run the same hyper-parameters (jaxgen's defaults / presets, translated):

* PPO: 4 envs x 128 steps, 5e5 env steps, 4 epochs x 4 minibatches, tanh 64x64 actor and
  critic, Adam 2.5e-4, gamma 0.99, lambda 0.95, clip 0.2 (policy and value), entropy 0.01,
  value 0.5, gradient clip 0.5.
* DQN: 10 envs, 5e5 env steps, replay 1e4, batch 128, one gradient step per vector step,
  ReLU 64x64 (rejax's Q-network size is fixed at 64x64: jaxgen runs with ``hidden=(64, 64)``
  here, not its 120x84 default), Adam 2.5e-4, gradient clip 10, squared TD error, epsilon
  1 -> 0.05 over 2.5e5 env steps, learning from 1e4, a hard target copy every 500 env steps,
  no double-Q; evaluation epsilon 0.05 (rejax's act uses its default 0.05).
* TD3: 1 env, 1.5e4 env steps, replay 1e5, batch 128, ReLU 64x64, Adam 1e-3 (actor and
  critics), gamma 0.99, tau 0.005, exploration noise std 0.2, target noise 0.4 clipped at 1.0
  (jaxgen states these in half-widths of Pendulum's [-2, 2] box: 0.1 / 0.2 / 0.5), policy
  delay 2, learning from 1e3; deterministic evaluation.
* TD3 on MountainCarContinuous-v0 (``td3_mcc``, jaxgen's ``--preset mountaincar``): as TD3 above but
  5e4 env steps, exploration noise std 0.5, target noise 0.2 clipped at 0.5 (the box's half-width
  is 1, so the units agree), the first 1e4 env steps uniform random.

Differences that stay (stated, not hidden): rejax's ``max_grad_norm`` is ``optax.clip``, an
element-wise clip, where jaxgen clips the global norm; rejax's PPO has no learning-rate
annealing (jaxgen anneals to 0) and separate Adam states for actor and critic (jaxgen: one
optimiser over both); rejax's DQN and TD3 losses are ``0.5 * (q - y)^2`` (the same direction,
half the gradient -- Adam's step is scale-free up to its epsilon); rejax draws its epsilon from a
linear schedule over ``exploration_fraction`` of the run. Timed on both sides: the training call
alone (rejax's periodic evaluation switched off: ``eval_freq = total_timesteps``, no initial
evaluation, its callback replaced by a constant); the 128 evaluation episodes run afterwards.

Devices: ``--devices 2`` gives jaxgen two XLA CPU devices (``jax_num_cpu_devices``, one per core
of this machine) and splits the seeds' keys over them (``jaxgen.core.sharding.place_runs``: each
device runs half the vmapped seeds, nothing exchanged); the peer gets the same split
(``--peer-devices``, default: ``--devices``) -- plain JAX placement that works on any program, so
``--peer-devices 1`` measures rejax as it ships. One seed runs on one device either way.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ["rejax==0.1.3", "gymnax<1"]
EVAL_EPISODES = 128
ALGOS = ("ppo", "dqn", "td3", "td3_mcc")

# One table of the settings both sides share (env, steps, and what rejax is given).
REJAX = {
    "ppo": dict(env="CartPole-v1", total_timesteps=500_000, num_envs=4, num_steps=128, num_epochs=4,
                num_minibatches=4, learning_rate=2.5e-4, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
                ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
                agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)}),
    "dqn": dict(env="CartPole-v1", total_timesteps=500_000, num_envs=10, buffer_size=10_000, fill_buffer=10_000,
                batch_size=128, num_epochs=1, learning_rate=2.5e-4, max_grad_norm=10.0, gamma=0.99, eps_start=1.0,
                eps_end=0.05, exploration_fraction=0.5, target_update_freq=500, polyak=0.0, ddqn=False,
                agent_kwargs={"activation": "relu"}),
    "td3": dict(env="Pendulum-v1", total_timesteps=15_000, num_envs=1, buffer_size=100_000, fill_buffer=1_000,
                batch_size=128, num_epochs=1, learning_rate=1e-3, max_grad_norm=float("inf"), gamma=0.99,
                polyak=0.995, target_update_freq=1, exploration_noise=0.2, target_noise=0.4, target_noise_clip=1.0,
                policy_delay=2, actor_kwargs={"activation": "relu"}, critic_kwargs={"activation": "relu"}),
    # jaxgen's ``--preset mountaincar`` (TD3, 50k steps, noise 0.5 of MountainCarContinuous's half-width 1, 10k random
    # steps first); the same in rejax's absolute units.
    "td3_mcc": dict(env="MountainCarContinuous-v0", total_timesteps=50_000, num_envs=1, buffer_size=100_000,
                    fill_buffer=10_000, batch_size=128, num_epochs=1, learning_rate=1e-3, max_grad_norm=float("inf"),
                    gamma=0.99, polyak=0.995, target_update_freq=1, exploration_noise=0.5, target_noise=0.2,
                    target_noise_clip=0.5, policy_delay=2, actor_kwargs={"activation": "relu"},
                    critic_kwargs={"activation": "relu"}),
}


def _median_runs(fn, arg, repeats: int) -> tuple[object, float, list]:
    import jax

    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(arg))
        times.append(time.perf_counter() - t)
    return out, statistics.median(times), times


def _jaxgen_train(algo: str):
    """(make_train(config), evaluate, config) of jaxgen's side of ``algo``."""
    from jaxgen.rl import ddpg, dqn, ppo

    if algo == "ppo":
        cfg = ppo.PPOConfig()
        return ppo.make_train(cfg), ppo.evaluate, cfg
    if algo == "dqn":
        cfg = dataclasses.replace(dqn.DQNConfig(), hidden=(64, 64))
        return dqn.make_train(cfg), dqn.evaluate, cfg
    cfg = ddpg.PRESETS["td3" if algo == "td3" else "mountaincar"]
    return ddpg.make_train(cfg), ddpg.evaluate, cfg


def _devices(n: int) -> None:
    """``n`` XLA CPU devices (before JAX's first use of a device)."""
    import jax

    jax.config.update("jax_num_cpu_devices", n)


def _place(keys):
    """``keys [S, 2]`` split over the devices when there are several and S divides over them
    (what ``jaxgen.core.sharding.place_runs`` does; written here for the peer's venv)."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devs = jax.devices()
    if len(devs) == 1 or keys.shape[0] % len(devs):
        return keys
    return jax.device_put(keys, NamedSharding(Mesh(np.asarray(devs), ("runs",)), PartitionSpec("runs")))


def _used(keys) -> int:
    """How many devices hold ``keys``."""
    return len(keys.sharding.device_set) if hasattr(keys, "sharding") else 1


def _runs(train, seeds: int):
    """``vmap(train)`` over the keys ``[S, 2]``; one seed: ``train`` itself on ``keys[0]``, the
    output given a leading axis of 1 (both sides alike: on XLA:CPU a vmapped batch of one is
    slower than the plain program). Written here, not imported, as the peer's venv has no jaxgen."""
    import jax

    if seeds != 1:
        return jax.vmap(train)
    import jax.numpy as jnp

    return lambda keys: jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], train(keys[0]))  # rejax: float leaves too


def ours(algo: str, seeds: int, repeats: int) -> dict:
    """jaxgen's side: ``jit(vmap(make_train(cfg)))`` over ``seeds`` keys (one seed: unbatched)."""
    import jax
    import numpy as np

    from jaxgen.core.sharding import place_runs

    train, evaluate, cfg = _jaxgen_train(algo)
    keys = place_runs(jax.random.split(jax.random.PRNGKey(0), seeds))
    t = time.perf_counter()
    fn = jax.jit(_runs(train, seeds)).lower(keys).compile()
    compile_s = time.perf_counter() - t
    (state, _), run_s, times = _median_runs(fn, keys, repeats)
    ev = jax.jit(jax.vmap(lambda s, k: evaluate(s, k, EVAL_EPISODES)[0], in_axes=(0, None)))
    ret = np.asarray(ev(state, jax.random.PRNGKey(1))).mean(axis=1)
    steps = cfg.total_steps
    return {"side": "jaxgen", "algo": algo, "env": cfg.env, "seeds": seeds, "env_steps": steps, "compile_s": compile_s,
            "run_s": run_s, "runs": times, "env_steps_per_s": seeds * steps / run_s, "devices": _used(keys),
            "eval_return": float(ret.mean()), "per_seed": ret.round(1).tolist()}


def peer(algo: str, seeds: int, repeats: int) -> dict:
    """rejax's side (runs inside the rejax venv): ``jit(vmap(algo.train))`` over ``seeds`` keys (one seed: unbatched)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import rejax

    conf = dict(REJAX[algo])
    steps = conf["total_timesteps"]
    cls = {"ppo": rejax.PPO, "dqn": rejax.DQN, "td3": rejax.TD3, "td3_mcc": rejax.TD3}[algo]
    agent = cls.create(eval_freq=steps, skip_initial_evaluation=True, **conf)
    agent = agent.replace(eval_callback=lambda a, ts, rng: jnp.zeros(()))
    keys = _place(jax.random.split(jax.random.PRNGKey(0), seeds))
    t = time.perf_counter()
    fn = jax.jit(_runs(agent.train, seeds)).lower(keys).compile()
    compile_s = time.perf_counter() - t
    (ts, _), run_s, times = _median_runs(fn, keys, repeats)

    def score(ts_i, key):
        act = agent.make_act(ts_i)
        return rejax.evaluate.evaluate(act, key, agent.env, agent.env_params, EVAL_EPISODES, agent.env_params.max_steps_in_episode)[1]

    ret = np.asarray(jax.vmap(score, in_axes=(0, None))(ts, jax.random.PRNGKey(1))).mean(axis=1)
    return {"side": "rejax", "algo": algo, "env": conf["env"], "seeds": seeds, "env_steps": steps, "compile_s": compile_s,
            "run_s": run_s, "runs": times, "env_steps_per_s": seeds * steps / run_s, "devices": _used(keys),
            "eval_return": float(ret.mean()), "per_seed": ret.round(1).tolist(), "rejax": rejax.__version__
            if hasattr(rejax, "__version__") else "0.1.3"}


def ensure_venv() -> Path:
    """The peer venv's python (``benchmarks/.venvs/rejax``), made when absent."""
    sys.path.insert(0, str(HERE))
    from _venv import ensure_venv as make

    return make("rejax", "rejax", PACKAGES)


def run_peer(py: Path, algo: str, seeds: int, repeats: int, devices: int = 1) -> dict | None:
    r = subprocess.run([str(py), __file__, "--peer", "--algos", algo, "--seeds", str(seeds), "--repeats", str(repeats),
                        "--devices", str(devices)],
                       capture_output=True, text=True)
    if r.returncode:
        print(f"rejax {algo} x{seeds} failed:\n" + r.stderr[-3000:], flush=True)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    from jaxgen.core.timing import markdown_table

    peers = {(r["algo"], r["seeds"]): r for r in rows if r["side"] == "rejax"}
    out = []
    for r in rows:
        p = peers.get((r["algo"], r["seeds"]))
        ratio = r["run_s"] / p["run_s"] if p and r["side"] == "jaxgen" else None
        out.append([r["side"], r["algo"], r["env"], r["seeds"], r.get("devices", 1), r["env_steps"], r["compile_s"], r["run_s"],
                    r["env_steps_per_s"], r["eval_return"], "-" if ratio is None else f"{ratio:.2f}x"])
    return markdown_table(["side", "algo", "env", "seeds", "devices", "env steps/seed", "compile s", "run s (median)",
                           "env-steps/s", "eval return", "jaxgen / rejax run time"], out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs after the compile (median reported)")
    ap.add_argument("--peer", action="store_true", help="(internal) run rejax's side here and print one JSON line")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--json", type=Path, help="write every row here")
    ap.add_argument("--devices", type=int, default=1, help="XLA CPU devices, the seeds split over them (default 1)")
    ap.add_argument("--peer-devices", type=int, default=None, help="the peer's (default: --devices)")
    a = ap.parse_args(argv)
    _devices(a.devices)
    if a.peer:
        print(json.dumps(peer(a.algos[0], a.seeds[0], a.repeats)))
        return
    from jaxgen.core.timing import header, load_average

    print(header("jax", "jaxlib", "flax", "optax", "gymnax"), flush=True)
    print(f"load before: {load_average()}", flush=True)
    py = None if a.skip_peer else ensure_venv()
    rows = []
    for algo in a.algos:
        for n in a.seeds:
            rows.append(ours(algo, n, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
            if py is not None:
                p = run_peer(py, algo, n, a.repeats, a.devices if a.peer_devices is None else a.peer_devices)
                if p:
                    rows.append(p)
                    print(json.dumps(p), flush=True)
    print(f"load after: {load_average()}")
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps({"header": header("jax"), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
