"""Host side of the deep-RL agents (DQN, PPO, REINFORCE; later DDPG, MADDPG, BC, GAIL):
one :func:`fit` and one :class:`RLFamily` for all of them, built on :mod:`jaxgen.core.fit`.

* :func:`fit` trains one seed of any agent config: between chunks an
  :class:`~jaxgen.rl.evaluation.EvalHook` plays complete evaluation episodes (``eval_return``)
  and every row gets ``env_steps``; at the end ``curves.png`` and ``results.json``. Returns
  ``final``, ``timings`` (with ``env_steps_per_s`` and ``eval_s``), ``first_eval_reaching``
  (the env step where the evaluation return first reached ``threshold``), ``history``, ``state``.
* :func:`load` / :func:`evaluate_run`: the saved policy of a run directory and the returns of
  complete episodes played with it (``jaxgen eval``).
* :func:`study`: seeds x traced hyperparameters as ONE vmapped compile (``jaxgen sweep``);
  :func:`seeds_check`: many seeds of ``make_train`` as one compile (the learning checks).

An agent module provides ``make_trainer(config)``, ``init``, ``evaluate(state, key,
num_episodes) -> (returns [E], lengths [E])`` and, for rendering, ``act(state, key, obs,
greedy)``; its registry entry names an :class:`RLFamily` with its env steps per iteration,
its curves and the traced hyperparameter that makes evaluation greedy.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import fit as F
from jaxgen.core.hooks import Scale
from jaxgen.core.sharding import place_runs
from jaxgen.core.sweep import vmap_runs
from jaxgen.core.timing import compile_and_run
from jaxgen.registry import algorithm_of, for_run
from jaxgen.rl.evaluation import EVAL_SEED, EvalHook, first_reaching
from jaxgen.rl.study import markdown_table, run_study

CURVES_PG = ("episode_return", "eval_return", "pg_loss", "v_loss", "entropy", "approx_kl")
CURVES_Q = ("episode_return", "eval_return", "loss", "q_mean", "epsilon")


@dataclasses.dataclass(frozen=True)
class RLFamily(F.Family):
    """The RL agents' host side.

    Attributes:
      per_iteration: ``config -> env steps per iteration`` (rates and x axes; an agent whose
        state counts its own ``env_steps`` has that count logged instead).
      curve_keys: metrics drawn into ``curves.png``.
      greedy: ``(traced hyperparameter, value)`` that makes ``evaluate`` greedy (``--greedy``).
      chunks: default number of chunks of a run.
      commands: which of render / inspect the agent offers.
    """

    per_iteration: Callable = lambda config: 1
    curve_keys: tuple = CURVES_PG
    greedy: tuple = ("eval_greedy", 1.0)
    chunks: int = 25
    commands: tuple = ("render",)
    summary: tuple = ("episode_return", "eval_return")
    chunk_help = "iterations per compiled chunk (default: 1/25 of the run)"
    eval_options = (("--episodes", dict(type=int, default=100, help="RL: evaluation episodes")),
                    ("--greedy", dict(action="store_true", help="RL: act greedily (the mode of the policy / epsilon 0)")),
                    ("--seed", dict(type=int, default=None, help="evaluation seed (default: RL 0, GAN 1234)")))
    render_options = (("--out", dict(default=None, help="PNG strip, or with a .gif suffix an animation of every step "
                                                      "(default RUN_DIR/episode.png)")),
                      ("--max-steps", dict(type=int, default=500, help="longest episode played")),
                      ("--frames", dict(type=int, default=8, help="states shown, evenly spaced over the episode")),
                      ("--seed", dict(type=int, default=0, help="episode seed")),
                      ("--sample", dict(action="store_true", help="sample actions instead of acting greedily")))

    def add_args(self, p, command: str) -> None:
        g = p.add_argument_group("evaluation")
        g.add_argument("--eval-episodes", type=int, default=10 if command == "train" else 8,
                       help="complete evaluation episodes between chunks")
        g.add_argument("--eval-every", type=int, default=1 if command == "train" else 4, metavar="N",
                       help="evaluate every N chunks (and at the end)")
        g.add_argument("--threshold", type=float, default=None,
                       help="report the first env step where the evaluation return reaches this")

    def label(self, algo, config) -> str:
        return f"{algo.name.upper()} on {config.env}: {config.num_envs} envs, {self.per_iteration(config)} env steps per iteration"

    def job(self, algo, config, args=None, *, eval_episodes: int = 10, eval_every: int = 1,
            threshold: float | None = None) -> F.Job:
        if args is not None:
            eval_episodes, eval_every, threshold = args.eval_episodes, args.eval_every, args.threshold
        mod = algo.mod
        trainer = mod.make_trainer(config)
        per = self.per_iteration(config)
        ev = EvalHook(mod.evaluate, eval_episodes, eval_every)

        def finish(res, run_dir):
            hist = res.history
            return {"env": config.env, "env_steps": hist[-1]["env_steps"] if hist else 0, "threshold": threshold,
                    "first_eval_reaching": first_reaching(hist, "eval_return", threshold) if threshold is not None else None}

        return F.Job(trainer, hooks=[Scale(per), ev], finish=finish, curves=self.curve_keys, x="env_steps",
                     title=f"{algo.name.upper()} {config.env}", unit="env_steps", per_step=per,
                     chunk_steps=max(1, trainer.num_steps // self.chunks), mode="scan")

    def bench_trainer(self, algo, config):
        return algo.mod.make_trainer(config), self.per_iteration(config), "env_steps"

    def report(self, algo, out: dict) -> list[str]:
        lines = super().report(algo, out)
        if out.get("threshold") is not None:
            lines.append(f"   evaluation return first reached the threshold at env step {out['first_eval_reaching']}")
        lines.append(f"   curves.png, results.json, metrics.jsonl and checkpoints in {out['run_dir']}")
        return lines

    def sweep(self, algo, config, args) -> list[str]:
        run_dir, _ = F.run_dir_for(args, f"{algo.name}-study")
        from jaxgen.core import distributed

        if not distributed.is_main():  # a distributed sweep: process 0 writes the table and plots
            run_dir = None
        opts = dict(progress=not args.no_progress, eval_every=args.eval_every, threshold=args.threshold,
                    eval_episodes=args.eval_episodes)
        out = self.study_of(algo, config, args, run_dir, opts)
        t = out["timings"]
        return [f"one compile: {t['runs']} runs, {t['env_steps_per_s']:.0f} env-steps/s in all, run {t['run_s']:.1f}s, "
                f"compile {t['compile_s']:.1f}s, evaluation {t['eval_s']:.1f}s", markdown_table(out["table"]),
                f"table.md, study.json and one curves_<factor>.png per factor in {run_dir}"]

    def study_of(self, algo, config, args, run_dir, opts) -> dict:
        return study(config, args.seeds, F.parse_grid(args.grid), run_dir, **opts)

    def load(self, algo, run_dir: Path):
        return ckpt.restore_run(run_dir, algo.config_cls, algo.mod.init)

    def eval(self, algo, run_dir: Path, args) -> dict:
        return evaluate_run(self.load(algo, run_dir), args.episodes, args.seed or 0, args.greedy)

    def render(self, algo, run_dir: Path, args) -> list[str]:
        from jaxgen.rl import render

        out = Path(args.out or run_dir / "episode.png")
        r = render.render(self.load(algo, run_dir), out, frames=args.frames, seed=args.seed, greedy=not args.sample,
                          max_steps=args.max_steps)
        return [f"wrote {r['path']}: one episode, return {r['return']:.1f}, length {r['length']}"]


def _family_of(config) -> tuple:
    algo = algorithm_of(config)
    return algo, algo.fam


def fit(config, seed: int = 0, run_dir: str | Path | None = None, *, resume: bool = False,
        chunk_steps: int | None = None, eval_episodes: int = 10, eval_every: int = 1, mode: str = "scan",
        progress: bool = True, hparams: dict | None = None, threshold: float | None = None) -> dict:
    """Train one seed of any registered RL agent's ``config`` (see the module docstring)."""
    algo, fam = _family_of(config)
    job = fam.job(algo, config, eval_episodes=eval_episodes, eval_every=eval_every, threshold=threshold)
    return F.fit(job, seed=seed, run_dir=run_dir, resume=resume, chunk_steps=chunk_steps, mode=mode,
                 progress=progress, hparams=hparams)


