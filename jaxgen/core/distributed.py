"""Multi-process runs on JAX's own multi-controller runtime (``jax.distributed``).

The same program runs in every process (one per host, or one per GPU under SLURM); JAX
joins them into one set of global devices, and :func:`jaxgen.core.sharding.device_mesh`
lays one ``batch`` mesh over all of them. What this module adds:

* :func:`initialize` -- ``jax.distributed.initialize`` with jaxgen's defaults: on Cloud TPU,
  under SLURM and Open MPI everything is detected by JAX; elsewhere the coordinator
  (``HOST:PORT`` of process 0), the process count and this process's id are given, or read
  from ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``. A coordinator
  on a loopback address is also *bound* to that address only (nothing listens on the
  network). On CPU the cross-process collectives are gloo's. Failing to join within
  ``timeout_s`` seconds (coordinator unreachable, a process missing) is one sentence on
  stderr and exit status 2 on every process that waited: JAX's client would abort the
  process from C++ (no Python exception to catch), so a watchdog thread says it first. Bad
  arguments are a :class:`~jaxgen.core.errors.DistributedError`.
* :func:`is_main` / :func:`process_count` / :func:`process_index` -- host work (progress
  bar, ``metrics.jsonl``, plots, ``results.json``) happens on process 0 only.
* :func:`agree` -- process 0's value of a small host decision (save a checkpoint now? a
  signal asked to stop?) on every process, so that every process takes the same branch
  (a branch taken by some processes only would leave the others waiting in a collective).
* :func:`gather` / :func:`barrier` -- every process's small value; wait for all.
* :func:`mean_over_processes` -- per-process means (e.g. of a metric over each process's own
  held-out images) as the mean over all processes' items, weighted by their counts.
* :func:`to_host` -- a pytree of (possibly global, sharded over processes) arrays as numpy
  on every process (a collective when some leaf is split over processes).
* :func:`local_copy` -- the state of a data-parallel run (replicated over the mesh) as
  arrays of this process's default device: host work then computes locally, without
  collectives.

With one process every function is the identity (or costs nothing), so single-process
code paths are unchanged.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Any

import jax
import numpy as np

from jaxgen.core.errors import DistributedError

#: Seconds a process waits for all processes to join (and to connect its collectives).
DEFAULT_TIMEOUT_S = 60
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_STATE: dict = {}


def process_count() -> int:
    return jax.process_count()


def process_index() -> int:
    return jax.process_index()


def is_multiprocess() -> bool:
    return jax.process_count() > 1


def is_main() -> bool:
    """True on process 0 (and in a single-process run): the one that does the host work."""
    return jax.process_index() == 0


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise DistributedError(f"{name}={v!r} is not accepted; accepted: a whole number.") from None


def _check_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedError(f"--coordinator={address!r} is not accepted; accepted: HOST:PORT of process 0, "
                               "e.g. 10.0.0.1:1234 (a port from 1 to 65535).")
    return host, int(port)


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None, *,
               timeout_s: int = DEFAULT_TIMEOUT_S, bind_address: str | None = None,
               local_device_ids=None) -> dict:
    """Join this process to the distributed run (see the module docstring); returns
    ``{"process_id", "num_processes", "local_devices", "global_devices"}``.

    Must be called before anything touches a JAX device. Without arguments or environment
    variables, JAX's cluster detection (Cloud TPU, SLURM, Open MPI) fills them in. Calling
    it again in the same process with the same arguments does nothing.
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if _STATE:
        return info()
    if num_processes is not None and num_processes < 1:
        raise DistributedError(f"--num-processes={num_processes} is out of range; accepted: a whole number >= 1.")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise DistributedError(f"--process-id={process_id} is out of range; accepted: 0 to {num_processes - 1} "
                               f"for {num_processes} processes.")
    if coordinator is not None:
        host, port = _check_address(coordinator)
        if bind_address is None and host in _LOOPBACK:
            bind_address = coordinator  # a loopback coordinator listens on loopback only
    if timeout_s is None or timeout_s < 1:
        raise DistributedError(f"timeout_s={timeout_s!r} is out of range; accepted: whole seconds >= 1.")
    _use_gloo_on_cpu()
    who = (f"process {process_id} of {num_processes}" if process_id is not None and num_processes is not None
           else "this process")
    where = coordinator or "the detected coordinator"
    sentence = (f"{who} could not join the distributed run at coordinator {where} within {timeout_s} s "
                f"(coordinator unreachable, or not all {num_processes or 'N'} processes started); start every process "
                "with the same --coordinator and --num-processes, and check the address and port.")
    # JAX's client aborts the process (a C++ fatal error, no Python exception) when it cannot
    # connect in time; a watchdog says the one sentence first and exits with status 2.
    done = threading.Event()

    def watchdog():
        if not done.wait(timeout_s):
            print(f"jaxgen: error: {sentence}", file=sys.stderr, flush=True)
            os._exit(2)

    threading.Thread(target=watchdog, daemon=True, name="jaxgen-distributed-watchdog").start()
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id,
                                   local_device_ids=local_device_ids, initialization_timeout=int(timeout_s) + 30,
                                   coordinator_bind_address=bind_address,
                                   heartbeat_timeout_seconds=max(10, int(timeout_s)),
                                   shutdown_timeout_seconds=max(5, int(timeout_s)))
    except (ValueError, RuntimeError) as e:  # JaxRuntimeError is a RuntimeError
        msg = str(e)
        if "before" in msg and ("computation" in msg or "backend" in msg):
            raise DistributedError("jax.distributed must start before anything runs on a JAX device, and something "
                                   "already did; call jaxgen.core.distributed.initialize (or pass --distributed) "
                                   "first.") from None
        if "should only be called once" in msg or "already" in msg and "initialized" in msg:
            raise DistributedError("jax.distributed is already initialised in this process with other settings; "
                                   "initialise it once, before anything touches a JAX device.") from None
        if coordinator is None and num_processes is None:
            raise DistributedError("--distributed could not detect a cluster (no Cloud TPU, SLURM or Open MPI "
                                   "environment); give --coordinator HOST:PORT --num-processes N --process-id I.") from None
        raise DistributedError(sentence) from None
    finally:
        done.set()
    _STATE.update(coordinator=coordinator, timeout_s=int(timeout_s))
    return info()


