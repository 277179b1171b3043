"""One process of the two-process tests (tests/core/test_distributed.py); not a test itself.

``python dist_worker.py STAGE OUT_DIR`` with ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES``
/ ``JAX_PROCESS_ID`` set (or none of them: the single-process reference). Stages:

* ``train``: (a) an 8-run sweep (2 learning rates x 4 seeds) of a small MLP VAE, its final
  per-run losses into ``OUT/sweep.json``; (b) the data-parallel run of that VAE (the family's
  job and hooks, no final evaluation; each process places only its 400 of the 800 training
  images on its devices, ``rows I: 400 of 800`` in its log) through :func:`jaxgen.core.fit.fit` into ``OUT/full``,
  its final parameters into ``OUT/full_params.npz``; (c) the same run stopped after its first
  chunk in ``OUT/cut``, then resumed from that checkpoint (read back from disk by both
  processes), its final parameters into ``OUT/cut_params.npz``.

Process 0 writes the files; every process prints ``done <stage>`` at the end.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import jax
import numpy as np

from jaxgen.core import distributed

if os.environ.get("JAX_NUM_PROCESSES"):
    distributed.initialize(timeout_s=30)

from jaxgen.core import fit as F  # noqa: E402
from jaxgen.core import runner  # noqa: E402
from jaxgen.core.sharding import device_mesh  # noqa: E402
from jaxgen.core.sweep import sweep  # noqa: E402
from jaxgen.data.mnist import load_mnist  # noqa: E402
from jaxgen.generative import ae_fit  # noqa: E402
from jaxgen.generative import autoencoder as ae  # noqa: E402

CFG = ae.AEConfig(model="vae", arch="mlp", hidden=32, latent=4, batch_size=80, epochs=3)
CHUNK = 10  # steps per chunk: one epoch of 800 images


def data():
    train = load_mnist("train", "bundled")
    order = np.random.default_rng(0).permutation(len(train.labels))
    test = load_mnist("test", "bundled")
    return np.asarray(train.images)[order[:800]], np.asarray(test.images[:200]), np.asarray(test.labels[:200])


def params_npz(state, path: Path) -> None:
    flat = jax.tree_util.tree_flatten_with_path(distributed.to_host(state.params))[0]
    arrays = {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}
    if distributed.is_main():
        np.savez(path, **arrays)


def main(stage: str, out: Path) -> None:
    images, test_x, test_y = data()
    kw = dict(chunk_steps=CHUNK, mode="scan", progress=False)

    def job(run_dir):  # the family's job (hooks: per-epoch reconstructions) without the final evaluation
        return dataclasses.replace(ae_fit.job(CFG, images, test_x, test_y, run_dir=run_dir, iwae_k=0), finish=None)

    if distributed.is_multiprocess():  # what this process's devices hold of the trainer's data
        held = job(None).trainer.data["images"]
        print(f"rows {jax.process_index()}: {sum(s.data.shape[0] for s in held.addressable_shards)} of "
              f"{held.shape[0]}", flush=True)

    if stage == "train":
        tr = ae.make_trainer(CFG, {"images": images})
        res = sweep(tr, seeds=4, grid={"learning_rate": [1e-3, 3e-4]}, progress=False, mode="scan", chunk_steps=CHUNK)
        if distributed.is_main():
            (out / "sweep.json").write_text(json.dumps({"loss": np.asarray(res.final["loss"]).tolist(),
                                                        "devices": jax.device_count()}))
        full = F.fit(job(out / "full"), run_dir=out / "full", **kw)
        params_npz(full["state"], out / "full_params.npz")
        runner.run(job(out / "cut").trainer, 0, run_dir=out / "cut", chunk_steps=CHUNK, mode="scan", progress=False,
                   hooks=list(job(out / "cut").hooks), stop_after_chunks=1, checkpoint_every=1,
                   mesh=device_mesh() if distributed.is_multiprocess() else None)
        # the resume: the state rebuilt from the cut run's checkpoint on disk by both processes
        res = F.fit(job(out / "cut"), run_dir=out / "cut", resume=True, **kw)
        params_npz(res["state"], out / "cut_params.npz")
    print(f"done {stage} {jax.process_index()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
