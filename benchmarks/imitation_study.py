"""The BC-versus-GAIL study: per environment, GAIL and BC from 1, 4 and 16 expert trajectories,
8 seeds each, every (k, seed) of one algorithm in ONE compile (the number of trajectories is a
traced value: pad/mask over the whole demonstrations file).

    python benchmarks/imitation_study.py                         # CartPole-v1, Pendulum-v1, Reacher-misc
    python benchmarks/imitation_study.py --envs Reacher-misc     # expert: the repository's file (demos.REPO_FILES)
    python benchmarks/imitation_study.py --envs CartPole-v1 --seeds 2 --ks 4

Prints, per environment: the random policy's and the expert's return (the expert's: the mean
over the whole expert file -- the shared one, or for Reacher-misc the one kept in the
repository), then one row per k: BC and GAIL evaluation return (mean over seeds of 32 greedy
episodes each), raw and normalised (random = 0 %, expert = 100 %), and the
compile / run seconds. Writes ``benchmarks/notes/imitation/<env>/`` : ``study.json``,
``table.md``, ``gail_return.png`` (true return against env steps, expert and random levels
drawn), ``d_scores.png`` (D's mean score on expert vs policy transitions over training) and
``bc_vs_gail.png`` (bars by number of trajectories). GAIL's time to the bar is pro-rated from
the run: the first iteration at which the mean over seeds of the training return reaches 95 %
(normalised) of the expert, times the run's seconds per iteration.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import load_average  # noqa: E402

from jaxgen.core import config as C  # noqa: E402
from jaxgen.rl import bc, gail  # noqa: E402
from jaxgen.rl import imitation_fit as IF  # noqa: E402

EVAL_EPISODES = 32
CONFIGS = {"CartPole-v1": (gail.PRESETS["cartpole"], bc.PRESETS["cartpole"]),
           "Pendulum-v1": (gail.PRESETS["pendulum"], bc.PRESETS["pendulum"]),
           "Reacher-misc": (gail.PRESETS["reacher"], bc.PRESETS["reacher"])}


def run_vmapped(mod, cfg, ks, seeds: int, greedy_name: str):
    """Every (k, seed) of ``cfg`` in one compile; ``(state, metrics, compile_s, run_s, eval [R])``."""
    base = C.hparams(cfg)
    r = len(ks) * seeds
    hp = {n: jnp.full((r,), v) for n, v in base.items()}
    hp["num_trajectories"] = jnp.repeat(jnp.asarray(ks, jnp.float32), seeds)
    hp[greedy_name] = jnp.ones((r,))
    keys = jnp.tile(jax.random.split(jax.random.PRNGKey(0), seeds), (len(ks), 1))
    train = jax.jit(jax.vmap(mod.make_train(cfg)))
    t = time.perf_counter()
    compiled = train.lower(keys, hp).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    state, m = compiled(keys, hp)
    jax.block_until_ready(m)
    run_s = time.perf_counter() - t
    ev = jax.jit(jax.vmap(lambda s, k: mod.evaluate(s, k, EVAL_EPISODES), in_axes=(0, None)))
    ret, _ = ev(state, jax.random.PRNGKey(0xE7A1))
    return state, jax.device_get(m), compile_s, run_s, np.asarray(ret).mean(axis=1)


norm = IF.normalised


def study(env: str, seeds: int, ks: list, out_dir: Path, total_steps: int | None = None) -> dict:
    g_cfg, b_cfg = CONFIGS[env]
    if total_steps:
        g_cfg = dataclasses.replace(g_cfg, ppo=dataclasses.replace(g_cfg.ppo, total_steps=total_steps))
    d = bc.demonstrations(g_cfg)  # the config's file (empty demos: the env's default expert file)
    expert, rnd = d.mean_return, IF.random_return(env)
    bar = rnd + 0.95 * (expert - rnd)
    load0 = load_average()
    _, gm, g_compile, g_run, g_eval = run_vmapped(gail, g_cfg, ks, seeds, "ppo.eval_greedy")
    _, bm, b_compile, b_run, b_eval = run_vmapped(bc, b_cfg, ks, seeds, "eval_greedy")
    load1 = load_average()
    per_iter = g_cfg.ppo.batch_size
    curve = np.asarray(gm["episode_return"]).reshape(len(ks), seeds, -1)  # [k, seed, iterations]
    # an iteration before any episode has finished reports 0 (EpisodeStats' initial value): not a return
    started = np.cumsum(np.asarray(gm["episodes"]).reshape(len(ks), seeds, -1), axis=-1).min(axis=1) > 0  # [k, iterations]
    rows = []
    for i, k in enumerate(ks):
        ge, be = g_eval[i * seeds:(i + 1) * seeds], b_eval[i * seeds:(i + 1) * seeds]
        mean_curve = curve[i].mean(0)
        hit = np.flatnonzero((mean_curve >= bar) & started[i])
        rows.append({"k": k, "bc_return": float(be.mean()), "bc_std": float(be.std()), "bc_norm": float(norm(be, rnd, expert).mean()),
                     "gail_return": float(ge.mean()), "gail_std": float(ge.std()), "gail_norm": float(norm(ge, rnd, expert).mean()),
                     "gail_per_seed": ge.round(1).tolist(), "gail_curve_mean": mean_curve[::10].round(1).tolist(), "bc_per_seed": be.round(1).tolist(),
                     "gail_train_bar_env_steps": int((hit[0] + 1) * per_iter) if hit.size else None,
                     "gail_s_to_bar": float(g_run * (hit[0] + 1) / curve.shape[-1]) if hit.size else None})
    out = {"env": env, "seeds": seeds, "expert_return": expert, "random_return": rnd, "bar_95": bar,
           "gail": {"compile_s": g_compile, "run_s": g_run, "runs": len(ks) * seeds, "env_steps_per_run": g_cfg.ppo.total_steps,
                    "config": C.to_dict(g_cfg)},
           "bc": {"compile_s": b_compile, "run_s": b_run, "config": C.to_dict(b_cfg)}, "rows": rows,
           "load": f"{load0} -> {load1}"}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "study.json").write_text(json.dumps(out, indent=2, default=str))
    (out_dir / "table.md").write_text(table(out))
    plots(out, gm, curve, ks, seeds, per_iter, out_dir)
    return out


def table(out: dict) -> str:
    lines = [f"{out['env']}: expert {out['expert_return']:.1f}, random {out['random_return']:.1f}, "
             f"{out['seeds']} seeds, {EVAL_EPISODES} greedy evaluation episodes per seed", "",
             "| trajectories | BC return | BC % | GAIL return | GAIL % | GAIL train return >= 95 % at (env steps) |",
             "|---|---|---|---|---|---|"]
    for r in out["rows"]:
        lines.append(f"| {r['k']} | {r['bc_return']:.1f} ± {r['bc_std']:.1f} | {r['bc_norm']:.1f} | "
                     f"{r['gail_return']:.1f} ± {r['gail_std']:.1f} | {r['gail_norm']:.1f} | {r['gail_train_bar_env_steps']} |")
    g, b = out["gail"], out["bc"]
    lines += ["", f"GAIL: {g['runs']} runs x {g['env_steps_per_run']} env steps in one compile: compile {g['compile_s']:.1f} s, "
                  f"run {g['run_s']:.1f} s; BC: compile {b['compile_s']:.1f} s, run {b['run_s']:.1f} s; load {out['load']}"]
    return "\n".join(lines) + "\n"


def plots(out, gm, curve, ks, seeds, per_iter, out_dir: Path) -> None:
    x = (np.arange(curve.shape[-1]) + 1) * per_iter
    lab = lambda k: f"{k} trajectories"
    IF.plot_returns(out_dir / "gail_return.png", x, {f"GAIL, {lab(k)}": curve[i].mean(0) for i, k in enumerate(ks)},
                    out["expert_return"], out["random_return"], f"GAIL on {out['env']} (mean of {seeds} seeds)")
    de, dp = (np.asarray(gm[key]).reshape(len(ks), seeds, -1).mean(1) for key in ("d_expert", "d_policy"))
    IF.plot_d_scores(out_dir / "d_scores.png", x, {lab(k): de[i] for i, k in enumerate(ks)},
                     {lab(k): dp[i] for i, k in enumerate(ks)}, f"discriminator scores, {out['env']}")
    IF.plot_bars(out_dir / "bc_vs_gail.png", ks, [r["bc_norm"] for r in out["rows"]], [r["gail_norm"] for r in out["rows"]],
                 out["env"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--total-steps", type=int, default=None, help="GAIL's env steps per run (default: the preset's)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "notes" / "imitation"))
    a = ap.parse_args(argv)
    for env in a.envs:
        out = study(env, a.seeds, a.ks, Path(a.out) / env, a.total_steps)
        print(table(out), flush=True)


if __name__ == "__main__":
    main()
