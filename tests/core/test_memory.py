"""Memory-infeasible configs: the estimate from shapes alone (nothing allocated), the refusal
before anything is allocated or written, and XLA's out-of-memory error as one sentence."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxgen.core import config as C
from jaxgen.core import memory, runner
from jaxgen.core.errors import ResourceError
from jaxgen.core.fit import Job, fit
from jaxgen.core.train import Trainer

sys.path.insert(0, str(Path(__file__).parent))
import life_prog as life  # noqa: E402


@dataclasses.dataclass(frozen=True)
class BigConfig:
    width: int = C.static(64, "hidden width")
    buffer_size: int = C.static(1000, "replay capacity")
    num_steps: int = C.static(4, "iterations")
    learning_rate: float = C.traced(0.1, "step size")


@dataclasses.dataclass(frozen=True)
class DeclaredConfig(BigConfig):
    MEMORY_OPTIONS = {"buffer": ("buffer_size",)}


class BigState(struct.PyTreeNode):
    step: jax.Array
    params: dict
    opt_state: dict
    buffer: jax.Array
    hparams: dict


def _trainer(cfg, data=None, step=None) -> Trainer:
    def init(key, hp=None):
        w = jax.random.normal(key, (cfg.width, cfg.width))
        return BigState(jnp.int32(0), {"w": w}, {"mu": jnp.zeros_like(w), "nu": jnp.zeros_like(w)},
                        jnp.zeros((cfg.buffer_size, 4), jnp.float32), C.hparams(cfg, hp))

    def plain(s, d):
        return s.replace(step=s.step + 1), {"loss": jnp.sum(s.params["w"])}

    return Trainer(init=init, step=step or plain, num_steps=cfg.num_steps, data=data, config=cfg)


def test_the_estimate_counts_state_and_data_from_shapes_alone():
    cfg = BigConfig(width=64, buffer_size=1000)
    data = {"x": np.zeros((100, 8), np.uint8)}
    est = memory.estimate(_trainer(cfg, data), jax.random.PRNGKey(0), C.hparams(cfg), {"rollout": 123})
    state = 3 * 64 * 64 * 4 + 1000 * 4 * 4 + 4 + 4  # params + two moments, the buffer, step, one hparam
    assert est.state_bytes == state and est.data_bytes == 800 and est.total == 2 * state + 800 + 123
    assert est.top_fields() == [("opt_state", 2 * 64 * 64 * 4), ("params", 64 * 64 * 4), ("buffer", 16000)]


def test_an_infeasible_config_is_refused_before_anything_is_allocated_or_written(tmp_path):
    cfg = BigConfig(width=500_000, buffer_size=1000)  # 3 x 1 TB of float32
    run = tmp_path / "run"
    for call in (lambda: runner.run(_trainer(cfg), 0, run_dir=run, progress=False),
                 lambda: fit(Job(_trainer(cfg)), run_dir=run, progress=False)):
        with pytest.raises(ResourceError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith("this run needs at least 6 TB of memory (the state (opt_state 2 TB, params 1 TB) held "
                              "twice while the run starts), more than the ")  # parts under 1 % of the state unnamed
        assert msg.endswith(" of this machine (CPU); lower --width.") and msg.count(". ") == 0
        assert not run.exists()
    # an option a config declares for a part of the state is named for it
    with pytest.raises(ResourceError, match=r"lower --buffer-size\.$"):
        memory.check(_trainer(DeclaredConfig(buffer_size=10**7)), jax.random.PRNGKey(0), None, available=10**8,
                     what="a test device")
    assert memory.check(_trainer(cfg), jax.random.PRNGKey(0), None, available=10**13).total > 6e12


def test_the_vae_of_the_issue_names_the_options_that_size_it():
    from jaxgen.generative import autoencoder as ae

    cfg = ae.AEConfig(model="vae", latent=100_000)
    trainer = ae.make_trainer(cfg, {"images": np.zeros((256, 28, 28, 1), np.uint8)})
    with pytest.raises(ResourceError, match=r"needs at least 3\.71 GB .* more than the 2 GB of a small GPU; "
                                            r"lower --hidden or --latent\.$"):
        memory.check(trainer, jax.random.PRNGKey(0), None, available=2 * 10**9, what="a small GPU")


def test_xla_out_of_memory_in_a_step_a_hook_or_finish_is_one_sentence(tmp_path, capsys):
    cfg = BigConfig(width=16, num_steps=4)

    def hungry(s, d):  # 8 TB of working memory inside the compiled step
        x = jnp.broadcast_to(s.params["w"][0, 0], (10**12,))
        return s.replace(step=s.step + 1), {"loss": jnp.cumsum(x)[-1]}

    with pytest.raises(ResourceError, match=r"^out of memory during training: XLA could not allocate 8 TB "
                                            r"\(this machine \(CPU\) has .*\), beside a train state of .*; lower "):
        runner.run(_trainer(cfg, step=hungry), 0, chunk_steps=2, mode="scan", progress=False)

    def hook(info):
        jnp.ones((10**13,)).block_until_ready()

    with pytest.raises(ResourceError, match=r"^out of memory during the evaluation between chunks \(the hooks\): "
                                            r"XLA could not allocate 40 TB"):
        runner.run(_trainer(cfg), 0, chunk_steps=2, mode="scan", progress=False, hooks=[hook])

    def finish(res, run_dir):
        jnp.ones((10**13,)).block_until_ready()

    run = tmp_path / "run"
    with pytest.raises(ResourceError, match=r"^out of memory during the final evaluation and plots: XLA could not "
                                            r"allocate 40 TB"):
        fit(Job(_trainer(cfg), finish=finish), run_dir=run, chunk_steps=2, mode="scan", progress=False)
    assert not (run / "results.json").exists()  # not complete: a resume does the evaluation again


def test_the_cli_refuses_an_infeasible_config_in_one_sentence_with_status_2(tmp_path, capsys):
    from jaxgen import registry
    from jaxgen.cli import main

    life.register()
    try:
        run = tmp_path / "run"
        assert main(["train", "life", "--width", str(10**11), "--run-dir", str(run), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("jaxgen: error: this run needs at least 800 GB of memory") and err.count("\n") == 1
        assert err.rstrip().endswith("lower --width.") and not run.exists()
        # an allocation that fails outside a run (jaxgen eval here) is one sentence too
        runner.run(life.make_trainer(life.LifeConfig()), 0, run_dir=run, chunk_steps=6, mode="scan", progress=False)
        life_eval = life.evaluate
        life.evaluate = lambda state, key: {"norm": jnp.ones((10**13,)).sum()}
        try:
            assert main(["eval", str(run)]) == 2
        finally:
            life.evaluate = life_eval
        err = capsys.readouterr().err
        assert err.startswith("jaxgen: error: out of memory during jaxgen eval: XLA could not allocate 40 TB")
        assert err.count("\n") == 1 and "Traceback" not in err
    finally:
        registry.unregister("life")