def load(run_dir: str | Path):
    """The final state (the saved policy) of an RL run directory."""
    algo = for_run(run_dir, "eval")
    return algo.fam.load(algo, Path(run_dir))


def evaluate_run(state_or_dir, episodes: int = 100, seed: int = 0, greedy: bool = False) -> dict:
    """Mean/std/min/max return and mean length of ``episodes`` complete episodes; ``greedy``
    sets the family's greedy hyperparameter (the policy's mode; DQN: epsilon 0)."""
    state = load(state_or_dir) if isinstance(state_or_dir, (str, Path)) else state_or_dir
    algo, fam = _family_of(state.config)
    if greedy:
        name, value = fam.greedy
        state = state.replace(hparams={**state.hparams, name: jax.numpy.float32(value)})
    ret, length = jax.device_get(jax.jit(lambda s, k: algo.mod.evaluate(s, k, episodes))(state, jax.random.PRNGKey(seed)))
    ret = np.asarray(ret, np.float64)
    return {"env": state.config.env, "episodes": episodes, "greedy": greedy, "mean_return": float(ret.mean()),
            "std_return": float(ret.std()), "min_return": float(ret.min()), "max_return": float(ret.max()),
            "mean_length": float(np.mean(length))}


def study(config, seeds=4, grid: dict | None = None, run_dir: str | Path | None = None, **kwargs) -> dict:
    """Every (grid point, seed) of an agent config in ONE vmapped compile: see
    :func:`jaxgen.rl.study.run_study` (its keyword options pass through)."""
    algo, fam = _family_of(config)
    return run_study(algo.mod.make_trainer(config), algo.mod.evaluate, fam.per_iteration(config), seeds, grid, run_dir,
                     label=f"{algo.name.upper()} {config.env}", **kwargs)


