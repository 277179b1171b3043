"""The one runner: a :class:`~jaxgen.core.train.Trainer` executed in compiled chunks.

Between chunks, and only there, the host shows a progress bar, appends the chunk's mean
metrics to ``metrics.jsonl``, saves an orbax checkpoint, checks for NaN/inf and calls the
hooks (evaluation, plots). ``resume=True`` continues from the latest checkpoint of
``run_dir``; the result is bit-identical to the uninterrupted run.

Chunk execution modes (measured, see benchmarks/RESULTS.md):

* ``"scan"``: one jitted ``lax.scan`` over K steps per chunk, state donated. What
  accelerators want, and what small RL steps want everywhere.
* ``"loop"``: the jitted single step (state donated), dispatched K times from Python
  (asynchronously; the host only waits at the chunk boundary). On the XLA CPU backend a
  convolutional step runs several times faster this way than inside a ``scan``.
* ``"auto"``: ``scan`` on GPU/TPU; on CPU the jitted step is timed on a copy of the state
  and, unless a step is heavy enough that dispatch cannot matter (:func:`choose_mode`), the
  scan too; the faster one is used. The choice is stored in the run directory, so a resumed
  run uses the same one and stays bit-identical.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import checkpoint as ckpt
from jaxgen.core.config import hparams as default_hparams
from jaxgen.core.errors import CheckpointError, ConfigError, DivergenceError
from jaxgen.core.train import Trainer, as_key, scan_steps

MODES = ("auto", "scan", "loop")


@dataclasses.dataclass
class ChunkInfo:
    """What a hook sees between chunks."""

    state: Any
    step: int  # iterations done so far
    num_steps: int
    steps_per_epoch: int
    metrics: dict  # this chunk's mean metrics (host floats)
    history: list  # all logged rows so far (dicts with "step")
    run_dir: Path | None

    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch if self.steps_per_epoch else 0


@dataclasses.dataclass
class RunResult:
    state: Any
    history: list
    run_dir: Path | None
    timings: dict  # compile_s, run_s (device chunks), host_s (work between chunks), mode


class _Chunker:
    """Compiled chunk functions of one trainer, for one mode (cached by chunk length)."""

    def __init__(self, trainer: Trainer, mode: str):
        self.trainer, self.mode = trainer, mode
        self._scan = {}
        self._step = jax.jit(trainer.step, donate_argnums=0) if mode == "loop" else None

    def compile(self, state, length: int) -> float:
        t = time.perf_counter()
        if self.mode == "scan":
            if length not in self._scan:
                fn = jax.jit(lambda s, d: scan_steps(self.trainer.step, s, d, length), donate_argnums=0)
                self._scan[length] = fn.lower(state, self.trainer.data).compile()
        elif not hasattr(self, "_step_c"):
            self._step_c = self._step.lower(state, self.trainer.data).compile()
        return time.perf_counter() - t

    def __call__(self, state, length: int):
        if self.mode == "scan":
            return self._scan[length](state, self.trainer.data)
        ms = []
        for _ in range(length):
            state, m = self._step_c(state, self.trainer.data)
            ms.append(m)
        return state, jax.tree_util.tree_map(lambda *x: jnp.stack(x), *ms)


def _copy(tree):
    return jax.tree_util.tree_map(lambda x: x.copy() if isinstance(x, jax.Array) else x, tree)


#: A step at least this long (seconds) makes per-step dispatch (tens of microseconds) negligible.
HEAVY_STEP_S = 0.005


def _probe(trainer: Trainer, state, mode: str, steps: int) -> tuple[float, float]:
    """(compile seconds, seconds per step) of ``mode`` on a copy of ``state``."""
    ch = _Chunker(trainer, mode)
    compile_s = ch.compile(state, steps)
    s = _copy(state)
    if mode == "loop":  # one untimed call: first dispatch allocates
        s, m = ch(s, 1)
        jax.block_until_ready(m)
    t = time.perf_counter()
    s, m = ch(s, steps)
    jax.block_until_ready(m)
    return compile_s, (time.perf_counter() - t) / steps


def choose_mode(trainer: Trainer, state, probe_steps: int = 3) -> tuple[str, float, dict]:
    """Pick the faster chunk mode for this trainer on this backend.

    GPU/TPU: ``scan``. CPU: the jitted step is timed first; if a step takes at least
    ``HEAVY_STEP_S``, dispatching it from Python costs under ~1 % and ``loop`` is kept without
    compiling the scan (XLA CPU runs convolutional steps far slower inside a ``while`` loop:
    timing that probe alone could take minutes). Otherwise both are timed and the faster kept.
    Returns (mode, compile seconds spent, {mode: seconds per step}).
    """
    if jax.default_backend() != "cpu":
        return "scan", 0.0, {}
    compile_s, t_loop = _probe(trainer, state, "loop", probe_steps)
    times = {"loop": t_loop}
    if t_loop < HEAVY_STEP_S:
        c, times["scan"] = _probe(trainer, state, "scan", probe_steps)
        compile_s += c
    return min(times, key=times.get), compile_s, times


def _finite(metrics: dict) -> str | None:
    for k, v in metrics.items():
        if not np.isfinite(np.asarray(v, dtype=np.float64)).all():
            return k
    return None


def _host_means(metrics: dict) -> dict:
    """Chunk means over the step axis: a float per metric (or a list, for vmapped runs)."""
    means = jax.device_get(jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), metrics))
    return {k: np.asarray(v).tolist() for k, v in means.items()}


def step_of(state) -> int:
    """Iterations done by ``state`` (the first run's, for a vmapped state)."""
    return int(np.asarray(jax.device_get(state.step)).reshape(-1)[0])


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)


