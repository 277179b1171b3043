"""Multi-phase runs: a toy trainer whose phase "count" adds ~1 to a counter and whose phase
"grow" multiplies a parameter vector, each with its own metric keys and a little noise from
the run's key (so that "bit-identical" means something)."""
import collections
import functools
import dataclasses
import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxgen.core import config as C
from jaxgen.core import runner
from jaxgen.core.errors import ConfigError, DivergenceError
from jaxgen.core.sweep import sweep
from jaxgen.core.train import Phase, Trainer, make_train

TRACES = collections.Counter()  # phase name -> times its step was traced (= compiled)


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    count_steps: int = C.static(7, "iterations of the counting phase")
    grow_steps: int = C.static(9, "iterations of the growing phase")
    rate: float = C.traced(0.5, "growth per iteration, in percent")


class ToyState(struct.PyTreeNode):
    step: jax.Array
    key: jax.Array
    count: jax.Array
    w: jax.Array
    rate: jax.Array


def _init(key, hp=None):
    rate = jnp.float32(0.5) if hp is None else jnp.asarray(hp["rate"], jnp.float32)
    return ToyState(jnp.int32(0), key, jnp.float32(0), jnp.ones(3, jnp.float32), rate)


def _count(s, _data):
    TRACES["count"] += 1
    noise = 0.1 * jax.random.normal(jax.random.fold_in(s.key, s.step))
    c = s.count + 1.0 + noise
    return s.replace(step=s.step + 1, count=c), {"count": c, "noise": noise}


def _count_step():
    """A new function object each time: compiled programs are cached per step function."""
    return lambda s, data: _count(s, data)


@functools.lru_cache(maxsize=None)  # one function per variant: runs in this process share compiled programs
def _grow_step(start, nan_at=None):
    def grow(s, _data):
        TRACES["grow"] += 1
        noise = 1e-3 * jax.random.normal(jax.random.fold_in(s.key, s.step), (3,))
        w = s.w * (1.0 + 0.01 * s.rate) + noise
        norm = jnp.linalg.norm(w)
        if nan_at is not None:
            norm = jnp.where(s.step >= nan_at, jnp.nan, norm)
        return s.replace(step=s.step + 1, w=w), {"w_norm": norm, "grow_step": (s.step - start).astype(jnp.float32)}

    return grow


def toy(cfg=ToyConfig(), count_epoch=0, nan_at=None, extra=(), fresh=False):
    """The toy trainer; ``fresh``: with new step functions (nothing compiled for them yet)."""
    count = _count_step() if fresh else _count
    grow = _grow_step.__wrapped__(cfg.count_steps, nan_at) if fresh else _grow_step(cfg.count_steps, nan_at)
    phases = [Phase("count", count, cfg.count_steps, steps_per_epoch=count_epoch),
              Phase("grow", grow, cfg.grow_steps), *extra]
    return Trainer.phased(_init, phases, config=cfg)


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb))


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_phased_trainer_describes_its_phases():
    tr = toy()
    assert tr.is_phased and tr.step is None and tr.num_steps == 16 and tr.steps_per_epoch == 0
    assert [p.name for p in tr.schedule] == ["count", "grow"]
    assert tr.phase_starts() == {"count": 0, "grow": 7}
    assert [tr.phase_at(s) for s in (0, 6, 7, 15, 16)] == [(0, 0), (0, 6), (1, 0), (1, 8), (1, 9)]
    plain = Trainer(_init, _count, 5, steps_per_epoch=2)
    assert not plain.is_phased and plain.schedule == (Phase("train", _count, 5, 2),)


def test_make_train_runs_the_phases_in_order_with_metrics_per_phase():
    train = jax.jit(make_train(toy()))
    s, m = train(jax.random.PRNGKey(0))
    s2, _ = train(jax.random.PRNGKey(0))
    assert train._cache_size() == 1 and leaves_equal(s, s2)
    assert set(m) == {"count", "grow"}
    assert set(m["count"]) == {"count", "noise"} and set(m["grow"]) == {"w_norm", "grow_step"}
    assert m["count"]["count"].shape == (7,) and m["grow"]["w_norm"].shape == (9,)
    np.testing.assert_array_equal(m["grow"]["grow_step"], np.arange(9))  # the grow phase's own count
    assert int(s.step) == 16
    np.testing.assert_allclose(float(s.count), 7 + float(jnp.sum(m["count"]["noise"])), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(s.w), 1.005 ** 9, atol=5e-3)
    # vmapped over seeds: the same per-phase metrics with a leading run axis
    vs, vm = jax.jit(jax.vmap(make_train(toy())))(jnp.stack([jax.random.PRNGKey(i) for i in range(3)]))
    assert vm["count"]["count"].shape == (3, 7) and vm["grow"]["w_norm"].shape == (3, 9)
    np.testing.assert_allclose(vs.w[0], s.w, rtol=1e-6)


