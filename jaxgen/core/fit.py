"""The one host layer: run directory, seed, resume, chunked run, progress, hooks, final
results -- written once for every family.

* :class:`Job` is what a family hands over: the :class:`~jaxgen.core.train.Trainer`, its
  hooks (host work between chunks: evaluation, grids), a ``finish`` callback (final
  evaluation and plots, returning extra results), the curves to draw and the unit the
  rates count (``env_steps`` for RL, ``steps`` otherwise).
* :func:`fit` runs a job through :func:`jaxgen.core.runner.run` and writes ``curves.png`` and
  ``results.json``; it returns ``config``, ``final`` (the last logged row), ``timings``
  (``compile_s``, ``run_s``, ``host_s``, ``mode``, ``steps``, ``start_step``, ``steps_per_s``
  and the unit's rate, all of this call), ``run_dir``, ``history``, ``state`` and whatever
  ``finish`` added.

A run's life, as ``fit`` sees it (every point resumable with ``resume=True`` / ``--resume``):
the run directory is locked for the whole call (:func:`jaxgen.core.checkpoint.lock`: a second
writer is refused); chunks run and checkpoints are saved; after the last chunk ``finish``
runs (final evaluation and plots) and ``results.json`` is written **last**, so it marks a
completed run (its ``final.step`` is the run's length). Resuming a run stopped before its
first checkpoint starts it over; one stopped mid-run continues bit-identically; one whose
training ended but whose ``finish`` did not (killed during the final evaluation) runs no
chunk and does ``finish`` again; a completed one says so in one sentence (where its results
are) and returns the stored results (plus ``state``, ``history`` and ``complete: True``)
without evaluating again. XLA's out-of-memory errors, in training or in ``finish``, become
one :class:`~jaxgen.core.errors.ResourceError` sentence (:mod:`jaxgen.core.memory`).
* :class:`Family` is the host side a family registers (:mod:`jaxgen.registry`): its extra
  command-line options, how a config becomes a :class:`Job`, how a finished run is
  summarised, swept and evaluated, and which of ``sample`` / ``render`` / ``inspect`` it offers.
  The defaults make a plain module (``make_trainer(config)``, ``init``, optionally
  ``evaluate(state, key) -> dict``) a complete algorithm with ``train``, ``sweep`` and ``eval``.

Words used across families (the house vocabulary): a *step* / *iteration* is one call of the
trainer's step (``state.step`` counts them); ``num_iterations`` is the run's length in them;
an *epoch* is one pass over a data set (generative families: the run length is ``epochs``);
RL run lengths are ``total_steps`` environment steps; *env steps* are what RL rates count.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import config as C
from jaxgen.core import distributed, memory, plotting, runner
from jaxgen.core.cli_options import overrides
from jaxgen.core.errors import ConfigError
from jaxgen.core.runner import RunResult
from jaxgen.core.train import Trainer


@dataclasses.dataclass
class Job:
    """A run, ready for :func:`fit`.

    Attributes:
      trainer: the compiled-step description of the run.
      hooks: called between chunks (see :mod:`jaxgen.core.hooks`).
      finish: ``finish(result: RunResult, run_dir: Path | None) -> dict`` after training: the
        final evaluation and plots; its dict is merged into the returned results.
      curves: metric names drawn into ``curves.png`` (against ``x``).
      title: the figure's title.
      unit, per_step: the rate reported besides steps/s: ``<unit>_per_s`` with ``per_step``
        units per iteration (RL: ``env_steps`` and the env steps of one iteration).
      x: the row key the curves are drawn against.
      chunk_steps, mode: the family's defaults when the caller gives none / "auto".
      checkpoint_every: save every this many chunks (None: every 30 s and at the end).
      memory_extra: ``{what: bytes}`` the run needs at its peak besides its state and data
        (a rollout, the batch of the final evaluation), added to the memory estimate that is
        checked before anything is allocated (:func:`jaxgen.core.memory.check`).
    """

    trainer: Trainer
    hooks: Sequence[Callable] = ()
    finish: Callable[[RunResult, Path | None], dict] | None = None
    curves: Sequence[str] = ()
    title: str = ""
    unit: str = "steps"
    per_step: float = 1.0
    x: str = "step"
    chunk_steps: int | None = None
    mode: str | None = None
    checkpoint_every: int | None = None
    memory_extra: dict | None = None


RESULTS_FILE = "results.json"


def completed(run_dir: Path, num_steps: int) -> dict | None:
    """The stored results of the run in ``run_dir`` if it completed ``num_steps`` (its
    ``results.json``, written last, says so), else None."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        blob = json.loads(path.read_text())
        step = blob.get("final", {}).get("step")
    except (json.JSONDecodeError, AttributeError):
        return None
    return blob if isinstance(step, (int, float)) and step >= num_steps else None


