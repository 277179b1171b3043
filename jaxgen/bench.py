"""``jaxgen bench``: the steps/s table of every registered family's compiled training on the
machine it runs on.

Each registry entry names its benchmark configs per suite (``Algorithm.bench``: ``{"quick":
[overrides, ...], "full": [...]}``, overrides on the entry's default preset); its family's
:meth:`~jaxgen.core.fit.Family.bench_trainer` turns a config into the
:class:`~jaxgen.core.train.Trainer` to time and the units one step does (env steps for RL,
training samples for the generative models). Each (config, seed count) is measured as:

* the whole run, all seeds vmapped, as ONE jitted program (``make_train`` of the vmapped
  trainer, as :func:`jaxgen.core.sweep.sweep` builds it, without the chunked runner's host
  work): ``compile_s`` is its ``lower + compile``; ``run_s`` the median of ``repeats`` calls
  after one untimed call (``spread`` = (max - min) / median of those);
* a case whose data is not on this machine (a family that reads demonstrations or a corpus
  from ``../shared/data``) is listed under ``skipped`` with the reason, not timed;
* ``per_s`` = units of all seeds / run_s; ``vs_1_seed`` = per_s / the 1-seed row's per_s
  (how much throughput vmapping buys; ``n`` seeds at perfect scaling give ``n``).

An entry's override dict may carry reserved keys: ``"_preset"`` (the registry preset it
starts from instead of the entry's default), ``"_seeds"`` (its own seed counts, used when
``--seeds`` is not given) and ``"_repeats"`` (its own timed calls when ``--repeats`` is not
given; ``1`` also drops the untimed call: for runs of a minute or more, whose compile is
already timed apart) and ``"_first_steps"`` (time only the run's first N iterations, phases in
order: the step cost of a long run without running all of it). The ``gpu`` suite uses both: PPO CartPole with 1, 64 and 2048 seeds,
PPO Breakout-MinAtar at 1e7 env steps, DQN CartPole with 1 and 64 seeds (``vmap_eff`` =
vs_1_seed / seeds, goal >= 0.8), the conv VAE and the DCGAN in samples/s; it is meant to run in
under 8 minutes on one accelerator (``benchmarks/gpu_suite.sh`` adds PyTorch CUDA's conv VAE /
DCGAN steps/s where torch with CUDA is installed).

Each program is handed to the compiler as soon as it is traced, ``--jobs`` compiling at once
(default: the core count; XLA compiles outside the GIL, so the tracing of the next programs
overlaps the compiles of the first), then each is timed alone, one after another. The quick
suite is one small config per family at 1 seed (``--seeds 1,8`` adds the seed scaling: a
second program per family); the full suite is what ``benchmarks/RESULTS.md`` reports (1, 8,
64 seeds). The
peer comparisons (PyTorch, Stable-Baselines3, PureJaxRL, rejax) stay in ``benchmarks/``,
timed with the same :mod:`jaxgen.core.timing`.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp

from jaxgen import registry
from jaxgen.core import config as C
from jaxgen.core import timing
from jaxgen.core.errors import ConfigError, DataError

SUITES = ("quick", "full", "gpu")
DEFAULT_SEEDS = {"quick": (1,), "full": (1, 8, 64), "gpu": (1,)}
DEFAULT_REPEATS = {"quick": 3, "full": 5, "gpu": 3}
HEADERS = ("algo", "config", "seeds", "steps", "unit", "compile_s", "run_s", "spread", "per_s", "vs_1_seed", "vmap_eff")
RESERVED = ("_preset", "_seeds", "_repeats", "_first_steps")


def split_entry(over: dict) -> tuple[dict, str | None, tuple | None]:
    """``(config overrides, preset name or None, seed counts or None)`` of one bench entry."""
    seeds = over.get("_seeds")
    return {k: v for k, v in over.items() if k not in RESERVED}, over.get("_preset"), (tuple(seeds) if seeds else None)


def cases(suite: str, algos: Sequence[str] | None = None) -> list[tuple]:
    """``[(algorithm, overrides, config)]`` of ``suite``: every registered entry with configs in
    it, or those named in ``algos`` (each must have some)."""
    if suite not in SUITES:
        raise ConfigError(f"--suite={suite!r} is not a suite; accepted: {', '.join(SUITES)}.")
    names = list(algos) if algos else [n for n in registry.REGISTRY if registry.get(n).bench.get(suite)]
    out = []
    for name in names:
        algo = registry.get(name)
        entries = algo.bench.get(suite) or []
        if not entries:
            having = [n for n in registry.REGISTRY if registry.get(n).bench.get(suite)]
            raise ConfigError(f"{name} has no {suite} benchmark config; algorithms with one: {', '.join(having)}.")
        for entry in entries:
            over, preset, _ = split_entry(entry)
            cfg = algo.validate(C.replace(algo.preset(preset), {**algo.fixed, **over}))
            out.append((algo, dict(entry), cfg))
    return out


def prepare(trainer, seeds: int):
    """``trainer``'s whole run with ``seeds`` runs vmapped, lowered (traced) but not compiled:
    ``(lowered, lower_s, key)``. With several devices the runs are split over them (each device
    runs its share at once, nothing exchanged) when ``seeds`` divides over them."""
    from jaxgen.core.sharding import device_mesh
    from jaxgen.core.sweep import grid_runs, vmap_trainer
    from jaxgen.core.train import make_train

    keys, hp, _ = grid_runs(trainer.config, list(range(seeds)), {})
    devs = jax.devices()  # several (e.g. JAX_NUM_CPU_DEVICES=2): the runs split over them, when they divide
    mesh = device_mesh(devs) if len(devs) > 1 and seeds % len(devs) == 0 else None
    train = jax.jit(make_train(vmap_trainer(trainer, keys, hp, mesh)))
    key = jnp.zeros((2,), jnp.uint32)  # unused: the vmapped init holds the runs' own keys
    lowered, lower_s = timing.timed(lambda: train.lower(key))
    return lowered, lower_s, key


class Compiler:
    """Compiles lowered programs in the background, ``jobs`` at once (XLA compiles outside the
    GIL, so on an n-core machine n programs compile in about the time of one, and the caller
    goes on tracing the next programs meanwhile). ``submit(lowered)`` returns a future of
    ``(compiled, compile_s)``; each ``compile_s`` is that program's own wall time, so with
    ``jobs > 1`` it includes the slowdown of sharing the cores. ``jobs <= 1`` compiles in
    ``submit`` itself."""

    def __init__(self, jobs: int = 1):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=jobs) if jobs > 1 else None

    def submit(self, lowered):
        from concurrent.futures import Future

        if self.pool is not None:
            return self.pool.submit(timing.timed, lowered.compile)
        done = Future()
        done.set_result(timing.timed(lowered.compile))
        return done

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)


def compile_all(lowered: Sequence, jobs: int = 1) -> list[tuple]:
    """``[(compiled, compile_s)]`` of every lowered program, ``jobs`` compiling at once (see
    :class:`Compiler`)."""
    with Compiler(jobs if len(lowered) > 1 else 1) as c:
        futures = [c.submit(lo) for lo in lowered]
        return [f.result() for f in futures]


def time_run(compiled, key, repeats: int, warmup: int = 1) -> dict:
    """``{run_s, spread, times}``: the median of ``repeats`` calls after ``warmup`` untimed ones."""
    stats = timing.repeat(lambda: jax.block_until_ready(compiled(key)), repeats=repeats, warmup=warmup)
    return {"run_s": stats.median, "spread": stats.spread, "times": list(stats.times)}


def measure(trainer, seeds: int, repeats: int, warmup: int = 1) -> dict:
    """Compile and run seconds of ``trainer``'s whole run with ``seeds`` runs vmapped (see the
    module docstring): ``{compile_s, run_s, spread, times}``."""
    lowered, lower_s, key = prepare(trainer, seeds)
    (compiled, compile_s), = compile_all([lowered])
    return {"compile_s": lower_s + compile_s, **time_run(compiled, key, repeats, warmup)}


def first_steps(trainer, steps: int | None):
    """``trainer`` cut to its first ``steps`` iterations (an entry's ``"_first_steps"``); a
    phased run keeps its phases in order, the ones past the cut with 0 iterations."""
    if not steps:
        return trainer
    if not trainer.is_phased:
        return trainer._replace(num_steps=min(int(steps), trainer.num_steps))
    left, phases = int(steps), []
    for p in trainer.phases:
        take = min(left, p.num_steps)
        phases.append(p._replace(num_steps=take))
        left -= take
    return type(trainer).phased(trainer.init, phases, data=trainer.data, config=trainer.config)


def describe(over: dict) -> str:
    first = over.get("_first_steps")
    over, preset, _ = split_entry(over)
    return " ".join(([f"preset={preset}"] if preset else []) + [f"{k}={v}" for k, v in over.items()]
                    + ([f"(first {first} steps)"] if first else [])) or "defaults"


def check(suite: str, seeds: Sequence[int] | None, repeats: int | None) -> tuple[tuple | None, int]:
    """``(seed counts, repeats)``: seeds as given (None: each entry's own, else the suite's
    default), repeats with the suite's default; ConfigError (one sentence) if out of range."""
    if not seeds:
        return None, DEFAULT_REPEATS.get(suite, 3) if repeats is None else _repeats(repeats)
    seeds = tuple(seeds)
    if any(s < 1 for s in seeds):
        raise ConfigError(f"--seeds={','.join(map(str, seeds))} is not accepted; accepted: whole numbers >= 1.")
    return seeds, DEFAULT_REPEATS.get(suite, 3) if repeats is None else _repeats(repeats)


def _repeats(repeats: int) -> int:
    if repeats < 1:
        raise ConfigError(f"--repeats={repeats} is out of range; accepted: a whole number >= 1.")
    return repeats


def run(suite: str = "quick", algos: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
        repeats: int | None = None, log=print, jobs: int | None = None) -> dict:
    """Measure every case of ``suite`` at every seed count; returns the JSON document
    (machine description + ``rows``). ``log`` gets one line per measurement as it finishes.

    Each program is handed to a :class:`Compiler` (``jobs`` at a time; default: the core count)
    as soon as it is traced, so the compiles overlap the tracing of the rest; once all are
    compiled, each is timed alone, one after another (nothing else runs while a program is
    timed)."""
    given_repeats = repeats
    seeds, repeats = check(suite, seeds, repeats)
    jobs = timing.core_count() if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"--jobs={jobs} is out of range; accepted: a whole number >= 1.")
    todo = cases(suite, algos)
    doc = machine()
    doc.update(suite=suite, repeats=repeats, seeds=list(seeds) if seeds else "per entry", compile_jobs=jobs,
               rows=[], skipped=[])
    with Compiler(jobs) as compiler:
        return _run(doc, todo, seeds, suite, given_repeats, repeats, compiler, jobs, log)


