"""Will a run fit in memory? An estimate from shapes alone, and one sentence when it will not.

Before a run allocates anything, :func:`check` estimates the bytes it needs from the
config: the train state's leaves by ``jax.eval_shape(trainer.init, key, hparams)`` (the
parameters, optimiser state, replay buffers, environment states -- whatever the state
holds; no array is allocated and no family code is needed), the device-resident data
pytree (its arrays' ``nbytes``) and any extra peaks a family names (``extra``: e.g. the
rollout of one iteration, the batch of a final evaluation). The state counts twice: the
runner holds the initial state and the copy it donates to the first chunk while it starts
(and the CPU mode probe times a copy). When the estimate exceeds the memory of the
device(s) the run would use -- :func:`capacity`: the sum of the local accelerators'
``memory_stats()["bytes_limit"]``, or for CPU the host's physical memory (capped by a
cgroup limit) -- :class:`~jaxgen.core.errors.ResourceError` says, in one sentence, the
estimate, its largest parts, the device's memory and the options to lower.

The options to lower come from the config: a config class may map state fields to them
(``MEMORY_OPTIONS = {"buffer": ("buffer_size",), "params": ("hidden", "latent")}``, a
prefix of the state path -> dotted option names); otherwise the static whole-number
options whose value is a dimension (>= 16) of one of the largest arrays are named (e.g.
``latent=100000`` for a ``[100000, 512]`` kernel), largest first.

Where an allocation still fails (working memory of a step or an evaluation that no
estimate covered), :func:`translate` turns XLA's ``RESOURCE_EXHAUSTED: Out of memory``
error into the same kind of sentence (the bytes XLA asked for, the device's memory, the
options).
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

import jax
import numpy as np

from jaxgen.core import config as C
from jaxgen.core.errors import ResourceError

#: Dimensions smaller than this are not matched against option values (2, 4, 8 are everywhere).
MIN_MATCHED_DIM = 16


def _nbytes(leaf) -> int:
    shape = getattr(leaf, "shape", None)
    dtype = getattr(leaf, "dtype", None)
    if shape is None or dtype is None:
        return 0
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def leaf_path(path) -> str:
    """A pytree key path as ``a/b/c``."""
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def leaves(tree) -> list[tuple[str, tuple, int]]:
    """``(path "a/b/c", shape, bytes)`` of every array leaf of ``tree`` (arrays or shape structs)."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        n = _nbytes(leaf)
        if n:
            out.append((leaf_path(path), tuple(int(d) for d in leaf.shape), n))
    return out


def state_shapes(trainer, key, hparams=None):
    """The train state as shape structs: ``jax.eval_shape(trainer.init, key, hparams)``."""
    return jax.eval_shape(trainer.init, key, hparams)


class Estimate:
    """Bytes a run needs: ``parts`` (name -> bytes; ``state`` counted twice), the state's
    leaves (for naming the big ones and the options that size them) and the total."""

    def __init__(self, state_leaves: list, data_bytes: int, extra: Mapping[str, int] | None = None):
        self.state_leaves = state_leaves
        self.state_bytes = sum(n for _, _, n in state_leaves)
        self.data_bytes = int(data_bytes)
        self.extra = {k: int(v) for k, v in (extra or {}).items()}

    @property
    def total(self) -> int:
        return 2 * self.state_bytes + self.data_bytes + sum(self.extra.values())

    def top_fields(self, k: int = 3) -> list[tuple[str, int]]:
        """The state's largest top-level fields (``params``, ``opt_state``, ``buffer``...) by
        bytes (at most ``k``; those under 1 % of the state left out)."""
        by: dict[str, int] = {}
        for path, _, n in self.state_leaves:
            head = path.split("/")[0] if path else "state"
            by[head] = by.get(head, 0) + n
        ranked = sorted(by.items(), key=lambda kv: -kv[1])
        return [kv for i, kv in enumerate(ranked[:k]) if i == 0 or kv[1] >= 0.01 * self.state_bytes]


def estimate(trainer, key, hparams=None, extra: Mapping[str, int] | None = None) -> Estimate:
    """The :class:`Estimate` of ``trainer`` (its state by ``eval_shape``; nothing is allocated)."""
    shapes = state_shapes(trainer, key, hparams)
    data = sum(n for _, _, n in leaves(trainer.data)) if trainer.data is not None else 0
    return Estimate(leaves(shapes), data, extra)


def _host_memory() -> int | None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(limit_file).read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return int(total)


