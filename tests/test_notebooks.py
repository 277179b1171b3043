"""Every notebook runs top to bottom with its small config (as on a CPU-only Colab)."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: notebooks whose small config is bound by its run, not its compiles: their kernels keep XLA's
#: own optimisation level (the dqn notebook's Freeway study ran 7x slower at level 0). The others
#: inherit tests/conftest.py's level 0 (quiet machine: gan 25.7 -> 17.2 s, maddpg 28.7 -> 18.9 s,
#: ppo 30.4 -> 29.5 s a notebook).
RUN_BOUND = {"dqn.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXGEN_SMALL", "1")  # the small CPU config
    monkeypatch.setenv("JAXGEN_NOTEBOOK_TEST", "1")
    if path.name in RUN_BOUND:  # XLA's own optimisation level, not the suite's level 0
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_backend_optimization_level")]
        monkeypatch.setenv("XLA_FLAGS", " ".join(flags))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plots are shown inline


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_install_cell_installs_this_repository_and_checks_it(path):
    """Every notebook opens with the one install cell: jaxgen from JAXGEN_SOURCE (a path or git
    URL of this repository, never a bare package name) and a check that the jaxgen imported is
    this project's."""
    first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code").source
    assert 'JAXGEN_SOURCE = os.environ.get("JAXGEN_SOURCE"' in first
    assert '"pip", "install", "-q", JAXGEN_SOURCE]' in first and "pip install jaxgen" not in first
    assert 'find_spec("jaxgen.registry") is None or not hasattr(jaxgen, "__version__")' in first