def _run(doc, todo, seeds, suite, given_repeats, repeats, compiler, jobs, log) -> dict:
    """:func:`run`'s three passes, with ``compiler`` compiling each program once it is traced."""
    programs = []  # (algo, over, trainer, per_step, unit, seeds, reps, warmup, future, lower_s, key)
    log(f"  tracing, and compiling {jobs} at a time as traced")
    for algo, over, cfg in todo:
        counts = seeds or split_entry(over)[2] or DEFAULT_SEEDS.get(suite, (1,))
        own = over.get("_repeats") if given_repeats is None else None
        reps, warmup = (own, 0 if own == 1 else 1) if own else (repeats, 1)
        try:
            trainer, per_step, unit = algo.fam.bench_trainer(algo, cfg)
        except DataError as e:  # e.g. demonstrations or a corpus that is not on this machine
            doc["skipped"].append({"algo": algo.name, "config": describe(over), "reason": str(e)})
            log(f"  {algo.name} [{describe(over)}] skipped: {e}")
            continue
        trainer = first_steps(trainer, over.get("_first_steps"))
        for s in counts:
            lowered, lower_s, key = prepare(trainer, s)
            programs.append((algo, over, trainer, per_step, unit, s, reps, warmup, compiler.submit(lowered), lower_s, key))
    log(f"  {len(programs)} programs traced; waiting for their compiles, then timing each alone")
    compiled = [p[8].result() for p in programs]  # nothing compiles while a program is timed
    base = {}
    for (algo, over, trainer, per_step, unit, s, reps, warmup, _, lower_s, key), (exe, compile_s) in zip(programs, compiled):
        m = {"compile_s": lower_s + compile_s, **time_run(exe, key, reps, warmup)}
        units = trainer.num_steps * per_step * s
        per_s = units / m["run_s"] if m["run_s"] > 0 else float("nan")
        case = (algo.name, describe(over))
        if s == 1:
            base[case] = per_s
        b = base.get(case)
        row = {"algo": algo.name, "config": case[1], "seeds": s, "steps": trainer.num_steps, "unit": unit,
               "units": units, **m, "per_s": per_s, "vs_1_seed": per_s / b if b else None,
               "vmap_eff": per_s / b / s if b else None}
        doc["rows"].append(row)
        log(f"  {algo.name} [{row['config']}] seeds {s}: compile {m['compile_s']:.1f}s, run {m['run_s']:.3f}s, "
            f"{per_s:,.0f} {unit}/s")
    return doc


