"""Command-line options generated from a config dataclass (one implementation for every command)."""
from __future__ import annotations

import argparse
import dataclasses

TRUNCATION_HELP = "GAN: scale the noise by psi in (0, 1] (truncation trick; 1 = none)"


def _field_type(f):
    """argparse ``type`` for a config field (tuples and None-defaults take comma lists)."""
    default = f.default

    def parse_bool(v: str) -> bool:
        if v.lower() in ("1", "true", "yes", "on"):
            return True
        if v.lower() in ("0", "false", "no", "off"):
            return False
        raise argparse.ArgumentTypeError(f"{v!r} is not a boolean (true or false)")

    def parse_tuple(v: str) -> tuple:
        if v.lower() in ("none", ""):
            return None
        try:
            return tuple(int(x) if x.strip().lstrip("-").isdigit() else float(x) for x in v.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not a comma-separated list of numbers") from None

    declared = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    if declared == "bool":
        return parse_bool
    if isinstance(default, tuple) or default is None:
        return parse_tuple
    return {"float": float, "int": int, "str": str}.get(declared, type(default))


def add_config_options(parser: argparse.ArgumentParser, cls, multi: tuple[str, ...] = (), skip: tuple[str, ...] = ("model",)) -> None:
    """Add ``--field`` for every field of config class ``cls`` (``multi``: comma lists allowed)."""
    g = parser.add_argument_group(f"{cls.__name__} options")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = "traced hyperparameter" if f.metadata.get("traced") else "static"
        helptext = f"{f.metadata.get('help', '')} (default {f.default!r}; {kind})".replace("%", "%%")
        if f.metadata.get("choices"):
            helptext += f"; one of {', '.join(map(str, f.metadata['choices']))}"
        if f.name in multi:
            helptext += "; a comma-separated list trains each"
            g.add_argument(flag, dest=f.name, type=str, default=None, help=helptext)
        elif isinstance(f.default, bool):
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            g.add_argument(flag, dest=f.name, type=_field_type(f), default=None, help=helptext)


def overrides(args, cls) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if f.name != "model" and getattr(args, f.name, None) is not None}
