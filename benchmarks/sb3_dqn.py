"""Stable-Baselines3 DQN (PyTorch, CPU) on gymnasium CartPole-v1 with jaxgen's default DQN
hyper-parameters, for the side-by-side with benchmarks/bench_dqn.py.

    pip install stable-baselines3 gymnasium      # with torch already installed (CPU wheel)
    python benchmarks/sb3_dqn.py                 # 10 envs, 5e5 env steps, squared TD error
    python benchmarks/sb3_dqn.py --loss huber    # SB3's own smooth-L1 loss

Same settings as ``jaxgen.rl.dqn.DQNConfig()``: 10 envs (DummyVecEnv), buffer 1e4, batch
128, one gradient step per vector step, learning after 1e4 env steps, target copy every
500 env steps, Adam 2.5e-4, gamma 0.99, epsilon 1 -> 0.05 over 2.5e5 env steps, MLP
120-84, gradient-norm clip 10, evaluation at epsilon 0.05. Prints the wall time to 5e5
steps, env-steps/s and the final evaluation return.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--num-envs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss", choices=("mse", "huber"), default="mse",
                    help="mse matches jaxgen's CartPole default (huber_delta=inf); huber is SB3's own")
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = ap.parse_args(argv)

    import gymnasium as gym
    import torch
    import torch.nn.functional as F
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    import stable_baselines3.dqn.dqn as sb3_dqn

    torch.set_num_threads(a.threads)
    if a.loss == "mse":
        class _F:  # the module namespace SB3's DQN.train reads F.smooth_l1_loss from
            def __getattr__(self, name):
                return getattr(F, name)

            @staticmethod
            def smooth_l1_loss(x, y):
                return 0.5 * F.mse_loss(x, y)

        sb3_dqn.F = _F()

    n = a.num_envs
    env = make_vec_env("CartPole-v1", n_envs=n, seed=a.seed)
    model = DQN(
        "MlpPolicy", env, learning_rate=2.5e-4, buffer_size=10_000, learning_starts=10_000, batch_size=128,
        gamma=0.99, train_freq=(1, "step"), gradient_steps=1, target_update_interval=500,
        exploration_fraction=250_000 / a.steps, exploration_initial_eps=1.0, exploration_final_eps=0.05,
        max_grad_norm=10, policy_kwargs={"net_arch": [120, 84]}, seed=a.seed, verbose=0, device="cpu",
    )
    t = time.perf_counter()
    model.learn(total_timesteps=a.steps)
    wall = time.perf_counter() - t

    eval_env = gym.make("CartPole-v1")
    rng = np.random.default_rng(a.seed)
    returns = []
    for ep in range(a.eval_episodes):
        obs, _ = eval_env.reset(seed=10_000 + ep)
        done, ret = False, 0.0
        while not done:
            if rng.random() < 0.05:
                action = eval_env.action_space.sample()
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = eval_env.step(int(action))
            ret += r
            done = term or trunc
        returns.append(ret)
    out = {"library": "stable-baselines3", "env": "CartPole-v1", "num_envs": n, "steps": a.steps, "loss": a.loss,
           "torch_threads": a.threads, "wall_s": round(wall, 1), "env_steps_per_s": round(a.steps / wall),
           "eval_return_mean": float(np.mean(returns)), "eval_epsilon": 0.05}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