def _jsonable(tree: dict) -> dict:
    return json.loads(json.dumps(tree, default=lambda v: np.asarray(v).tolist() if hasattr(v, "shape") else str(v)))


def fit(job: Job, *, seed: int = 0, run_dir: str | Path | None = None, resume: bool = False,
        chunk_steps: int | None = None, mode: str = "auto", progress: bool = True, hparams: dict | None = None,
        checkpoint_every: int | None = None, data_parallel: bool | None = None) -> dict:
    """Train ``job`` (one seed) and return its results (see the module docstring).

    ``data_parallel`` (default: when several processes run, :mod:`jaxgen.core.distributed`):
    the state and data are replicated over one mesh of all devices and every minibatch is
    split over them (:func:`jaxgen.core.runner.run`'s ``mesh``). With several processes, each
    runs this same call; process 0 alone runs ``finish`` (on its own copy of the final state)
    and writes the plots and ``results.json``; the others return the training results
    (``final``, ``timings``, ``state``) without ``finish``'s, once process 0 is done."""
    run_dir = Path(run_dir) if run_dir is not None else None
    est = runner.preflight(job.trainer, seed, hparams, job.memory_extra)  # before anything is written
    if resume and run_dir is not None:
        ckpt.read_config(run_dir)  # "not a jaxgen run directory", before anything is written there
    if run_dir is None:
        return _fit(job, seed, None, resume, chunk_steps, mode, progress, hparams, checkpoint_every, est, data_parallel)
    with ckpt.lock(run_dir):
        return _fit(job, seed, run_dir, resume, chunk_steps, mode, progress, hparams, checkpoint_every, est,
                    data_parallel)


def _fit(job: Job, seed, run_dir, resume, chunk_steps, mode, progress, hparams, checkpoint_every, est,
         data_parallel=None) -> dict:
    mode = job.mode if mode == "auto" and job.mode else mode
    if data_parallel is None:
        data_parallel = distributed.is_multiprocess()
    from jaxgen.core.sharding import device_mesh

    res = runner.run(job.trainer, seed, run_dir=run_dir, chunk_steps=chunk_steps or job.chunk_steps, resume=resume,
                     hooks=list(job.hooks), mode=mode, progress=progress, hparams=hparams,
                     checkpoint_every=checkpoint_every or job.checkpoint_every, check_memory=est or False,
                     memory_extra=job.memory_extra, mesh=device_mesh() if data_parallel else None)
    if distributed.is_multiprocess():
        try:
            return _finish_main(job, res, seed, run_dir, resume)
        finally:
            distributed.barrier("jaxgen-fit-finished")  # the others wait for process 0's host work
    return _finish(job, res, seed, run_dir, resume)


def _finish_main(job: Job, res, seed, run_dir, resume) -> dict:
    """Several processes: ``finish`` and the files on process 0, on its own copy of the state."""
    local = dataclasses.replace(res, state=distributed.local_copy(res.state))
    if distributed.is_main():
        out = _finish(job, local, seed, run_dir, resume)
        return {**out, "state": res.state}
    t = res.timings
    return {"config": C.to_dict(job.trainer.config) if job.trainer.config is not None else {}, "seed": seed,
            "final": dict(res.history[-1]) if res.history else {}, "history": res.history, "state": res.state,
            "timings": {k: t[k] for k in ("compile_s", "run_s", "host_s", "mode", "steps", "start_step")},
            "run_dir": str(run_dir) if run_dir else None, "process": distributed.process_index()}


def _finish(job: Job, res, seed, run_dir, resume) -> dict:
    t = res.timings
    n = job.trainer.num_steps
    if resume and run_dir is not None and t["steps"] == 0 and runner.step_of(res.state) >= n:
        stored = completed(run_dir, n)
        if stored is not None:
            print(f"the run in {run_dir} is complete ({n} of {n} steps); its results are in {run_dir / RESULTS_FILE}.")
            return {**stored, "history": res.history, "state": res.state, "complete": True}
    rate = (lambda k: k / t["run_s"] if t["run_s"] else None)
    timings = {**{k: t[k] for k in ("compile_s", "run_s", "host_s", "mode", "steps", "start_step")},
               "steps_per_s": rate(t["steps"])}
    if job.unit != "steps":
        timings[f"{job.unit}_per_s"] = rate(t["steps"] * job.per_step)
    for h in job.hooks:  # hooks that time themselves (Timed, EvalHook), also inside wrappers: eval_s, ...
        while h is not None:
            if hasattr(h, "seconds") and getattr(h, "name", None):
                timings[f"{h.name}_s"] = h.seconds
            h = getattr(h, "hook", None)
    cfg = job.trainer.config
    out = {"config": C.to_dict(cfg) if cfg is not None else {}, "seed": seed,
           "final": dict(res.history[-1]) if res.history else {}, "timings": timings,
           "run_dir": str(run_dir) if run_dir else None, "history": res.history, "state": res.state}
    try:
        if job.finish is not None:
            out.update(job.finish(res, run_dir) or {})
        if run_dir is not None and job.curves:
            plotting.save_curves(run_dir / "curves.png", res.history, list(job.curves), job.title, x=job.x)
    except jax.errors.JaxRuntimeError as e:
        err = memory.translate(e, "the final evaluation and plots", cfg, memory.leaves(res.state))
        if err is None:
            raise
        raise err from None
    if run_dir is not None:  # last: a results.json whose final step is the run's length marks it complete
        blob = _jsonable({k: v for k, v in out.items() if k not in ("state", "history")})
        tmp = run_dir / (RESULTS_FILE + ".tmp")
        tmp.write_text(json.dumps(blob, indent=2))
        tmp.replace(run_dir / RESULTS_FILE)
    return out


