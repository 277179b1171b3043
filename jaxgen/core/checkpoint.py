"""Orbax checkpoints of a whole train state, with a config guard, damage fallback and a writer lock.

A run directory holds ``config.json`` (the config and its static fingerprint) and
``checkpoints/<step>/`` written by orbax. Restoring into the template state of another
config is refused with a sentence naming the differing fields. No pickle anywhere.

Damage: the last two checkpoints are kept (``max_to_keep=2``; orbax deletes an old one only
after the new one is committed). :meth:`Checkpointer.restore` tries the newest first; one
that cannot be read (a truncated or missing file) or was never committed (no
``commit_success.txt``, the marker orbax writes last -- what a kill during a save leaves;
checked when the run's other checkpoints carry it, so run directories of an orbax that
wrote none still load) is passed over with one sentence on stderr naming it, and the
previous one is used. The runner, which holds the directory's lock, also moves the damaged
ones to ``damaged_checkpoints/`` so the resumed run can save those steps again, and removes
orbax's temporary directories of saves that were cut short.

One writer: :func:`lock` takes an exclusive ``flock`` on ``RUN_DIR/.jaxgen.lock`` for as long
as a run writes there (re-entrant within the process). A second writer is refused with
:class:`~jaxgen.core.errors.BusyError` naming the holder's pid; the kernel drops the lock
when its holder exits, however it exits (a SIGKILL too), so it is never stale.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from jaxgen.core import config as cfgmod
from jaxgen.core import distributed
from jaxgen.core.errors import BusyError, CheckpointError, ConfigError

CONFIG_FILE = "config.json"
LOCK_FILE = ".jaxgen.lock"
DAMAGED_DIR = "damaged_checkpoints"
#: The file orbax writes into a step directory when its save has committed.
COMMIT_MARKER = "commit_success.txt"
_TMP = ".orbax-checkpoint-tmp"

_HELD: dict[str, list] = {}  # resolved run dir -> [open lock file, depth]


@contextlib.contextmanager
def lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold ``run_dir``'s writer lock (see the module docstring); BusyError if another
    process holds it. Creates ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = str(run_dir.resolve())
    if not distributed.is_main():  # a multi-process run: process 0 holds the lock for all
        yield
        return
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): no lock
        yield
        return
    f = open(run_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().split()
        f.close()
        who = f"pid {holder[0]}" if holder else "another process"
        raise BusyError(f"{run_dir} is being written by another jaxgen run ({who}); wait for it to end or stop it, "
                        "or choose another run directory.") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    f.flush()
    _HELD[key] = [f, 1]
    try:
        yield
    finally:
        _HELD.pop(key, None)
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _closed_loop_callback(unraisable) -> bool:
    """Whether an unraisable exception is asyncio's "Event loop is closed" raised by a callback
    scheduled onto a closed loop (see :func:`_quiet_closed_loop_callbacks`)."""
    exc = unraisable.exc_value
    if not (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"):
        return False
    tb = unraisable.exc_traceback
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_name == "_check_closed"


def _quiet_closed_loop_callbacks() -> None:
    """After orbax fails to read a damaged checkpoint, the reads still in flight complete later
    and try to wake the (by then closed) event loop orbax ran them on; each prints a
    ``RuntimeError: Event loop is closed`` traceback. Those -- and only those -- are dropped
    from then on; every other unraisable exception goes to the previous hook."""
    if getattr(sys.unraisablehook, "_jaxgen_quiet", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if not _closed_loop_callback(unraisable):
            previous(unraisable)

    hook._jaxgen_quiet = True
    sys.unraisablehook = hook


def write_config(run_dir: Path, config, extra: dict | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    blob = {
        "type": type(config).__name__,
        "fingerprint": cfgmod.fingerprint(config) if config is not None else "",
        "config": cfgmod.to_dict(config) if config is not None else {},
        **(extra or {}),
    }
    tmp = run_dir / (CONFIG_FILE + ".tmp")  # a kill while writing leaves the previous file whole
    tmp.write_text(json.dumps(blob, indent=2, default=str))
    tmp.replace(run_dir / CONFIG_FILE)


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a jaxgen run directory: {CONFIG_FILE} is missing.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is corrupt ({e.msg}); it should be the JSON a jaxgen run wrote.") from None


def _same_when_rebuilt(saved: dict, config, fp: str) -> bool:
    """True if the stored options, rebuilt with today's defaults for options added since
    (and without retired ones at their neutral value), give ``config``'s fingerprint.

    Fields the config class lists in ``RESUME_MAY_CHANGE`` (a run length that no schedule
    depends on, e.g. a GAN's ``epochs``) take ``config``'s value: a resumed run may be extended."""
    try:
        old = cfgmod.from_dict(type(config), saved.get("config", {}))
        free = {f: getattr(config, f) for f in getattr(type(config), "RESUME_MAY_CHANGE", ())}
        return cfgmod.fingerprint(dataclasses.replace(old, **free)) == fp
    except (ConfigError, TypeError, ValueError):
        return False


def check_same_config(run_dir: Path, config) -> dict:
    """Return the stored blob, or raise CheckpointError if it was written by another config.

    A run written before an option existed still matches a config that leaves that option
    at its default (the stored options are rebuilt and compared, not only the stored hash)."""
    saved = read_config(run_dir)
    fp = cfgmod.fingerprint(config) if config is not None else ""
    same_type = saved.get("type") == type(config).__name__
    if not same_type or (saved.get("fingerprint") != fp and not (config is not None and _same_when_rebuilt(saved, config, fp))):
        mine = json.loads(json.dumps(cfgmod.to_dict(config) if config is not None else {}, default=str))
        theirs = saved.get("config", {})
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise CheckpointError(
            f"the checkpoint in {run_dir} was written by another config "
            f"({saved.get('type')}; differs in: {', '.join(diff) or 'type'}); "
            f"resume with the same options or start a new run directory."
        )
    return saved


class Checkpointer:
    """Saves and restores the state pytree under ``run_dir/checkpoints``.

    ``writer=True`` (the runner, holding the run directory's lock): temporary directories of
    cut-short saves are removed, and :meth:`restore` moves damaged checkpoints aside."""

    def __init__(self, run_dir: Path, max_to_keep: int = 2, writer: bool = False):
        self.run_dir = Path(run_dir).absolute()
        self.dir = self.run_dir / "checkpoints"
        self.writer = writer
        if writer and self.dir.is_dir():
            for p in self.dir.iterdir():
                if _TMP in p.name:
                    shutil.rmtree(p, ignore_errors=True)
        self._mngr = ocp.CheckpointManager(
            self.dir,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False),
        )

    def save(self, step: int, state: Any) -> None:
        """Save ``state`` as step ``step`` (several processes: every one calls this; each writes its shards)."""
        if _global(state):
            tree = serialization.to_state_dict(state)
        else:
            tree = serialization.to_state_dict(jax.device_get(state))
        self._mngr.save(int(step), args=ocp.args.StandardSave(tree), force=True)
        self._mngr.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def steps(self) -> list[int]:
        """The checkpointed steps, newest first."""
        return sorted(self._mngr.all_steps(), reverse=True)

    def committed(self, step: int) -> bool:
        """Whether the save of ``step`` committed (its directory holds orbax's commit marker)."""
        return (self.dir / str(step) / COMMIT_MARKER).is_file()

    def restore(self, template: Any, step: int | None = None, report: Callable[[str], None] = _say) -> Any:
        """The checkpoint of ``step`` (default: the newest intact one) restored into ``template``'s structure.

        Without ``step``, a damaged or incomplete newest checkpoint is passed over with one
        sentence to ``report`` (default: stderr) and the previous one is used (see the module
        docstring); CheckpointError if none is intact. The stored tree is read as written and
        matched against the template leaf by leaf (shapes and dtypes must agree), except
        inside a dict named ``hparams``: a traced hyperparameter added since the run was
        written takes the template's (the config's) value, one removed since is dropped --
        so old run directories keep loading."""
        target = serialization.to_state_dict(template)
        candidates = self.steps() if step is None else [step]
        if not candidates:
            raise CheckpointError(f"no checkpoint found in {self.dir}; start the run without --resume.")
        check_marker = step is None and any(self.committed(s) for s in candidates)
        passed: list[tuple[int, str]] = []
        for s in candidates:
            if check_marker and not self.committed(s):
                passed.append((s, "incomplete (no commit marker: its save was cut short)"))
                continue
            if _global(template):  # several processes: each reads its own shards, into the template's shardings
                try:
                    tree = self._mngr.restore(s, args=ocp.args.StandardRestore(_abstract(target)))
                except Exception as e:  # noqa: BLE001
                    _quiet_closed_loop_callbacks()
                    if self.committed(s) and (self.dir / str(s)).is_dir() and "shape" in str(e).lower():
                        raise CheckpointError(f"checkpoint {self.dir / str(s)} does not fit this config's state "
                                              f"({type(e).__name__}); resume with the options it was written with.") from None
                    passed.append((s, f"damaged or incomplete ({type(e).__name__})"))
                    continue
                if passed and distributed.is_main():
                    report(self._passed_over(passed, s))
                return serialization.from_state_dict(template, tree)
            try:
                try:
                    stored = self._mngr.restore(s, args=ocp.args.StandardRestore())
                except ValueError as e:  # saved by several processes: read every array whole, as numpy
                    if "topology" not in str(e).lower():
                        raise
                    stored = self._mngr.restore(s, args=ocp.args.StandardRestore(_host_target(self.dir / str(s))))
            except Exception as e:  # noqa: BLE001 - orbax raises many types for a damaged or incomplete checkpoint
                _quiet_closed_loop_callbacks()
                passed.append((s, f"damaged or incomplete ({type(e).__name__})"))
                continue
            try:
                tree = _match(target, stored, ())
            except (KeyError, ValueError) as e:
                raise CheckpointError(
                    f"checkpoint {self.dir / str(s)} does not fit this config's state ({str(e).strip(chr(39))}); "
                    "resume with the options it was written with."
                ) from None
            if passed:
                report(self._passed_over(passed, s))
            return serialization.from_state_dict(template, tree)
        if step is not None:
            raise CheckpointError(f"checkpoint {self.dir / str(step)} is {passed[0][1]}; "
                                  "start a new run directory or resume from an intact copy.")
        what = "; ".join(f"{s}: {why}" for s, why in passed)
        raise CheckpointError(f"no intact checkpoint in {self.dir} ({what}); start a new run directory or resume from "
                              "an intact copy.")

    def _passed_over(self, passed: list, good: int) -> str:
        names = ", ".join(str(self.dir / str(s)) for s, _ in passed)
        why = passed[0][1] if len(passed) == 1 else "; ".join(f"{s}: {w}" for s, w in passed)
        moved = ""
        if self.writer:
            dest = self.run_dir / DAMAGED_DIR
            dest.mkdir(exist_ok=True)
            for s, _ in passed:
                target, n = dest / str(s), 1
                while target.exists():
                    target, n = dest / f"{s}-{n}", n + 1
                shutil.move(str(self.dir / str(s)), str(target))
            self._mngr.reload()
            moved = f" (moved to {dest})"
        what = "checkpoint" if len(passed) == 1 else "checkpoints"
        return f"{what} {names} {'is' if len(passed) == 1 else 'are'} {why}{moved}; using the previous one, step {good}."

    def close(self) -> None:
        self._mngr.close()


def _global(tree) -> bool:
    """Whether some leaf of ``tree`` is an array split over (or replicated across) several processes."""
    return any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in jax.tree_util.tree_leaves(tree))


def _abstract(tree):
    """The restore target of a multi-process state: shape, dtype and sharding of each array leaf."""
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding) if isinstance(x, jax.Array) else x, tree)


