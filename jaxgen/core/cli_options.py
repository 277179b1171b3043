"""Command-line options generated from a config dataclass (one implementation for every command).

Every leaf field is an option; nested configs give dotted options (``--policy.hidden 32,32``,
``--ppo.learning-rate 1e-3``: dots between levels, hyphens inside a name). The values given
come back from :func:`overrides` as ``{dotted name: value}``, ready for
:func:`jaxgen.core.config.replace`.
"""
from __future__ import annotations

import argparse

from jaxgen.core import config as C

TRUNCATION_HELP = "GAN: scale the noise by psi in (0, 1] (truncation trick; 1 = none)"


def flag(name: str) -> str:
    """``"ppo.learning_rate"`` -> ``"--ppo.learning-rate"``."""
    return "--" + name.replace("_", "-")


def _field_type(f, default):
    """argparse ``type`` for a config field (tuples and None-defaults take comma lists); a value
    that does not parse is refused with what the field accepts."""
    accepted = C.inferred(f, default).text

    def parse_tuple(v: str) -> tuple:
        if v.lower() in ("none", ""):
            return None
        return tuple(int(x) if x.strip().lstrip("-").isdigit() else float(x) for x in v.split(","))

    declared = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    if isinstance(default, tuple) or default is None:
        cast = parse_tuple
    else:
        cast = {"float": float, "int": int, "str": str}.get(declared, type(default))

    def parse(v: str):
        try:
            return cast(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not accepted; accepted: {accepted}") from None

    parse.__name__ = getattr(cast, "__name__", "value")
    return parse


def add_config_options(parser: argparse.ArgumentParser, cls, multi: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                       defaults=None) -> None:
    """Add an option for every leaf field of config class ``cls`` (dotted for nested parts).

    ``multi``: fields that take a comma list (each value trains a run); ``skip``: fields the
    command fixes; ``defaults``: the config whose values the help shows (e.g. a preset)."""
    g = parser.add_argument_group(f"{cls.__name__} options")
    for name, f, default in C.leaf_fields(cls if defaults is None else defaults):
        if name in skip:
            continue
        kind = "traced hyperparameter" if f.metadata.get("traced") else "static"
        helptext = f"{f.metadata.get('help', '')} (default {default!r}; {kind})".replace("%", "%%")
        if f.metadata.get("choices"):
            helptext += f"; one of {', '.join(map(str, f.metadata['choices']))}"
        metavar = name.rpartition(".")[2].upper()
        if name in multi:
            helptext += "; a comma-separated list trains each"
            g.add_argument(flag(name), dest=name, type=str, default=None, help=helptext, metavar=metavar)
        elif isinstance(default, bool):
            g.add_argument(flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            g.add_argument(flag(name), dest=name, type=_field_type(f, default), default=None, help=helptext,
                           metavar=metavar)


def overrides(args, cls, skip: tuple[str, ...] = ()) -> dict:
    """``{dotted field name: value}`` of the config options given on the command line."""
    return {name: getattr(args, name) for name, _, _ in C.leaf_fields(cls)
            if name not in skip and getattr(args, name, None) is not None}