def machine() -> dict:
    """The facts that make figures from different machines comparable."""
    import jaxlib

    import jaxgen

    dev = jax.devices()[0]
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "jaxgen": jaxgen.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "backend": jax.default_backend(), "device_kind": dev.device_kind, "device_count": jax.device_count(),
            "cpu": timing.cpu_model(), "cores": timing.core_count(), "python": platform.python_version(),
            "load_average": timing.load_average(), "xla_flags": os.environ.get("XLA_FLAGS", "")}


def table(doc: dict, markdown: bool = False) -> str:
    """The rows of :func:`run` as an aligned text (or Markdown) table."""
    rows = [[r["algo"], r["config"], r["seeds"], r["steps"], r["unit"], r["compile_s"], r["run_s"],
             f"{100 * r['spread']:.0f} %", r["per_s"], None if r["vs_1_seed"] is None else f"{r['vs_1_seed']:.2f}x",
             None if r.get("vmap_eff") is None else f"{r['vmap_eff']:.2f}"]
            for r in doc["rows"]]
    heads = list(HEADERS)
    heads[8] = "units/s (all seeds)"
    return (timing.markdown_table if markdown else timing.text_table)(heads, rows)


def title(doc: dict) -> str:
    return (f"jaxgen {doc['jaxgen']} bench --suite {doc['suite']}: {doc['date']} | {doc['backend']} "
            f"({doc['device_kind']}, {doc['device_count']} device(s)) | CPU {doc['cpu']}, {doc['cores']} cores | "
            f"jax {doc['jax']}, jaxlib {doc['jaxlib']} | load average {doc['load_average']} | median of "
            f"{doc['repeats']} repeats after one untimed call, compile apart")


