"""The training contract shared by every algorithm: a run is ``init`` plus compiled steps.

Each algorithm module offers pure ``init(key, config, hparams=None) -> State`` and
``train_step(state, batch) -> (State, metrics)`` (RL: ``update(state, key)``), and builds a
:class:`Trainer` from them: ``init`` plus one ``step(state, data) -> (state, metrics)`` that
does everything of one iteration on the device (draw the minibatch from device-resident
``data`` with :func:`batch_indices`, or collect a rollout). Then

* :func:`make_train` turns it into ``train(key, hparams=None, data=None) -> (state,
  metrics)``, the whole run as ``lax.scan`` (``jax.jit(jax.vmap(train))(keys)`` trains many
  seeds in one compile);
* :func:`jaxgen.core.runner.run` executes the same steps in compiled chunks, with the host
  work (progress, logs, checkpoints, evaluation, plots) between chunks only;
* :func:`jaxgen.core.sweep.sweep` vmaps ``init`` and the steps over seeds x traced
  hyperparameters and runs that through the runner.

``step`` receives ``data`` as an argument (not a closure), so large device arrays are never
baked into the compiled program as constants.

Phases
------
A run may have **phases**: named steps with their own lengths, run one after another
(SeqGAN: ``pretrain_g`` -> ``pretrain_d`` -> ``adversarial``; GAIL: ``bc`` -> ``gail``).
A family declares them with :meth:`Trainer.phased`::

    Trainer.phased(init, [Phase("pretrain_g", g_step, 2000, steps_per_epoch=100),
                          Phase("adversarial", adv_step, 5000)], data, config)

The rules:

* the state is ONE pytree type for the whole run: every phase's step takes and returns it
  (the parts a phase does not train simply pass through);
* every step adds 1 to ``state.step``, which counts iterations over the whole run; phase
  ``i`` runs iterations ``[start_i, start_i + num_steps_i)`` (:meth:`Trainer.phase_starts`),
  so a step that needs its own count computes ``state.step - start_i`` (a Python int,
  known when the phases are built);
* a phase may log other metric keys than its neighbours; a phase of length 0 is skipped.

A plain ``Trainer(init, step, num_steps, ...)`` is the one-phase case: its
:attr:`Trainer.schedule` is ``(Phase("train", step, num_steps, steps_per_epoch),)``. For a
phased trainer ``step`` is ``None``, ``num_steps`` is the total and ``steps_per_epoch`` 0.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jaxgen.core.errors import ConfigError

PyTree = Any

#: The name of the one phase of a trainer built without phases.
SINGLE_PHASE = "train"


class Phase(NamedTuple):
    """One named stage of a run.

    Attributes:
      name: unique within the run; it labels metrics, log rows and the progress bar.
      step: ``(State, data) -> (State, metrics)``, adding 1 to ``state.step``; metrics is a
        dict of scalars (its keys may differ from other phases').
      num_steps: iterations of this phase (0: skipped).
      steps_per_epoch: iterations per pass over ``data`` in this phase (the runner's default
        chunk for it; hooks get it as ``ChunkInfo.phase_steps_per_epoch``), or 0.
    """

    name: str
    step: Callable[[PyTree, PyTree], tuple[PyTree, dict]]
    num_steps: int
    steps_per_epoch: int = 0


def check_phases(phases: Sequence[Phase]) -> tuple[Phase, ...]:
    """``phases`` as a tuple, or ConfigError naming the first bad entry."""
    phases = tuple(phases)
    if not phases:
        raise ConfigError("phases is empty; give at least one Phase(name, step, num_steps).")
    seen = set()
    for p in phases:
        if not isinstance(p, Phase):
            raise ConfigError(f"phase {p!r} is not accepted; give Phase(name, step, num_steps, steps_per_epoch=0).")
        if not (isinstance(p.name, str) and p.name):
            raise ConfigError(f"phase name {p.name!r} is not accepted; give a non-empty string.")
        if p.name in seen:
            raise ConfigError(f"phase name {p.name!r} is used twice; phase names must be unique.")
        seen.add(p.name)
        if not callable(p.step):
            raise ConfigError(f"phase {p.name!r}: step={p.step!r} is not callable; give (state, data) -> (state, metrics).")
        for field in ("num_steps", "steps_per_epoch"):
            v = getattr(p, field)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
                raise ConfigError(f"phase {p.name!r}: {field}={v!r} is out of range; accepted: a whole number >= 0.")
    return phases


class Trainer(NamedTuple):
    """A run of one algorithm, ready to compile.

    Attributes:
      init: ``(key uint32[2], hparams dict) -> State``.
      step: ``(State, data) -> (State, metrics)``; metrics is a dict of scalars. ``None`` for
        a phased trainer (each :class:`Phase` has its own).
      num_steps: iterations in the whole run (for a phased trainer: all phases together).
      data: device-resident pytree passed to every step (``None`` for RL).
      steps_per_epoch: iterations per pass over ``data`` (runner's default chunk), or 0.
      config: the frozen config the trainer was built from.
      phases: ``()`` for a one-phase run, else the phases in order (build with :meth:`phased`).
    """

    init: Callable[[jax.Array, dict], PyTree]
    step: Callable[[PyTree, PyTree], tuple[PyTree, dict]] | None
    num_steps: int
    data: PyTree = None
    steps_per_epoch: int = 0
    config: Any = None
    phases: tuple[Phase, ...] = ()

    @classmethod
    def phased(cls, init: Callable, phases: Sequence[Phase], data: PyTree = None, config: Any = None) -> "Trainer":
        """A trainer that runs ``phases`` one after another (see the module docstring)."""
        phases = check_phases(phases)
        return cls(init=init, step=None, num_steps=sum(p.num_steps for p in phases), data=data,
                   steps_per_epoch=0, config=config, phases=phases)

    @property
    def is_phased(self) -> bool:
        return bool(self.phases)

    @property
    def schedule(self) -> tuple[Phase, ...]:
        """The phases the run executes: ``phases``, or the one phase ``"train"``."""
        if not self.phases:
            return (Phase(SINGLE_PHASE, self.step, self.num_steps, self.steps_per_epoch),)
        phases = check_phases(self.phases)
        total = sum(p.num_steps for p in phases)
        if total != self.num_steps:
            raise ConfigError(f"num_steps={self.num_steps} is not the sum of the phases' num_steps ({total}); "
                              "build phased trainers with Trainer.phased.")
        return phases

    def phase_starts(self) -> dict[str, int]:
        """``{phase name: global iteration at which it starts}``."""
        out, at = {}, 0
        for p in self.schedule:
            out[p.name] = at
            at += p.num_steps
        return out

    def phase_at(self, step: int) -> tuple[int, int]:
        """(index of the phase that runs iteration ``step``, iterations done within it).

        Zero-length phases are skipped; ``step == num_steps`` gives the last phase, finished."""
        sched, at = self.schedule, 0
        for i, p in enumerate(sched):
            if step < at + p.num_steps:
                return i, step - at
            at += p.num_steps
        return len(sched) - 1, sched[-1].num_steps


def as_key(key) -> jax.Array:
    """Accept a typed key or a raw uint32[2] key; return raw key data (checkpointable)."""
    if isinstance(key, int):
        return jax.random.PRNGKey(key)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def scan_steps(step: Callable, state: PyTree, data: PyTree, length: int, unroll: int = 1):
    """Run ``length`` iterations of ``step`` in one ``lax.scan``; metrics get a leading axis."""

    def body(carry, _):
        return step(carry, data)

    return jax.lax.scan(body, state, None, length=length, unroll=unroll)


def make_train(trainer: Trainer) -> Callable:
    """``train(key, hparams=None, data=None) -> (state, metrics)``: the whole run, jit/vmap-able.

    One ``lax.scan`` per phase, in order. ``metrics``: for a one-phase trainer the step's
    dict with a leading axis ``[num_steps]``; for a phased trainer ``{phase name: that
    phase's dict with leading axis [phase num_steps]}`` (every phase, even of length 0).
    ``data`` replaces ``trainer.data`` (e.g. to vmap over data sets).
    """
    phases = trainer.schedule

    def train(key, hparams=None, data=None):
        state = trainer.init(as_key(key), hparams)
        d = trainer.data if data is None else data
        if not trainer.is_phased:
            return scan_steps(trainer.step, state, d, trainer.num_steps)
        metrics = {}
        for p in phases:
            state, metrics[p.name] = scan_steps(p.step, state, d, p.num_steps)
        return state, metrics

    return train


def _feistel(key: jax.Array, x: jax.Array, half_bits: int, rounds: int = 4) -> jax.Array:
    """A keyed bijection of [0, 2^(2*half_bits)) (balanced Feistel network, threefry rounds)."""
    mask = jnp.uint32((1 << half_bits) - 1)
    left, right = x >> half_bits, x & mask
    for r in range(rounds):
        rk = jax.random.fold_in(key, r)
        f = jax.vmap(lambda v: jax.random.bits(jax.random.fold_in(rk, v), dtype=jnp.uint32))(right) & mask
        left, right = right, left ^ f
    return (left << half_bits) | right


def permute_indices(key: jax.Array, x: jax.Array, n: int) -> jax.Array:
    """``pi(x)`` for a pseudo-random permutation ``pi`` of [0, n) chosen by ``key``.

    Evaluated elementwise in O(len(x)) (a Feistel network over the next even power of two,
    cycle-walked back into [0, n)), so a minibatch of a shuffled epoch costs O(B), not the
    O(n log n) of materialising ``jax.random.permutation(key, n)``.
    ``x``: int [B] in [0, n) -> int32 [B] in [0, n), distinct for distinct ``x``.
    """
    bits = max(2, (n - 1).bit_length())
    half = (bits + 1) // 2
    y = _feistel(key, x.astype(jnp.uint32), half)
    y = jax.lax.while_loop(lambda y: jnp.any(y >= n), lambda y: jnp.where(y >= n, _feistel(key, y, half), y), y)
    return y.astype(jnp.int32)


def batch_indices(key: jax.Array, step: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """Indices of minibatch ``step`` of an epoch-wise shuffled pass (no example repeats in an epoch).

    Args:
      key: uint32[2], the data-order key of the run.
      step: int scalar, the global iteration number.
    Returns:
      int32[batch_size]; epoch ``step // (num_examples // batch_size)`` visits the examples in
      the order of the permutation keyed by ``fold_in(key, epoch)`` (:func:`permute_indices`);
      the remainder of each epoch is dropped. Costs O(batch_size) per call.
    """
    per_epoch = num_examples // batch_size
    epoch, i = jnp.divmod(step, per_epoch)
    x = i * batch_size + jnp.arange(batch_size)
    return permute_indices(jax.random.fold_in(key, epoch), x, num_examples)
