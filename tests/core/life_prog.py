"""A tiny two-phase algorithm ("life") for the fault tests, registered and run through the real
CLI: ``python tests/core/life_prog.py train life --run-dir R`` (any ``jaxgen`` arguments), or
through :func:`jaxgen.core.fit.fit` alone: ``python tests/core/life_prog.py fit R [--resume]``.

Phase ``warm`` (6 steps) random-walks a vector ``w``, phase ``main`` (6 steps) shrinks it,
both with noise from the run's key (so that "bit-identical" means something). Chunks of 2
steps, a checkpoint after every chunk, one compiled scan per chunk. ``finish`` writes
``finish.json`` (the final evaluation) before ``fit`` writes ``results.json``.

``LIFE_BLOCK`` makes the process stop where a test wants to kill it: ``step:S`` blocks in the
hooks of the chunk that ends at step ``S`` (so the newest checkpoint is that of step
``S - 2``), ``finish`` blocks in the final evaluation (all checkpoints saved, no
``results.json``). Blocking writes ``RUN_DIR/blocked`` first; the test polls for it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
from flax import struct

from jaxgen.core import config as C
from jaxgen.core.fit import Family, Job
from jaxgen.core.train import Phase, Trainer

NAME = "life"


@dataclasses.dataclass(frozen=True)
class LifeConfig:
    warm_steps: int = C.static(6, "iterations of the warm-up phase")
    main_steps: int = C.static(6, "iterations of the main phase")
    width: int = C.static(8, "size of the vector")
    rate: float = C.traced(0.1, "shrink rate of the main phase")


class LifeState(struct.PyTreeNode):
    step: jax.Array
    key: jax.Array
    w: jax.Array
    hparams: dict


def init(key, config, hparams=None):
    return LifeState(jnp.int32(0), key, jax.random.normal(key, (config.width,)), C.hparams(config, hparams))


def _noise(s, scale):
    return scale * jax.random.normal(jax.random.fold_in(s.key, s.step), s.w.shape)


def warm(s, _data):
    w = s.w + _noise(s, 0.1)
    return s.replace(step=s.step + 1, w=w), {"loss": jnp.sum(w**2), "spread": jnp.std(w)}


def shrink(s, _data):
    w = s.w * (1.0 - s.hparams["rate"]) + _noise(s, 0.01)
    return s.replace(step=s.step + 1, w=w), {"loss": jnp.sum(w**2)}


def make_trainer(config):
    return Trainer.phased(lambda key, hp=None: init(key, config, hp),
                          [Phase("warm", warm, config.warm_steps), Phase("main", shrink, config.main_steps)],
                          config=config)


def evaluate(state, key):
    return {"norm": jnp.linalg.norm(state.w)}


def _block(run_dir, where: str) -> None:
    (run_dir / "blocked").write_text(where)
    while True:
        time.sleep(1)


def _hook(info):
    if os.environ.get("LIFE_BLOCK") == f"step:{info.step}" and info.run_dir is not None:
        _block(info.run_dir, f"step:{info.step}")
    return {}


class LifeFamily(Family):
    def job(self, algo, config, args) -> Job:
        def finish(res, run_dir):
            if run_dir is not None and os.environ.get("LIFE_BLOCK") == "finish":
                _block(run_dir, "finish")
            norm = float(jnp.linalg.norm(res.state.w))
            if run_dir is not None:
                (run_dir / "finish.json").write_text(json.dumps({"norm": norm}))
            return {"norm": norm}

        return Job(make_trainer(config), hooks=[_hook], finish=finish, curves=("loss",), title=NAME,
                   chunk_steps=2, mode="scan", checkpoint_every=1)


def register():
    from jaxgen import registry

    return registry.register(registry.Algorithm(NAME, sys.modules[__name__], LifeConfig, LifeFamily(),
                                                "a tiny two-phase test algorithm"), replace=True)


def fit_main(argv) -> int:
    """``fit RUN_DIR [--resume]``: the run through :func:`jaxgen.core.fit.fit` (no CLI parser, so
    no other family is imported: a fast start), with the CLI's error handling."""
    from pathlib import Path

    from jaxgen.core.errors import JaxgenError
    from jaxgen.core.fit import fit

    run_dir, resume = Path(argv[0]), "--resume" in argv
    try:
        out = fit(LifeFamily().job(None, LifeConfig(), None), seed=0, run_dir=run_dir, resume=resume, progress=False)
    except JaxgenError as e:
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"complete": out.get("complete", False), "steps": out["timings"]["steps"], "norm": out["norm"]}))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["fit"]:
        sys.exit(fit_main(sys.argv[2:]))
    register()
    from jaxgen.cli import main

    sys.exit(main(sys.argv[1:]))
