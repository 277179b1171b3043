"""Multi-process runs (jax.distributed) on this machine: two processes on 127.0.0.1 (the
coordinator bound to loopback), each with 2 CPU devices, against this single-process pytest
process (1 device). One launch of the two processes trains everything the tests compare
(tests/core/dist_worker.py ``train``: the sweep, the data-parallel VAE run, a run cut after its
first chunk and resumed from its checkpoint, a data-parallel GAN run, the VAE CLI's held-out
split); they are killed whatever happens, within ``LAUNCH_TIMEOUT_S``.

Tolerances: the sweep's per-run losses within rtol 1e-5 (each run lives whole on one device,
the same program as one process runs); the data-parallel VAE (its 800 training images split by
rows over the two processes, each placing only its 400; the minibatches are drawn over the
global rows, so they are the single-process ones) ends within atol 1e-6 of the single-device
run's final parameters (its gradients are summed over 4 devices in another order: float32
rounding; measured 6e-8 on parameters of size ~1); the resumed run bit-identical to the
uninterrupted one (both two-process). The data-parallel VAE's per-epoch held-out figures are the
mean over both processes' own held-out images (100 each), within rtol 1e-5 of the mean of the
single-process parameters' figures on the same two parts (measured: equal). The data-parallel
MLP GAN (the same 800 images split 400 / 400, 20 iterations) ends within atol 1e-5 of the
single-device run's parameters (measured 1.2e-7 on parameters up to 0.8; a wider margin than
the VAE's for the two players' updates feeding each other's rounding).
The VAE CLI's held-out split is each process's own: the union of per-process parts, exactly.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxgen.core.errors import DistributedError

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("dist_worker.py")
LAUNCH_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    flags = {"XLA_FLAGS": os.environ["JAXGEN_TEST_XLA_FLAGS"]} if os.environ.get("JAXGEN_TEST_XLA_FLAGS") else {}
    return {**env, **flags, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), **extra}


def _launch(stage: str, out: Path, processes: int = 2, meanwhile=None) -> tuple[list[str], object]:
    """Run ``dist_worker.py stage out`` in ``processes`` processes, and ``meanwhile()`` in this
    one while they run (they often wait on each other); (their logs, what ``meanwhile`` returned)."""
    port = _free_port()
    got = None
    procs, logs = [], []
    try:
        for i in range(processes):
            log = open(out / f"{stage}-{i}.log", "w+")
            logs.append(log)
            env = _env(JAX_NUM_CPU_DEVICES="2", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                       JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(i))
            procs.append(subprocess.Popen([sys.executable, str(WORKER), stage, str(out)], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        got = meanwhile() if meanwhile is not None else None
        for p in procs:
            p.wait(timeout=LAUNCH_TIMEOUT_S)
    finally:
        for p in procs:  # whatever happened: no process outlives the test
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    texts = []
    for log in logs:
        log.seek(0)
        texts.append(log.read())
        log.close()
    for i, (p, text) in enumerate(zip(procs, texts)):
        assert p.returncode == 0 and f"done {stage} {i}" in text, f"process {i} of {stage}: {text[-3000:]}"
    return texts, got


def _references(worker) -> dict:
    """The single-process (1 device) runs the two-process ones are compared with."""
    from jaxgen.core import runner
    from jaxgen.core.sweep import sweep
    from jaxgen.generative import autoencoder as ae

    from jaxgen.eval.likelihood import evaluate
    from jaxgen.generative import gan

    images, test_x, _ = worker.data()
    tr = ae.make_trainer(worker.CFG, {"images": images})
    res = sweep(tr, seeds=4, grid={"learning_rate": [1e-3, 3e-4]}, progress=False, mode="scan", chunk_steps=worker.CHUNK)
    single = runner.run(tr, 0, chunk_steps=worker.CHUNK, mode="scan", progress=False, check_finite=False)
    # the held-out figures of the final parameters: each process's part (100 test images) alone, then the mean
    parts = [evaluate(ae.likelihood_model(single.state), test_x[i * 100:(i + 1) * 100])["neg_elbo"] for i in range(2)]
    g = runner.run(gan.make_trainer(worker.GAN_CFG, {"images": images}), 0, chunk_steps=worker.CHUNK, mode="scan",
                   progress=False, check_finite=False).state
    return {"sweep": res.final["loss"], "params": _params(single.state.params), "gan": _params({"g": g.g.params, "d": g.d.params}),
            "val_neg_elbo": np.asarray(parts)}


@pytest.fixture(scope="module")
def two(tmp_path_factory, worker):
    """(out dir, the two processes' logs, the single-process references computed meanwhile).

    One launch per test session even when xdist spreads this file's tests over its workers
    (pytest 9.2 ignores xdist 3.8's group suffix, so ``--dist loadgroup`` does not keep a file
    on one worker): the first worker to take the lock launches, the others read its results."""
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else \
        tmp_path_factory.getbasetemp()
    out, done = shared / "dist-two", shared / "dist-two" / "references.npz"
    with open(shared / "dist-two.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            out.mkdir(exist_ok=True)
            logs, ref = _launch("train", out, meanwhile=lambda: _references(worker))
            np.savez(out / "references_tmp.npz", sweep=ref["sweep"], val_neg_elbo=ref["val_neg_elbo"],
                     **{"param" + k: v for k, v in ref["params"].items()}, **{"gan" + k: v for k, v in ref["gan"].items()})
            (out / "references_tmp.npz").rename(done)
    with np.load(done) as z:
        ref = {"sweep": z["sweep"], "val_neg_elbo": z["val_neg_elbo"],
               "params": {k[len("param"):]: z[k] for k in z.files if k.startswith("param")},
               "gan": {k[len("gan"):]: z[k] for k in z.files if k.startswith("gan")}}
    logs = [(out / f"train-{i}.log").read_text() for i in range(2)]
    return out, logs, ref


@pytest.fixture(scope="module")
def worker():
    sys.path.insert(0, str(WORKER.parent))
    try:
        import dist_worker
    finally:
        sys.path.pop(0)
    return dist_worker


def _params(params) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(jax.device_get(params))[0]
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def test_sweep_over_two_processes_gives_the_single_process_results(two):
    out, _, ref = two
    got = json.loads((out / "sweep.json").read_text())
    assert got["devices"] == 4 and jax.device_count() == 1
    assert np.asarray(got["loss"]).shape == (2, 4)
    np.testing.assert_allclose(got["loss"], ref["sweep"], rtol=1e-5)
    assert len(set(np.ravel(got["loss"]).tolist())) == 8  # every run its own


def test_data_parallel_vae_ends_with_the_single_process_parameters(two):
    out, logs, ref = two
    # each process's devices held only its half of the 800 training images (2 devices x 200)
    assert "rows 0: 400 of 800" in logs[0] and "rows 1: 400 of 800" in logs[1]
    mine, theirs = ref["params"], dict(np.load(out / "full_params.npz"))
    assert sorted(mine) == sorted(theirs)
    for k in mine:
        np.testing.assert_allclose(theirs[k], mine[k], atol=1e-6, rtol=0, err_msg=k)
    # host work on process 0 only: one row per chunk, one results.json, same final step
    rows = [json.loads(r) for r in (out / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    # the held-out figure: the mean over both processes' own parts (each evaluated on its process)
    parts = ref["val_neg_elbo"]  # the two parts' figures, far apart: the mean is neither
    assert abs(parts[0] - parts[1]) > 1e-3 * abs(parts[0])
    np.testing.assert_allclose(rows[-1]["val_neg_elbo"], parts.mean(), rtol=1e-5)
    res = json.loads((out / "full" / "results.json").read_text())
    assert res["final"]["step"] == 30 and (out / "full" / "curves.png").is_file()
    assert (out / "full" / "reconstructions.png").is_file()  # the family's hook, on process 0
    assert json.loads((out / "full" / "config.json").read_text())["num_processes"] == 2


def test_data_parallel_gan_holds_its_rows_and_ends_with_the_single_process_parameters(two):
    out, logs, ref = two
    for i in range(2):  # images and (default, zero) labels: each process only its 400 rows
        assert f"gan rows {i}: 400 of 800, labels 400 of 800" in logs[i], logs[i][-2000:]
    mine, theirs = ref["gan"], dict(np.load(out / "gan_params.npz"))
    assert sorted(mine) == sorted(theirs) and any(k.startswith("['g']") for k in mine)
    for k in mine:
        np.testing.assert_allclose(theirs[k], mine[k], atol=1e-5, rtol=0, err_msg=k)


def test_held_out_split_is_each_processes_own(two, worker):
    """ae_fit.load_data in two processes: each read its 2,500 of the bundled 5,000 training
    images and held out 20 % of them (train_val_split of its own rows, seed VAL_SEED); the
    global training array is the two training parts in process order."""
    from jaxgen.data.imageset import train_val_split
    from jaxgen.data.mnist import load_mnist
    from jaxgen.generative import ae_fit

    out, logs, _ = two
    train = load_mnist("train", "bundled")
    parts = [train_val_split(train.images[i * 2500:(i + 1) * 2500], train.labels[i * 2500:(i + 1) * 2500], 0.2,
                             seed=ae_fit.VAL_SEED) for i in range(2)]
    for i in range(2):
        assert f"split {i}: bundled:" in logs[i] and f"[{i * 2500}:{(i + 1) * 2500}], train 2000 of 4000, held out 500, " \
            "per process True" in logs[i], logs[i][-2000:]
    got = json.loads((out / "split.json").read_text())
    assert got == {"train": worker.digest(np.concatenate([p[0].images for p in parts])),
                   "held_out": worker.digest(parts[0][1].images)}


def test_checkpoint_resumes_in_two_processes_bit_identically_and_loads_in_one(two, capsys):
    from jaxgen import cli

    out, _, _ = two
    full, cut = np.load(out / "full_params.npz"), np.load(out / "cut_params.npz")
    assert sorted(full.files) == sorted(cut.files)
    for k in full.files:
        np.testing.assert_array_equal(cut[k], full[k], err_msg=k)
    capsys.readouterr()
    assert cli.main(["eval", str(out / "cut"), "--iwae-k", "0"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert 0 < got["neg_elbo"] < 600 and got["recon_bce"] < got["neg_elbo"]


def test_resume_with_another_process_count_is_one_sentence(two, worker):
    from jaxgen.generative import ae_fit

    out, _, _ = two
    images, tx, ty = worker.data()
    before = (out / "cut" / "metrics.jsonl").read_text()
    with pytest.raises(DistributedError, match=r"saved by 2 processes; resume it with 2 \(this is 1\)"):
        ae_fit.fit(worker.CFG, images, tx, ty, run_dir=out / "cut", resume=True, progress=False, iwae_k=0)
    assert (out / "cut" / "metrics.jsonl").read_text() == before  # nothing written


def test_unreachable_coordinator_is_one_sentence_within_the_timeout():
    port = _free_port()  # nothing listens there
    code = f"from jaxgen.core import distributed; distributed.initialize('127.0.0.1:{port}', 2, 1, timeout_s=1)"
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr[-2000:]
    line = r.stderr.strip().splitlines()[-1]
    assert line == (f"jaxgen: error: process 1 of 2 could not join the distributed run at coordinator 127.0.0.1:{port} "
                    "within 1 s (coordinator unreachable, or not all 2 processes started); start every process with "
                    "the same --coordinator and --num-processes, and check the address and port.")


def test_distributed_options_are_checked_before_anything_runs(capsys):
    from jaxgen import cli
    from jaxgen.core import distributed

    args = cli.build_parser().parse_args(["train", "vae", "--coordinator", "127.0.0.1:1234"])
    with pytest.raises(DistributedError, match="--coordinator belongs to a multi-process run; add --distributed"):
        distributed.from_args(args)
    assert cli.main(["sweep", "vae", "--distributed", "--coordinator", "nohost", "--num-processes", "2",
                     "--process-id", "0"]) == 2
    assert "--coordinator='nohost' is not accepted; accepted: HOST:PORT" in capsys.readouterr().err
    # read before the parser is built (building it imports modules that run JAX)
    assert cli.main(["train", "vae", "--num-processes", "2", "--epochs", "1"]) == 2
    assert "--num-processes belongs to a multi-process run; add --distributed" in capsys.readouterr().err
    with pytest.raises(DistributedError, match="--process-id=2 is out of range; accepted: 0 to 1"):
        distributed.initialize("127.0.0.1:1234", 2, 2)
    # this process has run JAX already: too late to join, said in one sentence
    with pytest.raises(DistributedError, match="must start before anything runs on a JAX device"):
        distributed.initialize(f"127.0.0.1:{_free_port()}", 2, 0, timeout_s=5)
