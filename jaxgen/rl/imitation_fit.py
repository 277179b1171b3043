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
