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

    def bench_trainer(self, algo, config):
        """BC's iterations are epochs of ``updates_per_epoch`` minibatches: counted in samples."""
        return algo.mod.make_trainer(config), config.updates_per_epoch * config.batch_size, "samples"


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

def expert_config(env: str, total_steps: int | None = None, preset: str | None = None):
    """The PPO config an expert of ``env`` is trained with: the PPO preset named ``preset`` (on
    ``env``), else the preset whose env is ``env`` where one exists (CartPole-v1, Pendulum-v1,
    Reacher-misc, Breakout-MinAtar), else the MinAtar preset (the other MinAtar games), PPO's
    defaults (discrete) or the Pendulum settings (continuous) on ``env``."""
    from jaxgen.core.errors import ConfigError
    from jaxgen.rl import envs, ppo

    spec = envs.spec(env)  # unknown env: one sentence
    own = [c for c in ppo.PRESETS.values() if c.env == env]
    if preset is not None:
        if preset not in ppo.PRESETS:
            raise ConfigError(f"--preset={preset!r} is not a PPO preset; accepted: {', '.join(ppo.PRESETS)}.")
        cfg = dataclasses.replace(ppo.PRESETS[preset], env=env)
    elif own:
        cfg = own[0]
    elif env.endswith("-MinAtar"):
        cfg = dataclasses.replace(ppo.PRESETS["minatar"], env=env)
    else:
        cfg = dataclasses.replace(ppo.PRESETS["cartpole"] if spec.discrete else ppo.PRESETS["pendulum"], env=env)
    if total_steps is not None:
        cfg = dataclasses.replace(cfg, total_steps=total_steps)
    return ppo.validate(cfg)


def train_expert(env: str, num_trajectories: int = 16, out=None, *, total_steps: int | None = None, seed: int = 0,
                 greedy: bool = True, preset: str | None = None) -> dict:
    """Train a PPO expert on ``env`` (one compiled run), record ``num_trajectories`` complete
    episodes of it (greedy actions unless ``greedy`` is False) into a demonstrations npz
    (:func:`jaxgen.rl.demos.save`) at ``out`` (default ``experts/<env>.npz``), and store the
    expert's mean return in the file and in ``<out>.json`` beside it. Returns that summary. The
    PPO config is :func:`expert_config` of ``env``, ``total_steps`` and ``preset``."""
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
    cfg = expert_config(env, total_steps, preset)
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
               "seed": seed, "preset": preset, "train_s": round(train_s, 1), "final_train_return": float(np.asarray(m["episode_return"])[-1]),
               "ppo": C.to_dict(cfg)}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


# --------------------------------------------------------------------------- plots (study, notebook)

def plot_returns(path, env_steps, curves: dict, expert: float, random: float, title: str):
    """True return against env steps, one line per ``{label: [iterations]}``, with the expert's
    and the random policy's levels drawn."""
    from jaxgen.core import plotting

    plt = plotting._plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, y in curves.items():
        ax.plot(env_steps, y, label=label)
    ax.axhline(expert, color="k", ls="--", label="expert")
    ax.axhline(random, color="gray", ls=":", label="random")
    ax.set_xlabel("env steps")
    ax.set_ylabel("true return (training episodes)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_d_scores(path, env_steps, expert_scores: dict, policy_scores: dict, title: str):
    """D's mean score on expert (solid) and policy (dashed) transitions over training, one pair
    per ``{label: [iterations]}`` (the course report's figure 12)."""
    from jaxgen.core import plotting

    plt = plotting._plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, y in expert_scores.items():
        line, = ax.plot(env_steps, y, "-", label=f"expert, {label}")
        ax.plot(env_steps, policy_scores[label], "--", color=line.get_color(), label=f"policy, {label}")
    ax.axhline(0.5, color="gray", lw=0.8)
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean D(s, a)")
    ax.set_title(title)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_bars(path, ks, bc_pct, gail_pct, title: str):
    """BC and GAIL (% of the expert, random = 0) by number of expert trajectories."""
    import numpy as np

    from jaxgen.core import plotting

    plt = plotting._plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    w, pos = 0.38, np.arange(len(ks))
    ax.bar(pos - w / 2, bc_pct, w, label="BC")
    ax.bar(pos + w / 2, gail_pct, w, label="GAIL")
    ax.axhline(100, color="k", ls="--", lw=1)
    ax.set_xticks(pos, [str(k) for k in ks])
    ax.set_xlabel("expert trajectories")
    ax.set_ylabel("% of expert (random = 0)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def random_return(env: str, episodes: int = 100, seed: int = 7) -> float:
    """Mean return of the uniformly random policy over ``episodes`` complete episodes (the 0 % of
    the normalised score)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxgen.rl import envs

    spec = envs.spec(env)

    def policy(k, obs):
        n = obs.shape[0]
        if spec.discrete:
            return jax.random.randint(k, (n,), 0, spec.action_dim)
        lo, hi = jnp.asarray(spec.low).reshape(-1), jnp.asarray(spec.high).reshape(-1)
        return envs.env_action(spec, jax.random.uniform(k, (n, spec.action_dim), minval=lo, maxval=hi))

    r, _ = jax.jit(lambda k: envs.rollout_returns(spec.env, spec.params, policy, k, episodes))(jax.random.PRNGKey(seed))
    return float(np.mean(np.asarray(r)))


def normalised(x, random: float, expert: float):
    """``100 (x - random) / (expert - random)``: random = 0 %, expert = 100 %."""
    import numpy as np

    return 100.0 * (np.asarray(x, np.float64) - random) / (expert - random)


def cmd_expert(args) -> int:
    s = train_expert(args.env, args.trajectories, args.out, total_steps=args.total_steps, seed=args.seed,
                     greedy=not args.sample, preset=args.preset)
    print(f"expert on {s['env']}: mean return {s['mean_return']:.1f} (std {s['std_return']:.1f}) over "
          f"{s['num_trajectories']} trajectories, {s['transitions']} transitions; PPO trained in {s['train_s']}s")
    print(f"wrote {s['file']} and {s['file'][:-4]}.json")
    return 0


def add_command(sub) -> None:
    """``jaxgen expert ENV`` on the CLI's subparsers."""
    e = sub.add_parser("expert", help="train a PPO expert on ENV and record demonstrations of it (for bc / gail)")
    e.add_argument("env", help="a gymnax environment, e.g. CartPole-v1 or Pendulum-v1")
    e.add_argument("--trajectories", type=int, default=16, help="complete episodes recorded")
    e.add_argument("--out", default=None, help="demonstrations .npz (default experts/ENV.npz; the summary beside it as .json)")
    e.add_argument("--total-steps", type=int, default=None, help="PPO env steps (default: the env's preset)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--preset", default=None, help="PPO preset to train the expert with (default: the env's own, e.g. "
                                                  "reacher for Reacher-misc, else cartpole / pendulum settings)")
    e.add_argument("--sample", action="store_true", help="record sampled actions instead of greedy ones")
    e.set_defaults(func=cmd_expert)
