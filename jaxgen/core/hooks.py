"""Reusable runner hooks: the host work between chunks that several families share.

A hook is any callable ``hook(info: ChunkInfo) -> dict | None``; what it returns is merged
into the chunk's row of ``metrics.jsonl``. These wrap or provide the common ones:

* :class:`EveryEpochs` -- call a hook at the end of every ``n``-th epoch (and at the run's end).
* :class:`EveryChunks` -- call a hook every ``n``-th chunk (and at the run's end).
* :class:`Timed` -- accumulate the wall time a hook takes (reported as e.g. ``eval_s``).
* :class:`GridRows` -- "one row of pictures per epoch" figures: append a row of images to
  ``RUN_DIR/<name>_rows.npy`` (or ``rows_file``) and redraw ``RUN_DIR/<name>.png`` (the VAE's reconstructions,
  the GAN's fixed-noise progress).
* :func:`on_every_process` -- mark a hook that takes part in a collective (a mean over every
  process's held-out data): in a multi-process run it is called on every process, not on
  process 0 only, and process 0's return value is logged.
* :class:`Scale` -- log ``units = step * per_step`` (env steps, samples) unless the state
  counts them itself (a state field of that name).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import numpy as np

from jaxgen.core import plotting

Hook = Callable[..., dict | None]


def on_every_process(hook: Hook) -> Hook:
    """``hook`` marked to be called on every process of a multi-process run (by default hooks
    run on process 0 only, without collectives): for a hook that calls a collective such as
    :func:`jaxgen.core.distributed.mean_over_processes`. Wrappers (:class:`EveryEpochs`, ...)
    decide alike on every process, so each process calls it at the same chunks."""
    hook.every_process = True
    return hook


def runs_on_every_process(hook: Hook) -> bool:
    """Whether ``hook`` or a hook it wraps (its ``.hook``, again and again) was marked by
    :func:`on_every_process`."""
    while hook is not None:
        if getattr(hook, "every_process", False):
            return True
        hook = getattr(hook, "hook", None)
    return False


def is_last(info) -> bool:
    return info.step >= info.num_steps


class EveryEpochs:
    """Call ``hook`` when an epoch of the current phase (``info.phase_steps_per_epoch``
    iterations) has just ended and it is the ``n``-th such epoch, and always after the last
    chunk of a phase; ``phases`` (optional) limits it to the named phases."""

    def __init__(self, hook: Hook, n: int = 1, phases: Sequence[str] | None = None):
        self.hook, self.n, self.phases = hook, max(1, int(n)), None if phases is None else tuple(phases)

    def __call__(self, info) -> dict:
        if self.phases is not None and info.phase not in self.phases:
            return {}
        spe, done = info.phase_steps_per_epoch, info.phase_step
        if not info.phase_done and spe and (done % spe or (done // spe) % self.n):
            return {}
        return self.hook(info) or {}


def chunk_number(info) -> int:
    """1 for the run's first chunk, 2 for the next, ... -- counted from the logged rows, so a
    resumed run keeps the cadence of the uninterrupted one."""
    return len(info.history) + 1


class EveryChunks:
    """Call ``hook`` on chunks 1, 1 + n, 1 + 2n, ... and after the last chunk."""

    def __init__(self, hook: Hook, n: int = 1):
        self.hook, self.n = hook, max(1, int(n))

    def __call__(self, info) -> dict:
        if (chunk_number(info) - 1) % self.n and not is_last(info):
            return {}
        return self.hook(info) or {}


class Timed:
    """``hook`` with its accumulated wall time in ``seconds`` (reported by ``fit`` as ``<name>_s``)."""

    def __init__(self, hook: Hook, name: str = "hook"):
        self.hook, self.name, self.seconds = hook, name, 0.0

    def __call__(self, info) -> dict:
        t = time.perf_counter()
        try:
            return self.hook(info) or {}
        finally:
            self.seconds += time.perf_counter() - t


class Scale:
    """Log ``name = step * per_step`` (e.g. env steps); a state with a field ``name`` (an
    agent that counts its own valid steps) has that count logged instead."""

    def __init__(self, per_step: float, name: str = "env_steps"):
        self.per_step, self.name = per_step, name

    def __call__(self, info) -> dict:
        own = getattr(info.state, self.name, None)
        if own is not None:
            return {self.name: np.asarray(jax.device_get(own)).tolist()}
        return {self.name: info.step * self.per_step}


class GridRows:
    """One row of images per call, kept in ``RUN_DIR/<name>_rows.npy`` (or ``rows_file``) and drawn into
    ``RUN_DIR/<name>.png``: ``rows_fn(info) -> [cols, H, W, C]`` in [0, 1]; ``first`` (optional
    ``[cols, H, W, C]``) is a fixed first row (e.g. the inputs); ``label(i)`` names row ``i``."""

    def __init__(self, run_dir: Path | None, name: str, rows_fn: Callable, title: str,
                 label: Callable[[int], str] = lambda i: f"epoch {i + 1}", first: np.ndarray | None = None,
                 first_label: str = "input", rows_file: str | None = None):
        self.run_dir, self.name, self.rows_fn, self.title = run_dir, name, rows_fn, title
        self.rows_file = rows_file or f"{name}_rows.npy"
        self.label, self.first, self.first_label = label, first, first_label

    @property
    def path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / self.rows_file

    def __call__(self, info) -> dict:
        """Append the row of step ``info.step``; rows of later steps (written by chunks a resumed
        run repeats after its checkpoint) are dropped first, so a resumed figure matches."""
        if self.run_dir is None:
            return {}
        row = np.asarray(self.rows_fn(info))[None]
        offset = 1 if self.first is not None else 0
        steps_path = self.path.with_suffix(".steps.npy")
        if self.path.exists():
            rows = np.load(self.path, allow_pickle=False)
            steps = np.load(steps_path, allow_pickle=False) if steps_path.exists() else np.full(len(rows) - offset, -1)
            keep = steps < info.step
            rows, steps = np.concatenate([rows[:offset], rows[offset:][keep], row]), np.append(steps[keep], info.step)
        else:
            rows = np.concatenate([np.asarray(self.first)[None], row]) if offset else row
            steps = np.asarray([info.step])
        np.save(self.path, rows, allow_pickle=False)
        np.save(steps_path, steps, allow_pickle=False)
        labels = ([self.first_label] if offset else []) + [self.label(i) for i in range(len(rows) - offset)]
        plotting.save_grid(self.run_dir / f"{self.name}.png", rows.reshape(-1, *rows.shape[2:]), rows.shape[1],
                           self.title, labels)
        return {}


def chain(*hooks: Hook) -> Sequence[Hook]:
    """The hooks given, Nones dropped (a family's optional hooks)."""
    return [h for h in hooks if h is not None]
