"""The one runner: a :class:`~jaxgen.core.train.Trainer` executed in compiled chunks.

Between chunks, and only there, the host shows a progress bar, appends the chunk's mean
metrics to ``metrics.jsonl``, saves an orbax checkpoint, checks for NaN/inf and calls the
hooks (evaluation, plots). ``resume=True`` continues from the latest checkpoint of
``run_dir``; the result is bit-identical to the uninterrupted run.

Faults (tests/core/test_faults.py, test_memory.py):

* **Resume anywhere.** A run stopped before its first checkpoint starts over (saying so, with
  its old log rows dropped); one stopped later continues from its newest intact checkpoint
  (a damaged or uncommitted one is passed over with one sentence: :mod:`jaxgen.core.checkpoint`),
  rows of ``metrics.jsonl`` logged after that checkpoint dropped; a finished one runs no
  chunk. The run holds ``run_dir``'s writer lock: a second writer is refused.
* **Divergence.** A chunk whose mean metrics are NaN/inf, or after which a floating-point
  leaf of the state (parameters, optimiser moments, buffers) newly holds NaN/inf, stops the
  run with one sentence naming the step, the phase and the metric or leaf; the last good
  checkpoint is kept. The state check is one fused reduction per leaf (``sum(x * 0)``),
  dispatched after the chunk and fetched with its metrics (about 1 ms per chunk for the
  10 MB MLP VAE state on this CPU; compiled once per run, ~0.5 s).
* **Memory.** Before anything is allocated or written, the bytes of the state
  (``eval_shape`` of ``init``), the data and what the caller adds are compared with the
  device's memory (:mod:`jaxgen.core.memory`); a run that cannot fit is refused in one
  sentence naming the options to lower, and XLA's out-of-memory errors during the run (in
  a chunk or a hook) become such a sentence too.

Phases (:meth:`Trainer.phased`) run in order through the same loop. A chunk never crosses
a phase boundary: chunks are counted from the start of their phase and the last one of a
phase is shortened. Each phase has its own compiled programs (one per chunk length used,
compiled when the phase is entered, never again), its own mode, its name in the progress
bar's description, and every log row and :class:`ChunkInfo` carries it (``phase``, plus the
phase's own step / length / epoch in ``ChunkInfo``). Which phase a (resumed) state is in
follows from ``state.step`` alone, so a run stopped anywhere -- inside a phase or exactly
at a boundary -- resumes bit-identically. A trainer without phases is the one phase
``"train"`` (its rows carry ``"phase": "train"``).

Chunk execution modes (measured, see benchmarks/RESULTS.md):

* ``"scan"``: one jitted ``lax.scan`` over K steps per chunk, state donated. What
  accelerators want, and what small RL steps want everywhere.
* ``"loop"``: the jitted single step (state donated), dispatched K times from Python
  (asynchronously; the host only waits at the chunk boundary). On the XLA CPU backend a
  convolutional step runs several times faster this way than inside a ``scan``.
* ``"auto"``: ``scan`` on GPU/TPU; on CPU the jitted step is timed on a copy of the state
  and, unless a step is heavy enough that dispatch cannot matter (:func:`choose_mode`), the
  scan too; the faster one is used. Chosen per phase when the phase is entered; the choice
  is stored in the run directory's ``config.json`` (``chunk_mode``: a string for a one-phase
  trainer, ``{phase: mode}`` for a phased one), so a resumed run uses the same and stays
  bit-identical.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import jaxpr_as_fun

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import distributed, memory
from jaxgen.core.config import hparams as default_hparams
from jaxgen.core.errors import CheckpointError, ConfigError, DistributedError, DivergenceError, JaxgenError
from jaxgen.core.hooks import runs_on_every_process
from jaxgen.core.train import Phase, Trainer, as_key, scan_steps

MODES = ("auto", "scan", "loop")
_CHUNK_MODES = ("scan", "loop")


@dataclasses.dataclass
class ChunkInfo:
    """What a hook sees between chunks.

    ``step`` / ``num_steps`` / ``steps_per_epoch`` / ``epoch`` are the whole run's (a phased
    trainer has ``steps_per_epoch`` 0); ``phase_*`` are those of the phase the chunk ran in,
    e.g. "evaluate every epoch of the adversarial phase" is ``info.phase == "adversarial" and
    info.phase_step % info.phase_steps_per_epoch == 0``.
    """

    state: Any
    step: int  # iterations done so far (whole run)
    num_steps: int
    steps_per_epoch: int
    metrics: dict  # this chunk's mean metrics (host floats)
    history: list  # all logged rows so far (dicts with "step" and "phase")
    run_dir: Path | None
    phase: str = "train"  # name of the phase this chunk ran in
    phase_index: int = 0
    phase_step: int = 0  # iterations of this phase done so far
    phase_num_steps: int = 0
    phase_steps_per_epoch: int = 0

    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch if self.steps_per_epoch else 0

    @property
    def phase_epoch(self) -> int:
        """Epochs of this phase done so far (0 if the phase has no epochs)."""
        return self.phase_step // self.phase_steps_per_epoch if self.phase_steps_per_epoch else 0

    @property
    def phase_done(self) -> bool:
        """True after the last chunk of this phase."""
        return self.phase_step >= self.phase_num_steps


@dataclasses.dataclass
class RunResult:
    state: Any
    history: list
    run_dir: Path | None
    timings: dict  # compile_s, run_s (device chunks), host_s (work between chunks), mode, phases


def _scan_chunk(step: Callable, capacity: int, state, data, n):
    """``n`` (traced, 1..``capacity``) iterations of ``step`` in one compiled loop; the metrics
    of iteration ``i`` land in row ``i`` of a ``[capacity, ...]`` buffer (rows from ``n`` on are
    zeros). One program serves every chunk length of a phase up to ``capacity`` -- the probe,
    the full chunks and the shorter last one -- where a ``lax.scan`` of static length would
    compile one program per length. The body is the same step as in :func:`scan_steps`."""
    # the step traced once: its jaxpr gives the metrics' shapes and is the loop's body
    closed, out_shape = jax.make_jaxpr(step, return_shape=True)(state, data)
    body_fn, out_tree = jaxpr_as_fun(closed), jax.tree_util.tree_structure(out_shape)
    buf = jax.tree_util.tree_map(lambda m: jnp.zeros((capacity, *m.shape), m.dtype), out_shape[1])

    def body(i, carry):
        st, out = carry
        st, m = jax.tree_util.tree_unflatten(out_tree, body_fn(*jax.tree_util.tree_leaves((st, data))))
        return st, jax.tree_util.tree_map(lambda b, x: jax.lax.dynamic_update_index_in_dim(b, x, i, 0), out, m)

    return jax.lax.fori_loop(0, n, body, (state, buf))


# One jitted function for every scan chunk (the step and the capacity static): its compile cache
# lives as long as the process, so a run resumed, repeated or benchmarked in the same process
# reuses the programs (as ``jax.jit(step)`` does for the loop mode).
_SCAN_CHUNK = jax.jit(_scan_chunk, static_argnums=(0, 1), donate_argnums=2)
# The first ``n`` rows of every metric (one small program per tree and length; none for full chunks).
_HEAD = jax.jit(lambda tree, n: jax.tree_util.tree_map(lambda x: x[:n], tree), static_argnums=1)


def _hashable(x) -> bool:
    try:
        hash(x)
        return True
    except TypeError:
        return False


class _Chunker:
    """Compiled chunk functions of one phase's step, for one mode: ``loop`` compiles the step,
    ``scan`` one loop program for every chunk length up to ``capacity``."""

    def __init__(self, step: Callable | Trainer, data=None, mode: str | None = None, capacity: int = 1):
        if isinstance(step, Trainer):  # _Chunker(trainer, mode): its (first) phase, as benchmarks use it
            step, data, mode = step.schedule[0].step, step.data, data
        self.step, self.data, self.mode = step, data, mode
        self.capacity = max(1, int(capacity))
        self._scan_c = None
        self._step_c = None

    def compile(self, state, length: int) -> float:
        """Compile the program for chunks of up to ``length`` unless done; return the seconds spent."""
        if self.mode == "scan" and length > self.capacity:  # a longer chunk than planned: a larger buffer
            self.capacity, self._scan_c = length, None
        if (self._scan_c if self.mode == "scan" else self._step_c) is not None:
            return 0.0
        t = time.perf_counter()
        if self.mode == "scan":
            n = jnp.int32(1)
            if _hashable(self.step):
                fn = _SCAN_CHUNK.lower(self.step, self.capacity, state, self.data, n)
            else:  # e.g. an instance of an eq dataclass: a program of this chunker's own
                step, cap = self.step, self.capacity
                fn = jax.jit(lambda s, d, k: _scan_chunk(step, cap, s, d, k), donate_argnums=0).lower(state, self.data, n)
            self._scan_c = fn.compile()
        else:
            self._step_c = jax.jit(self.step, donate_argnums=0).lower(state, self.data).compile()
        return time.perf_counter() - t

    def __call__(self, state, length: int):
        if self.mode == "scan":
            self.compile(state, length)
            state, buf = self._scan_c(state, self.data, jnp.int32(length))
            return state, (buf if length == self.capacity else _HEAD(buf, length))
        ms = []
        for _ in range(length):
            state, m = self._step_c(state, self.data)
            ms.append(m)
        return state, jax.tree_util.tree_map(lambda *x: jnp.stack(x), *ms)


def _copy(tree):
    return jax.tree_util.tree_map(lambda x: x.copy() if isinstance(x, jax.Array) else x, tree)


#: A step at least this long (seconds) makes per-step dispatch (tens of microseconds) negligible.
HEAVY_STEP_S = 0.005


def _probe(ch: _Chunker, state, steps: int) -> tuple[float, float]:
    """(compile seconds, seconds per step) of ``ch``'s mode on a copy of ``state``."""
    compile_s = ch.compile(state, steps)
    s = _copy(state)
    if ch.mode == "loop":  # one untimed call: first dispatch allocates
        s, m = ch(s, 1)
        jax.block_until_ready(m)
    t = time.perf_counter()
    s, m = ch(s, steps)
    jax.block_until_ready(m)
    return compile_s, (time.perf_counter() - t) / steps


