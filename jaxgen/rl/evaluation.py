"""Evaluation between chunks, shared by every RL agent (:func:`jaxgen.rl.fit.fit` and the studies)."""
from __future__ import annotations

import time
from typing import Callable

import jax
import numpy as np

from jaxgen.core.hooks import chunk_number
from jaxgen.core.runner import ChunkInfo

EVAL_SEED = 0xE7A1


class EvalHook:
    """Runner hook: ``eval_return`` / ``eval_length`` (means over ``num_episodes`` complete
    episodes played by ``evaluate(state, key, num_episodes) -> (returns, lengths)``) every
    ``every`` chunks (counted from the logged rows, so a resumed run keeps the cadence) and at
    the end; for a vmapped (sweep) state, one value per run. (``env_steps`` are logged by
    :class:`jaxgen.core.hooks.Scale`.)
    ``seconds`` is the time spent evaluating (``fit`` reports it as ``eval_s``)."""

    name = "eval"

    def __init__(self, evaluate: Callable, num_episodes: int = 10, every: int = 1, vmapped: bool = False):
        self.num_episodes, self.every = num_episodes, every
        ev = lambda s, k: evaluate(s, k, num_episodes)
        self._eval = jax.jit(jax.vmap(ev, in_axes=(0, None)) if vmapped else ev)
        self.seconds = 0.0

    def __call__(self, info: ChunkInfo) -> dict:
        if (chunk_number(info) - 1) % self.every and info.step < info.num_steps:
            return {}
        t = time.perf_counter()
        key = jax.random.fold_in(jax.random.PRNGKey(EVAL_SEED), info.step)
        ret, length = jax.device_get(self._eval(info.state, key))
        self.seconds += time.perf_counter() - t
        mean = lambda x: np.mean(np.asarray(x, np.float64), axis=-1)
        return {"eval_return": mean(ret).tolist(), "eval_length": mean(length).tolist()}


def first_reaching(history: list, key: str, threshold: float):
    """Env steps of the first row whose ``key`` is >= ``threshold`` (per run for lists), or None."""
    out = None
    for r in history:
        if key not in r:
            continue
        v = np.asarray(r[key], np.float64)
        if out is None:
            out = np.full(v.shape, np.nan)
        hit = np.isnan(out) & (v >= threshold)
        out = np.where(hit, r["env_steps"], out)
    if out is None:
        return None
    return None if out.ndim == 0 and np.isnan(out) else out.tolist()
