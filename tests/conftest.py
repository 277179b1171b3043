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
# XLA:CPU's MLIR fusion emitters compile a program about twice as slowly as its older LLVM IR
# emitters and, at level 0, also run it slower (2026-12-07, one process per setting, 2-core AMD
# EPYC: PPO CartPole 2e4 steps compile 4.9 -> 2.5 s, run 1.04 -> 0.82 s; DQN 5e3 steps compile
# 3.9 -> 2.2 s, run 0.33 -> 0.10 s). At XLA's own level the emitters run PPO faster (1.4 vs 2.3 s
# for 1e5 steps), so only the tests turn them off. Subprocesses that start from a clean
# environment (the multi-device and multi-process tests) add JAXGEN_TEST_XLA_FLAGS.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
if os.environ.get("JAXGEN_TEST_XLA_OPT", "0") != "default" and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + TEST_XLA_FLAGS).strip()
    os.environ["JAXGEN_TEST_XLA_FLAGS"] = TEST_XLA_FLAGS

# Prepared data (the `auto` MNIST source prepares ../shared/data/mnist's IDX files as a TFDS
# builder) goes to a directory of this run, not the user's ~/tensorflow_datasets; removed at the
# end like the compilation cache. A JAXGEN_DATA_DIR set by the caller is kept.
DATA_DIR = Path(tempfile.gettempdir()) / f"jaxgen-test-data-{_RUN}"
if "JAXGEN_DATA_DIR" not in os.environ:
    os.environ["JAXGEN_DATA_DIR"] = str(DATA_DIR)

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


def _scope(nodeid: str) -> str:
    """The unit of work a worker takes whole: a test file (its module-scoped fixtures, e.g. a
    trained model shared by several tests, are built once), except the notebooks, each of which
    is a unit of its own (they are the longest tests and independent)."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path.endswith("test_notebooks.py") else path


def pytest_xdist_make_scheduler(config, log):
    """Under ``pytest -n N --dist loadgroup`` (pyproject's addopts): hand out work by
    :func:`_scope`. (xdist's own loadgroup reads a group suffix on node ids that pytest 9.2 no
    longer keeps, so it had scattered every file's tests over both workers and built each
    module fixture twice.)"""
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileOrNotebook(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False  # keep the order below: the longest units first
    return FileOrNotebook(config, log)


def pytest_collection_modifyitems(config, items):
    """The notebooks first: the longest units start first, so the two workers end together."""
    items.sort(key=lambda item: 0 if Path(str(item.fspath)).name == "test_notebooks.py" else 1)


def pytest_sessionfinish(session, exitstatus):
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
        shutil.rmtree(DATA_DIR, ignore_errors=True)
