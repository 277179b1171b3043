"""Errors with one clear sentence: the bad value and what is accepted.

Every user-facing failure in jaxgen raises a subclass of :class:`JaxgenError`.
The CLI prints ``str(err)`` alone (no traceback) and exits with status 2 (any other failure
of a command exits non-zero too; see :func:`jaxgen.cli.main`).
"""
from __future__ import annotations


class JaxgenError(Exception):
    """Base class: a user-facing error whose message is one clear sentence."""


class ConfigError(JaxgenError, ValueError):
    """A configuration value is out of range or unknown."""


class DataError(JaxgenError, FileNotFoundError):
    """A data set is missing, incomplete or corrupt."""


class CheckpointError(JaxgenError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another configuration."""


class DivergenceError(JaxgenError, FloatingPointError):
    """Training produced NaN or inf; the last good checkpoint is kept."""


class ResourceError(JaxgenError, MemoryError):
    """A run cannot fit in the device's memory (estimated before allocating, or XLA's
    out-of-memory error translated): the bytes, the memory there is and the option to lower."""


class BusyError(JaxgenError, RuntimeError):
    """A run directory is being written by another live process."""


def choice(name: str, value, accepted) -> None:
    """Raise ConfigError naming ``value`` unless it is one of ``accepted``."""
    accepted = list(accepted)
    if value not in accepted:
        raise ConfigError(
            f"{name}={value!r} is not accepted; choose one of: {', '.join(map(repr, accepted))}."
        )


class DistributedError(JaxgenError, RuntimeError):
    """A multi-process run cannot start or continue: the coordinator cannot be reached within
    the stated timeout, or the processes disagree (e.g. a run saved by N processes resumed by M)."""
