"""jaxgen bench: the JSON document's fields on a tiny config (no timing assertions)."""
import dataclasses
import json

import pytest

from jaxgen import bench, cli, registry

TINY_PPO = {"num_envs": 2, "rollout_len": 8, "total_steps": 64, "update_epochs": 1, "num_minibatches": 1,
            "policy.hidden": (8,)}


@pytest.fixture
def tiny_ppo_bench():
    algo = registry.get("ppo")
    registry.register(dataclasses.replace(algo, bench={"quick": [{**TINY_PPO, "_first_steps": 2}]}), replace=True)
    yield
    registry.register(algo, replace=True)


def test_bench_quick_writes_the_table_and_json(tiny_ppo_bench, tmp_path, capsys):
    path = tmp_path / "bench.json"
    # two programs compiled at once (--jobs 2), each timed alone; only the run's first 2 iterations
    assert cli.main(["bench", "--quick", "--algos", "ppo", "--seeds", "1,2", "--repeats", "1", "--jobs", "2",
                     "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    for key in ("jax", "jaxlib", "backend", "device_kind", "cores", "date", "suite", "rows"):
        assert key in doc, key
    assert doc["suite"] == "quick" and doc["backend"] == "cpu" and doc["cores"] >= 1 and doc["compile_jobs"] == 2
    rows = doc["rows"]
    assert [r["seeds"] for r in rows] == [1, 2] and {r["algo"] for r in rows} == {"ppo"}
    for r in rows:
        assert r["unit"] == "env_steps" and r["steps"] == 2  # the first 2 of 4 (64 env steps / (2 envs x 8 steps))
        assert r["units"] == 32 * r["seeds"] and "first 2 steps" in r["config"]
        assert len(r["times"]) == 1 and r["run_s"] > 0 and r["compile_s"] > 0
        assert r["per_s"] == pytest.approx(r["units"] / r["run_s"])
    assert rows[0]["vs_1_seed"] == pytest.approx(1.0)
    out = capsys.readouterr().out
    assert "compile_s" in out and "ppo" in out and "backend" not in out.splitlines()[1]


@pytest.mark.parametrize("argv, words", [
    (["bench", "--algos", "nope"], "unknown algorithm 'nope'"),
    (["bench", "--algos", "ae"], "ae has no quick benchmark config"),
    (["bench", "--seeds", "0"], "--seeds=0 is not accepted"),
    (["bench", "--repeats", "0", "--algos", "tabular"], "--repeats=0 is out of range"),
    (["bench", "--jobs", "0", "--algos", "tabular"], "--jobs=0 is out of range"),
])
def test_bench_bad_input_is_one_sentence(argv, words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_every_registered_family_has_a_quick_config():
    fams = {}
    for name in registry.REGISTRY:
        algo = registry.get(name)
        fams.setdefault(id(algo.fam), []).append(algo)
    for algos in fams.values():
        assert any(a.bench.get("quick") for a in algos), [a.name for a in algos]
    assert bench.cases("quick")  # every quick config validates


def test_first_steps_cuts_a_run_and_its_phases_in_order():
    from jaxgen.core.train import Phase, Trainer

    step = lambda s, d: (s + 1, {"x": s})  # noqa: E731
    one = Trainer(init=lambda k, h: 0, step=step, num_steps=10)
    assert bench.first_steps(one, 3).num_steps == 3 and bench.first_steps(one, 50).num_steps == 10
    assert bench.first_steps(one, None) is one
    two = Trainer.phased(lambda k, h: 0, [Phase("a", step, 2), Phase("b", step, 4), Phase("c", step, 3)])
    cut = bench.first_steps(two, 4)
    assert [(p.name, p.num_steps) for p in cut.phases] == [("a", 2), ("b", 2), ("c", 0)] and cut.num_steps == 4


@pytest.fixture
def tiny_ppo_gpu_bench():
    algo = registry.get("ppo")
    registry.register(dataclasses.replace(algo, bench={"gpu": [{**TINY_PPO, "_seeds": (1, 2), "_repeats": 1}]}), replace=True)
    yield
    registry.register(algo, replace=True)


def test_bench_gpu_suite_uses_each_entrys_seeds_and_repeats(tiny_ppo_gpu_bench, tmp_path):
    """An entry's own ``_seeds`` / ``_repeats`` apply when --seeds / --repeats are not given
    (``_repeats`` 1: one timed call, no untimed one); ``vmap_eff`` = vs_1_seed / seeds."""
    path = tmp_path / "gpu.json"
    assert cli.main(["bench", "--suite", "gpu", "--algos", "ppo", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())["rows"]
    assert [r["seeds"] for r in rows] == [1, 2] and all(len(r["times"]) == 1 for r in rows)
    assert rows[0]["vmap_eff"] == pytest.approx(1.0)
    assert rows[1]["vmap_eff"] == pytest.approx(rows[1]["per_s"] / rows[0]["per_s"] / 2)
    assert "_seeds" not in rows[0]["config"] and "num_envs=2" in rows[0]["config"]


def test_gpu_suite_covers_the_issue_cases():
    """The real gpu suite validates: PPO CartPole 1/64/2048 seeds, PPO Breakout-MinAtar 1e7
    steps (its preset), DQN 1/64 seeds, the conv VAE and the DCGAN at batch 64 and 128."""
    got = {}
    for algo, over, cfg in bench.cases("gpu"):
        got.setdefault(algo.name, []).append((bench.split_entry(over)[2], cfg))
    ppo_seeds = [s for s, c in got["ppo"] if c.env == "CartPole-v1"]
    assert sorted(x for s in ppo_seeds for x in s) == [1, 64, 2048]
    minatar = [c for s, c in got["ppo"] if c.env == "Breakout-MinAtar"]
    assert len(minatar) == 1 and minatar[0].total_steps == 10_000_000
    assert [s for s, _ in got["dqn"]] == [(1, 64)]
    assert [c.arch for _, c in got["vae"]] == ["conv"]
    assert sorted(c.batch_size for _, c in got["gan"]) == [64, 128] and {c.arch for _, c in got["gan"]} == {"dcgan"}
    assert "preset=minatar" in bench.describe({"_preset": "minatar", "_repeats": 1})


def test_versions_name_a_package_without_a_version_attribute():
    """gymnax has no ``__version__``: the installed distribution's version is named instead
    (benchmark headers crashed on it)."""
    from importlib import metadata

    from jaxgen.core import timing

    got = timing.versions("gymnax", "jax", "no_such_package_xyz")
    assert got == (f"gymnax {metadata.version('gymnax')}, jax {metadata.version('jax')}, "
                   "no_such_package_xyz (not installed)")
    assert "gymnax 1." in timing.header("gymnax")