def _choose(step: Callable, data, state, probe_steps: int, capacity: int = 1) -> tuple[str, float, dict, _Chunker]:
    """(mode, compile seconds, {mode: seconds per step}, the chosen mode's chunker, compiled
    as far as the probe went) for one phase's step; see :func:`choose_mode`."""
    if jax.default_backend() != "cpu":
        return "scan", 0.0, {}, _Chunker(step, data, "scan", capacity)
    chunkers = {"loop": _Chunker(step, data, "loop")}
    compile_s, t_loop = _probe(chunkers["loop"], state, probe_steps)
    t_loop = float(distributed.agree(t_loop))  # several processes: process 0's timings decide for all
    times = {"loop": t_loop}
    if t_loop < HEAVY_STEP_S:
        chunkers["scan"] = _Chunker(step, data, "scan", max(capacity, probe_steps))
        c, t_scan = _probe(chunkers["scan"], state, probe_steps)
        times["scan"] = float(distributed.agree(t_scan))
        compile_s += c
    best = min(times, key=times.get)
    return best, compile_s, times, chunkers[best]


def choose_mode(trainer: Trainer, state, probe_steps: int = 3, phase: int | str = 0) -> tuple[str, float, dict]:
    """Pick the faster chunk mode for this trainer (its ``phase``: index or name) on this backend.

    GPU/TPU: ``scan``. CPU: the jitted step is timed first; if a step takes at least
    ``HEAVY_STEP_S``, dispatching it from Python costs under ~1 % and ``loop`` is kept without
    compiling the scan (XLA CPU runs convolutional steps far slower inside a ``while`` loop:
    timing that probe alone could take minutes). Otherwise both are timed and the faster kept.
    Returns (mode, compile seconds spent, {mode: seconds per step}).
    """
    sched = trainer.schedule
    names = [p.name for p in sched]
    if isinstance(phase, str):
        if phase not in names:
            raise ConfigError(f"phase={phase!r} is not a phase of this trainer; choose one of: {', '.join(names)}.")
        phase = names.index(phase)
    mode, compile_s, times, _ = _choose(sched[phase].step, trainer.data, state, probe_steps)
    return mode, compile_s, times