def test_runner_logs_the_phases_and_equals_make_train(tmp_path):
    tr = toy()
    res = runner.run(tr, 3, run_dir=tmp_path / "r", chunk_steps=3, progress=False, mode="scan")
    rows = rows_of(tmp_path / "r")
    assert [(r["step"], r["phase"]) for r in rows] == [(3, "count"), (6, "count"), (7, "count"),
                                                      (10, "grow"), (13, "grow"), (16, "grow")]
    assert all("count" in r and "w_norm" not in r for r in rows[:3])
    assert all("w_norm" in r and "count" not in r for r in rows[3:])
    assert [r["grow_step"] for r in rows[3:]] == [1.0, 4.0, 7.0]  # chunk means of 0..2, 3..5, 6..8
    assert rows == res.history
    state, _ = jax.jit(make_train(tr))(jax.random.PRNGKey(3))
    assert leaves_equal(res.state, state)
    t = res.timings
    assert t["mode"] == {"count": "scan", "grow": "scan"} and t["chunks"] == 6 and t["steps"] == 16
    assert {k: (v["chunks"], v["steps"]) for k, v in t["phases"].items()} == {"count": (3, 7), "grow": (3, 9)}
    blob = json.loads((tmp_path / "r" / "config.json").read_text())
    assert blob["chunk_mode"] == {"count": "scan", "grow": "scan"} and blob["chunk_steps"] == {"count": 3, "grow": 3}
    loop = runner.run(tr, 3, chunk_steps=3, progress=False, mode="loop")
    for x, y in zip(jax.tree_util.tree_leaves(loop.state), jax.tree_util.tree_leaves(state)):
        np.testing.assert_allclose(x, y, rtol=1e-6)


@pytest.mark.parametrize("mode", ["scan", "loop"])
def test_resume_inside_at_and_across_the_boundary_is_bit_identical(tmp_path, mode):
    tr = toy()
    go = dict(chunk_steps=3, progress=False, mode=mode)
    full = runner.run(tr, 5, run_dir=tmp_path / "full", **go)
    full_rows = [(r["step"], r["phase"]) for r in rows_of(tmp_path / "full")]
    # stopped after 2 chunks: inside "count" (step 6); after 3: exactly at the boundary (7);
    # after 4: inside "grow" (10)
    for stop, at in [(2, 6), (3, 7), (4, 10)]:
        d = tmp_path / f"stop{stop}"
        part = runner.run(tr, 5, run_dir=d, stop_after_chunks=stop, **go)
        assert int(part.state.step) == at
        res = runner.run(tr, 5, run_dir=d, resume=True, **go)
        assert leaves_equal(res.state, full.state), stop
        assert [(r["step"], r["phase"]) for r in rows_of(d)] == full_rows
    # stopped twice, across the boundary: 6 -> 10 -> end
    d = tmp_path / "twice"
    runner.run(tr, 5, run_dir=d, stop_after_chunks=2, **go)
    mid = runner.run(tr, 5, run_dir=d, resume=True, stop_after_chunks=2, **go)
    assert int(mid.state.step) == 10 and [r["phase"] for r in mid.history] == ["count"] * 3 + ["grow"]
    res = runner.run(tr, 5, run_dir=d, resume=True, **go)
    assert leaves_equal(res.state, full.state)


def test_sigterm_at_the_phase_boundary_stops_and_resumes(tmp_path, capsys):
    def term_when_counting_is_done(info):
        if info.phase == "count" and info.phase_done:
            os.kill(os.getpid(), signal.SIGTERM)

    go = dict(chunk_steps=3, progress=False, mode="scan")
    full = runner.run(toy(), 1, **go)
    res = runner.run(toy(), 1, run_dir=tmp_path / "r", hooks=[term_when_counting_is_done], **go)
    assert res.timings["stopped_by"] == "SIGTERM" and int(res.state.step) == 7
    assert "stopped at step 7 of 16 (in phase 'count')" in capsys.readouterr().err
    done = runner.run(toy(), 1, run_dir=tmp_path / "r", resume=True, **go)
    assert leaves_equal(done.state, full.state)


@pytest.mark.parametrize("mode", ["scan", "loop"])
def test_each_phase_compiles_once_per_chunk_length(mode):
    seen = []
    TRACES.clear()
    tr = toy(fresh=True)
    hook = lambda info: seen.append(dict(TRACES))  # noqa: E731  (traces so far, after each chunk)
    runner.run(tr, 0, chunk_steps=3, progress=False, mode=mode, hooks=[hook])
    # count: chunks of 3, 3, 1; grow: 3, 3, 3 -- one program per phase in either mode (scan: one
    # loop program for every chunk length); nothing is traced again after a phase's first chunk
    assert seen[0] == {"count": 1} and seen[1] == seen[0]
    assert seen[2] == {"count": 1}
    assert seen[3] == seen[4] == seen[5] == {**seen[2], "grow": 1}
    # the programs are cached for the process: the same run again (e.g. resumed) compiles nothing
    seen.clear()
    res = runner.run(tr, 0, chunk_steps=3, progress=False, mode=mode, hooks=[hook])
    assert seen[-1] == seen[0] == {"count": 1, "grow": 1}
    assert res.timings["compile_s"] < 0.05


