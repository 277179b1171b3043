"""Config conventions shared by every algorithm.

A config is a frozen dataclass. Each field is declared with :func:`static` (it fixes a
shape or a loop length: changing it recompiles), :func:`traced` (a numeric
hyperparameter: it is carried in the train state as an array, so a sweep over it is a
``vmap`` in one compile) or :func:`nested` (the config of a part: GAIL holds a PPO config,
PPO holds a policy-network config). Every field carries a one-line ``help`` used by the CLI.

Nested configs are addressed by **dotted names** everywhere: ``traced_names`` and
``hparams`` give ``{"ppo.learning_rate": ...}``, the CLI option is ``--ppo.learning-rate``,
a sweep grid is ``--grid ppo.learning_rate=1e-3,3e-4``, and :func:`replace` takes
``{"ppo.learning_rate": 1e-3}``. A composed algorithm hands each part its own traced
values with :func:`sub_hparams` (the prefix removed), so a part's code never knows it is
nested.

Class attributes a config may declare (all optional):

* ``RETIRED``: ``{old field: the value that behaves as the code does now}``; a stored config
  holding that value still loads, any other value is refused.
* ``MOVED``: ``{old field: "new_name"}`` or ``{old field: "part.new_name"}``; a stored config
  written before a field was renamed or moved into a nested config loads into the new place.
* ``upgrade(values: dict) -> dict`` (a staticmethod): rewrites a stored dict whose values
  changed meaning (e.g. a clip norm of 0 that meant "none" becoming ``inf``) before loading.
* ``RESUME_MAY_CHANGE``: fields a resumed run may change (a run length no schedule depends on).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Iterator, Mapping

import jax.numpy as jnp

from jaxgen.core.errors import ConfigError


# --------------------------------------------------------------------------- accepted values

@dataclasses.dataclass(frozen=True)
class Accepts:
    """What a field accepts: a kind (``whole``, ``number``, ``boolean``, ``choice``, ``text``,
    ``sizes``), an optional range, and whether None is allowed. ``text`` says it in words
    (the "accepted: ..." part of the error sentence); :meth:`bad_values` gives values it
    refuses (the generated bad-input tests feed them)."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    optional: bool = False
    words: str = ""
    integer: bool = False  # sizes: each a whole number (layer widths)

    def _in_range(self, v) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def ok(self, v) -> bool:
        if v is None:
            return self.optional
        if self.kind == "boolean":
            return isinstance(v, bool)
        if self.kind == "choice":
            return isinstance(v, (str, int)) and not isinstance(v, bool) and v in self.choices
        if self.kind == "text":
            return isinstance(v, str)
        if self.kind == "whole":
            return isinstance(v, int) and not isinstance(v, bool) and self._in_range(v)
        if self.kind == "number":
            return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v) and self._in_range(v)
        if self.kind == "sizes":
            item = int if self.integer else (int, float)
            return (isinstance(v, tuple) and all(isinstance(x, item) and not isinstance(x, bool)
                                                 and self._in_range(x) for x in v))
        raise ValueError(f"unknown kind {self.kind!r}")

    def refusal(self, v) -> str:
        """How the sentence says ``v`` is refused: ``"is out of range"`` for a value of the right
        type outside the range (the words of :func:`require`), else ``"is not accepted"``."""
        ranged = self.kind in ("whole", "number", "sizes") and v is not None
        return "is out of range" if ranged and dataclasses.replace(self, lo=None, hi=None).ok(v) else "is not accepted"

    @property
    def text(self) -> str:
        if self.words:
            return self.words
        rng = ""
        if self.lo is not None and self.hi is not None:
            rng = f" in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            rng = f" {'>' if self.lo_open else '>='} {self.lo:g}"
        elif self.hi is not None:
            rng = f" {'<' if self.hi_open else '<='} {self.hi:g}"
        base = {"whole": "a whole number" + rng, "number": "a number" + rng, "boolean": "true or false",
                "choice": "one of " + ", ".join(map(str, self.choices or ())), "text": "a text",
                "sizes": f"a comma-separated list of {'whole ' if self.integer else ''}numbers"
                         + (f", each{rng}" if rng else "")}[self.kind]
        return base + (" or None" if self.optional else "")

    def bad_values(self) -> list:
        """Values this field refuses: a wrong type first, then out-of-range (below and above
        the range) / unknown ones."""
        wrong_type = {"whole": "many", "number": "many", "boolean": "maybe", "choice": "nope", "text": 3,
                      "sizes": ("a",)}[self.kind]
        out = [wrong_type]
        if self.kind == "whole" and self.lo is not None:
            out.append(int(math.floor(self.lo)) - (0 if self.lo_open else 1))
        if self.kind == "whole" and self.hi is not None and math.isfinite(self.hi):
            out.append(int(math.ceil(self.hi)) + (0 if self.hi_open else 1))
        if self.kind == "number" and self.lo is not None:
            out.append(self.lo if self.lo_open else self.lo - 1.0)
        if self.kind == "number" and self.hi is not None and (self.hi_open or math.isfinite(self.hi)):
            out.append(self.hi if self.hi_open else self.hi + 1.0)
        if self.kind == "sizes" and self.lo is not None:
            out.append((self.lo - 1,) if not self.lo_open else (self.lo,))
        if self.kind == "choice":  # numeric choices (image sizes): a number not among them
            numeric = all(isinstance(c, int) and not isinstance(c, bool) for c in self.choices)
            out.append(max(self.choices) + 1 if numeric else "no-such-" + str(self.choices[0]))
        return out[1:] if self.kind == "choice" else out