def _finite(metrics: dict) -> str | None:
    for k, v in metrics.items():
        if not np.isfinite(np.asarray(v, dtype=np.float64)).all():
            return k
    return None


def _is_float_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) and jnp.issubdtype(x.dtype, jnp.inexact)


def _leaf_probe(nan_only: tuple, leaves: tuple):
    """float32 [L]: NaN where leaf ``l`` holds a NaN or an inf (``nan_only[l]``: a NaN), else 0.

    ``sum(x * 0)`` is 0 for finite ``x`` and NaN as soon as one element is NaN or inf: one
    fused reduction per leaf, no comparison array materialised."""
    return jnp.stack([jnp.sum(jnp.where(jnp.isnan(x), x, 0)).astype(jnp.float32) if k
                      else jnp.sum(x * 0).astype(jnp.float32) for k, x in zip(nan_only, leaves)])


_LEAF_PROBE = jax.jit(_leaf_probe, static_argnums=0)


class _StateGuard:
    """Finds a floating-point leaf of the state that turned NaN or inf since the run (re)started.

    Leaves that held NaN at the start are not checked, leaves that held only infs (an ``inf``
    clip norm among the hyperparameters) only for NaN. One compiled program (a reduction per
    leaf; a second one only when some leaf was not finite at the start), dispatched right
    after the chunk so that its result arrives with the chunk's metrics."""

    def __init__(self, state):
        flat = jax.tree_util.tree_flatten_with_path(state)[0]
        idx = [i for i, (_, x) in enumerate(flat) if _is_float_array(x)]
        kinds = (0,) * len(idx)
        if idx:
            start = np.asarray(distributed.to_host(_LEAF_PROBE(kinds, tuple(flat[i][1] for i in idx))))
            if np.isnan(start).any():  # some leaf not finite at the start: which, and is it NaN or inf?
                nan = [bool(np.isnan(np.asarray(distributed.to_host(flat[i][1]))).any()) if np.isnan(v) else False
                       for i, v in zip(idx, start)]
                kinds = tuple(int(bool(np.isnan(v))) for v, bad in zip(start, nan) if not bad)
                idx = [i for i, bad in zip(idx, nan) if not bad]
        self.idx, self.kinds = idx, kinds
        self.paths = [memory.leaf_path(flat[i][0]) for i in idx]

    def dispatch(self, state):
        """Start the check of ``state`` (asynchronously); hand the result to :meth:`first_bad`."""
        if not self.idx:
            return None
        flat = jax.tree_util.tree_leaves(state)
        return _LEAF_PROBE(self.kinds, tuple(flat[i] for i in self.idx))

    def first_bad(self, probe) -> str | None:
        """The path (``params/Dense_0/kernel``) of the first leaf gone non-finite, or None."""
        if probe is None:
            return None
        hit = np.flatnonzero(np.isnan(np.asarray(distributed.to_host(probe))))
        return self.paths[hit[0]] if len(hit) else None