def test_auto_mode_is_chosen_per_phase_and_kept_on_resume(tmp_path):
    d = tmp_path / "r"
    part = runner.run(toy(), 2, run_dir=d, chunk_steps=3, progress=False, stop_after_chunks=2)
    blob = json.loads((d / "config.json").read_text())
    assert set(blob["chunk_mode"]) == {"count"}  # "grow" not reached yet: not chosen yet
    assert set(part.timings["probe_s_per_step"]) == {"count"}
    forced = {"loop": "scan", "scan": "loop"}[blob["chunk_mode"]["count"]]  # stored: the resumed run obeys it
    blob["chunk_mode"]["count"] = forced
    (d / "config.json").write_text(json.dumps(blob))
    res = runner.run(toy(), 2, run_dir=d, chunk_steps=3, progress=False, resume=True)
    assert res.timings["mode"]["count"] == forced and res.timings["mode"]["grow"] in ("scan", "loop")
    assert json.loads((d / "config.json").read_text())["chunk_mode"] == res.timings["mode"]


def test_hooks_see_the_phase_and_its_own_epochs(tmp_path):
    seen = []

    def hook(info):
        seen.append((info.step, info.phase, info.phase_index, info.phase_step, info.phase_num_steps,
                     info.phase_epoch, info.phase_done))
        return {"hooked": info.phase_index}

    # "count" chunks by its epoch (3); "grow" by the chunk_steps given for it
    res = runner.run(toy(count_epoch=3), 0, chunk_steps={"grow": 4}, progress=False, mode="scan", hooks=[hook])
    assert seen == [(3, "count", 0, 3, 7, 1, False), (6, "count", 0, 6, 7, 2, False), (7, "count", 0, 7, 7, 2, True),
                    (11, "grow", 1, 4, 9, 0, False), (15, "grow", 1, 8, 9, 0, False), (16, "grow", 1, 9, 9, 0, True)]
    assert [r["hooked"] for r in res.history] == [0, 0, 0, 1, 1, 1]


def test_progress_bar_and_rows_name_the_phase(capsys):
    runner.run(toy(), 0, chunk_steps=3, progress=True, mode="scan")
    err = capsys.readouterr().err
    assert "count" in err and "grow:" in err and err.index("count") < err.index("grow:")
    one = runner.run(Trainer(_init, _count, 4), 0, chunk_steps=2, progress=False, mode="scan")
    assert [r["phase"] for r in one.history] == ["train", "train"] and one.timings["mode"] == "scan"


def test_sweep_over_seeds_and_a_traced_rate_of_a_phased_trainer():
    tr = toy()
    res = sweep(tr, seeds=[0, 1, 2], grid={"rate": [0.5, 2.0]}, progress=False, mode="scan", chunk_steps=3)
    assert res.final["w_norm"].shape == (2, 3) and "count" not in res.final  # the last phase's metrics
    assert res.final_by_phase["count"]["count"].shape == (2, 3)
    assert np.all(res.select(rate=2.0)["w_norm"] > res.select(rate=0.5)["w_norm"])
    assert [r["phase"] for r in res.history] == ["count"] * 3 + ["grow"] * 3
    single = runner.run(tr, 1, progress=False, mode="scan", chunk_steps=3, hparams={"rate": 2.0})
    np.testing.assert_allclose(res.state.w[4], single.state.w, rtol=1e-6)  # run (rate 2.0, seed 1)
    np.testing.assert_allclose(res.state.count[4], single.state.count, rtol=1e-6)


def test_zero_length_phase_is_skipped_and_bad_phases_are_refused():
    tail = Phase("polish", _count, 0)
    tr = toy(extra=(tail,))
    res = runner.run(tr, 0, chunk_steps=3, progress=False, mode="scan")
    assert [r["phase"] for r in res.history] == ["count"] * 3 + ["grow"] * 3 and int(res.state.step) == 16
    _, m = jax.jit(make_train(tr))(jax.random.PRNGKey(0))
    assert m["polish"]["count"].shape == (0,)
    with pytest.raises(ConfigError, match="'count' is used twice"):
        Trainer.phased(_init, [Phase("count", _count, 2), Phase("count", _count, 3)])
    with pytest.raises(ConfigError, match="num_steps=-1"):
        Trainer.phased(_init, [Phase("a", _count, -1)])
    with pytest.raises(ConfigError, match="phases is empty"):
        Trainer.phased(_init, [])
    with pytest.raises(ConfigError, match="'nope'.*phases: count, grow"):
        runner.run(toy(), 0, chunk_steps={"nope": 3}, progress=False)
    with pytest.raises(ConfigError, match="chunk_steps=0 for phase 'grow'"):
        runner.run(toy(), 0, chunk_steps={"grow": 0}, progress=False)


def test_divergence_names_the_phase(tmp_path):
    with pytest.raises(DivergenceError, match=r"step 10 \(phase 'grow', its step 3 of 9\).*w_norm.*\(step 7\)"):
        runner.run(toy(nan_at=8), 0, run_dir=tmp_path / "r", chunk_steps=3, progress=False, mode="scan",
                   checkpoint_every=1)
