"""Timing helpers shared by ``jaxgen bench`` (:mod:`jaxgen.bench`) and the ``benchmarks/`` scripts.

* :func:`repeat` — wall-clock seconds of ``fn()`` for a number of repeats after warm-up;
  ``fn`` must block until its work is done (``jax.block_until_ready``).
* :func:`interleaved` — the same for several functions, round-robin (fairer on a shared machine).
* :class:`Stats` — median / min / max of those repeats and their spread.
* :func:`timed` — seconds of one call (compile times, which are measured once).
* :func:`header` — date, CPU model, core count and library versions, one line.
* :func:`text_table` / :func:`markdown_table` — the same rows as aligned text or Markdown.

Medians, not means: the machines these run on are shared, and one slow repeat should not
move the figure. The spread ``(max - min) / median`` is printed next to it so that a noisy
measurement is visible.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["Stats", "repeat", "interleaved", "timed", "cpu_model", "core_count", "load_average", "versions", "header",
           "fmt", "text_table", "markdown_table", "compile_and_run"]


@dataclass(frozen=True)
class Stats:
    """Seconds of each repeat of one measurement."""

    times: tuple

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median: 0.05 means the repeats lie within 5 % of the median."""
        return (self.max - self.min) / self.median if self.median > 0 else float("nan")

    def per_second(self, count: int) -> float:
        """``count`` units of work per repeat -> units per second at the median."""
        return count / self.median


def repeat(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> Stats:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return Stats(tuple(times))


def interleaved(fns: dict, repeats: int = 5, warmup: int = 1) -> dict:
    """Time several measurements round-robin: repeat r of every ``fn`` before repeat r + 1 of any.

    On a shared machine the load drifts; interleaving spreads that drift over all the
    measurements instead of penalising whichever ran during a busy spell. Returns {name: Stats}.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: Stats(tuple(ts)) for name, ts in times.items()}


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """(result, seconds) of one call."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def compile_and_run(fn: Callable, *args) -> tuple[object, float, float]:
    """``(output, compile_s, run_s)`` of ``jax.jit(fn)(*args)``: ``lower + compile`` timed apart
    from the one run (which is blocked on)."""
    import jax

    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return out, compile_s, time.perf_counter() - t


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def versions(*names: str) -> str:
    """``"jax 0.x, torch 2.y"`` for the importable ones among ``names`` (the installed
    distribution's version where the module has no ``__version__``, e.g. gymnax)."""
    from importlib import metadata

    out = []
    for name in names:
        try:
            mod = __import__(name)
        except ImportError:
            out.append(f"{name} (not installed)")
            continue
        version = getattr(mod, "__version__", None)
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = "(version unknown)"
        out.append(f"{name} {version}")
    return ", ".join(out)


def header(*packages: str) -> str:
    """One line naming the date, the machine and the library versions."""
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"{now} | CPU: {cpu_model()}, {core_count()} cores | {versions(*packages)} "
            f"| load average at start: {load_average()}")


def _cells(rows: Sequence[Sequence[object]]) -> list[list[str]]:
    return [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]


def fmt(x) -> str:
    """A number in a table: 3-4 significant figures, '-' for None."""
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x != x:
            return "nan"
        a = abs(x)
        if a >= 1000:
            return f"{x:,.0f}"
        if a >= 100:
            return f"{x:.1f}"
        if a >= 10:
            return f"{x:.2f}"
        return f"{x:.3f}"
    return str(x)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = _cells(rows)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = _cells(rows)
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(out)
