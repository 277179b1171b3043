"""Hyper-parameter studies of any RL agent as ONE vmapped compile, with their table and plots.

:func:`run_study` takes an agent's trainer and ``evaluate`` function, trains every
(grid point, seed) through :func:`jaxgen.core.sweep.sweep` in one compile, evaluates every run
between chunks, and returns (and writes into ``run_dir``) a table of final training and
evaluation returns, mean and std over the seeds, plus one learning-curve plot per factor.
:func:`jaxgen.rl.fit.study` (``jaxgen sweep dqn|ppo|reinforce``) is the thin wrapper every
agent uses.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from jaxgen.core import plotting
from jaxgen.core.hooks import Scale
from jaxgen.core.sweep import sweep
from jaxgen.core.train import Trainer
from jaxgen.rl.evaluation import EvalHook, first_reaching


def run_study(
    trainer: Trainer,
    evaluate: Callable,
    env_steps_per_iteration: int,
    seeds=4,
    grid: dict | None = None,
    run_dir: str | Path | None = None,
    *,
    label: str = "",
    chunk_steps: int | None = None,
    eval_episodes: int = 8,
    eval_every: int = 1,
    threshold: float | None = None,
    progress: bool = True,
) -> dict:
    """Every (grid point, seed) in ONE vmapped compile.

    Args:
      trainer: the agent's :class:`~jaxgen.core.train.Trainer` (one run).
      evaluate: ``evaluate(state, key, num_episodes) -> (returns, lengths)`` of one run.
      env_steps_per_iteration: env steps one train step takes (for the x axes).
      seeds: a count or the seed list; grid: ``{traced hyper-parameter: values}``.
      threshold: also report, per run, the env step where the evaluation return first
        reached it (``first_eval_reaching``; NaN where it never did).
    Returns:
      ``table`` (one row per grid point: final training / evaluation return, mean and std over
      seeds, and the share of seeds that reached ``threshold``), ``axes``, ``timings``
      (compile_s, run_s, host_s, eval_s, runs, env_steps_per_s over all runs), ``result``
      (the :class:`~jaxgen.core.sweep.SweepResult`) and ``history``. With ``run_dir``:
      ``study.json``, ``table.md`` and one ``curves_<factor>.png`` per factor (and per seed
      when there is no grid).
    """
    grid = dict(grid or {})
    chunk_steps = chunk_steps or max(1, trainer.num_steps // 40)
    hook = EvalHook(evaluate, eval_episodes, eval_every, vmapped=True)
    res = sweep(trainer, seeds, grid, hooks=[Scale(env_steps_per_iteration), hook], chunk_steps=chunk_steps, mode="scan",
                progress=progress)
    hist = res.history
    shape = [len(v) for v in res.axes.values()]
    r = int(np.prod(shape))
    last_eval = next((np.asarray(h["eval_return"])[:r].reshape(shape) for h in reversed(hist) if "eval_return" in h), None)
    reach = None
    if threshold is not None:
        first = first_reaching(hist, "eval_return", threshold)
        reach = np.asarray(first if first is not None else [np.nan] * r, np.float64)[:r].reshape(shape)
    train_ret = res.final["episode_return"]
    names = list(grid)
    table = []
    for combo in np.ndindex(*shape[:-1]) if names else [()]:
        row = {n: res.axes[n][i] for n, i in zip(names, combo)}
        tr = train_ret[combo]
        row.update(train_return=float(np.mean(tr)), train_std=float(np.std(tr)))
        if last_eval is not None:
            ev = last_eval[combo]
            row.update(eval_return=float(np.mean(ev)), eval_std=float(np.std(ev)))
        if reach is not None:
            row.update(reached=f"{int(np.sum(~np.isnan(reach[combo])))}/{shape[-1]}")
        table.append(row)
    t = res.timings
    timings = {**{k: t[k] for k in ("compile_s", "run_s", "host_s")}, "eval_s": hook.seconds, "runs": r,
               "env_steps_per_s": t["steps"] * env_steps_per_iteration * r / t["run_s"] if t["run_s"] else None}
    out = {"table": table, "axes": res.axes, "timings": timings, "result": res, "history": hist}
    if reach is not None:
        out["first_eval_reaching"] = reach.tolist()
        out["threshold"] = threshold
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        blob = {k: v for k, v in out.items() if k not in ("result", "history")}
        per_run = {"final_train_return": np.asarray(train_ret).tolist(),
                   "final_eval_return": None if last_eval is None else last_eval.tolist()}
        (run_dir / "study.json").write_text(json.dumps({**blob, **per_run, "config": str(trainer.config)}, indent=2,
                                                       default=float))
        (run_dir / "table.md").write_text(markdown_table(table))
        for name in names or ["seed"]:
            plot_factor(run_dir / f"curves_{name}.png", hist, res.axes, name, r, label)
    return out


def _x(row: dict) -> float:
    """A row's env-step count (the mean over runs where each run counts its own)."""
    return float(np.mean(row["env_steps"]))


def markdown_table(rows: list) -> str:
    """``rows`` (dicts with the same keys) as a Markdown table, floats to 4 significant digits."""
    if not rows:
        return ""
    cols = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_factor(path: Path, history: list, axes: dict, factor: str, r: int, label: str = "") -> Path:
    """Training and evaluation return against env steps, one line per value of ``factor``
    (averaged over the other factors and the seeds)."""
    plt = plotting._plt()
    shape = [len(v) for v in axes.values()]
    k = list(axes).index(factor)
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.5), squeeze=False)
    for ax, key in zip(axs[0], ("episode_return", "eval_return")):
        rows = [h for h in history if key in h]
        if not rows:
            continue
        x = [_x(h) for h in rows]
        y = np.stack([np.asarray(h[key])[:r].reshape(shape) for h in rows])  # [T, *shape]
        other = tuple(i + 1 for i in range(len(shape)) if i != k)
        y = y.mean(axis=other)  # [T, len(values)]
        for j, v in enumerate(axes[factor]):
            ax.plot(x, y[:, j], label=f"{factor}={v:g}" if isinstance(v, float) else f"{factor}={v}")
        ax.set_xlabel("env steps")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{label}: effect of {factor}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