def _host_means(metrics: dict) -> dict:
    """Chunk means over the step axis: a float per metric (or a list, for vmapped runs)."""
    means = distributed.to_host(jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), metrics))
    return {k: np.asarray(v).tolist() for k, v in means.items()}


def step_of(state) -> int:
    """Iterations done by ``state`` (the first run's, for a vmapped state; in a multi-process
    run, the first run this process holds -- every run has done the same)."""
    x = state.step
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return int(np.asarray(jax.device_get(x)).reshape(-1)[0])


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


def _whole(c) -> bool:
    return isinstance(c, int) and not isinstance(c, bool) and c >= 1


def _chunk_lengths(phases: tuple[Phase, ...], chunk_steps, n: int) -> list[int]:
    """Iterations per chunk of each phase (see :func:`run`'s ``chunk_steps``)."""
    names = [p.name for p in phases]
    if isinstance(chunk_steps, Mapping):
        unknown = sorted(set(chunk_steps) - set(names))
        if unknown:
            raise ConfigError(f"chunk_steps names {', '.join(map(repr, unknown))}, not a phase of this trainer; "
                              f"phases: {', '.join(names)}.")
        for p in phases:
            c = chunk_steps.get(p.name)
            if c is not None and not _whole(c):
                raise ConfigError(f"chunk_steps={c!r} for phase {p.name!r} is out of range; accepted: a whole "
                                  f"number from 1 to {max(1, p.num_steps)}.")
        wanted = [chunk_steps.get(name) for name in names]
    else:
        if chunk_steps is not None and not _whole(chunk_steps):
            raise ConfigError(f"chunk_steps={chunk_steps!r} is out of range; accepted: a whole number from 1 to {n}.")
        wanted = [chunk_steps] * len(phases)
    return [max(1, min(c or p.steps_per_epoch or max(1, n // 20), p.num_steps)) for p, c in zip(phases, wanted)]


def run(
    trainer: Trainer,
    key,
    *,
    run_dir: str | os.PathLike | None = None,
    chunk_steps: int | Mapping[str, int] | None = None,
    resume: bool = False,
    hparams: dict | None = None,
    hooks: Sequence[Callable[[ChunkInfo], None]] = (),
    mode: str = "auto",
    progress: bool = True,
    checkpoint_every: int | None = None,
    checkpoint_interval_s: float = 30.0,
    stop_after_chunks: int | None = None,
    check_finite: bool = True,
    check_memory: bool | memory.Estimate = True,
    memory_extra: Mapping[str, int] | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> RunResult:
    """Run ``trainer`` to ``trainer.num_steps`` (all its phases, in order) in compiled chunks.

    Args:
      key: seed (int) or PRNG key.
      run_dir: where config.json, metrics.jsonl, checkpoints/ and plots go (None: nothing saved).
        The run holds the directory's writer lock (:func:`jaxgen.core.checkpoint.lock`): a
        second run writing there at the same time is refused with BusyError.
      chunk_steps: iterations per compiled chunk, for every phase, or ``{phase name: count}``
        (phases left out take the default). Default: the phase's epoch, or num_steps // 20 of
        the whole run. A chunk never crosses a phase boundary (the last one is shortened).
      resume: continue from the newest intact checkpoint in ``run_dir`` (same config
        required; a damaged newest one is passed over with one sentence, see
        :mod:`jaxgen.core.checkpoint`). A run stopped before its first checkpoint starts
        over (saying so); a finished one runs no chunk and returns its final state.
      hparams: traced hyperparameter overrides (dict of scalars).
      hooks: called with a :class:`ChunkInfo` after each chunk (host work: eval, plots); a
        hook may return a dict of extra metrics for the chunk's log row.
      mode: "auto", "scan" or "loop" (see module docstring); "auto" chooses per phase.
      checkpoint_every: save a checkpoint every this many chunks; None (default): whenever
        ``checkpoint_interval_s`` seconds have passed since the last one. Always at the end
        and when stopped early. (An orbax save costs ~50 ms: per chunk, that is 25 % of a
        0.16 s MNIST-MLP epoch; see benchmarks/RESULTS.md.)
      checkpoint_interval_s: the time-based interval (seconds).
      stop_after_chunks: stop early after this many chunks (used to test resume).
      check_finite: stop with DivergenceError (keeping the last good checkpoint) when a
        chunk's mean metrics, or any floating-point leaf of the state (parameters,
        optimiser moments, ...), become NaN/inf. The state check is one compiled reduction
        per leaf at each chunk boundary; a leaf that already held NaN (inf) when the run
        (re)started, e.g. an ``inf`` clip norm in ``hparams``, is not checked for NaN (inf).
      check_memory: before allocating or writing anything, estimate the run's bytes
        (:func:`jaxgen.core.memory.check`: the state by ``eval_shape``, the data,
        ``memory_extra``) and refuse with ResourceError when they cannot fit (an
        :class:`~jaxgen.core.memory.Estimate` the caller already checked is taken as is);
        XLA's out-of-memory errors during the run are translated into the same kind of
        sentence either way.
      memory_extra: ``{what: bytes}`` a family knows its run needs besides the state and the
        data at its peak (e.g. a rollout, an evaluation batch).
      mesh: data parallelism: the state and the data are replicated over this ``batch`` mesh
        (:func:`jaxgen.core.sharding.device_mesh`, which in a multi-process run spans every
        process) and the steps run under it, so a step's :func:`~jaxgen.core.sharding.shard_batch`
        splits its minibatch over the devices (gradients are all-reduced by XLA).

    Several processes (:mod:`jaxgen.core.distributed`): every process runs this same call.
    Process 0 alone holds the directory's lock, writes ``config.json`` and ``metrics.jsonl``,
    draws the progress bar and calls the hooks (on :func:`~jaxgen.core.distributed.local_copy`
    of the state; a hook marked by :func:`jaxgen.core.hooks.on_every_process` is called on
    every process); every process takes part in each checkpoint save and restore (orbax's
    multi-process checkpoints), and whether to save or stop after a chunk is decided once for
    all (process 0's clock; a signal received by any process stops all). A run saved by N
    processes is resumed by N (another count is refused in one sentence).

    Returns a :class:`RunResult`; ``history`` holds one row per chunk: ``{"step", "phase",
    "wall_s", **chunk means, **hook extras}``. ``timings``: ``compile_s``, ``run_s``, ``host_s``,
    ``chunks``, ``steps`` (of this call), ``start_step`` (where it started: 0, or the step
    resumed from), ``stopped_by``, ``mode`` and ``probe_s_per_step`` (for a phased trainer
    ``{phase: ...}``), and ``phases``: ``{phase: {mode, compile_s, run_s, host_s, chunks,
    steps}}`` for the phases that ran.

    A SIGTERM or Ctrl-C (SIGINT) stops the run after the chunk in flight with a checkpoint
    saved (``timings["stopped_by"]`` names the signal); a second one acts as usual.
    """
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not accepted; choose one of: {', '.join(MODES)}.")
    if resume and run_dir is None:
        raise ConfigError("resume=True needs a run_dir that holds the run to continue.")
    _chunk_lengths(trainer.schedule, chunk_steps, trainer.num_steps)  # bad chunking: refused before anything
    cfg = trainer.config
    hp = default_hparams(cfg, hparams) if cfg is not None else hparams
    key = as_key(key)
    if isinstance(check_memory, memory.Estimate):
        est = check_memory
    else:
        est = preflight(trainer, key, hp, memory_extra) if check_memory else None
    leaves_est = est.state_leaves if est is not None else []
    args = (trainer, key, hp, chunk_steps, resume, hooks, mode, progress, checkpoint_every, checkpoint_interval_s,
            stop_after_chunks, check_finite, leaves_est, mesh)
    if run_dir is None:
        return _run(None, *args)
    if resume:
        ckpt.read_config(Path(run_dir))  # not a run directory: said before anything is written there
    with ckpt.lock(run_dir):
        return _run(Path(run_dir), *args)


_NOT_TRACEABLE = (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
                  jax.errors.TracerIntegerConversionError, jax.errors.TracerArrayConversionError)


def init_state(trainer: Trainer, key, hp):
    """``trainer.init(key, hp)`` as one compiled program (run op by op, an init compiles every
    op on its own: dozens of small programs, seconds on a CPU); op by op if it cannot be traced."""
    try:
        return jax.jit(trainer.init)(key, hp)
    except _NOT_TRACEABLE:
        return trainer.init(key, hp)


def preflight(trainer: Trainer, key, hparams: dict | None = None,
              memory_extra: Mapping[str, int] | None = None) -> memory.Estimate | None:
    """The run's :class:`~jaxgen.core.memory.Estimate` (nothing allocated), or ResourceError
    if it cannot fit (:func:`jaxgen.core.memory.check`); None when ``init`` cannot be traced
    abstractly (the run then proceeds unchecked)."""
    cfg = trainer.config
    hp = default_hparams(cfg, hparams) if cfg is not None else hparams
    try:
        return memory.check(trainer, as_key(key), hp, memory_extra)
    except JaxgenError:
        raise
    except Exception:  # noqa: BLE001 - e.g. an init that needs concrete values
        return None


def _run(run_dir, trainer, key, hp, chunk_steps, resume, hooks, mode, progress, checkpoint_every,
         checkpoint_interval_s, stop_after_chunks, check_finite, leaves_est, mesh=None) -> RunResult:
    phases = trainer.schedule
    phased = trainer.is_phased
    names = [p.name for p in phases]
    cfg = trainer.config
    n = trainer.num_steps
    chunk_of = _chunk_lengths(phases, chunk_steps, n)
    starts = np.cumsum([0] + [p.num_steps for p in phases[:-1]]).tolist()
    main, procs = distributed.is_main(), distributed.process_count()
    data = trainer.data
    if mesh is not None:  # data already split over the processes (sharding.from_process_rows) stays split
        from jaxgen.core.sharding import is_split_over_processes, replicate

        data = jax.tree_util.tree_map(lambda x: x if is_split_over_processes(x) else replicate(x, mesh), data)

    t0 = time.perf_counter()
    history: list = []
    checkpointer = None
    blob = None
    extras: dict = {}
    if run_dir is not None:
        if resume:
            blob = ckpt.check_same_config(run_dir, cfg)
            extras = {k: v for k, v in blob.items() if k not in ("type", "fingerprint", "config")}
            saved_procs = int(extras.get("num_processes", 1))
            if saved_procs != procs:
                raise DistributedError(
                    f"the run in {run_dir} was saved by {saved_procs} process{'es' if saved_procs > 1 else ''}; resume it "
                    f"with {saved_procs} (this is {procs}), or load it in one process for eval, sample or inspect.")
        else:
            held = run_dir / "checkpoints"
            if held.is_dir() and any(p.name.isdigit() for p in held.iterdir()):
                raise CheckpointError(
                    f"{run_dir} already holds a run; pass --resume to continue it or choose a new run directory."
                )
            given = None if mode == "auto" else mode
            extras = {"chunk_mode": {name: given for name in names if given} if phased else given,
                      "chunk_steps": dict(zip(names, chunk_of)) if phased else chunk_of[0],
                      "probe_s_per_step": {}}
            if procs > 1:
                extras["num_processes"] = procs
    saved_mode = extras.get("chunk_mode")

    # the mode of each phase: given, stored by the run being resumed, or chosen when entered
    modes: dict = {}
    for name in names:
        stored = saved_mode if isinstance(saved_mode, str) else (
            saved_mode.get(name) if isinstance(saved_mode, dict) else None)
        modes[name] = mode if mode != "auto" else (stored if stored in _CHUNK_MODES else None)
    probes: dict = {}
    chunkers: list = [None] * len(phases)
    per_phase: dict = {}
    compile_s = 0.0

    def enter(i: int, state) -> bool:
        """Make phase ``i``'s chunker (choosing its mode if need be); True if a mode was chosen."""
        nonlocal compile_s
        p = phases[i]
        chosen = False
        if modes[p.name] is None:
            m, c, probes[p.name], ch = _choose(p.step, data, state, 3, chunk_of[i])
            modes[p.name], compile_s, chosen = m, compile_s + c, True
            per_phase.setdefault(p.name, _phase_timings(m))["compile_s"] += c
            if phased:
                for field, value in (("chunk_mode", m), ("probe_s_per_step", probes[p.name])):
                    before = extras.get(field)
                    extras[field] = {**(before if isinstance(before, dict) else {}), p.name: value}
            else:
                extras["chunk_mode"], extras["probe_s_per_step"] = m, probes[p.name]
        else:
            ch = _Chunker(p.step, data, modes[p.name], chunk_of[i])
        chunkers[i] = ch
        per_phase.setdefault(p.name, _phase_timings(modes[p.name]))
        return chosen

    run_s = host_s = 0.0
    start = done = chunks = 0
    cur = None
    bar = log = None
    stop = _StopOnSignal()
    during = "the start of the run (building the train state)"
    def in_mesh():  # the steps compile and run under the data-parallel mesh; host work (hooks) outside it
        return jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext()

    def save_config():
        if run_dir is not None and main:
            ckpt.write_config(run_dir, cfg, extras)

    try:
        state = _copy(init_state(trainer, key, hp))  # distinct buffers: the state is donated
        if mesh is not None:
            from jaxgen.core.sharding import replicate

            state = replicate(state, mesh)
        if run_dir is not None:
            checkpointer = ckpt.Checkpointer(run_dir, writer=main)
            if resume and checkpointer.steps():
                state = checkpointer.restore(state)
            elif resume and main:
                print(f"{run_dir} holds no checkpoint yet (the run stopped before its first one); "
                      "starting it from the beginning.", file=sys.stderr)
            history = _read_history(run_dir, step_of(state)) if main else []
            # fresh: the options and chunking; resumed: the stored options as resumed (e.g. a GAN
            # run extended to more epochs), same extras -- written before anything is compiled
            save_config()
        start = done = step_of(state)
        during = "training"
        cur = _phase_index(starts, phases, start) if start < n else None
        with in_mesh():
            entered = cur is not None and enter(cur, state)
        if entered:
            save_config()  # plus the modes chosen
        t = time.perf_counter()
        guard = _StateGuard(state) if check_finite and start < n else None
        compile_s += time.perf_counter() - t  # mostly the compile of the state check
        bar = _progress(n, start, progress and start < n and main)  # a finished run draws no full bar
        if bar is not None and phased and cur is not None:
            bar.set_description(names[cur])
        last_saved, last_saved_t = start, time.perf_counter()
        log = open(run_dir / "metrics.jsonl", "a") if run_dir is not None and main else None
        stop.install()
        while done < n:
            i = _phase_index(starts, phases, done)
            p = phases[i]
            if i != cur:
                t = time.perf_counter()
                with in_mesh():
                    entered = enter(i, state)
                if entered:
                    save_config()
                if bar is not None:
                    bar.set_description(p.name)
                cur = i
                host_s += time.perf_counter() - t
            pt = per_phase[p.name]
            pos = done - starts[i]
            length = min(chunk_of[i] - pos % chunk_of[i], p.num_steps - pos)
            during = "training"
            with in_mesh():
                c = chunkers[i].compile(state, length)
                compile_s += c
                pt["compile_s"] += c
                t = time.perf_counter()
                state, metrics = chunkers[i](state, length)
            probe = guard.dispatch(state) if guard is not None else None
            means = _host_means(metrics)
            dt = time.perf_counter() - t
            run_s += dt
            pt["run_s"] += dt
            t = time.perf_counter()
            done += length
            chunks += 1
            pt["chunks"] += 1
            pt["steps"] += length
            if check_finite:
                bad = _finite(means)
                what = None if bad is None else f"metric {bad!r} is {means[bad]}"
                if what is None and guard is not None:
                    leaf = guard.first_bad(probe)
                    what = None if leaf is None else (f"parameter {leaf!r} of the state holds NaN or inf "
                                                      "although the metrics are finite")
                if what is not None:
                    where = f"; the last good checkpoint (step {last_saved}) is kept in {run_dir}" if run_dir else ""
                    inside = f" (phase {p.name!r}, its step {pos + length} of {p.num_steps})" if phased else ""
                    raise DivergenceError(f"training diverged at step {done}{inside}: {what}{where}.")
            row = {"step": done, "phase": p.name, "wall_s": round(time.perf_counter() - t0, 3), **means}
            during = "the evaluation between chunks (the hooks)"
            if hooks:  # several processes: on process 0, on its own copy of the state (no collectives),
                # and hooks marked by hooks.on_every_process on every process (in order; process 0's row)
                hstate = distributed.local_copy(state) if procs > 1 else state
                info = ChunkInfo(hstate, done, n, trainer.steps_per_epoch, means, history, run_dir,
                                 p.name, i, pos + length, p.num_steps, p.steps_per_epoch)
                for hook in hooks:
                    if main:
                        row.update(hook(info) or {})
                    elif runs_on_every_process(hook):
                        hook(info)
            history.append(row)
            if log is not None:
                log.write(json.dumps(row) + "\n")
                log.flush()
            if checkpoint_every is not None:
                due = chunks % checkpoint_every == 0
            else:
                due = time.perf_counter() - last_saved_t >= checkpoint_interval_s
            if procs > 1:  # one decision for all: process 0's clock; a stop asked of any process
                flags = distributed.gather([int(due), int(stop.received is not None)])
                due = bool(flags[0, 0])
                if stop.received is None and flags[:, 1].any():
                    stop.received = "a signal to another process"
            final = (done >= n or (stop_after_chunks is not None and chunks >= stop_after_chunks)
                     or stop.received is not None)
            if checkpointer is not None and (due or final):
                checkpointer.save(done, state)
                last_saved, last_saved_t = done, time.perf_counter()
            if bar is not None:
                bar.set_postfix({k: f"{np.mean(v):.4g}" for k, v in list(means.items())[:4]}, refresh=False)
                bar.update(length)
            dt = time.perf_counter() - t
            host_s += dt
            pt["host_s"] += dt
            if final:
                break
    except jax.errors.JaxRuntimeError as e:
        err = memory.translate(e, during, cfg, leaves_est)
        if err is None:
            raise
        raise err from None
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
        if checkpointer is not None:
            checkpointer.close()
    timings = {"compile_s": compile_s, "run_s": run_s, "host_s": host_s,
               "mode": dict(modes) if phased else modes[names[0]], "chunks": chunks, "steps": done - start,
               "start_step": start,
               "probe_s_per_step": probes if phased else probes.get(names[0], {}), "stopped_by": stop.received,
               "phases": per_phase}
    if stop.received is not None and main:
        kept = (f"checkpoint of step {done} saved in {run_dir}; continue it with --resume" if run_dir is not None
                else "no run directory, so nothing was saved")
        inside = f" (in phase {phases[cur].name!r})" if phased and cur is not None else ""
        print(f"{stop.received}: stopped at step {done} of {n}{inside}; {kept}.", file=sys.stderr)
    return RunResult(state, history, run_dir, timings)


def _phase_timings(mode) -> dict:
    return {"mode": mode, "compile_s": 0.0, "run_s": 0.0, "host_s": 0.0, "chunks": 0, "steps": 0}


def _phase_index(starts: list, phases: tuple, step: int) -> int:
    """Index of the phase that runs iteration ``step`` (< num_steps; zero-length phases skipped)."""
    for i in range(len(phases) - 1, -1, -1):
        if starts[i] <= step and phases[i].num_steps:
            return i
    raise AssertionError(step)


def _read_history(run_dir: Path, upto: int) -> list:
    """Rows of metrics.jsonl up to step ``upto``; the file is rewritten with those only (later
    rows, logged after the checkpoint resumed from, and a line cut short by a kill are dropped)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill while it was written
            continue
    rows = [r for r in rows if isinstance(r, dict) and r.get("step", upto + 1) <= upto]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