def capacity() -> tuple[int | None, str]:
    """``(bytes, what)`` the run may use: the local accelerators' memory (summed), or the
    host's physical memory for CPU (None if unknown)."""
    devs = jax.local_devices()
    if devs and devs[0].platform != "cpu":
        limits = []
        for d in devs:
            try:
                stats = d.memory_stats() or {}
            except Exception:  # noqa: BLE001 - a backend without memory statistics
                stats = {}
            if "bytes_limit" in stats:
                limits.append(int(stats["bytes_limit"]))
        if limits:
            kind = devs[0].device_kind or devs[0].platform
            what = f"{len(limits)} x {kind}" if len(limits) > 1 else f"the {kind}"
            return sum(limits), what
        return None, devs[0].platform
    return _host_memory(), "this machine (CPU)"


def gb(n: int | float) -> str:
    """``12.3 GB`` / ``512 MB`` / ``3 kB``."""
    n = float(n)
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def _int_options(config) -> list[tuple[str, int]]:
    """``(dotted name, value)`` of the static whole-number options (tuple items included)."""
    out = []
    if config is None:
        return out
    for name, f, value in C.leaf_fields(config):
        if f.metadata.get("traced"):
            continue
        vals = value if isinstance(value, tuple) else (value,)
        for v in vals:
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= MIN_MATCHED_DIM:
                out.append((name, int(v)))
    return out


def options_to_lower(config, state_leaves: list, k: int = 3) -> list[str]:
    """Dotted names of the options that size the largest arrays of the state (see module doc)."""
    if config is None:
        return []
    ranked: dict[str, int] = {}
    declared = getattr(type(config), "MEMORY_OPTIONS", None) or {}
    for prefix, names in declared.items():
        weight = sum(n for path, _, n in state_leaves if path == prefix or path.startswith(prefix + "/"))
        for name in names:
            ranked[name] = max(ranked.get(name, 0), weight)
    if not ranked:
        options = _int_options(config)
        biggest = sorted(state_leaves, key=lambda t: -t[2])
        total = sum(n for _, _, n in state_leaves) or 1
        seen = 0
        for path, shape, n in biggest:  # the leaves making up most of the bytes
            for name, v in options:
                if v in shape:
                    ranked[name] = ranked.get(name, 0) + n
            seen += n
            if seen >= 0.9 * total:
                break
    return [name for name, _ in sorted(ranked.items(), key=lambda kv: -kv[1])[:k]]


def _flags(names: list[str]) -> str:
    from jaxgen.core.cli_options import flag

    fl = [flag(n) for n in names]
    return fl[0] if len(fl) == 1 else ", ".join(fl[:-1]) + " or " + fl[-1]


def _advice(config, state_leaves: list) -> str:
    names = options_to_lower(config, state_leaves)
    if names:
        return f"lower {_flags(names)}"
    return "lower the options that size the model, its buffers or its batches"


def check(trainer, key, hparams=None, extra: Mapping[str, int] | None = None, *, available: int | None = None,
          what: str | None = None) -> Estimate:
    """Raise :class:`ResourceError` (one sentence) when the run cannot fit; return the estimate.

    ``available`` / ``what`` override :func:`capacity` (tests)."""
    est = estimate(trainer, key, hparams, extra)
    if available is None:
        available, what = capacity()
    if available is None or est.total <= available:
        return est
    parts = [f"{name} {gb(n)}" for name, n in est.top_fields()]
    held = f"the state ({', '.join(parts)}) held twice while the run starts" if parts else "the state"
    more = "".join(f", {name} {gb(n)}" for name, n in est.extra.items())
    data = f", device-resident data {gb(est.data_bytes)}" if est.data_bytes else ""
    raise ResourceError(
        f"this run needs at least {gb(est.total)} of memory ({held}{data}{more}), more than the {gb(available)} of "
        f"{what}; {_advice(trainer.config, est.state_leaves)}."
    )


_OOM = re.compile(r"RESOURCE_EXHAUSTED|[Oo]ut of memory")
_BYTES = re.compile(r"allocat\w*\s+(?:of\s+)?(\d+)\s*bytes")


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is XLA's out-of-memory error."""
    return isinstance(err, jax.errors.JaxRuntimeError) and bool(_OOM.search(str(err)))


def translate(err: BaseException, during: str, config=None, state_leaves: list | None = None) -> ResourceError | None:
    """The one-sentence :class:`ResourceError` for XLA's out-of-memory ``err`` (None if it is not one).

    ``during``: what was running (``"training"``, ``"the final evaluation and plots"``)."""
    if not is_oom(err):
        return None
    m = _BYTES.search(str(err))
    asked = f" could not allocate {gb(int(m.group(1)))}" if m else " ran out of memory"
    available, what = capacity()
    has = f" ({what} has {gb(available)})" if available else ""
    leaves_ = state_leaves or []
    state = sum(n for _, _, n in leaves_)
    held = f", beside a train state of {gb(state)}" if state else ""
    return ResourceError(f"out of memory during {during}: XLA{asked}{has}{held}; {_advice(config, leaves_)}.")


__all__ = ["Estimate", "estimate", "check", "capacity", "translate", "is_oom", "options_to_lower", "leaves", "gb"]
