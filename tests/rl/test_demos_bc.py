"""Demonstrations (the shared expert files, jaxgen's own files, bad files, subsets) and
behavioural cloning (probe tasks reaching the expert action, seeds, no recompilation, early
stopping, warm start into PPO)."""
import math
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core.errors import ConfigError, DataError
from jaxgen.rl import bc, demos, ppo
from jaxgen.rl.policies import PolicyNetConfig
from tests.conftest import SHARED_DATA

CARTPOLE = SHARED_DATA / "expert_rollouts" / "cartpole.npz"
PENDULUM = SHARED_DATA / "expert_rollouts" / "pendulum.npz"


def one_sentence(msg: str, *words):
    assert "\n" not in msg and msg.endswith("."), msg
    for w in words:
        assert w in msg, (w, msg)


# --------------------------------------------------------------------------- the shared files

def test_cartpole_file_episode_boundaries():
    d = demos.load(CARTPOLE, "CartPole-v1")
    assert d.num_trajectories == 57 and d.num_transitions == 26964 and d.action.dtype == np.int32
    assert d.lengths.sum() == 26964 and d.boundaries[-1] == 26964 and d.lengths[:3].tolist() == [458, 442, 447]
    raw = np.load(CARTPOLE)
    # trajectory 1's first observation is obs row 459 (trajectory 0 has 458 actions and 459 observations)
    np.testing.assert_array_equal(d.trajectory(1)["obs"][0], raw["obs"][459])
    np.testing.assert_array_equal(d.trajectory(0)["next_obs"][-1], raw["obs"][458])  # its final observation
    t = d.trajectory(3)
    np.testing.assert_array_equal(t["obs"][1:], t["next_obs"][:-1])  # within a trajectory: consecutive
    assert math.isclose(d.mean_return, 473.0526, abs_tol=1e-3) and d.returns.min() == 393 and d.returns.max() == 500


def test_pendulum_file():
    d = demos.load(PENDULUM, "Pendulum-v1")
    assert d.num_trajectories == 56 and d.action.shape == (11200, 1) and set(d.lengths.tolist()) == {200}
    assert math.isclose(d.mean_return, -189.4005, abs_tol=1e-3)
    assert d.obs.shape == (11200, 3) and np.all(np.abs(d.action) <= 2.0)


def test_reacher_expert_file_kept_in_the_repository():
    """Reacher-misc's expert (recorded by `jaxgen expert Reacher-misc --preset reacher`) is the
    env's default file: 32 complete 100-step trajectories, its json's mean return well above a
    random policy's (17.4)."""
    import json

    path = demos.shared_file("Reacher-misc")
    assert path == demos.REPO_DIR / "benchmarks/notes/imitation/Reacher-misc/expert.npz" and "Reacher-misc" in demos.expert_envs()
    d = demos.load(path, "Reacher-misc")
    assert d.num_trajectories == 32 and set(d.lengths.tolist()) == {100} and not d.terminal.any()
    assert d.obs.shape == d.next_obs.shape == (3200, 8) and d.action.shape == (3200, 2) and np.all(np.abs(d.action) <= 1.0)
    s = json.loads(path.with_suffix(".json").read_text())
    assert s["env"] == "Reacher-misc" and s["num_trajectories"] == 32 and s["ppo"]["env"] == "Reacher-misc"
    assert math.isclose(s["mean_return"], d.mean_return, rel_tol=1e-6) and math.isclose(d.expert_return, d.mean_return, rel_tol=1e-6)
    assert d.mean_return > 40.0  # random: 17.4
    cfg = bc.validate(bc.PRESETS["reacher"])  # the preset finds it without demos=PATH
    assert cfg.env == "Reacher-misc" and bc.loss_kind(cfg) == "nll"


