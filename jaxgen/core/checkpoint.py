"""Orbax checkpoints of a whole train state, with a config guard.

A run directory holds ``config.json`` (the config and its static fingerprint) and
``checkpoints/<step>/`` written by orbax. Restoring into the template state of another
config is refused with a sentence naming the differing fields. No pickle anywhere.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from jaxgen.core import config as cfgmod
from jaxgen.core.errors import CheckpointError, ConfigError

CONFIG_FILE = "config.json"


def write_config(run_dir: Path, config, extra: dict | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    blob = {
        "type": type(config).__name__,
        "fingerprint": cfgmod.fingerprint(config) if config is not None else "",
        "config": cfgmod.to_dict(config) if config is not None else {},
        **(extra or {}),
    }
    (run_dir / CONFIG_FILE).write_text(json.dumps(blob, indent=2, default=str))


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
    """Saves and restores the state pytree under ``run_dir/checkpoints``."""

    def __init__(self, run_dir: Path, max_to_keep: int = 2):
        self.dir = (Path(run_dir) / "checkpoints").absolute()
        self._mngr = ocp.CheckpointManager(
            self.dir,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False),
        )

    def save(self, step: int, state: Any) -> None:
        tree = serialization.to_state_dict(jax.device_get(state))
        self._mngr.save(int(step), args=ocp.args.StandardSave(tree), force=True)
        self._mngr.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def restore(self, template: Any, step: int | None = None) -> Any:
        """The checkpoint of ``step`` (default: the latest) restored into ``template``'s structure.

        The stored tree is read as written and matched against the template leaf by leaf
        (shapes and dtypes must agree), except inside a dict named ``hparams``: a traced
        hyperparameter added since the run was written takes the template's (the config's)
        value, one removed since is dropped -- so old run directories keep loading."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.dir}; start the run without --resume.")
        target = serialization.to_state_dict(template)
        try:
            stored = self._mngr.restore(step, args=ocp.args.StandardRestore())
        except Exception as e:  # orbax raises many types for a damaged or incomplete checkpoint
            raise CheckpointError(f"checkpoint {self.dir / str(step)} is damaged or incomplete ({type(e).__name__}); "
                                  "start a new run directory or resume from an intact copy.") from None
        try:
            tree = _match(target, stored, ())
        except (KeyError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {self.dir / str(step)} does not fit this config's state ({str(e).strip(chr(39))}); "
                "resume with the options it was written with."
            ) from None
        return serialization.from_state_dict(template, tree)

    def close(self) -> None:
        self._mngr.close()


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
