"""Sweeps: many runs (seeds x traced hyperparameters) as one vmapped program, one compile.

``sweep(trainer, seeds=4, grid={"learning_rate": [1e-3, 3e-4]})`` builds the product of
the grid values and the seeds (R = 2 x 4 runs), vmaps ``init`` and ``step`` (each phase's
step, for a phased trainer) over the run axis, shards that axis over all devices (a
``Mesh`` named ``batch``; R is padded to a multiple of the device count, and a sentence on
stderr says so), and executes it through the one runner. In a multi-process run
(:mod:`jaxgen.core.distributed`) the mesh spans every process's devices: each process
builds the same run list and places only its own devices' runs; the results (metrics and
the final state, padding removed) come back whole on every process.
Results come back indexed by the grid: ``metrics[name]`` has shape
``[*grid sizes, seeds]``.
"""
from __future__ import annotations

import dataclasses
import itertools
import sys
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxgen.core import config as C
from jaxgen.core import distributed, runner
from jaxgen.core.errors import ConfigError
from jaxgen.core.sharding import AXIS, device_mesh, replicate
from jaxgen.core.train import SINGLE_PHASE, Trainer


@dataclasses.dataclass
class SweepResult:
    """``axes``: ordered {name: values} of the grid, then ``seed``; ``final``: the last
    logged metrics, each an array of shape ``[*len(values), num_seeds]``; ``state``: the
    vmapped final state (leading axis R = product of the axes, padding removed);
    ``final_by_phase``: ``{phase: the last logged metrics of that phase}`` (same shapes; for
    a phased trainer ``final`` is the last phase's)."""

    axes: dict
    final: dict
    state: Any
    history: list
    timings: dict
    final_by_phase: dict = dataclasses.field(default_factory=dict)

    def select(self, **where) -> dict:
        """Final metrics of the runs with the given axis values, e.g. ``select(learning_rate=1e-3)``."""
        index = []
        for name, values in self.axes.items():
            if name in where:
                index.append(list(values).index(where[name]))
            else:
                index.append(slice(None))
        return {k: v[tuple(index)] for k, v in self.final.items()}


def grid_runs(config, seeds: Sequence[int], grid: Mapping[str, Sequence[float]]):
    """Product of ``grid`` and ``seeds`` -> (keys [R, 2], hparams {name: [R]}, axes)."""
    names = C.traced_names(config)
    for name, values in grid.items():
        if name not in names:
            raise ConfigError(
                f"{name!r} cannot be swept in one compile: it is not a traced hyperparameter of "
                f"{type(config).__name__} (traced: {', '.join(names)})."
            )
        if len(values) == 0:
            raise ConfigError(f"the sweep over {name!r} has no values; give at least one.")
    combos = list(itertools.product(*grid.values(), seeds))
    base = C.hparams(config)
    hp = {n: np.full(len(combos), float(base[n]), np.float32) for n in names}
    for j, name in enumerate(grid):
        hp[name] = np.asarray([c[j] for c in combos], np.float32)
    keys = np.stack([np.asarray(jax.random.PRNGKey(int(c[-1]))) for c in combos])
    axes = {**{k: list(v) for k, v in grid.items()}, "seed": list(seeds)}
    return keys, hp, axes


def vmap_runs(fn, num_runs: int, in_axes=0):
    """``jax.vmap(fn, in_axes)`` over ``num_runs`` runs (the leading axis of the mapped
    arguments and of every output). For one run, ``fn`` itself between a squeeze and an
    expand of that axis, the same shapes in and out: on XLA:CPU a batch of one takes the
    batched kernels' slower paths (measured, 2-core CPU, one seed: GAIL Pendulum 19 %, PPO
    Pendulum 12 %, PPO CartPole 5 % slower than unbatched; benchmarks/RESULTS.md).
    ``in_axes``: 0 or None per positional argument (or one for all)."""
    if num_runs != 1:
        return jax.vmap(fn, in_axes=in_axes)

    def one(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        args = [a if ax is None else jax.tree_util.tree_map(lambda x: x[0], a) for a, ax in zip(args, axes)]
        # jnp.asarray: a Python number among the outputs (e.g. an int in a state) gets the axis as under vmap
        return jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], fn(*args))

    return one


def vmap_trainer(trainer: Trainer, keys: np.ndarray, hp: dict, mesh=None) -> Trainer:
    """A Trainer whose state holds R runs (leading axis), sharded over ``mesh``'s ``batch``.

    Every step (each phase's, for a phased trainer) is vmapped over the runs; the phases,
    their lengths and the data are the same for all runs."""
    r = keys.shape[0]
    n_dev = 1 if mesh is None else mesh.shape[AXIS]
    pad = (-r) % n_dev
    if pad and distributed.is_main():
        print(f"the sweep's {r} runs do not divide over {n_dev} devices; padded to {r + pad} runs (the {pad} extra "
              f"repeat the first ones and are dropped from the results).", file=sys.stderr)
    keys = np.concatenate([keys, keys[:pad]]) if pad else keys
    hp = {k: np.concatenate([v, v[:pad]]) if pad else v for k, v in hp.items()}
    vinit = vmap_runs(trainer.init, r + pad)
    # keys and hparams stay host numpy (the same on every process): the runner compiles the
    # init as one program, which may not close over arrays spanning other processes' devices
    vinit = jax.jit(vinit, out_shardings=NamedSharding(mesh, P(AXIS))) if mesh is not None else jax.jit(vinit)
    data = trainer.data if mesh is None else replicate(trainer.data, mesh)
    vstep = lambda step: vmap_runs(step, r + pad, in_axes=(0, None))  # noqa: E731  (runs x shared data)
    return trainer._replace(
        init=lambda _key, _hp=None: vinit(keys, hp),
        step=None if trainer.is_phased else vstep(trainer.step),
        data=data,
        phases=tuple(p._replace(step=vstep(p.step)) for p in trainer.phases),
    )


def sweep(
    trainer: Trainer,
    seeds: int | Sequence[int] = 1,
    grid: Mapping[str, Sequence[float]] | None = None,
    *,
    devices=None,
    **run_kwargs,
) -> SweepResult:
    """Train every (grid point, seed) at once; see the module docstring."""
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ConfigError("seeds is empty; give a count >= 1 or a list of seeds.")
    grid = dict(grid or {})
    keys, hp, axes = grid_runs(trainer.config, seeds, grid)
    r = keys.shape[0]
    devs = jax.devices() if devices is None else devices
    mesh = device_mesh(devs) if len(devs) > 1 else None
    vt = vmap_trainer(trainer, keys, hp, mesh)
    run_kwargs.setdefault("check_finite", False)
    res = runner.run(vt, 0, **run_kwargs)
    shape = [len(v) for v in axes.values()]

    def indexed(row: dict) -> dict:
        return {k: np.asarray(v)[:r].reshape(shape) for k, v in row.items() if isinstance(v, list)}

    by_phase = {}
    for row in res.history:  # in order: the last row of each phase wins
        by_phase[row.get("phase", SINGLE_PHASE)] = row
    final = indexed(res.history[-1]) if res.history else {}
    state = res.state if not distributed.is_multiprocess() else distributed.to_host(res.state)
    state = jax.tree_util.tree_map(lambda x: x[:r], state)
    return SweepResult(axes, final, state, res.history, res.timings, {k: indexed(v) for k, v in by_phase.items()})
