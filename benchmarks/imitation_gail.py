"""jaxgen's GAIL against the `imitation` library's GAIL (PyTorch + Stable-Baselines3) on
CartPole-v1, same budget, same demonstrations, same PPO settings, side by side in one run.

    python benchmarks/imitation_gail.py                 # creates benchmarks/.venvs/imitation on first use
    python benchmarks/imitation_gail.py --steps 60000   # a shorter budget for both
    python benchmarks/imitation_gail.py --peer-seeds 2  # the peer's mean over 2 seeds

The peer runs in its own virtual environment (``benchmarks/.venvs/imitation``: torch, imitation,
stable-baselines3 from the package index), created by this script; this script then runs
itself there with ``--peer``. Both sides:

* demonstrations: the first 4 trajectories of ``../shared/data/expert_rollouts/cartpole.npz`` in
  the order ``numpy.random.default_rng(0).permutation(57)`` (jaxgen's ``demo_seed=0``);
* generator: PPO, 4 envs x 128 steps, 4 epochs x 4 minibatches of 128, Adam lr 1e-3 (``--lr``; jaxgen's
  GAIL default since 2026-12-04, 2.5e-4 before), gamma 0.99, lambda 0.95, clip 0.2, entropy 0.01,
  value 0.5, grad-norm 0.5, tanh 64x64;
* discriminator: one hidden layer of 64 ReLU on (obs, action), BCE, Adam 3e-4, one update of
  256 expert + 256 policy transitions per PPO rollout; reward -log(1 - D).

Differences (stated, not hidden): imitation's reward net takes the action one-hot like ours but
no input noise (jaxgen adds N(0, 0.1^2)); imitation keeps a replay buffer of the last
``gen_replay_buffer_capacity`` policy transitions (set to one rollout, 512) and normalises the
reward net's output with a running normaliser (its default: mean and std), where jaxgen divides
the reward by the running std of its discounted return (``ppo.scale_rewards``, no mean removed);
SB3 uses separate value clipping off by default (jaxgen clips at 0.2). The learning rate:
jaxgen anneals it linearly to 0 over the run; imitation calls SB3's ``learn`` once per round, so
an SB3 schedule restarts each round and its value logged at the update is 0 (measured:
``gen/train/learning_rate 0``, nothing learned) -- the peer uses the constant ``--lr``. Evaluation: 32 greedy episodes per seed on each side.
Timing: wall time of the training call (jaxgen: compile reported apart), one torch thread.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMOS = HERE.parent.parent / "shared" / "data" / "expert_rollouts" / "cartpole.npz"
PACKAGES = ["torch", "imitation", "stable-baselines3"]


def ensure_venv() -> Path:
    """The peer venv's python (``benchmarks/.venvs/imitation``), made when absent."""
    sys.path.insert(0, str(HERE))
    from _venv import ensure_venv as make

    return make("imitation", "torch, imitation, stable_baselines3", PACKAGES)


def peer(steps: int, seed: int, k: int, lr: float) -> dict:
    import numpy as np
    import torch
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.data.types import Trajectory
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.ppo import MlpPolicy

    torch.set_num_threads(1)
    z = np.load(DEMOS, allow_pickle=False)
    acts = np.split(z["acts"], z["indices"])
    ends = np.concatenate([z["indices"], [len(z["acts"])]]) + np.arange(1, len(acts) + 1)
    obs = np.split(z["obs"], ends[:-1])
    order = np.random.default_rng(0).permutation(len(acts))[:k]
    trajs = [Trajectory(obs=obs[i], acts=acts[i], infos=None, terminal=True) for i in order]
    venv = make_vec_env("CartPole-v1", rng=np.random.default_rng(seed), n_envs=4,
                        post_wrappers=[lambda env, _: RolloutInfoWrapper(env)])
    learner = PPO(env=venv, policy=MlpPolicy, n_steps=128, batch_size=128, n_epochs=4, learning_rate=lr,
                  gamma=0.99, gae_lambda=0.95, clip_range=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, seed=seed,
                  policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64])), device="cpu")
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(64,), use_next_state=False,
                                use_done=False)
    trainer = GAIL(demonstrations=trajs, demo_batch_size=256, gen_replay_buffer_capacity=512, n_disc_updates_per_round=1,
                   venv=venv, gen_algo=learner, reward_net=reward_net, allow_variable_horizon=True,
                   disc_opt_kwargs={"lr": 3e-4})
    t = time.perf_counter()
    trainer.train(steps)
    run_s = time.perf_counter() - t
    mean, std = evaluate_policy(learner, venv, n_eval_episodes=32, deterministic=True)
    return {"run_s": run_s, "eval_return": float(mean), "eval_std": float(std), "env_steps": steps,
            "versions": {m.__name__: m.__version__ for m in (torch, np)}}