def test_subsample_is_reproducible_and_nested():
    d = demos.load(CARTPOLE)
    a, b = demos.subsample(d, 4, seed=3), demos.subsample(d, 4, seed=3)
    np.testing.assert_array_equal(a.obs, b.obs)
    c = demos.subsample(d, 4, seed=4)
    assert not np.array_equal(a.lengths, c.lengths) or not np.array_equal(a.obs, c.obs)
    one, sixteen = demos.subsample(d, 1, seed=3), demos.subsample(d, 16, seed=3)
    np.testing.assert_array_equal(one.obs, a.obs[: one.num_transitions])  # 1 among the 4 among the 16
    np.testing.assert_array_equal(a.obs, sixteen.obs[: a.num_transitions])
    assert demos.subsample(d, None).num_trajectories == 57
    with pytest.raises(ConfigError) as e:
        demos.subsample(d, 58)
    one_sentence(str(e.value), "num_trajectories=58", "[1, 57]")
    # the device form: the prefix of k trajectories
    arr = demos.device_arrays(d, seed=3)
    assert int(demos.prefix_size(arr["ends"], 4.0)) == a.num_transitions
    np.testing.assert_array_equal(np.asarray(arr["obs"][: a.num_transitions]), a.obs)


def test_save_and_load_jaxgen_file(tmp_path):
    d = demos.subsample(demos.load(PENDULUM, "Pendulum-v1"), 2, seed=0)._replace(expert_return=-150.0)
    p = demos.save(tmp_path / "x.npz", d)
    e = demos.load(p, "Pendulum-v1")
    for f in ("obs", "next_obs", "action", "reward", "lengths", "terminal"):
        np.testing.assert_array_equal(getattr(e, f), getattr(d, f))
    assert e.env == "Pendulum-v1" and e.expert_return == -150.0
    with np.load(p, allow_pickle=False) as z:  # plain arrays: loads without pickle
        assert "env" in z.files


# --------------------------------------------------------------------------- bad files

def _imitation_like(tmp_path, name, **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def test_bad_files_are_one_sentence(tmp_path):
    with pytest.raises(DataError) as e:
        demos.load(tmp_path / "nope.npz")
    one_sentence(str(e.value), "nope.npz", "does not exist")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(DataError) as e:
        demos.load(junk)
    one_sentence(str(e.value), "junk.npz", "not a readable npz", "accepted")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obs=np.array([{"a": 1}], dtype=object), acts=np.zeros(1), indices=np.zeros(0), terminal=np.ones(1))
    with pytest.raises(DataError) as e:  # object arrays need pickle: refused, never unpickled
        demos.load(pickled)
    one_sentence(str(e.value), "pickled.npz", "not a readable npz")
    empty = _imitation_like(tmp_path, "empty.npz", obs=np.zeros((1, 4), np.float32), acts=np.zeros(0, np.int64),
                            indices=np.zeros(0, np.int64), terminal=np.ones(1, bool), rews=np.zeros(0))
    with pytest.raises(DataError) as e:
        demos.load(empty)
    one_sentence(str(e.value), "empty.npz", "holds no transitions")
    shapes = _imitation_like(tmp_path, "shapes.npz", obs=np.zeros((10, 4), np.float32), acts=np.zeros(10, np.int64),
                             indices=np.zeros(0, np.int64), terminal=np.ones(1, bool), rews=np.zeros(10))
    with pytest.raises(DataError) as e:  # obs needs 11 rows (one final observation)
        demos.load(shapes)
    one_sentence(str(e.value), "shapes.npz", "10 rows", "11 rows")
    other = _imitation_like(tmp_path, "other.npz", x=np.zeros(3))
    with pytest.raises(DataError) as e:
        demos.load(other)
    one_sentence(str(e.value), "other.npz", "holds the arrays x", "accepted")


def test_demonstrations_that_do_not_fit_the_env(tmp_path):
    two = _imitation_like(tmp_path, "two.npz", obs=np.zeros((11, 3), np.float32), acts=np.zeros((10, 2), np.float32),
                          indices=np.zeros(0, np.int64), terminal=np.ones(1, bool), rews=np.zeros(10))
    with pytest.raises(DataError) as e:  # action dim 2 != Pendulum's 1
        demos.load(two, "Pendulum-v1")
    one_sentence(str(e.value), "two.npz", "actions of 2 numbers", "Pendulum-v1 takes 1")
    with pytest.raises(DataError) as e:  # CartPole's file on Pendulum: observation shape
        demos.load(CARTPOLE, "Pendulum-v1")
    one_sentence(str(e.value), "cartpole.npz", "(4,)", "(3,)")
    far = _imitation_like(tmp_path, "far.npz", obs=np.zeros((11, 4), np.float32), acts=np.full(10, 5, np.int64),
                          indices=np.zeros(0, np.int64), terminal=np.ones(1, bool), rews=np.zeros(10))
    with pytest.raises(DataError) as e:
        demos.load(far, "CartPole-v1")
    one_sentence(str(e.value), "far.npz", "[5, 5]", "2 actions")


