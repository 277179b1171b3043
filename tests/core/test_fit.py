"""The one host layer (core/fit.py) and the reusable hooks (core/hooks.py)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxgen.core import fit as F
from jaxgen.core import hooks as H
from jaxgen.core.train import Phase, Trainer


class S(struct.PyTreeNode):
    x: jax.Array
    step: jax.Array
    env_steps: jax.Array | None = None


def _init(key, hp=None):
    return S(x=jnp.zeros(()), step=jnp.zeros((), jnp.int32))


def _add(s, data=None):
    return s.replace(x=s.x + 1.0, step=s.step + 1), {"x": s.x + 1.0}


def _double(s, data=None):
    return s.replace(x=s.x * 2.0, step=s.step + 1), {"y": s.x * 2.0}


def test_hooks_fire_on_epochs_chunks_and_phase_ends(tmp_path):
    calls = {"epochs": [], "chunks": [], "grow": []}
    per = lambda name: (lambda info: calls[name].append((info.phase, info.step)) or {f"{name}_seen": info.step})
    trainer = Trainer.phased(_init, [Phase("count", _add, 12, steps_per_epoch=4), Phase("grow", _double, 6)])
    timed = H.Timed(per("chunks"), name="probe")
    job = F.Job(trainer, hooks=[H.EveryEpochs(per("epochs"), n=2), H.EveryChunks(timed, n=3),
                                H.EveryEpochs(per("grow"), phases=["grow"]), H.Scale(5)],
                curves=("x", "y"), title="toy")
    out = F.fit(job, run_dir=tmp_path, chunk_steps=2, mode="scan", progress=False)
    # epochs of 4 steps in "count": the 2nd epoch (step 8) and the phase's end (12); "grow" has
    # no epochs, so once per chunk of it (14, 16, 18)
    assert calls["epochs"] == [("count", 8), ("count", 12), ("grow", 14), ("grow", 16), ("grow", 18)]
    assert calls["grow"] == [("grow", 14), ("grow", 16), ("grow", 18)]
    assert [s for _, s in calls["chunks"]] == [2, 8, 14, 18]  # chunks 1, 4, 7 and the last
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [5 * r["step"] for r in rows]
    assert float(out["state"].x) == 12.0 * 2**6
    assert out["timings"]["probe_s"] > 0 and out["timings"]["steps"] == 18
    blob = json.loads((tmp_path / "results.json").read_text())
    assert blob["final"]["phase"] == "grow" and "state" not in blob and (tmp_path / "curves.png").is_file()


def test_scale_prefers_a_count_the_state_keeps():
    info = type("I", (), {"state": S(x=jnp.zeros(()), step=jnp.int32(3), env_steps=jnp.int32(17)), "step": 3})()
    assert H.Scale(10)(info) == {"env_steps": 17}
    info.state = S(x=jnp.zeros(()), step=jnp.int32(3))
    assert H.Scale(10)(info) == {"env_steps": 30}


def test_grid_rows_keeps_one_row_per_call(tmp_path):
    first = np.zeros((3, 4, 4, 1), np.float32)
    at = lambda step: type("I", (), {"step": step})()
    rows = H.GridRows(tmp_path, "progress", lambda info: np.full((3, 4, 4, 1), info.step / 100, np.float32), "t",
                      first=first)
    for step in (25, 50):
        rows(at(step))
    kept = np.load(tmp_path / "progress_rows.npy")
    assert kept.shape == (3, 3, 4, 4, 1) and kept[0].max() == 0 and kept[2].min() == 0.5
    assert (tmp_path / "progress.png").is_file()
    rows(at(50))  # a resumed run repeats the chunk of step 50: its row replaces the old one
    rows(at(75))
    kept = np.load(tmp_path / "progress_rows.npy")
    assert [float(r.mean()) for r in kept] == [0.0, 0.25, 0.5, 0.75]
    assert H.GridRows(None, "x", lambda i: first, "t")(at(1)) == {}


def test_grid_and_list_parsing_name_the_bad_option():
    import pytest

    from jaxgen.core.errors import ConfigError

    assert F.parse_grid(["ppo.learning-rate=1e-3,3e-4", "gamma=0.9"]) == {"ppo.learning_rate": [1e-3, 3e-4], "gamma": [0.9]}
    with pytest.raises(ConfigError, match="not of the form NAME=V1,V2"):
        F.parse_grid(["gamma"])
    with pytest.raises(ConfigError, match="--gamma='0.9,x' is not accepted; accepted: a comma-separated list of float values"):
        F.parse_grid(["gamma=0.9,x"])
