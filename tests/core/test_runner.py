"""The contract, runner, checkpoints and sweeps, on a small real-data VAE and on a toy trainer."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxgen.core import runner
from jaxgen.core.errors import CheckpointError, ConfigError, DivergenceError
from jaxgen.core.sweep import sweep, vmap_runs
from jaxgen.core.train import Trainer, batch_indices
from jaxgen.generative import autoencoder as ae

SMALL = ae.AEConfig(arch="mlp", hidden=32, latent=4, batch_size=100, epochs=2)


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_batch_indices_is_an_epoch_permutation():
    key = jax.random.PRNGKey(0)
    bi = jax.jit(batch_indices, static_argnums=(2, 3))  # one compile instead of op-by-op dispatch
    e0 = np.concatenate([np.asarray(bi(key, s, 100, 10)) for s in range(10)])
    e1 = np.concatenate([np.asarray(bi(key, s, 100, 10)) for s in range(10, 20)])
    assert sorted(e0) == list(range(100)) and sorted(e1) == list(range(100))
    assert not np.array_equal(e0, e1)


def test_train_is_pure_jit_vmap_and_compiles_once(mnist_small):
    images, _ = mnist_small
    train = jax.jit(ae.make_train(SMALL, {"images": images[:1000]}))
    s0, m0 = train(jax.random.PRNGKey(0))
    s0b, _ = train(jax.random.PRNGKey(0))
    s1, m1 = train(jax.random.PRNGKey(1))
    assert train._cache_size() == 1  # a second (and third) call does not recompile
    assert leaves_equal(s0.params, s0b.params)  # same seed, same result
    assert not np.allclose(m0["loss"], m1["loss"])  # different seeds differ
    assert m0["loss"].shape == (20,)  # metrics have a leading step axis
    assert float(m0["loss"][-1]) < float(m0["loss"][0])
    # many seeds in one compile; run i equals the single run with seed i
    vtrain = jax.jit(jax.vmap(ae.make_train(SMALL, {"images": images[:1000]})))
    vs, vm = vtrain(jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)]))
    np.testing.assert_allclose(vm["loss"][1], m1["loss"], rtol=2e-5, atol=1e-3)


def test_traced_hyperparameters_do_not_recompile(mnist_small):
    images, _ = mnist_small
    train = jax.jit(ae.make_train(SMALL, {"images": images[:1000]}))
    hp = dict(ae.C.hparams(SMALL))
    _, a = train(jax.random.PRNGKey(0), hp)
    _, b = train(jax.random.PRNGKey(0), {**hp, "learning_rate": jnp.float32(1e-4)})
    assert train._cache_size() == 1
    assert float(b["loss"][-1]) > float(a["loss"][-1])  # a 10x smaller step learns slower


def test_resume_is_bit_identical(mnist_small, tmp_path):
    images, _ = mnist_small
    cfg = ae.AEConfig(arch="mlp", hidden=32, latent=4, batch_size=100, epochs=4)
    tr = ae.make_trainer(cfg, {"images": images[:1000]})
    full = runner.run(tr, 7, run_dir=tmp_path / "full", chunk_steps=5, progress=False, mode="loop")
    part = runner.run(tr, 7, run_dir=tmp_path / "part", chunk_steps=5, progress=False, mode="loop", stop_after_chunks=3)
    assert int(part.state.step) == 15
    resumed = runner.run(tr, 7, run_dir=tmp_path / "part", chunk_steps=5, progress=False, resume=True)
    assert int(resumed.state.step) == 40
    assert leaves_equal(resumed.state.params, full.state.params)
    assert leaves_equal(resumed.state.opt_state, full.state.opt_state)
    rows = [json.loads(l) for l in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5 * i for i in range(1, 9)]
    # a checkpoint of another config is refused, naming the difference
    other = ae.make_trainer(ae.AEConfig(arch="mlp", hidden=32, latent=8, batch_size=100, epochs=4), {"images": images[:1000]})
    with pytest.raises(CheckpointError, match="latent"):
        runner.run(other, 7, run_dir=tmp_path / "part", progress=False, resume=True)
    # starting over an existing run without resume is refused (nothing is overwritten)
    with pytest.raises(CheckpointError, match="--resume"):
        runner.run(tr, 7, run_dir=tmp_path / "full", progress=False)


def test_resume_with_scan_mode(mnist_small, tmp_path):
    images, _ = mnist_small
    tr = ae.make_trainer(SMALL, {"images": images[:1000]})
    full = runner.run(tr, 3, run_dir=tmp_path / "a", chunk_steps=4, progress=False, mode="scan")
    runner.run(tr, 3, run_dir=tmp_path / "b", chunk_steps=4, progress=False, mode="scan", stop_after_chunks=2)
    res = runner.run(tr, 3, run_dir=tmp_path / "b", chunk_steps=4, progress=False, resume=True)
    assert res.timings["mode"] == "scan"  # the stored mode is reused
    assert leaves_equal(res.state.params, full.state.params)


class Toy(struct.PyTreeNode):
    step: jax.Array
    x: jax.Array


def _toy_trainer(nan_at):
    def step(s, _):
        x = s.x + 1.0
        loss = jnp.where(s.step >= nan_at, jnp.nan, x)
        return Toy(s.step + 1, x), {"loss": loss}

    return Trainer(init=lambda k, hp=None: Toy(jnp.int32(0), jnp.float32(0)), step=step, num_steps=12)


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(DivergenceError, match=r"step 9.*last good checkpoint \(step 6\)"):
        runner.run(_toy_trainer(7), 0, run_dir=tmp_path / "r", chunk_steps=3, progress=False, mode="scan",
                   checkpoint_every=1)
    from jaxgen.core.checkpoint import Checkpointer

    assert Checkpointer(tmp_path / "r").latest_step() == 6


def test_sigterm_stops_after_the_chunk_with_a_checkpoint_and_resumes(tmp_path, capsys):
    import signal

    from jaxgen.core.checkpoint import Checkpointer

    before = signal.getsignal(signal.SIGTERM)

    def term_after_second_chunk(info):
        if info.step == 6:
            os.kill(os.getpid(), signal.SIGTERM)

    res = runner.run(_toy_trainer(99), 0, run_dir=tmp_path / "r", chunk_steps=3, progress=False, mode="scan",
                     hooks=[term_after_second_chunk], checkpoint_interval_s=1e9)
    assert res.timings["stopped_by"] == "SIGTERM" and int(res.state.step) == 6
    assert Checkpointer(tmp_path / "r").latest_step() == 6
    assert "SIGTERM: stopped at step 6 of 12; checkpoint of step 6 saved" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    done = runner.run(_toy_trainer(99), 0, run_dir=tmp_path / "r", chunk_steps=3, progress=False, mode="scan",
                      resume=True)
    assert done.timings["stopped_by"] is None and int(done.state.step) == 12 and float(done.state.x) == 12.0


def test_runner_overhead_is_accounted_and_modes_agree(mnist_small):
    images, _ = mnist_small
    tr = ae.make_trainer(SMALL, {"images": images[:1000]})
    a = runner.run(tr, 0, chunk_steps=5, progress=False, mode="scan")
    b = runner.run(tr, 0, chunk_steps=5, progress=False, mode="loop")
    for x, y in zip(jax.tree_util.tree_leaves(a.state.params), jax.tree_util.tree_leaves(b.state.params)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    assert a.timings["steps"] == 20 and a.timings["chunks"] == 4
    assert set(a.timings) >= {"compile_s", "run_s", "host_s"}


def test_bad_runner_input():
    tr = _toy_trainer(100)
    with pytest.raises(ConfigError, match="mode='fast'"):
        runner.run(tr, 0, mode="fast", progress=False)
    with pytest.raises(ConfigError, match="chunk_steps=0"):
        runner.run(tr, 0, chunk_steps=0, progress=False)


def test_sweep_grid_and_seeds(mnist_small):
    images, _ = mnist_small
    tr = ae.make_trainer(SMALL, {"images": images[:1000]})
    res = sweep(tr, seeds=2, grid={"learning_rate": [1e-3, 1e-4]}, progress=False)
    assert res.final["loss"].shape == (2, 2)
    lr_hi, lr_lo = res.select(learning_rate=1e-3)["loss"], res.select(learning_rate=1e-4)["loss"]
    assert lr_hi[0] != lr_hi[1]  # seeds differ
    assert np.all(lr_hi < lr_lo)  # the larger step learns faster in 20 steps
    single = runner.run(tr, 1, progress=False, hparams={"learning_rate": 1e-4}, chunk_steps=10)
    np.testing.assert_allclose(res.select(learning_rate=1e-4)["loss"][1], single.history[-1]["loss"], rtol=1e-4)
    with pytest.raises(ConfigError, match="batch_size"):
        sweep(tr, seeds=1, grid={"batch_size": [10, 20]})


def test_vmap_runs_of_one_run_is_the_unbatched_function_with_the_run_axis():
    def f(state, data):  # a pytree in, a pytree out (a Python int among it); data shared by the runs
        return {"x": state["x"] * 2.0 + data, "n": state["n"] + 1, "k": 3}

    state = {"x": jnp.arange(6.0).reshape(1, 2, 3), "n": jnp.zeros((1,), jnp.int32)}
    one = vmap_runs(f, 1, in_axes=(0, None))(state, 1.0)
    ref = jax.vmap(f, in_axes=(0, None))(state, 1.0)
    for k in ref:
        assert one[k].shape == ref[k].shape and one[k].dtype == ref[k].dtype
        np.testing.assert_array_equal(one[k], ref[k])
    np.testing.assert_array_equal(one["x"][0], [[1.0, 3.0, 5.0], [7.0, 9.0, 11.0]])
    assert one["k"].shape == (1,) and int(one["k"][0]) == 3  # the Python int gets the run axis, as under vmap
    # no batching rule in the one-run program: no batched dot (dot_general with a batch dimension)
    w = jnp.ones((1, 3, 4))
    hlo = jax.jit(vmap_runs(lambda a, b: a @ b, 1)).lower(state["x"], w).as_text()
    assert "dot_general" in hlo and "batching_dims" not in hlo
    assert "batching_dims" in jax.jit(jax.vmap(lambda a, b: a @ b)).lower(state["x"], w).as_text()
    # more runs: jax.vmap itself
    two = vmap_runs(f, 2, in_axes=(0, None))({"x": jnp.ones((2, 3)), "n": jnp.zeros((2,), jnp.int32)}, 0.5)
    np.testing.assert_array_equal(two["x"], np.full((2, 3), 2.5))


MULTI = textwrap.dedent("""
    import json, sys, jax, numpy as np
    from jaxgen.core.sweep import sweep, vmap_runs
    from jaxgen.core import sharding
    from jaxgen.data.mnist import load_mnist
    from jaxgen.generative import autoencoder as ae
    images = load_mnist("train", "bundled").images[::6][:800]
    cfg = ae.AEConfig(arch="mlp", hidden=32, latent=4, batch_size=80, epochs=1)
    tr = ae.make_trainer(cfg, {"images": images})
    res = sweep(tr, seeds=3, grid={"learning_rate": [1e-3, 3e-4]}, progress=False, mode="scan")
    # data parallel: the batch axis split over the mesh
    st = tr.init(jax.random.PRNGKey(0))
    mesh = sharding.device_mesh()
    with jax.set_mesh(mesh):
        s2, m = jax.jit(ae.data_step)(st, sharding.replicate(tr.data, mesh))
    # place_runs: 8 runs split over the devices (a vmapped program follows), 6 left on one
    k8 = sharding.place_runs(jax.random.split(jax.random.PRNGKey(0), 8))
    k6 = sharding.place_runs(jax.random.split(jax.random.PRNGKey(0), 6))
    out8 = jax.jit(jax.vmap(lambda k: jax.random.normal(k, (3,)).sum()))(k8)
    placed = [len(x.sharding.device_set) for x in (k8, k6, out8)]
    print(json.dumps({"devices": jax.device_count(), "loss": res.final["loss"].tolist(), "dp": float(m["loss"]),
                      "placed": placed, "placed_out": out8.tolist()}))