def test_bc_config_refuses_bad_demos_in_one_sentence(tmp_path):
    with pytest.raises(ConfigError) as e:
        bc.validate(bc.BCConfig(demos=str(tmp_path / "missing.npz")))
    one_sentence(str(e.value), "demos=", "accepted")
    with pytest.raises(ConfigError) as e:
        bc.validate(bc.BCConfig(num_trajectories=2.5))
    one_sentence(str(e.value), "num_trajectories=2.5", "[1, 57]")
    with pytest.raises(ConfigError) as e:
        bc.validate(bc.BCConfig(loss="mse"))
    one_sentence(str(e.value), "loss='mse'", "accepted: ce or auto")


# --------------------------------------------------------------------------- BC

@pytest.fixture(scope="module")
def probe_demos(tmp_path_factory):
    """The expert of Probe-TwoActions always plays action 1 (reward +1)."""
    d = demos.record("Probe-TwoActions", lambda k, o: jnp.ones(o.shape[0], jnp.int32), jax.random.PRNGKey(0), 64)
    assert d.num_trajectories == 64 and d.lengths.tolist() == [1] * 64 and d.mean_return == 1.0
    return demos.save(tmp_path_factory.mktemp("demos") / "two.npz", d)


@pytest.fixture(scope="module")
def probe_bc(probe_demos):
    cfg = bc.BCConfig(env="Probe-TwoActions", demos=str(probe_demos), num_trajectories=8, epochs=8,
                      updates_per_epoch=10, batch_size=16, learning_rate=1e-2, policy=PolicyNetConfig(hidden=(8,)))
    train = jax.jit(bc.make_train(cfg))
    return cfg, train