class _StopOnSignal:
    """Between ``install()`` and ``restore()`` (main thread only), the first SIGTERM or SIGINT
    only records a stop request: the runner finishes the chunk in flight, saves a checkpoint and
    returns. The previous handlers come back at once, so a second signal acts as it did before
    (a signal that was ignored, e.g. SIGINT of a background job, stays ignored)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: str | None = None
        self._old: dict = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        self.restore()

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}


def run(
    trainer: Trainer,
    key,
    *,
    run_dir: str | os.PathLike | None = None,
    chunk_steps: int | None = None,
    resume: bool = False,
    hparams: dict | None = None,
    hooks: Sequence[Callable[[ChunkInfo], None]] = (),
    mode: str = "auto",
    progress: bool = True,
    checkpoint_every: int | None = None,
    checkpoint_interval_s: float = 30.0,
    stop_after_chunks: int | None = None,
    check_finite: bool = True,
) -> RunResult:
    """Run ``trainer`` to ``trainer.num_steps`` in chunks of ``chunk_steps`` iterations.

    Args:
      key: seed (int) or PRNG key.
      run_dir: where config.json, metrics.jsonl, checkpoints/ and plots go (None: nothing saved).
      chunk_steps: iterations per compiled chunk (default: one epoch, or num_steps // 20).
      resume: continue from the latest checkpoint in ``run_dir`` (same config required).
      hparams: traced hyperparameter overrides (dict of scalars).
      hooks: called with a :class:`ChunkInfo` after each chunk (host work: eval, plots); a
        hook may return a dict of extra metrics for the chunk's log row.
      mode: "auto", "scan" or "loop" (see module docstring).
      checkpoint_every: save a checkpoint every this many chunks; None (default): whenever
        ``checkpoint_interval_s`` seconds have passed since the last one. Always at the end
        and when stopped early. (An orbax save costs ~50 ms: per chunk, that is 25 % of a
        0.16 s MNIST-MLP epoch; see benchmarks/RESULTS.md.)
      checkpoint_interval_s: the time-based interval (seconds).
      stop_after_chunks: stop early after this many chunks (used to test resume).
      check_finite: stop with DivergenceError (keeping the last good checkpoint) on NaN/inf.

    A SIGTERM or Ctrl-C (SIGINT) stops the run after the chunk in flight with a checkpoint
    saved (``timings["stopped_by"]`` names the signal); a second one acts as usual.
    """
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not accepted; choose one of: {', '.join(MODES)}.")
    cfg = trainer.config
    n = trainer.num_steps
    if chunk_steps is None:
        chunk_steps = trainer.steps_per_epoch or max(1, n // 20)
    if not (isinstance(chunk_steps, int) and 1 <= chunk_steps):
        raise ConfigError(f"chunk_steps={chunk_steps!r} is out of range; accepted: a whole number from 1 to {n}.")
    chunk_steps = min(chunk_steps, n)
    run_dir = Path(run_dir) if run_dir is not None else None
    hp = default_hparams(cfg, hparams) if cfg is not None else hparams
    key = as_key(key)

    t0 = time.perf_counter()
    state = _copy(trainer.init(key, hp))  # distinct buffers: the state is donated
    history: list = []
    checkpointer = None
    saved_mode = None
    if run_dir is not None:
        if resume:
            blob = ckpt.check_same_config(run_dir, cfg)
            saved_mode = blob.get("chunk_mode")
            checkpointer = ckpt.Checkpointer(run_dir)
            state = checkpointer.restore(state)
            history = _read_history(run_dir, step_of(state))
        else:
            if (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
                raise CheckpointError(
                    f"{run_dir} already holds a run; pass --resume to continue it or choose a new run directory."
                )
            checkpointer = ckpt.Checkpointer(run_dir)
    elif resume:
        raise ConfigError("resume=True needs a run_dir that holds the run to continue.")

    probe = {}
    if saved_mode is not None and mode == "auto":
        mode = saved_mode
    compile_s = 0.0
    if mode == "auto":
        mode, compile_s, probe = choose_mode(trainer, state)
    if run_dir is not None and not resume:
        ckpt.write_config(run_dir, cfg, {"chunk_mode": mode, "chunk_steps": chunk_steps, "probe_s_per_step": probe})
    elif run_dir is not None:
        # the stored options as resumed (e.g. a GAN run extended to more epochs), same extras
        ckpt.write_config(run_dir, cfg, {k: v for k, v in blob.items() if k not in ("type", "fingerprint", "config")})

    chunker = _Chunker(trainer, mode)
    start = step_of(state)
    compile_s += chunker.compile(state, chunk_steps)
    bar = _progress(n, start, progress)
    run_s = host_s = 0.0
    done, chunks = start, 0
    last_saved, last_saved_t = start, time.perf_counter()
    log = open(run_dir / "metrics.jsonl", "a") if run_dir is not None else None
    stop = _StopOnSignal()
    try:
        stop.install()
        while done < n:
            length = min(chunk_steps, n - done)
            if length != chunk_steps:
                compile_s += chunker.compile(state, length)
            t = time.perf_counter()
            state, metrics = chunker(state, length)
            means = _host_means(metrics)
            run_s += time.perf_counter() - t
            t = time.perf_counter()
            done += length
            chunks += 1
            bad = _finite(means) if check_finite else None
            if bad is not None:
                where = f"; the last good checkpoint (step {last_saved}) is kept in {run_dir}" if run_dir else ""
                raise DivergenceError(f"training diverged at step {done}: metric {bad!r} is {means[bad]}{where}.")
            row = {"step": done, "wall_s": round(time.perf_counter() - t0, 3), **means}
            info = ChunkInfo(state, done, n, trainer.steps_per_epoch, means, history, run_dir)
            for hook in hooks:
                row.update(hook(info) or {})
            history.append(row)
            if log is not None:
                log.write(json.dumps(row) + "\n")
                log.flush()
            final = (done >= n or (stop_after_chunks is not None and chunks >= stop_after_chunks)
                     or stop.received is not None)
            if checkpoint_every is not None:
                due = chunks % checkpoint_every == 0
            else:
                due = time.perf_counter() - last_saved_t >= checkpoint_interval_s
            if checkpointer is not None and (due or final):
                checkpointer.save(done, state)
                last_saved, last_saved_t = done, time.perf_counter()
            if bar is not None:
                bar.set_postfix({k: f"{np.mean(v):.4g}" for k, v in list(means.items())[:4]}, refresh=False)
                bar.update(length)
            host_s += time.perf_counter() - t
            if final:
                break
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
        if checkpointer is not None:
            checkpointer.close()
    timings = {"compile_s": compile_s, "run_s": run_s, "host_s": host_s, "mode": mode, "chunks": chunks,
               "steps": done - start, "probe_s_per_step": probe, "stopped_by": stop.received}
    if stop.received is not None:
        kept = (f"checkpoint of step {done} saved in {run_dir}; continue it with --resume" if run_dir is not None
                else "no run directory, so nothing was saved")
        print(f"{stop.received}: stopped at step {done} of {n}; {kept}.", file=sys.stderr)
    return RunResult(state, history, run_dir, timings)


def _read_history(run_dir: Path, upto: int) -> list:
    """Rows of metrics.jsonl up to step ``upto`` (later rows, from an interrupted chunk, are dropped)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["step"] <= upto]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
