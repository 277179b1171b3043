"""Host side of the imitation learners (BC, GAIL): their registry families, on
:class:`jaxgen.rl.fit.RLFamily` (evaluation episodes between chunks, ``jaxgen eval``,
``jaxgen render``, ``jaxgen sweep --grid num_trajectories=1,4,16`` in one compile).

* BC counts no environment steps: its curves are against the epoch, its rate is samples/s.
* GAIL's rows carry ``env_steps`` (the generator's, counted in its state), its curves the true
  environment return (never the discriminator's reward) and D's mean score on expert and
  policy transitions.
"""
from __future__ import annotations

import dataclasses

from jaxgen.core import fit as F
from jaxgen.core.hooks import Scale
from jaxgen.rl.evaluation import EvalHook, first_reaching
from jaxgen.rl.fit import RLFamily

CURVES_BC = ("train_loss", "val_loss", "eval_return")
CURVES_GAIL = ("episode_return", "eval_return", "d_expert", "d_policy", "d_loss", "reward_mean")


@dataclasses.dataclass(frozen=True)
class BCFamily(RLFamily):
    def label(self, algo, config) -> str:
        return (f"BC on {config.env}: {config.num_trajectories:g} expert trajectories, {config.epochs} epochs of "
                f"{config.updates_per_epoch} x {config.batch_size}")

    def job(self, algo, config, args=None, *, eval_episodes: int = 10, eval_every: int = 1,
            threshold: float | None = None) -> F.Job:
        if args is not None:
            eval_episodes, eval_every, threshold = args.eval_episodes, args.eval_every, args.threshold
        trainer = algo.mod.make_trainer(config)
        per = config.updates_per_epoch * config.batch_size

        def finish(res, run_dir):
            hist = res.history
            return {"env": config.env, "threshold": threshold,
                    "first_eval_reaching": first_reaching(hist, "eval_return", threshold) if threshold is not None else None}

        return F.Job(trainer, hooks=[Scale(per, "samples"), EvalHook(algo.mod.evaluate, eval_episodes, eval_every)],
                     finish=finish, curves=self.curve_keys, x="step", title=f"BC {config.env}", unit="samples",
                     per_step=per, chunk_steps=max(1, trainer.num_steps // self.chunks), mode="scan")

    def report(self, algo, out: dict) -> list[str]:
        lines = F.Family.report(self, algo, out)
        lines.append(f"   curves.png, results.json, metrics.jsonl and checkpoints in {out['run_dir']}")
        return lines


def _gail_per_iteration(config) -> int:
    return config.ppo.batch_size


@dataclasses.dataclass(frozen=True)
class GAILFamily(RLFamily):
    def label(self, algo, config) -> str:
        p = config.ppo
        return (f"GAIL on {p.env}: {config.num_trajectories:g} expert trajectories, reward {config.reward}, "
                f"PPO {p.num_envs} envs x {p.rollout_len} steps, {p.total_steps} env steps")


BC_FAMILY = BCFamily(per_iteration=lambda config: 0, curve_keys=CURVES_BC, chunks=10,
                     summary=("train_loss", "val_loss", "eval_return"))
GAIL_FAMILY = GAILFamily(per_iteration=_gail_per_iteration, curve_keys=CURVES_GAIL, greedy=("ppo.eval_greedy", 1.0),
                       summary=("episode_return", "eval_return", "d_expert", "d_policy"))


# --------------------------------------------------------------------------- jaxgen expert ENV

def expert_config(env: str, total_steps: int | None = None):
    """The PPO config an expert of ``env`` is trained with: the preset of that env where one
    exists (CartPole-v1, Pendulum-v1, the MinAtar games), else PPO's defaults (discrete) or the
    Pendulum settings (continuous) on ``env``."""
    from jaxgen.rl import envs, ppo

    spec = envs.spec(env)  # unknown env: one sentence
    if env == "CartPole-v1":
        cfg = ppo.PRESETS["cartpole"]
    elif env.endswith("-MinAtar"):
        cfg = dataclasses.replace(ppo.PRESETS["minatar"], env=env)
    else:
        cfg = dataclasses.replace(ppo.PRESETS["cartpole"] if spec.discrete else ppo.PRESETS["pendulum"], env=env)
    if total_steps is not None:
        cfg = dataclasses.replace(cfg, total_steps=total_steps)
    return ppo.validate(cfg)


def train_expert(env: str, num_trajectories: int = 16, out=None, *, total_steps: int | None = None, seed: int = 0,
                 greedy: bool = True) -> dict:
    """Train a PPO expert on ``env`` (one compiled run), record ``num_trajectories`` complete
    episodes of it (greedy actions unless ``greedy`` is False) into a demonstrations npz
    (:func:`jaxgen.rl.demos.save`) at ``out`` (default ``experts/<env>.npz``), and store the
    expert's mean return in the file and in ``<out>.json`` beside it. Returns that summary."""
    import json
    import time
    from pathlib import Path

    import jax
    import numpy as np

    from jaxgen.core import config as C
    from jaxgen.core.errors import ConfigError
    from jaxgen.rl import demos, ppo

    if not (isinstance(num_trajectories, int) and num_trajectories >= 1):
        raise ConfigError(f"--trajectories={num_trajectories!r} is out of range; accepted: a whole number >= 1.")
    cfg = expert_config(env, total_steps)
    out = Path(out) if out else Path("experts") / f"{env}.npz"
    t = time.perf_counter()
    state, m = jax.jit(ppo.make_train(cfg))(jax.random.PRNGKey(seed))
    jax.block_until_ready(m)
    train_s = time.perf_counter() - t
    policy = lambda k, obs: ppo.act(state, k, obs, greedy)
    d = demos.record(env, policy, jax.random.PRNGKey(seed + 1), num_trajectories)
    demos.save(out, d)
    summary = {"env": env, "file": str(out), "num_trajectories": num_trajectories, "transitions": d.num_transitions,
               "mean_return": d.mean_return, "std_return": float(np.std(d.returns)),
               "min_return": float(d.returns.min()), "max_return": float(d.returns.max()), "greedy": greedy,
               "seed": seed, "train_s": round(train_s, 1), "final_train_return": float(np.asarray(m["episode_return"])[-1]),
               "ppo": C.to_dict(cfg)}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
