"""Config conventions shared by every algorithm.

A config is a frozen dataclass. Each field is declared with :func:`static` (it fixes a
shape or a loop length: changing it recompiles) or :func:`traced` (a numeric
hyperparameter: it is carried in the train state as an array, so a sweep over it is a
``vmap`` in one compile). Every field carries a one-line ``help`` used by the CLI.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Mapping

import jax.numpy as jnp

from jaxgen.core.errors import ConfigError


def static(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A config field that fixes shapes or loop lengths (compile-time constant)."""
    return dataclasses.field(default=default, metadata={"traced": False, "help": help, "choices": choices})


def traced(default: float, help: str) -> Any:
    """A numeric hyperparameter passed to the compiled run as a traced scalar."""
    return dataclasses.field(default=default, metadata={"traced": True, "help": help, "choices": None})


def fields(config) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(config)


def traced_names(config) -> tuple[str, ...]:
    """Names of the traced (sweepable) hyperparameters of ``config``."""
    return tuple(f.name for f in dataclasses.fields(config) if f.metadata.get("traced"))


def hparams(config, overrides: Mapping[str, Any] | None = None) -> dict[str, jnp.ndarray]:
    """The traced hyperparameters as a dict of float32 scalars (or arrays, for sweeps).

    ``overrides`` replaces some of them; an unknown name raises ConfigError.
    """
    names = traced_names(config)
    out = {n: jnp.asarray(getattr(config, n), jnp.float32) for n in names}
    for k, v in (overrides or {}).items():
        if k not in names:
            raise ConfigError(
                f"{k!r} is not a traced hyperparameter of {type(config).__name__}; "
                f"sweepable ones are: {', '.join(names)}."
            )
        out[k] = jnp.asarray(v, jnp.float32)
    return out


def to_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls, values: Mapping[str, Any]):
    """Build ``cls`` from a dict, refusing unknown keys with one sentence. Options a newer
    version removed are listed in ``cls.RETIRED`` (name -> the value that behaves as the code
    does now); a stored config holding that value still loads, any other value is refused."""
    retired = getattr(cls, "RETIRED", {})
    values = {k: v for k, v in values.items() if not (k in retired and v == retired[k])}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; known: {', '.join(sorted(known))}.")
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()})


def fingerprint(config) -> str:
    """A stable short hash of the static (shape-fixing) part of ``config``."""
    static_part = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if not f.metadata.get("traced")}
    blob = json.dumps({"type": type(config).__name__, **static_part}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def require(config, name: str, ok: bool, accepted: str) -> None:
    """Raise ConfigError naming the field, its value and what is accepted unless ``ok``."""
    if not ok:
        raise ConfigError(f"{name}={getattr(config, name)!r} is out of range; accepted: {accepted}.")