def whole(lo: float | None = None, hi: float | None = None, *, optional: bool = False, words: str = "") -> Accepts:
    """A whole number (not a bool) in ``[lo, hi]``."""
    return Accepts("whole", lo, hi, optional=optional, words=words)


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False,
           optional: bool = False, words: str = "") -> Accepts:
    """A number (int or float, not NaN) in the range (``*_open``: the bound excluded; ``inf`` allowed unless bounded)."""
    return Accepts("number", lo, hi, lo_open, hi_open, optional=optional, words=words)


def sizes(lo: float | None = 1, *, whole: bool = False, optional: bool = False, words: str = "") -> Accepts:
    """A tuple of numbers, each >= ``lo`` (layer sizes, probabilities, ...); ``whole``: each a
    whole number (layer sizes)."""
    return Accepts("sizes", lo, optional=optional, words=words, integer=whole)


def inferred(f: dataclasses.Field, default: Any) -> Accepts:
    """The field's declared :class:`Accepts`, else one inferred from its choices and default's type."""
    acc = f.metadata.get("accepts")
    if acc is not None:
        return acc
    if f.metadata.get("choices"):
        return Accepts("choice", choices=tuple(f.metadata["choices"]))
    if isinstance(default, bool):
        return Accepts("boolean")
    if isinstance(default, int):
        return Accepts("whole")
    if isinstance(default, float):
        return Accepts("number")
    if isinstance(default, str):
        return Accepts("text")
    if isinstance(default, tuple):
        return Accepts("sizes", None)
    return Accepts("sizes", None, optional=True) if default is None else Accepts("text")


def check_fields(config, prefix: str = "") -> None:
    """ConfigError (one sentence naming the dotted field, its value and what is accepted) for
    the first field whose value its :class:`Accepts` refuses. Call it first in ``validate``;
    ``prefix`` (``"policy."``) names the fields of a part checked on its own."""
    for name, f, value in leaf_fields(config, prefix):
        acc = inferred(f, f.default)
        if not acc.ok(value):
            raise ConfigError(f"{name}={value!r} {acc.refusal(value)}; accepted: {acc.text}.")


def static(default: Any, help: str, choices: tuple | None = None, accepts: Accepts | None = None) -> Any:
    """A config field that fixes shapes or loop lengths (compile-time constant)."""
    return dataclasses.field(default=default, metadata={"traced": False, "help": help, "choices": choices,
                                                        "accepts": accepts})


def traced(default: float, help: str, accepts: Accepts | None = None) -> Any:
    """A numeric hyperparameter passed to the compiled run as a traced scalar."""
    return dataclasses.field(default=default, metadata={"traced": True, "help": help, "choices": None,
                                                        "accepts": accepts})


def nested(default: Any, help: str) -> Any:
    """A field holding the (frozen) config of a part; its fields are addressed ``name.field``."""
    if not dataclasses.is_dataclass(default):
        raise TypeError(f"nested() takes a config instance, not {type(default).__name__}")
    return dataclasses.field(default=default, metadata={"traced": False, "nested": True, "help": help, "choices": None})


def is_nested(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("nested"))


def fields(config) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(config)