def _use_gloo_on_cpu() -> None:
    """CPU devices of different processes talk through gloo (XLA:CPU has no other cross-process collectives)."""
    try:
        if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except AttributeError:  # pragma: no cover - an older jax
        pass


def info() -> dict:
    return {"process_id": jax.process_index(), "num_processes": jax.process_count(),
            "local_devices": jax.local_device_count(), "global_devices": jax.device_count()}


def agree(values) -> np.ndarray:
    """Process 0's ``values`` (a small int/float array-like) on every process; identity with one process."""
    values = np.asarray(values)
    if not is_multiprocess():
        return values
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(values))


def gather(values) -> np.ndarray:
    """Every process's ``values`` (a small array-like), stacked: ``[processes, ...]``."""
    values = np.asarray(values)
    if not is_multiprocess():
        return values[None]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(values))


def mean_over_processes(values: dict, count: int) -> dict:
    """The mean over every process's items of each metric: ``values`` ``{name: float}`` are
    this process's means over its ``count`` items; returns ``{name: sum_p count_p * value_p /
    sum_p count_p}`` (the same on every process; a collective, so every process calls it at
    the same point with the same names). With one process: ``values`` as floats.

    The values travel as float32 (the metrics' own precision; counts up to 2**24 are exact)
    and are averaged in float64."""
    names = list(values)
    if not is_multiprocess():
        return {k: float(values[k]) for k in names}
    rows = gather(np.asarray([count, *(values[k] for k in names)], np.float32)).astype(np.float64)  # [P, 1 + K]
    w = rows[:, 0]
    if not w.sum():
        raise DistributedError("mean_over_processes got no items on any process; accepted: a count >= 1 somewhere.")
    means = (rows[:, 1:] * w[:, None]).sum(0) / w.sum()
    return {k: float(v) for k, v in zip(names, means)}


def barrier(name: str) -> None:
    """Wait until every process has reached the barrier ``name`` (nothing with one process)."""
    if is_multiprocess():
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _local(x):
    return isinstance(x, jax.Array) and not x.is_fully_addressable


def to_host(tree) -> Any:
    """Every array leaf of ``tree`` as numpy, whole, on every process (leaves split over processes
    are gathered: a collective, so every process must call it at the same point)."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not any(_local(x) and not x.is_fully_replicated for x in leaves):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def get(x):
        if not _local(x):
            return jax.device_get(x)
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree_util.tree_map(get, tree)


def local_copy(tree) -> Any:
    """``tree`` with every global array replaced by this process's copy on its default device
    (replicated leaves: the local shard, no communication; leaves split over processes are
    gathered). Other leaves pass through."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not any(_local(x) for x in leaves):
        return tree
    if any(_local(x) and not x.is_fully_replicated for x in leaves):
        return jax.tree_util.tree_map(lambda x: jax.numpy.asarray(x) if isinstance(x, np.ndarray) else x, to_host(tree))
    return jax.tree_util.tree_map(lambda x: x.addressable_data(0) if _local(x) else x, tree)


def add_args(p) -> None:
    """The options of ``jaxgen train|sweep`` that make it one process of a distributed run."""
    g = p.add_argument_group("distributed (one process of a multi-process run)")
    g.add_argument("--distributed", action="store_true",
                   help="join a multi-process run through jax.distributed (Cloud TPU, SLURM, Open MPI: detected; "
                        "elsewhere give the three options below or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
                        "JAX_PROCESS_ID)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="address of process 0's coordinator")
    g.add_argument("--num-processes", type=int, default=None, help="number of processes of the run")
    g.add_argument("--process-id", type=int, default=None, help="this process's id, 0 to N-1")
    g.add_argument("--distributed-timeout", type=int, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"how long to wait for every process to join (default {DEFAULT_TIMEOUT_S})")


def from_args(args) -> dict | None:
    """Initialise ``jax.distributed`` if ``args`` ask for it (``--distributed``, or any of its
    options); the :func:`info` dict, or None for a single-process command."""
    given = [f for f in ("coordinator", "num_processes", "process_id") if getattr(args, f, None) is not None]
    if not getattr(args, "distributed", False):
        if given:
            raise DistributedError(f"--{given[0].replace('_', '-')} belongs to a multi-process run; add --distributed.")
        return None
    return initialize(args.coordinator, args.num_processes, args.process_id, timeout_s=args.distributed_timeout)
