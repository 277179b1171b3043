import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

# One persistent XLA compilation cache for the whole test session, shared by the xdist workers
# and the notebook kernels (they inherit the environment): many tests build the same programs
# (the default PPO / DQN runs, a GAN step with and without a traced weight), and a hit loads the
# executable instead of compiling it again. Set before anything imports jax; removed at the end.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}"
CACHE_DIR = Path(tempfile.gettempdir()) / f"jaxgen-test-xla-cache-{_RUN}"
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(CACHE_DIR)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

# The tests' programs are small and run briefly: compile time dominates the suite, and LLVM's
# optimisation passes are most of a CPU compile. Level 0 compiles about a quarter faster for
# a slower run (measured on PPO/DQN/VAE learning tests: 81 -> 63 s of CPU time in all). It
# changes no semantics; JAXGEN_TEST_XLA_OPT=default keeps XLA's own level (e.g. to profile).
if os.environ.get("JAXGEN_TEST_XLA_OPT", "0") != "default" and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_small():
    """A real MNIST slice (the sample bundled with jaxgen): uint8 [2000, 28, 28, 1], labels [2000]."""
    from jaxgen.data.mnist import load_mnist

    s = load_mnist("train", "bundled")
    order = np.random.default_rng(0).permutation(len(s.labels))[:2000]  # the file is sorted by label
    return np.asarray(s.images)[order], np.asarray(s.labels)[order]


@pytest.fixture(scope="session")
def mnist_test_small():
    from jaxgen.data.mnist import load_mnist

    s = load_mnist("test", "bundled")
    return np.asarray(s.images[:500]), np.asarray(s.labels[:500])


def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N --dist loadgroup`` (pyproject's addopts): the tests of one file run on
    one worker (its module-scoped fixtures, e.g. a trained model shared by several tests, are
    built once), except the notebooks, each of which is a group of its own (they are the
    longest tests and independent)."""
    for item in items:
        path = Path(str(item.fspath))
        group = f"{path.stem}[{item.callspec.id}]" if path.name == "test_notebooks.py" and hasattr(item, "callspec") else str(path)
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_sessionfinish(session, exitstatus):
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