def leaf_fields(config_or_cls, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """``(dotted name, field, default value)`` of every non-nested field, depth first.

    Takes a config instance (its values are reported) or a class (its defaults)."""
    for f in dataclasses.fields(config_or_cls):
        value = getattr(config_or_cls, f.name) if not isinstance(config_or_cls, type) else f.default
        if is_nested(f):
            yield from leaf_fields(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, value


def get(config, name: str) -> Any:
    """The value of dotted field ``name`` of ``config``."""
    for part in name.split("."):
        config = getattr(config, part)
    return config


def replace(config, values: Mapping[str, Any]):
    """``config`` with dotted fields replaced (``{"ppo.learning_rate": 1e-3, "env": ...}``);
    an unknown name raises ConfigError naming it and the known ones."""
    known = {n for n, _, _ in leaf_fields(config)}
    top: dict[str, Any] = {}
    inner: dict[str, dict] = {}
    for name, v in values.items():
        head, dot, rest = name.partition(".")
        if name not in known and not (not dot and head in {f.name for f in dataclasses.fields(config)}):
            raise ConfigError(f"unknown option {name!r} for {type(config).__name__}; known: {', '.join(sorted(known))}.")
        if dot:
            inner.setdefault(head, {})[rest] = v
        else:
            top[head] = v
    for head, sub in inner.items():
        top[head] = replace(top.get(head, getattr(config, head)), sub)
    return dataclasses.replace(config, **top)


def traced_names(config) -> tuple[str, ...]:
    """Dotted names of the traced (sweepable) hyperparameters of ``config``."""
    return tuple(n for n, f, _ in leaf_fields(config) if f.metadata.get("traced"))


def hparams(config, overrides: Mapping[str, Any] | None = None) -> dict[str, jnp.ndarray]:
    """The traced hyperparameters as a dict ``{dotted name: float32 scalar}`` (or arrays, for sweeps).

    ``overrides`` replaces some of them; an unknown name raises ConfigError.
    """
    names = traced_names(config)
    out = {n: jnp.asarray(get(config, n), jnp.float32) for n in names}
    for k, v in (overrides or {}).items():
        if k not in names:
            raise ConfigError(
                f"{k!r} is not a traced hyperparameter of {type(config).__name__}; "
                f"sweepable ones are: {', '.join(names) or 'none'}."
            )
        out[k] = jnp.asarray(v, jnp.float32)
    return out


def sub_hparams(hp: Mapping[str, Any] | None, prefix: str) -> dict | None:
    """The traced values of the part ``prefix`` (``"ppo"``) of a composed config, its own names."""
    if hp is None:
        return None
    p = prefix + "."
    return {k[len(p):]: v for k, v in hp.items() if k.startswith(p)}


def to_dict(config) -> dict[str, Any]:
    """Nested plain dict of ``config`` (nested configs become dicts)."""
    return dataclasses.asdict(config)


def _nested_cls(f: dataclasses.Field):
    return type(f.default)


def _move(cls, values: Mapping[str, Any]) -> dict:
    """Apply ``cls.MOVED`` (old flat name -> new dotted name) to a stored dict."""
    values = dict(values)
    for old, new in getattr(cls, "MOVED", {}).items():
        if old in values:
            head, dot, rest = new.partition(".")
            if not dot:
                values.setdefault(new, values.pop(old))
                continue
            sub = dict(values.get(head) or {})
            sub.setdefault(rest, values.pop(old))
            values[head] = sub
    upgrade = getattr(cls, "upgrade", None)
    return dict(upgrade(values)) if upgrade is not None else values


def from_dict(cls, values: Mapping[str, Any]):
    """Build ``cls`` from a (nested) dict, refusing unknown keys with one sentence.

    Options a newer version removed are listed in ``cls.RETIRED`` (name -> the value that
    behaves as the code does now); a stored config holding that value still loads, any other
    value is refused. Options that moved into a nested config are listed in ``cls.MOVED``."""
    values = _move(cls, values)
    retired = getattr(cls, "RETIRED", {})
    values = {k: v for k, v in values.items() if not (k in retired and v == retired[k])}
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; known: {', '.join(sorted(by_name))}.")
    out = {}
    for k, v in values.items():
        f = by_name[k]
        if is_nested(f):
            out[k] = v if dataclasses.is_dataclass(v) else from_dict(_nested_cls(f), v or {})
        else:
            out[k] = tuple(v) if isinstance(v, list) else v
    return cls(**out)


def _static_part(config) -> dict:
    out = {}
    for f in dataclasses.fields(config):
        if is_nested(f):
            out[f.name] = {"type": type(getattr(config, f.name)).__name__, **_static_part(getattr(config, f.name))}
        elif not f.metadata.get("traced"):
            out[f.name] = getattr(config, f.name)
    return out


def fingerprint(config) -> str:
    """A stable short hash of the static (shape-fixing) part of ``config``, nested parts included."""
    blob = json.dumps({"type": type(config).__name__, **_static_part(config)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def require(config, name: str, ok: bool, accepted: str) -> None:
    """Raise ConfigError naming the (dotted) field, its value and what is accepted unless ``ok``."""
    if not ok:
        raise ConfigError(f"{name}={get(config, name)!r} is out of range; accepted: {accepted}.")
