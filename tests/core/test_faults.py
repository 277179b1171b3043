"""Faults in a run's life: a real process SIGKILLed at every point of it and resumed, damaged and
incomplete checkpoints, one writer per run directory, divergence of the parameters, and
clean failures (one sentence, non-zero status, no teardown tracebacks).

The run is ``tests/core/life_prog.py``: two phases of 6 steps, chunks of 2, a checkpoint
after every chunk (so the checkpoints are at steps 2, 4, ..., 12; the phase boundary is 6).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import runner
from jaxgen.core.errors import BusyError, CheckpointError, DivergenceError
from jaxgen.core.fit import fit
from jaxgen.core.train import Trainer

sys.path.insert(0, str(Path(__file__).parent))
import life_prog as life  # noqa: E402

PROG = Path(__file__).parent / "life_prog.py"
ROOT = Path(__file__).resolve().parents[2]


def _job():
    return life.LifeFamily().job(None, life.LifeConfig(), None)


def _template():
    return life.init(jax.random.PRNGKey(0), life.LifeConfig())


def _final_state(run_dir: Path):
    c = ckpt.Checkpointer(run_dir)
    try:
        return c.latest_step(), c.restore(_template())
    finally:
        c.close()


def _rows(run_dir: Path) -> list:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def _same_state(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (in this process)."""
    d = tmp_path_factory.mktemp("life") / "reference"
    out = fit(_job(), run_dir=d, progress=False)
    return d, out