def test_bc_reaches_the_expert_action_on_a_probe(probe_bc):
    cfg, train = probe_bc
    state, m = train(jax.random.PRNGKey(0))
    out = bc.policy_out(cfg, bc.policy_params(state), jnp.zeros((1, 1)))
    p = jax.nn.softmax(out.loc)[0]
    assert int(jnp.argmax(out.loc[0])) == 1 and float(p[1]) > 0.95, p
    assert float(m["train_loss"][-1]) < 0.05 < float(m["train_loss"][0])
    ret, _ = jax.jit(lambda s, k: bc.evaluate(s, k, 4))(state, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(ret, [1.0] * 4)


def test_bc_seeds_and_no_recompilation(probe_bc):
    _, train = probe_bc
    a, _ = train(jax.random.PRNGKey(0))
    b, _ = train(jax.random.PRNGKey(0))
    c, _ = train(jax.random.PRNGKey(1))
    assert train._cache_size() == 1
    la, lb, lc = (jax.tree_util.tree_leaves(s.params) for s in (a, b, c))
    assert all(np.array_equal(x, y) for x, y in zip(la, lb))
    assert not all(np.array_equal(x, y) for x, y in zip(la, lc))


def test_bc_mse_on_a_continuous_expert_reaches_its_action(tmp_path):
    """A synthetic linear expert on Pendulum: a = 0.5 * cos(theta); MSE cloning recovers it."""
    d = demos.record("Pendulum-v1", lambda k, o: 0.5 * o[:, :1], jax.random.PRNGKey(0), 4, max_steps=50)
    p = demos.save(tmp_path / "lin.npz", d)
    cfg = bc.BCConfig(env="Pendulum-v1", demos=str(p), loss="mse", num_trajectories=4, epochs=6, updates_per_epoch=50,
                      batch_size=64, learning_rate=3e-3, val_fraction=0.2, policy=PolicyNetConfig(hidden=(16,)))
    state, m = jax.jit(bc.make_train(cfg))(jax.random.PRNGKey(0))
    out = bc.policy_out(cfg, state.params, jnp.asarray(d.obs))
    err = np.abs(np.asarray(out.loc) - d.action)
    assert err.mean() < 0.03, err.mean()
    n = demos.prefix_size(bc.data_of(cfg)["ends"], 4)
    before = bc.validation_loss(bc.init(jax.random.PRNGKey(0), cfg).params, cfg, bc.data_of(cfg), n)
    assert float(m["val_loss"][-1]) < 0.01 < float(before)  # the held-out loss falls too


def test_early_stopping_freezes_the_best_parameters(probe_demos):
    cfg = bc.BCConfig(env="Probe-TwoActions", demos=str(probe_demos), num_trajectories=8, epochs=1, updates_per_epoch=2,
                      batch_size=8, early_stopping=True, patience=2, policy=PolicyNetConfig(hidden=(8,)))
    data = bc.data_of(cfg)
    s = bc.init(jax.random.PRNGKey(0), cfg).replace(best_val=jnp.float32(-1.0))  # a loss no epoch can beat
    step = jax.jit(bc.update)
    s1, m1 = step(s, data)
    s2, m2 = step(s1, data)
    s3, m3 = step(s2, data)
    assert float(m1["stopped"]) == 0 and float(m2["stopped"]) == 1 == float(m3["stopped"])
    for x, y in zip(jax.tree_util.tree_leaves(s2.params), jax.tree_util.tree_leaves(s3.params)):
        np.testing.assert_array_equal(x, y)  # a stopped run changes nothing
    assert bc.policy_params(s3) is s3.best_params


def test_bc_parameters_warm_start_ppo(probe_bc):
    cfg, train = probe_bc
    state, _ = train(jax.random.PRNGKey(0))
    pcfg = ppo.PPOConfig(env="Probe-TwoActions", num_envs=2, rollout_len=4, total_steps=8, num_minibatches=1,
                         policy=cfg.policy)
    ps = bc.warm_start(ppo.init(jax.random.PRNGKey(5), pcfg), state.params)
    out, _ = ppo.policy_and_value(ps, jnp.zeros((1, 1)))
    np.testing.assert_allclose(out.loc, bc.policy_out(cfg, state.params, jnp.zeros((1, 1))).loc, rtol=1e-6)
    other = ppo.PPOConfig(env="Probe-TwoActions", num_envs=2, rollout_len=4, total_steps=8, num_minibatches=1,
                          policy=PolicyNetConfig(hidden=(4,)))
    with pytest.raises(ConfigError) as e:
        bc.warm_start(ppo.init(jax.random.PRNGKey(5), other), state.params)
    one_sentence(str(e.value), "accepted")


def test_jaxgen_expert_records_demonstrations_with_the_mean_return(tmp_path, capsys):
    import json

    from jaxgen.cli import main

    out = tmp_path / "probe.npz"
    assert main(["expert", "Probe-TwoActions", "--trajectories", "3", "--total-steps", "512", "--out", str(out)]) == 0
    d = demos.load(out, "Probe-TwoActions")
    s = json.loads(out.with_suffix(".json").read_text())
    assert d.num_trajectories == 3 and d.lengths.tolist() == [1, 1, 1] and s["num_trajectories"] == 3
    assert s["mean_return"] == d.expert_return == d.mean_return and "mean return" in capsys.readouterr().out
    assert main(["expert", "Nope-v0"]) == 2
    one_sentence(capsys.readouterr().err.strip(), "Nope-v0")
    assert main(["expert", "Probe-TwoActions", "--preset", "nope"]) == 2
    one_sentence(capsys.readouterr().err.strip(), "--preset='nope'", "reacher")


def test_expert_config_uses_the_env_s_own_ppo_preset():
    from jaxgen.rl.imitation_fit import expert_config

    assert expert_config("Reacher-misc") == ppo.PRESETS["reacher"] and ppo.PRESETS["reacher"].env == "Reacher-misc"
    assert expert_config("Pendulum-v1") == ppo.PRESETS["pendulum"] and expert_config("CartPole-v1") == ppo.PPOConfig()
    c = expert_config("MountainCarContinuous-v0", total_steps=2048, preset="reacher")
    assert c.env == "MountainCarContinuous-v0" and c.total_steps == 2048 and c.gamma == ppo.PRESETS["reacher"].gamma
