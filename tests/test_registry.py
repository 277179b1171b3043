"""The registry: a tiny new algorithm (a module + one entry) gets train / sweep / eval with no
other edit, and every registered algorithm's commands are generated from its entry."""
import dataclasses
import json
import sys

import jax
import jax.numpy as jnp
import pytest
from flax import struct

from jaxgen import registry
from jaxgen.cli import build_parser, main
from jaxgen.core import config as C
from jaxgen.core.fit import Family
from jaxgen.core.train import Trainer


# --- the tiny algorithm: gradient descent on (w - target)^2, as a plain module --------------

@dataclasses.dataclass(frozen=True)
class TinyConfig:
    num_steps: int = C.static(40, "gradient steps")
    learning_rate: float = C.traced(0.1, "step size")
    target: float = C.traced(3.0, "the minimiser")


class TinyState(struct.PyTreeNode):
    w: jax.Array
    key: jax.Array
    step: jax.Array
    hparams: dict
    config: TinyConfig = struct.field(pytree_node=False)


def init(key, config, hparams=None):
    hp = C.hparams(config, hparams)
    return TinyState(w=jax.random.normal(key, ()), key=key, step=jnp.zeros((), jnp.int32), hparams=hp, config=config)


def update(state, data=None):
    hp = state.hparams
    grad = 2.0 * (state.w - hp["target"])
    w = state.w - hp["learning_rate"] * grad
    return state.replace(w=w, step=state.step + 1), {"loss": (w - hp["target"]) ** 2}


def make_trainer(config):
    return Trainer(init=lambda key, hp=None: init(key, config, hp), step=update, num_steps=config.num_steps, config=config)


def evaluate(state, key):
    return {"w": state.w, "distance": jnp.abs(state.w - state.hparams["target"])}


@pytest.fixture
def tiny():
    algo = registry.register(registry.Algorithm("tiny", sys.modules[__name__], TinyConfig, Family(), "a tiny test algorithm"))
    yield algo
    registry.unregister("tiny")


def test_a_new_algorithm_gets_train_sweep_and_eval(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "tiny", "--num-steps", "30", "--target", "2.5", "--run-dir", str(run), "--no-progress",
                 "--chunk-steps", "10"]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["config"] == {"num_steps": 30, "learning_rate": 0.1, "target": 2.5}
    assert res["final"]["step"] == 30 and res["final"]["loss"] < 1e-4
    assert (run / "curves.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["w"] - 2.5) < 1e-2 and out["distance"] < 1e-2
    # sweep: 2 learning rates x 2 seeds in one compile; a tiny rate is still far from the target
    assert main(["sweep", "tiny", "--grid", "learning_rate=0.2,0.001", "--seeds", "2", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "4 runs" in lines[0] and lines[1].split() == ["learning_rate", "seed", "loss"]
    rows = [l.split() for l in lines[2:]]
    assert [r[:2] for r in rows] == [["0.2", "0"], ["0.2", "1"], ["0.001", "0"], ["0.001", "1"]]
    assert all(float(r[2]) < 1e-6 for r in rows[:2]) and all(float(r[2]) > 1e-2 for r in rows[2:])


def test_bad_options_of_a_new_algorithm_are_one_sentence(tiny, tmp_path, capsys):
    assert main(["sweep", "tiny", "--grid", "num_steps=1,2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "'num_steps' cannot be swept in one compile" in err and err.count("\n") == 1
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a jaxgen run directory" in capsys.readouterr().err


def test_every_entry_has_its_commands():
    parser = build_parser()
    sub = {a.dest: a for a in parser._subparsers._group_actions}["command"].choices
    for command in ("train", "sweep"):
        algos = sub[command]._subparsers._group_actions[0].choices
        assert set(algos) == set(registry.names(command)) >= {"vae", "ae", "dae", "gan", "dqn", "ppo", "reinforce"}
    assert set(registry.names("sample")) >= {"vae", "gan"} and "render" in registry.get("ppo").commands
    assert registry.names("inspect") == ["dqn"]
    with pytest.raises(Exception, match="unknown algorithm 'nope'"):
        registry.get("nope")
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.get("ppo"))


def test_a_run_directory_maps_back_to_its_entry(tmp_path):
    from jaxgen.core.checkpoint import write_config
    from jaxgen.generative.autoencoder import AEConfig

    write_config(tmp_path, AEConfig(model="dae"))
    assert registry.for_run(tmp_path).name == "dae"
    with pytest.raises(Exception, match="jaxgen render takes runs of: ppo, reinforce"):
        registry.for_run(tmp_path, "render")
