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
``--devices 2``: jaxgen's 8-seed program runs on two XLA CPU devices, the seeds split over them
(``jaxgen.core.sharding.place_runs``); its one-seed program and the peer are unchanged.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "expert_rollouts"
FILES = {"CartPole-v1": "cartpole.npz", "Pendulum-v1": "pendulum.npz"}
PRESETS = {"CartPole-v1": "cartpole", "Pendulum-v1": "pendulum"}
PACKAGES = ["torch", "imitation", "stable-baselines3"]


def ensure_venv() -> Path:
    """The peer venv's python (``benchmarks/.venvs/imitation``), made when absent."""
    sys.path.insert(0, str(HERE))
    from _venv import ensure_venv as make

    return make("imitation", "torch, imitation, stable_baselines3", PACKAGES)


def config(env: str, steps: int, k: int, lr: float | None):
    """jaxgen's GAIL config of ``env``: its preset, ``steps`` env steps, ``k`` trajectories, PPO's lr
    (None: the preset's)."""
    import dataclasses

    from jaxgen.rl import gail

    cfg = gail.PRESETS[PRESETS[env]]
    ppo = dataclasses.replace(cfg.ppo, total_steps=steps, **({} if lr is None else {"learning_rate": lr}))
    return dataclasses.replace(cfg, ppo=ppo, demos=str(DATA / FILES[env]), num_trajectories=float(k))


def peer_settings(cfg) -> dict:
    """The peer's settings, read off jaxgen's config (so both sides run the same numbers)."""
    p, d = cfg.ppo, cfg.disc
    return {"env": p.env, "n_envs": p.num_envs, "n_steps": p.rollout_len, "batch_size": p.batch_size // p.num_minibatches,
            "n_epochs": p.update_epochs, "learning_rate": p.learning_rate, "gamma": p.gamma, "gae_lambda": p.gae_lambda,
            "clip_range": p.clip_eps, "ent_coef": p.ent_coef, "vf_coef": p.vf_coef, "max_grad_norm": p.max_grad_norm,
            "hidden": list(p.policy.hidden), "activation": p.policy.activation, "norm_obs": p.normalize_obs,
            "d_hidden": list(d.hidden), "d_updates": d.updates, "d_batch": d.batch_size, "d_lr": d.learning_rate,
            "replay": p.batch_size}


def peer(settings: dict, steps: int, seed: int, k: int) -> dict:
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

    c = settings
    torch.set_num_threads(1)
    z = np.load(DATA / FILES[c["env"]], allow_pickle=False)
    acts = np.split(z["acts"], z["indices"])
    ends = np.concatenate([z["indices"], [len(z["acts"])]]) + np.arange(1, len(acts) + 1)
    obs = np.split(z["obs"], ends[:-1])
    order = np.random.default_rng(0).permutation(len(acts))[:k]
    trajs = [Trajectory(obs=obs[i], acts=acts[i], infos=None, terminal=bool(z["terminal"][i])) for i in order]
    venv = make_vec_env(c["env"], rng=np.random.default_rng(seed), n_envs=c["n_envs"],
                        post_wrappers=[lambda env, _: RolloutInfoWrapper(env)])
    # jaxgen's normalize_obs has no wrapper here: imitation's reward net standardises its own inputs
    # (BasicRewardNet's default RunningNorm) and the policy sees raw observations. SB3's VecNormalize
    # would hand D normalised policy observations beside raw expert ones (measured: the peer then
    # stayed at a random policy's return on Pendulum, -1212 after 1e6 steps).
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[c["activation"]]
    learner = PPO(env=venv, policy=MlpPolicy, n_steps=c["n_steps"], batch_size=c["batch_size"], n_epochs=c["n_epochs"],
                  learning_rate=c["learning_rate"], gamma=c["gamma"], gae_lambda=c["gae_lambda"], clip_range=c["clip_range"],
                  ent_coef=c["ent_coef"], vf_coef=c["vf_coef"], max_grad_norm=c["max_grad_norm"], seed=seed,
                  policy_kwargs=dict(net_arch=dict(pi=c["hidden"], vf=c["hidden"]), activation_fn=act), device="cpu")
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=tuple(c["d_hidden"]),
                                use_next_state=False, use_done=False)
    trainer = GAIL(demonstrations=trajs, demo_batch_size=c["d_batch"], gen_replay_buffer_capacity=c["replay"],
                   n_disc_updates_per_round=c["d_updates"], venv=venv, gen_algo=learner, reward_net=reward_net,
                   allow_variable_horizon=True, disc_opt_kwargs={"lr": c["d_lr"]})
    t = time.perf_counter()
    trainer.train(steps)
    run_s = time.perf_counter() - t
    mean, std = evaluate_policy(learner, venv, n_eval_episodes=32, deterministic=True)
    return {"run_s": run_s, "eval_return": float(mean), "eval_std": float(std), "env_steps": steps,
            "versions": {m.__name__: m.__version__ for m in (torch, np)}}


