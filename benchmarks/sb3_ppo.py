"""Stable-Baselines3 PPO (PyTorch, CPU) on gymnasium CartPole-v1 with the hyper-parameters of
``jaxgen.rl.ppo.PPOConfig()``, for the side-by-side with benchmarks/bench_ppo.py.

    python benchmarks/sb3_ppo.py                  # 4 envs x 128 steps, 5e5 env steps, 1 torch thread

Same settings: 4 envs (DummyVecEnv), 128 steps per env per rollout, 4 epochs of 4
minibatches (batch 128), Adam lr 2.5e-4 annealed linearly to 0, gamma 0.99, GAE lambda
0.95, clip 0.2 (value clipping 0.2 like jaxgen's default), entropy 0.01, value 0.5,
grad-norm 0.5, separate tanh 64x64 actor and critic, orthogonal initialisation, Adam
eps 1e-5. Prints the wall time to 5e5 steps, env-steps/s, the mean of the last 20
training episodes and the evaluation return (sampled actions).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--num-envs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = ap.parse_args(argv)

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(a.threads)
    env = make_vec_env("CartPole-v1", n_envs=a.num_envs, seed=a.seed)
    model = PPO(
        "MlpPolicy", env, learning_rate=lambda progress: 2.5e-4 * progress, n_steps=128,
        batch_size=a.num_envs * 128 // 4, n_epochs=4, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
        clip_range_vf=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, normalize_advantage=True,
        policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh,
                       "ortho_init": True, "optimizer_kwargs": {"eps": 1e-5}},
        seed=a.seed, verbose=0, device="cpu",
    )
    t = time.perf_counter()
    model.learn(total_timesteps=a.steps)
    wall = time.perf_counter() - t
    last = [ep["r"] for ep in list(model.ep_info_buffer)[-20:]]
    eval_ret, _ = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=a.seed + 1000),
                                  n_eval_episodes=a.eval_episodes, deterministic=False)
    out = {"library": "stable-baselines3", "env": "CartPole-v1", "env_steps": model.num_timesteps,
           "wall_s": round(wall, 2), "env_steps_per_s": round(model.num_timesteps / wall),
           "final_train_return_last20": float(np.mean(last)), "eval_return": float(eval_ret),
           "torch_threads": a.threads}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