def _launch(run_dir: Path, block: str | None, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    env.pop("LIFE_BLOCK", None)
    if block:
        env["LIFE_BLOCK"] = block
    return subprocess.Popen([sys.executable, str(PROG), "fit", str(run_dir), *extra], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_blocked(procs: dict, timeout: float = 120.0) -> None:
    t = time.monotonic()
    pending = dict(procs)
    while pending:
        for d, p in list(pending.items()):
            if (d / "blocked").is_file():
                pending.pop(d)
            elif p.poll() is not None:
                raise AssertionError(f"{d.name} exited ({p.returncode}) before blocking: {p.communicate()}")
        if time.monotonic() - t > timeout:
            raise AssertionError(f"not blocked after {timeout}s: {[d.name for d in pending]}")
        time.sleep(0.05)


def test_a_run_killed_at_every_point_of_its_life_resumes_to_the_uninterrupted_result(reference, tmp_path, capsys):
    ref_dir, ref = reference
    ref_step, ref_state = _final_state(ref_dir)
    # one real process per point, all at once; each blocks where it is to be killed
    points = {"before_first_checkpoint": "step:2", "mid_phase": "step:4", "at_phase_boundary": "step:8",
              "in_finish": "finish"}
    dirs = {name: tmp_path / name for name in points}
    procs = {dirs[name]: _launch(dirs[name], block) for name, block in points.items()}
    # a damaged only checkpoint, resumed by a real process: one sentence, status 2, no teardown noise
    broken = tmp_path / "broken"
    runner.run(life.make_trainer(life.LifeConfig()), 0, run_dir=broken, chunk_steps=2, mode="scan", progress=False,
               stop_after_chunks=1)
    for f in (broken / "checkpoints" / "2").rglob("*"):  # cut short: reads fail while others are in flight
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    failing = _launch(broken, None, "--resume")
    try:
        _wait_blocked(procs)
        # one writer per run directory: the live process holds the lock
        with pytest.raises(BusyError, match=rf"{dirs['mid_phase']} is being written by another jaxgen run \(pid "
                                            rf"{procs[dirs['mid_phase']].pid}\)"):
            fit(_job(), run_dir=dirs["mid_phase"], resume=True, progress=False)
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait()
    out, err = failing.communicate(timeout=120)
    assert failing.returncode == 2, (out, err)
    assert err.count("\n") == 1 and "no intact checkpoint in" in err and "damaged or incomplete" in err
    assert "Traceback" not in err and "Event loop is closed" not in err

    saved = {name: ckpt.Checkpointer(d).steps() for name, d in dirs.items()}
    assert saved == {"before_first_checkpoint": [], "mid_phase": [2], "at_phase_boundary": [6, 4],
                     "in_finish": [12, 10]}
    assert not (dirs["in_finish"] / "results.json").exists()
    capsys.readouterr()
    for name, d in dirs.items():
        (d / "blocked").unlink()
        res = fit(_job(), run_dir=d, resume=True, progress=False)  # the killed run's lock is not stale
        err = capsys.readouterr().err
        if name == "before_first_checkpoint":
            assert "holds no checkpoint yet" in err and "starting it from the beginning" in err
        assert res["timings"]["start_step"] == (saved[name] or [0])[0]
        step, state = _final_state(d)
        assert step == ref_step == 12 and _same_state(state, ref_state), name
        assert _rows(d) == _rows(ref_dir), name  # the log has each chunk once
        assert res["norm"] == ref["norm"] and json.loads((d / "finish.json").read_text())["norm"] == ref["norm"]
        blob = json.loads((d / "results.json").read_text())
        assert blob["final"] == {**ref["final"], "wall_s": blob["final"]["wall_s"]} and blob["norm"] == ref["norm"]
        assert (d / "curves.png").is_file()
    # resumed once more, the completed run says so and evaluates nothing
    d = dirs["in_finish"]
    (d / "finish.json").unlink()
    again = fit(_job(), run_dir=d, resume=True, progress=False)
    said = capsys.readouterr().out
    assert said == f"the run in {d} is complete (12 of 12 steps); its results are in {d / 'results.json'}.\n"
    assert again["complete"] and again["norm"] == ref["norm"] and not (d / "finish.json").exists()
    assert _same_state(again["state"], ref_state)


def test_resuming_a_finished_run_through_the_cli_says_where_its_results_are(tmp_path, capsys):
    from jaxgen import registry
    from jaxgen.cli import main

    life.register()
    try:
        run = tmp_path / "run"
        assert main(["train", "life", "--run-dir", str(run), "--no-progress"]) == 0
        first = capsys.readouterr().out
        assert main(["train", "life", "--resume", str(run), "--no-progress"]) == 0
        out = capsys.readouterr()
        assert f"the run in {run} is complete (12 of 12 steps); its results are in {run / 'results.json'}." in out.out
        assert out.out.splitlines()[-2:] == first.splitlines()[-2:]  # the stored summary, as first printed
        assert "Traceback" not in out.err
        (run / "results.json").unlink()  # killed during the final evaluation: the resume finishes it
        assert main(["train", "life", "--resume", str(run), "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert "n/a steps/s" in out and (run / "results.json").is_file()  # a summary of 0 new steps
    finally:
        registry.unregister("life")


@pytest.mark.parametrize("damage", ["truncated", "missing_file", "no_commit_marker"])
def test_a_damaged_newest_checkpoint_is_passed_over_and_the_run_resumes_from_the_previous(damage, reference, tmp_path,
                                                                                          capsys):
    ref_dir, _ = reference
    _, ref_state = _final_state(ref_dir)
    d = tmp_path / "run"
    tr = life.make_trainer(life.LifeConfig())
    go = dict(chunk_steps=2, mode="scan", progress=False, checkpoint_every=1)
    runner.run(tr, 0, run_dir=d, stop_after_chunks=4, **go)  # checkpoints 6 and 8
    newest = d / "checkpoints" / "8"
    if damage == "truncated":  # a file cut short
        for f in newest.rglob("*"):
            if f.is_file() and f.parent.name == "d":
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    elif damage == "missing_file":
        (newest / "default" / "_METADATA").unlink()
    else:  # a kill during the save: the commit marker, written last, is missing
        (newest / ckpt.COMMIT_MARKER).unlink()
    (d / "checkpoints" / "10.orbax-checkpoint-tmp-123").mkdir()  # and a cut-short save of the next one
    capsys.readouterr()
    res = runner.run(tr, 0, run_dir=d, resume=True, **go)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"checkpoint {newest.absolute()} is ")
    assert err[0].endswith(f"(moved to {(d / ckpt.DAMAGED_DIR).absolute()}); using the previous one, step 6.")
    assert ("no commit marker" in err[0]) == (damage == "no_commit_marker")
    assert res.timings["start_step"] == 6 and _same_state(res.state, ref_state)
    assert sorted(os.listdir(d / "checkpoints")) == ["10", "12"] and (d / ckpt.DAMAGED_DIR / "8").is_dir()
    assert [r["step"] for r in res.history] == [2, 4, 6, 8, 10, 12]


def test_no_intact_checkpoint_is_one_sentence_and_eval_does_not_move_anything(tmp_path, capsys):
    d = tmp_path / "run"
    tr = life.make_trainer(life.LifeConfig())
    runner.run(tr, 0, run_dir=d, chunk_steps=2, mode="scan", progress=False, checkpoint_every=1, stop_after_chunks=2)
    (d / "checkpoints" / "4" / ckpt.COMMIT_MARKER).unlink()
    # a reader (jaxgen eval / sample) falls back too, but leaves the run directory as it is
    state = ckpt.restore_run(d, life.LifeConfig, life.init)
    assert int(state.step) == 2 and "using the previous one, step 2" in capsys.readouterr().err
    assert (d / "checkpoints" / "4").is_dir()
    (d / "checkpoints" / "2" / "default" / "_METADATA").unlink()
    with pytest.raises(CheckpointError, match=r"^no intact checkpoint in .*\(4: incomplete \(no commit marker.*; "
                                              r"2: damaged or incomplete \(FileNotFoundError\)\); start a new run"):
        runner.run(tr, 0, run_dir=d, resume=True, chunk_steps=2, mode="scan", progress=False)


def test_a_fresh_start_in_a_directory_killed_before_its_first_checkpoint_keeps_no_old_rows(tmp_path):
    """(and a log line cut short by the kill is no error)"""
    d = tmp_path / "run"
    d.mkdir()
    (d / "metrics.jsonl").write_text(json.dumps({"step": 2, "phase": "warm", "loss": 1.0}) + '\n{"step": 4, "ph')
    res = runner.run(life.make_trainer(life.LifeConfig()), 0, run_dir=d, chunk_steps=4, mode="scan", progress=False)
    assert [r["step"] for r in _rows(d)] == [4, 6, 10, 12] and len(res.history) == 4


def test_a_second_writer_is_refused_in_one_sentence_and_the_lock_is_reentrant(tmp_path, capsys):
    from jaxgen import registry
    from jaxgen.cli import main

    d = tmp_path / "run"
    fit(_job(), run_dir=d, progress=False)
    with ckpt.lock(d):
        with ckpt.lock(d):  # fit holds it and the runner takes it again
            pass
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from jaxgen.core import checkpoint as c\n"
                               "with c.lock(sys.argv[1]):\n    print('held', flush=True); sys.stdin.read()", str(d)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    life.register()
    try:
        assert holder.stdout.readline() == "held\n"
        capsys.readouterr()
        for argv in (["--resume", str(d)], ["--run-dir", str(d)]):
            assert main(["train", "life", *argv, "--no-progress"]) == 2
            err = capsys.readouterr().err
            assert err == (f"jaxgen: error: {d} is being written by another jaxgen run (pid {holder.pid}); wait for it "
                           "to end or stop it, or choose another run directory.\n")
        holder.communicate("")
        with ckpt.lock(d):  # released when its holder ended
            pass
        assert main(["train", "life", "--resume", str(tmp_path / "nothing"), "--no-progress"]) == 2
        assert "is not a jaxgen run directory" in capsys.readouterr().err and not (tmp_path / "nothing").exists()
    finally:
        registry.unregister("life")
        if holder.poll() is None:
            holder.kill()


# --------------------------------------------------------------------------- divergence of the state

class Toy(struct.PyTreeNode):
    step: jax.Array
    w: jax.Array
    sentinel: jax.Array
    hparams: dict


def _toy(nan_at: int, where: str = "w") -> Trainer:
    def init(key, hp=None):  # an inf clip norm and a NaN sentinel are no divergence
        return Toy(jnp.int32(0), jnp.ones(3), jnp.full(2, jnp.nan), {"max_norm": jnp.float32(jnp.inf)})

    def step(s, _):  # w turns inf, or the inf clip norm NaN
        bad = jnp.where(s.step + 1 >= nan_at, jnp.inf if where == "w" else jnp.nan, 1.0)
        w = s.w * (bad if where == "w" else 1.0)
        hp = {"max_norm": s.hparams["max_norm"] * (bad if where == "hparams" else 1.0)}
        return s.replace(step=s.step + 1, w=w, hparams=hp), {"loss": jnp.float32(1.0)}  # the metric stays finite

    return Trainer(init=init, step=step, num_steps=12)


@pytest.mark.parametrize("chunk_mode", ["scan", "loop"])
def test_a_nan_or_inf_in_the_parameters_stops_the_run_even_with_finite_metrics(chunk_mode, tmp_path):
    with pytest.raises(DivergenceError, match=r"^training diverged at step 9: parameter 'w' of the state holds NaN or "
                                              r"inf although the metrics are finite; the last good checkpoint \(step "
                                              r"6\) is kept in "):
        runner.run(_toy(8), 0, run_dir=tmp_path / "r", chunk_steps=3, progress=False, mode=chunk_mode,
                   checkpoint_every=1)
    assert ckpt.Checkpointer(tmp_path / "r").latest_step() == 6
    with pytest.raises(DivergenceError, match=r"step 3: parameter 'hparams/max_norm'"):  # inf -> NaN is divergence
        runner.run(_toy(2, "hparams"), 0, chunk_steps=3, progress=False, mode=chunk_mode)
    res = runner.run(_toy(99), 0, chunk_steps=3, progress=False, mode=chunk_mode)  # inf / NaN from the start: fine
    assert int(res.state.step) == 12
    res = runner.run(_toy(8), 0, chunk_steps=3, progress=False, mode=chunk_mode, check_finite=False)
    assert int(res.state.step) == 12


def test_the_vae_of_the_issue_resumed_when_finished_or_killed_in_its_final_evaluation(mnist_small, mnist_test_small,
                                                                                     tmp_path, capsys):
    """``jaxgen train vae --resume R`` of a finished run (or of one killed after its last
    checkpoint, during the final evaluation) used to end in a traceback from the summary."""
    from jaxgen import registry
    from jaxgen.generative import ae_fit
    from jaxgen.generative import autoencoder as ae

    cfg = ae.AEConfig(model="vae", hidden=64, epochs=1, batch_size=100)
    run = tmp_path / "vae"
    go = dict(run_dir=run, iwae_k=0, progress=False, mode="loop")
    first = ae_fit.fit(cfg, mnist_small[0][:300], *mnist_test_small, **go)
    algo = registry.get("vae")
    lines = ae_fit.FAMILY.report(algo, first)
    capsys.readouterr()
    done = ae_fit.fit(cfg, mnist_small[0][:300], *mnist_test_small, resume=True, **go)
    assert f"the run in {run} is complete (3 of 3 steps)" in capsys.readouterr().out
    assert done["complete"] and ae_fit.FAMILY.report(algo, done) == lines  # the stored summary
    (run / "results.json").unlink()  # as a kill during the final evaluation leaves it
    again = ae_fit.fit(cfg, mnist_small[0][:300], *mnist_test_small, resume=True, **go)
    assert again["timings"]["steps"] == 0 and again["test"] == first["test"]
    assert "n/a steps/s" in ae_fit.FAMILY.report(algo, again)[0] and (run / "results.json").is_file()