def seeds_check(config, seeds: int = 16, eval_episodes: int = 16, seed0: int = 0) -> dict:
    """Train ``seeds`` seeds as ONE compile (``jax.jit(jax.vmap(make_train(cfg)))``); return
    compile/run seconds, the final training return per seed (mean of the last iteration's
    finished episodes), the evaluation return per seed and the mean training-return curve."""
    algo, fam = _family_of(config)
    mod = algo.mod
    keys = jax.random.split(jax.random.PRNGKey(seed0), seeds)
    keys = place_runs(keys)  # several devices: the seeds split over them
    (state, m), compile_s, run_s = compile_and_run(vmap_runs(mod.make_train(config), seeds), keys)
    r = np.asarray(m["episode_return"])
    ev = jax.jit(jax.vmap(lambda s, k: mod.evaluate(s, k, eval_episodes), in_axes=(0, None)))
    ret, _ = jax.device_get(ev(state, jax.random.PRNGKey(EVAL_SEED)))
    per_seed_eval = np.asarray(ret).mean(axis=1)
    stride = max(1, r.shape[1] // 20)
    return {"algorithm": algo.name, "env": config.env, "seeds": seeds, "compile_s": round(compile_s, 2),
            "run_s": round(run_s, 2), "env_steps_per_seed": float(r.shape[1] * fam.per_iteration(config)),
            "final_train_return": r[:, -1].round(1).tolist(), "mean_final_train_return": float(r[:, -1].mean()),
            "eval_return": per_seed_eval.round(1).tolist(), "mean_eval_return": float(per_seed_eval.mean()),
            "curve_iterations": list(range(0, r.shape[1], stride)),
            "curve_mean_train_return": r.mean(0)[::stride].round(1).tolist()}


def _ppo_per_iteration(config) -> int:
    return config.batch_size


def _reinforce_per_iteration(config) -> int:  # an upper bound: the state counts its valid steps
    from jaxgen.rl import reinforce

    return config.num_envs * reinforce.rollout_len(config)


def _dqn_per_iteration(config) -> int:
    return config.num_envs


CURVES_DDPG = ("episode_return", "eval_return", "critic_loss", "actor_loss", "q_mean")


class DQNFamily(RLFamily):
    """DQN: evaluation at ``eval_epsilon`` (``--greedy``: 0), Q-value inspection, the Freeway study."""

    inspect_options = (("--n", dict(type=int, default=8, help="DQN: states drawn from the replay buffer")),
                       ("--seed", dict(type=int, default=0, help="sampling seed")),
                       ("--out", dict(default=None, help="PNG of the states (image observations; default RUN_DIR/q_values.png)")))

    def add_args(self, p, command: str) -> None:
        super().add_args(p, command)
        if command == "sweep":
            p.add_argument("--freeway-study", action="store_true",
                           help="the course's study on Freeway-MinAtar: eps decay x learning rate x gamma")
            p.add_argument("--scale", type=float, default=1.0,
                           help="--freeway-study: shorten the run and the eps decays by this factor")

    def study_of(self, algo, config, args, run_dir, opts) -> dict:
        from jaxgen.rl import dqn_fit

        if args.freeway_study:
            return dqn_fit.freeway_study(args.seeds, args.scale, run_dir, **opts)
        return super().study_of(algo, config, args, run_dir, opts)

    def inspect(self, algo, run_dir: Path, args) -> list[str]:
        from jaxgen.rl import dqn_fit

        out_png = Path(args.out) if args.out else run_dir / "q_values.png"
        q = dqn_fit.inspect(self.load(algo, run_dir), args.n, args.seed, out_png)
        lines = ["state  " + "  ".join(f"Q[a={a}]" for a in range(len(q["q"][0]))) + "  chosen  mean Q"]
        lines += [f"{i:>5}  " + "  ".join(f"{v:7.3f}" for v in row) + f"  {q['action'][i]:>6}  {q['mean_q'][i]:.3f}"
                  for i, row in enumerate(q["q"])]
        if out_png.exists():
            lines.append(f"pictures of the states in {out_png}")
        return lines


PG_FAMILY = RLFamily(per_iteration=_ppo_per_iteration)
REINFORCE_FAMILY = RLFamily(per_iteration=_reinforce_per_iteration)
DQN_FAMILY = DQNFamily(per_iteration=_dqn_per_iteration, curve_keys=CURVES_Q, greedy=("eval_epsilon", 0.0), chunks=50,
                       commands=("inspect",), summary=("episode_return", "eval_return"))
DDPG_FAMILY = RLFamily(per_iteration=_dqn_per_iteration, curve_keys=CURVES_DDPG, greedy=("eval_noise", 0.0), chunks=20)