# --------------------------------------------------------------------------- the family seam

def add_run_args(p: argparse.ArgumentParser, chunk_help: str = "steps per compiled chunk") -> None:
    """The options of every ``jaxgen train``: seed, run directory, resume, chunking, progress."""
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="random seed of the run")
    g.add_argument("--run-dir", default=None, help="where logs, checkpoints and plots go (default runs/<name>-<time>)")
    g.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    g.add_argument("--chunk-steps", type=int, default=None, help=chunk_help)
    g.add_argument("--mode", default="auto", choices=runner.MODES,
                   help="chunk execution: one compiled scan, or the jitted step dispatched K times (auto measures on CPU)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_sweep_args(p: argparse.ArgumentParser) -> None:
    """The options of every ``jaxgen sweep``: the grid and the seeds."""
    p.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                   help="a traced hyperparameter (dotted for nested parts) and its values; repeatable")
    p.add_argument("--seeds", type=int, default=2, help="seeds per grid point")
    p.add_argument("--run-dir", default=None, help="where the sweep's table and plots go")
    p.add_argument("--mode", default="auto", choices=runner.MODES, help="chunk execution")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def split_list(value: str, cast, name: str) -> list:
    """``"1e-3,3e-4"`` -> ``[0.001, 0.0003]``; ConfigError naming ``--name`` on a bad item."""
    try:
        return [cast(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')}={value!r} is not accepted; accepted: a comma-separated list of "
                          f"{'whole numbers' if cast is int else cast.__name__ + ' values'}.") from None


def parse_grid(items) -> dict:
    """``["learning_rate=1e-3,3e-4", ...]`` -> ``{"learning_rate": [1e-3, 3e-4]}`` (dotted names kept)."""
    grid = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        if not sep:
            raise ConfigError(f"--grid {item!r} is not of the form NAME=V1,V2,...")
        grid[name.strip().replace("-", "_")] = split_list(values, float, name)
    return grid


def run_dir_for(args, name: str) -> tuple[Path, bool]:
    """``(run directory, resume?)`` of ``jaxgen train``: ``--resume``, ``--run-dir`` or a new one."""
    if getattr(args, "resume", None):
        return Path(args.resume), True
    if getattr(args, "run_dir", None):
        return Path(args.run_dir), False
    now = int(distributed.agree(int(time.time())))  # several processes: process 0's clock names the one directory
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}", False


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (list, tuple, np.ndarray)):
        v = float(np.mean(v))
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class Family:
    """The host side of the algorithms of one family (defaults: a plain module).

    Attributes:
      commands: which of ``sample``, ``render``, ``inspect`` it offers (``train``, ``sweep``
        and ``eval`` are offered by every family).
      eval_options / sample_options / ...: ``(flag, argparse kwargs)`` pairs added to those
        commands (the CLI adds each flag once, whichever families share it).
      multi: config fields that take a comma list in ``train`` (each value trains a run).
      summary: keys of the final row printed after training.
    """

    commands: tuple = ()
    eval_options: tuple = ()
    sample_options: tuple = ()
    render_options: tuple = ()
    inspect_options: tuple = ()
    multi: tuple = ()
    summary: tuple = ()
    run_args = True  # whether train takes the run options (run directory, resume, chunks)
    chunk_help = "steps per compiled chunk (default: 1/20 of the run)"

    # --- options ---------------------------------------------------------------------------
    def add_args(self, parser: argparse.ArgumentParser, command: str) -> None:
        """Extra options of ``jaxgen train|sweep ALGO`` (data, evaluation)."""

    # --- configs ---------------------------------------------------------------------------
    def configs(self, algo, args, validate: bool = True) -> list:
        """The validated configs a ``train`` command asks for: the ``--preset`` (if any) with
        the given options on top; a field in ``multi`` given as a comma list gives one each
        (``validate=False``: not validated yet, for a family that validates with its data)."""
        base = algo.preset(getattr(args, "preset", None))
        over = overrides(args, algo.config_cls, skip=tuple(algo.fixed))
        lists = {}
        for name in self.multi:
            if name in over:
                default = C.get(base, name)
                lists[name] = split_list(over.pop(name), type(default), name)
        combos = [dict(zip(lists, vals)) for vals in _product(list(lists.values()))] if lists else [{}]
        configs = [C.replace(base, {**algo.fixed, **over, **c}) for c in combos]
        return [algo.validate(c) for c in configs] if validate else configs

    def label(self, algo, config) -> str:
        """What a ``train`` run is, in a few words (printed before it starts)."""
        return algo.name

    def compare(self, algo, outs: list) -> list[str]:
        """Lines comparing the runs of one ``train`` command (several ``multi`` values)."""
        return []

    def run_name(self, algo, config) -> str:
        """Default run directory name (a timestamp is appended)."""
        env = getattr(config, "env", None)
        return f"{algo.name}-{env}" if env else algo.name

    # --- train -----------------------------------------------------------------------------
    def job(self, algo, config, args) -> Job:
        """The :class:`Job` of one config (default: ``module.make_trainer(config)``)."""
        trainer = algo.mod.make_trainer(config)
        return Job(trainer, curves=self.summary or ("loss",), title=f"{algo.name}")

    def bench_trainer(self, algo, config) -> tuple[Trainer, int, str]:
        """``(trainer, units one step does, unit name)`` that ``jaxgen bench`` times (no
        downloads: generative families read the MNIST sample shipped with jaxgen). Default: the
        module's trainer, counted in steps."""
        return algo.mod.make_trainer(config), 1, "steps"

    def train(self, algo, config, args, run_dir: Path, resume: bool) -> dict:
        return fit(self.job(algo, config, args), seed=args.seed, run_dir=run_dir, resume=resume,
                   chunk_steps=args.chunk_steps, mode=args.mode, progress=not args.no_progress)

    def report(self, algo, out: dict) -> list[str]:
        """Lines printed after a run."""
        f, t = out["final"], out["timings"]
        keys = [k for k in (self.summary or f) if k in f and k not in ("step", "wall_s")][:6]
        rates = ", ".join(f"{_fmt(v)} {k[:-6].replace('_', '-')}/s" for k, v in t.items() if k.endswith("_per_s"))
        return ["   final: " + ", ".join(f"{k} {_fmt(f[k])}" for k in keys),
                f"   {rates} ({t['mode']}), run {t['run_s']:.1f}s, compile {t['compile_s']:.1f}s"]

    # --- sweep -----------------------------------------------------------------------------
    def sweep(self, algo, config, args) -> list[str]:
        """``jaxgen sweep``: every (grid point, seed) in one compile; lines to print."""
        from jaxgen.core.sweep import sweep

        job = self.job(algo, config, args)
        res = sweep(job.trainer, seeds=args.seeds, grid=parse_grid(args.grid), progress=not args.no_progress,
                    mode=args.mode)
        return sweep_table(res)

    # --- commands on a run directory -------------------------------------------------------
    def load(self, algo, run_dir: Path):
        """The latest checkpointed state of a run of ``algo``."""
        return ckpt.restore_run(run_dir, algo.config_cls, algo.mod.init)

    def eval(self, algo, run_dir: Path, args) -> dict:
        """``jaxgen eval``: default ``module.evaluate(state, key) -> dict``."""
        state = self.load(algo, run_dir)
        fn = getattr(algo.mod, "evaluate", None)
        if fn is None:
            raise ConfigError(f"{algo.name} runs have no evaluation; jaxgen eval takes runs of: {algo.eval_names()}.")
        seed = 0 if getattr(args, "seed", None) is None else args.seed
        return {k: np.asarray(v).tolist() for k, v in jax.device_get(fn(state, jax.random.PRNGKey(seed))).items()}


def _product(lists: list) -> list:
    import itertools

    return list(itertools.product(*lists))


def sweep_table(res) -> list[str]:
    """A :class:`~jaxgen.core.sweep.SweepResult` as printed lines: one row per run."""
    import itertools

    names = list(res.axes)
    metrics = [k for k in res.final if k not in ("step", "wall_s")][:6]
    lines = [f"one compile, {int(np.prod([len(v) for v in res.axes.values()]))} runs, {res.timings['steps']} steps each, "
             f"{res.timings['run_s']:.1f}s run, {res.timings['compile_s']:.1f}s compile ({res.timings['mode']})",
             "  ".join(names + metrics)]
    for idx in itertools.product(*[range(len(v)) for v in res.axes.values()]):
        vals = [str(res.axes[n][i]) for n, i in zip(names, idx)]
        lines.append("  ".join(vals + [_fmt(float(res.final[m][idx])) for m in metrics]))
    return lines