""")


def _run_devices(n):
    flags = f"{os.environ.get('JAXGEN_TEST_XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", MULTI], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "stderr": out.stderr}


def test_sharded_over_4_devices_gives_same_results():
    one, four = _run_devices(1), _run_devices(4)
    assert one["devices"] == 1 and four["devices"] == 4
    np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-4)  # 6 runs padded to 8 over 4 devices
    assert "the sweep's 6 runs do not divide over 4 devices; padded to 8 runs" in four["stderr"]
    np.testing.assert_allclose(four["dp"], one["dp"], rtol=1e-5)
    assert one["placed"] == [1, 1, 1] and four["placed"] == [4, 1, 4]  # 6 runs do not divide over 4
    np.testing.assert_allclose(four["placed_out"], one["placed_out"], rtol=1e-6)


def test_from_dict_accepts_a_retired_option_only_at_its_neutral_value():
    import dataclasses

    from jaxgen.core import config as C

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        RETIRED = {"old_flag": False}
        width: int = C.static(4, "width")

    assert C.from_dict(Cfg, {"width": 8, "old_flag": False}) == Cfg(width=8)
    with pytest.raises(ConfigError, match="unknown option\\(s\\) old_flag"):
        C.from_dict(Cfg, {"width": 8, "old_flag": True})


def test_run_written_before_an_option_existed_still_matches_at_that_options_default(tmp_path):
    import dataclasses
    import json as _json

    from jaxgen.core import checkpoint as ck
    from jaxgen.core import config as C

    @dataclasses.dataclass(frozen=True)
    class Old:
        width: int = C.static(4, "width")

    @dataclasses.dataclass(frozen=True)
    class New:
        width: int = C.static(4, "width")
        augment: str = C.static("none", "an option added later")

    ck.write_config(tmp_path, Old(width=8))
    blob = _json.loads((tmp_path / ck.CONFIG_FILE).read_text())
    blob["type"] = "New"  # the same class, one version earlier
    (tmp_path / ck.CONFIG_FILE).write_text(_json.dumps(blob))
    assert C.fingerprint(Old(width=8)) != C.fingerprint(New(width=8))
    ck.check_same_config(tmp_path, New(width=8))  # the new option at its default: accepted
    with pytest.raises(CheckpointError, match="augment"):
        ck.check_same_config(tmp_path, New(width=8, augment="translation"))
    with pytest.raises(CheckpointError, match="width"):
        ck.check_same_config(tmp_path, New(width=16))


def test_resume_may_extend_only_the_fields_a_config_lists(tmp_path):
    import dataclasses
    from typing import ClassVar

    from jaxgen.core import checkpoint as ck
    from jaxgen.core import config as C

    @dataclasses.dataclass(frozen=True)
    class Extendable:
        RESUME_MAY_CHANGE: ClassVar[tuple] = ("epochs",)
        width: int = C.static(4, "width")
        epochs: int = C.static(5, "run length")

    @dataclasses.dataclass(frozen=True)
    class Fixed:
        width: int = C.static(4, "width")
        epochs: int = C.static(5, "run length")

    ck.write_config(tmp_path / "a", Extendable(epochs=5))
    ck.check_same_config(tmp_path / "a", Extendable(epochs=50))  # a longer run: accepted
    with pytest.raises(CheckpointError, match="width"):
        ck.check_same_config(tmp_path / "a", Extendable(width=8, epochs=50))
    ck.write_config(tmp_path / "b", Fixed(epochs=5))
    with pytest.raises(CheckpointError, match="epochs"):
        ck.check_same_config(tmp_path / "b", Fixed(epochs=50))