def write_json(doc: dict, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, default=float))
    except OSError as e:
        raise ConfigError(f"--json={str(path)!r} cannot be written ({e.strerror}); give a writable file path.") from None
    return path


def cmd_bench(args) -> int:
    from jaxgen.core.fit import split_list

    algos = split_list(args.algos, str, "algos") if args.algos else None
    seeds = split_list(args.seeds, int, "seeds") if args.seeds else None
    check(args.suite, seeds, args.repeats)  # bad input is refused before anything is built
    cases(args.suite, algos)
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs={args.jobs} is out of range; accepted: a whole number >= 1.")
    doc = run(args.suite, algos, seeds, args.repeats, log=lambda line: print(line, file=sys.stderr, flush=True),
              jobs=args.jobs)
    print(title(doc))
    print(table(doc, markdown=args.markdown))
    for skip in doc["skipped"]:
        print(f"skipped {skip['algo']} [{skip['config']}]: {skip['reason']}")
    if args.json:
        print(f"wrote {write_json(doc, args.json)}")
    return 0


def add_command(sub) -> None:
    """``jaxgen bench`` on the CLI's subparsers."""
    b = sub.add_parser("bench", help="time every family's compiled training on this machine (steps/s, compile apart)",
                       description="Times the compiled training of every registered family (or --algos) on the current "
                                   "backend: compile time apart, median of repeats, units/s and seed scaling.")
    b.add_argument("--suite", default="quick", choices=SUITES,
                   help="quick: one small config per family, 1 seed; full: "
                        "benchmarks/RESULTS.md's; gpu: the accelerator suite (PPO 1/64/2048 seeds, PPO MinAtar 1e7 steps, "
                        "DQN 1/64 seeds, conv VAE, DCGAN; under 8 minutes on one GPU)")
    b.add_argument("--quick", dest="suite", action="store_const", const="quick", help="the same as --suite quick")
    b.add_argument("--full", dest="suite", action="store_const", const="full", help="the same as --suite full")
    b.add_argument("--algos", default=None, help="comma-separated algorithms (default: all with a config in the suite)")
    b.add_argument("--seeds", default=None, help="comma-separated seed counts vmapped in one program (default: each entry's "
                                                 "own, else quick 1; full 1,8,64; gpu 1)")
    b.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default quick 3, full 5)")
    b.add_argument("--jobs", type=int, default=None,
                   help="programs compiled at once (default: the core count); each is still timed alone")
    b.add_argument("--json", default=None, metavar="FILE", help="also write the table and the machine description as JSON")
    b.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    b.set_defaults(func=cmd_bench)


__all__ = ["SUITES", "RESERVED", "cases", "prepare", "Compiler", "compile_all", "time_run", "first_steps", "measure", "run", "machine", "table", "title", "write_json"]
