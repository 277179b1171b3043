"""One process of the two-process tests (tests/core/test_distributed.py); not a test itself.

``python dist_worker.py STAGE OUT_DIR`` with ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES``
/ ``JAX_PROCESS_ID`` set (or none of them: the single-process reference). Stages:

* ``train``: (a) an 8-run sweep (2 learning rates x 4 seeds) of a small MLP VAE, its final
  per-run losses into ``OUT/sweep.json``; (b) the data-parallel run of that VAE (the family's
  job and hooks, no final evaluation; each process places only its 400 of the 800 training
  images on its devices, ``rows I: 400 of 800`` in its log; its per-epoch held-out figures
  are the mean over both processes' own 100 of the 200 test images, :func:`held_out`) through
  :func:`jaxgen.core.fit.fit` into ``OUT/full``, its final parameters into
  ``OUT/full_params.npz``; (c) the same run stopped after its first chunk in ``OUT/cut``, then
  resumed from that checkpoint (read back from disk by both processes), its final parameters
  into ``OUT/cut_params.npz``; (d) the data-parallel run of a tiny MLP GAN on the same 800
  images (the family's job, no evaluation; ``gan rows I: 400 of 800`` in its log), its final
  parameters into ``OUT/gan_params.npz``; (e) the VAE CLI's data with a held-out split
  (``ae_fit.load_data``, the bundled 5,000 images, 20 % held out): each process's own
  counts in its log (``split I: ...``), a digest of the global training array into
  ``OUT/split.json``.

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
from jaxgen.core.sharding import device_mesh, process_rows  # noqa: E402
from jaxgen.core.sweep import sweep  # noqa: E402
from jaxgen.data.mnist import load_mnist  # noqa: E402
from jaxgen.generative import ae_fit, gan_fit  # noqa: E402
from jaxgen.generative import autoencoder as ae  # noqa: E402
from jaxgen.generative import gan  # noqa: E402

CFG = ae.AEConfig(model="vae", arch="mlp", hidden=32, latent=4, batch_size=80, epochs=3)
GAN_CFG = gan.GANConfig(arch="mlp", mlp_hidden=(16, 32), z_dim=8, batch_size=80, epochs=2)
CHUNK = 10  # steps per chunk: one epoch of 800 images
#: the data options of (e): the bundled 5,000 training images, 20 % held out
SPLIT_ARGS = dict(data="bundled", test_data="bundled", idx_dir=None, data_dir=None, limit=None, val_fraction=0.2)


def data():
    train = load_mnist("train", "bundled")
    order = np.random.default_rng(0).permutation(len(train.labels))
    test = load_mnist("test", "bundled")
    return np.asarray(train.images)[order[:800]], np.asarray(test.images[:200]), np.asarray(test.labels[:200])


def held_out(test_x):
    """This process's own held-out images: its :func:`process_rows` of ``test_x`` (the whole
    of it with one process)."""
    start, stop = process_rows(len(test_x))
    return test_x[start:stop]


def digest(x) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def params_npz(params, path: Path) -> None:
    flat = jax.tree_util.tree_flatten_with_path(distributed.to_host(params))[0]
    arrays = {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}
    if distributed.is_main():
        np.savez(path, **arrays)


def own_rows(x) -> int:
    return sum(s.data.shape[0] for s in x.addressable_shards)


def main(stage: str, out: Path) -> None:
    images, test_x, test_y = data()
    kw = dict(chunk_steps=CHUNK, mode="scan", progress=False)

    pid = jax.process_index()

    def job(run_dir):  # the family's job (hooks: held-out figures, reconstructions) without the final evaluation
        return dataclasses.replace(ae_fit.job(CFG, images, test_x, test_y, run_dir=run_dir, iwae_k=0,
                                              val_images=held_out(test_x),
                                              val_per_process=distributed.is_multiprocess()), finish=None)

    if distributed.is_multiprocess():  # what this process's devices hold of the trainer's data
        held = job(None).trainer.data["images"]
        print(f"rows {pid}: {own_rows(held)} of {held.shape[0]}", flush=True)

    if stage == "train":
        tr = ae.make_trainer(CFG, {"images": images})
        res = sweep(tr, seeds=4, grid={"learning_rate": [1e-3, 3e-4]}, progress=False, mode="scan", chunk_steps=CHUNK)
        if distributed.is_main():
            (out / "sweep.json").write_text(json.dumps({"loss": np.asarray(res.final["loss"]).tolist(),
                                                        "devices": jax.device_count()}))
        full = F.fit(job(out / "full"), run_dir=out / "full", **kw)
        params_npz(full["state"].params, out / "full_params.npz")
        runner.run(job(out / "cut").trainer, 0, run_dir=out / "cut", chunk_steps=CHUNK, mode="scan", progress=False,
                   hooks=list(job(out / "cut").hooks), stop_after_chunks=1, checkpoint_every=1,
                   mesh=device_mesh() if distributed.is_multiprocess() else None)
        # the resume: the state rebuilt from the cut run's checkpoint on disk by both processes
        res = F.fit(job(out / "cut"), run_dir=out / "cut", resume=True, **kw)
        params_npz(res["state"].params, out / "cut_params.npz")
        # (d) the GAN family's job (its epoch hook without a run directory or evaluator: no host work)
        gj = dataclasses.replace(gan_fit.job(GAN_CFG, images), finish=None)
        d = gj.trainer.data
        print(f"gan rows {pid}: {own_rows(d['images'])} of {d['images'].shape[0]}, labels {own_rows(d['labels'])} "
              f"of {d['labels'].shape[0]}", flush=True)
        g = F.fit(gj, **kw)["state"]
        params_npz({"g": g.g.params, "d": g.d.params}, out / "gan_params.npz")
        # (e) the held-out split of the VAE CLI's data: each process splits its own share
        import argparse

        tr, val, _, source, per_process = ae_fit.load_data(argparse.Namespace(**SPLIT_ARGS))
        print(f"split {pid}: {source}, train {own_rows(tr)} of {tr.shape[0]}, held out {len(val)}, "
              f"per process {per_process}", flush=True)
        whole = distributed.to_host(tr)
        if distributed.is_main():
            (out / "split.json").write_text(json.dumps({"train": digest(whole), "held_out": digest(val)}))
    print(f"done {stage} {jax.process_index()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