def ours(cfg, seeds: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxgen.core import config as C
    from jaxgen.core.sharding import place_runs
    from jaxgen.core.sweep import vmap_runs
    from jaxgen.rl import gail

    hp = {n: jnp.full((seeds,), v) for n, v in C.hparams(cfg).items()}
    hp["ppo.eval_greedy"] = jnp.ones((seeds,))
    keys, hp = place_runs((jax.random.split(jax.random.PRNGKey(0), seeds), hp))  # several devices: seeds split
    train = jax.jit(vmap_runs(gail.make_train(cfg), seeds))  # one seed: unbatched
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
    ap.add_argument("--env", default="CartPole-v1", choices=list(FILES))
    ap.add_argument("--steps", type=int, default=None, help="env steps of each side (default: jaxgen's preset's: "
                                                          "CartPole 1e5, Pendulum 1e6)")
    ap.add_argument("--lr", type=float, default=None, help="PPO's Adam learning rate on both sides (default: the "
                                                         "preset's: CartPole 1e-3, Pendulum 3e-4)")
    ap.add_argument("--trajectories", type=int, default=4)
    ap.add_argument("--peer-seeds", type=int, default=1, help="peer runs (seeds 0, 1, ...), one after another")
    ap.add_argument("--peer", default=None, help="(internal) run the imitation side here with these JSON settings")
    ap.add_argument("--peer-seed", type=int, default=0)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--devices", type=int, default=1, help="XLA CPU devices for jaxgen's 8-seed program (default 1)")
    a = ap.parse_args(argv)
    if a.peer:
        print(json.dumps(peer(json.loads(a.peer), a.steps, a.peer_seed, a.trajectories)))
        return
    sys.path.insert(0, str(HERE))
    from _timing import load_average

    import jax

    jax.config.update("jax_num_cpu_devices", a.devices)  # before JAX's first use of a device
    from jaxgen.rl import gail

    steps = a.steps or gail.PRESETS[PRESETS[a.env]].ppo.total_steps
    cfg = config(a.env, steps, a.trajectories, a.lr)
    settings = peer_settings(cfg)
    print(f"devices: {len(jax.devices())}\nload before: {load_average()}\nsettings (both sides): {json.dumps(settings)}", flush=True)
    one, eight = ours(cfg, 1), ours(cfg, 8)
    print(f"jaxgen 1 seed: {json.dumps(one)}\njaxgen 8 seeds: {json.dumps(eight)}", flush=True)
    if a.skip_peer:
        return
    py = ensure_venv()
    runs = []
    for seed in range(a.peer_seeds):
        r = subprocess.run([str(py), __file__, "--peer", json.dumps(settings), "--steps", str(steps),
                            "--trajectories", str(a.trajectories), "--peer-seed", str(seed)], capture_output=True, text=True)
        if r.returncode:
            print("imitation side failed:\n" + r.stderr[-3000:])
            return
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"imitation seed {seed}: {json.dumps(runs[-1])}", flush=True)
    run_s = sum(p["run_s"] for p in runs) / len(runs)
    ret = sum(p["eval_return"] for p in runs) / len(runs)
    print(f"load after: {load_average()}")
    print(f"{a.env}: {steps} env steps per run, {a.trajectories} trajectories, PPO lr {cfg.ppo.learning_rate:g}")
    print("| side | seeds | compile s | run s (per run) | greedy eval return (mean) | speed-up (run) |\n|---|---|---|---|---|---|")
    print(f"| imitation GAIL (torch, SB3) | {len(runs)} run(s), one after another | - | {run_s:.1f} | {ret:.1f} | 1x |")
    for o in (one, eight):
        print(f"| jaxgen GAIL | {o['seeds']} in one program | {o['compile_s']:.1f} | {o['run_s']:.2f} | {o['eval_return']:.1f} | "
              f"{run_s * o['seeds'] / o['run_s']:.1f}x{' per seed' if o['seeds'] > 1 else ''} |")

if __name__ == "__main__":
    main()
