"""Host side of the tabular methods (``jaxgen train tabular``): Q-learning as vmapped runs,
or value / policy iteration on the known MDP, printed as a Q table with the greedy policy's
return. No run directory: the whole result is the table.
"""
from __future__ import annotations

import jax
import numpy as np

from jaxgen.core import fit as F

METHODS = ("q-learning", "value-iteration", "policy-iteration")


class TabularFamily(F.Family):
    summary = ("episode_return",)
    run_args = False

    def add_args(self, p, command: str) -> None:
        if command == "train":
            p.add_argument("--method", default="q-learning", choices=METHODS)
            p.add_argument("--runs", type=int, default=16, help="q-learning: independent runs, vmapped")
            p.add_argument("--seed", type=int, default=0, help="random seed")

    def label(self, algo, config) -> str:
        return f"{config.env}, gamma {config.gamma}"

    def bench_trainer(self, algo, config):
        from jaxgen.rl import tabular

        return tabular.make_trainer(config), config.num_envs, "env_steps"

    def train(self, algo, config, args, run_dir, resume) -> dict:
        """The Q table of ``args.method`` (mean over ``args.runs`` vmapped Q-learning runs)."""
        from jaxgen.rl import envs, tabular

        if args.method == "q-learning":
            keys = jax.random.split(jax.random.PRNGKey(args.seed), args.runs)
            states, _ = jax.jit(jax.vmap(tabular.make_train(config)))(keys)
            q = np.asarray(states.q).mean(0)
            how = f"Q-learning, mean of {args.runs} vmapped runs of {tabular.make_trainer(config).num_steps} steps"
        else:
            mdp = tabular.line_world_mdp() if config.env == "LineWorld" else tabular.frozen_lake_mdp(envs.make(config.env)[0])
            fn = tabular.value_iteration if args.method == "value-iteration" else tabular.policy_iteration
            out = fn(mdp, config.gamma)
            q = np.asarray(out[0])
            how = f"{args.method}, converged in {int(out[-1])} iterations"
        ret = tabular.greedy_returns(config.env, jax.numpy.asarray(q), jax.random.PRNGKey(args.seed), 100)
        return {"q": q, "how": how, "mean_return": float(np.mean(ret))}

    def report(self, algo, out: dict) -> list[str]:
        q = out["q"]
        lines = [out["how"], "state  " + "  ".join(f"Q[a={a}]" for a in range(q.shape[1])) + "  greedy"]
        lines += [f"{i:>5}  " + "  ".join(f"{v:7.2f}" for v in row) + f"  {int(np.argmax(row)):>6}" for i, row in enumerate(q)]
        lines.append(f"greedy policy: mean return {out['mean_return']:.2f} over 100 episodes")
        return lines


FAMILY = TabularFamily()
