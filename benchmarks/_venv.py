"""The peers' virtual environments: ``benchmarks/.venvs/<name>``, made on first use.

A peer that pins other versions than jaxgen's (rejax: gymnax < 1; AgileRL: its own numpy and
gymnasium; imitation: torch + Stable-Baselines3) runs in a venv of its own; the benchmark script
then runs itself there (``--peer``) and reads one JSON line back."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent / ".venvs"


def ensure_venv(name: str, probe: str, *package_groups: list[str]) -> Path:
    """The python of ``benchmarks/.venvs/<name>``, created when absent and the packages installed
    (group after group: e.g. the CPU torch before a library that depends on it) when
    ``import <probe>`` fails there."""
    venv = ROOT / name
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", f"import {probe}"], capture_output=True).returncode:
        t = time.perf_counter()
        for group in package_groups:
            subprocess.run([str(py), "-m", "pip", "install", "-q", *group], check=True)
        print(f"installed {package_groups} into {venv} in {time.perf_counter() - t:.0f} s", flush=True)
    return py