def ours(steps: int, seeds: int, k: int, lr: float) -> dict:
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxgen.core import config as C
    from jaxgen.rl import gail

    cfg = dataclasses.replace(gail.GAILConfig(demos=str(DEMOS), num_trajectories=float(k)),
                              ppo=dataclasses.replace(gail.CARTPOLE_PPO, total_steps=steps, learning_rate=lr))
    hp = {n: jnp.full((seeds,), v) for n, v in C.hparams(cfg).items()}
    hp["ppo.eval_greedy"] = jnp.ones((seeds,))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    train = jax.jit(jax.vmap(gail.make_train(cfg)))
    t = time.perf_counter()
    compiled = train.lower(keys, hp).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    state, m = compiled(keys, hp)
    jax.block_until_ready(m)
    run_s = time.perf_counter() - t
    ret, _ = jax.jit(jax.vmap(lambda s, kk: gail.evaluate(s, kk, 32), in_axes=(0, None)))(state, jax.random.PRNGKey(1))
    ret = np.asarray(ret).mean(axis=1)
    return {"seeds": seeds, "compile_s": compile_s, "run_s": run_s, "eval_return": float(ret.mean()),
            "per_seed": ret.round(1).tolist()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100_000, help="env steps of each side (jaxgen's GAIL default: 1e5)")
    ap.add_argument("--lr", type=float, default=1e-3, help="PPO's Adam learning rate on both sides (jaxgen's default 1e-3)")
    ap.add_argument("--peer-seeds", type=int, default=1, help="peer runs (seeds 0, 1, ...), one after another")
    ap.add_argument("--trajectories", type=int, default=4)
    ap.add_argument("--peer", action="store_true", help="(internal) run the imitation side here and print JSON")
    ap.add_argument("--peer-seed", type=int, default=0)
    ap.add_argument("--skip-peer", action="store_true")
    a = ap.parse_args(argv)
    if a.peer:
        print(json.dumps(peer(a.steps, a.peer_seed, a.trajectories, a.lr)))
        return
    sys.path.insert(0, str(HERE))
    from _timing import load_average

    print(f"load before: {load_average()}", flush=True)
    one, eight = ours(a.steps, 1, a.trajectories, a.lr), ours(a.steps, 8, a.trajectories, a.lr)
    print(f"jaxgen 1 seed: {json.dumps(one)}\njaxgen 8 seeds: {json.dumps(eight)}", flush=True)
    if a.skip_peer:
        return
    py = ensure_venv()
    runs = []
    for seed in range(a.peer_seeds):
        r = subprocess.run([str(py), __file__, "--peer", "--steps", str(a.steps), "--trajectories", str(a.trajectories),
                            "--lr", str(a.lr), "--peer-seed", str(seed)], capture_output=True, text=True)
        if r.returncode:
            print("imitation side failed:\n" + r.stderr[-3000:])
            return
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"imitation seed {seed}: {json.dumps(runs[-1])}", flush=True)
    run_s = sum(p["run_s"] for p in runs) / len(runs)
    ret = sum(p["eval_return"] for p in runs) / len(runs)
    print(f"load after: {load_average()}")
    print(f"{a.steps} env steps per run, {a.trajectories} trajectories, PPO lr {a.lr:g}")
    print("| side | seeds | compile s | run s (per run) | greedy eval return (mean) | speed-up (run) |\n|---|---|---|---|---|---|")
    print(f"| imitation GAIL (torch, SB3) | {len(runs)} run(s), one after another | - | {run_s:.1f} | {ret:.1f} | 1x |")
    for o in (one, eight):
        print(f"| jaxgen GAIL | {o['seeds']} in one program | {o['compile_s']:.1f} | {o['run_s']:.2f} | {o['eval_return']:.1f} | "
              f"{run_s * o['seeds'] / o['run_s']:.1f}x{' per seed' if o['seeds'] > 1 else ''} |")

if __name__ == "__main__":
    main()