def _host_target(step_dir: Path):
    """A restore target that reads every array of the checkpoint in ``step_dir`` whole into host
    memory (numpy), whatever devices wrote it: a run saved by several processes loads in one."""
    with ocp.StandardCheckpointer() as c:
        meta = c.metadata(step_dir / "default")
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)

    def leaf(m):
        shape, dtype = getattr(m, "shape", None), getattr(m, "dtype", None)
        return m if shape is None or dtype is None else np.zeros(shape, dtype)

    return jax.tree_util.tree_map(leaf, tree)


def _match(target: Any, stored: Any, path: tuple) -> Any:
    """``stored`` in the structure of ``target`` (state dicts); see :meth:`Checkpointer.restore`."""
    if isinstance(target, dict):
        if not isinstance(stored, dict):
            raise ValueError(f"{'/'.join(path)}: expected a mapping")
        lenient = bool(path) and path[-1] == "hparams"
        out = {}
        for k, t in target.items():
            if k in stored:
                out[k] = _match(t, stored[k], path + (str(k),))
            elif lenient:
                out[k] = np.asarray(t)
            else:
                raise KeyError("/".join(path + (str(k),)))
        extra = set(stored) - set(target)
        if extra and not lenient:
            raise KeyError(f"{'/'.join(path)}: unexpected {sorted(map(str, extra))}")
        return out
    if target is None:
        return None
    t, s = np.asarray(target), np.asarray(stored)
    if t.shape != s.shape:
        raise ValueError(f"{'/'.join(path)}: stored {s.dtype}{list(s.shape)}, expected {t.dtype}{list(t.shape)}")
    return s.astype(t.dtype, copy=False)  # as orbax restores into a template


def restore_run(run_dir: Path, cls, init_fn) -> Any:
    """The latest checkpointed state of the run in ``run_dir``, whose config must be a ``cls``.

    ``init_fn(key, config)`` builds the template state the checkpoint is restored into.
    """
    run_dir = Path(run_dir)
    blob = read_config(run_dir)
    if blob.get("type") != cls.__name__:
        raise CheckpointError(f"{run_dir} holds a {blob.get('type')} run; this command needs a {cls.__name__} run.")
    config = cfgmod.from_dict(cls, blob["config"])
    c = Checkpointer(run_dir)
    try:
        return c.restore(init_fn(jax.random.PRNGKey(0), config))
    finally:
        c.close()
