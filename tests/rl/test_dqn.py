"""DQN: target period, terminated vs truncated in the stored transitions, probe learning,
seed behaviour, no recompilation, bad input, and a short CartPole learning run."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core.errors import ConfigError
from jaxgen.core.train import scan_steps
from jaxgen.rl import dqn, dqn_fit
from jaxgen.rl import fit as rl_fit

TINY = dqn.DQNConfig(num_envs=4, total_steps=400, buffer_size=200, batch_size=16, hidden=(16,),
                     learning_starts=40, target_period=40, eps_decay_steps=200)


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_target_network_period_and_polyak():
    st = dqn.init(jax.random.PRNGKey(0), TINY)
    up = jax.jit(dqn.update)
    refreshed = []
    for i in range(30):
        old_target = st.target_params
        st, _ = up(st)
        if not same(old_target, st.target_params):
            refreshed.append(int(st.step) * TINY.num_envs)
            assert same(st.target_params, st.params)  # a hard refresh copies exactly
    # learning starts at env step 40; refreshes every 40 env steps from there (10 iterations)
    assert refreshed == [40, 80, 120]
    st = dqn.init(jax.random.PRNGKey(0), TINY, {"target_period": 4, "target_tau": 0.5})  # Polyak every iteration
    for _ in range(10):
        st, _ = up(st)
    old_t, old_p = st.target_params, st.params
    st, _ = up(st)
    want = jax.tree_util.tree_map(lambda t, p: 0.5 * t + 0.5 * p, old_t, st.params)
    for a, b in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(st.target_params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_stored_transitions_keep_terminated_and_final_obs():
    cfg = dataclasses.replace(TINY, env="Probe-Discount", learning_starts=1e9)
    st = dqn.init(jax.random.PRNGKey(0), cfg)
    st, _ = jax.jit(lambda s: scan_steps(dqn.update, s, None, 4))(st)
    d = jax.tree_util.tree_map(np.asarray, st.buffer.data)
    n = 4 * cfg.num_envs
    # steps alternate obs 0 -> 1 (not terminal), obs 1 -> 1 (terminal; the auto-reset obs 0 is not stored)
    np.testing.assert_array_equal(d["obs"][:n, 0], np.repeat([0, 1, 0, 1], 4))
    np.testing.assert_array_equal(d["next_obs"][:n, 0], np.ones(n))
    np.testing.assert_array_equal(d["terminated"][:n], np.repeat([False, True, False, True], 4))
    cfg = dataclasses.replace(TINY, env="Probe-TimeLimit", learning_starts=1e9)
    st = dqn.init(jax.random.PRNGKey(0), cfg)
    st, _ = jax.jit(lambda s: scan_steps(dqn.update, s, None, 10))(st)
    assert not np.asarray(st.buffer.data["terminated"]).any()  # truncations are not terminations


@pytest.mark.parametrize("env,want", [
    ("Probe-OneAction", {0: [1.0]}),
    ("Probe-TwoActions", {0: [-1.0, 1.0]}),
    ("Probe-Discount", {0: [0.5], 1: [1.0]}),
    ("Probe-TimeLimit", {0: [2.0]}),
])
def test_learns_probe_envs(env, want):
    cfg = dqn.DQNConfig(env=env, num_envs=8, total_steps=8 * 600, buffer_size=800, batch_size=32, hidden=(16,),
                        learning_rate=1e-2, gamma=0.5, learning_starts=64, target_period=80, eps_start=1.0,
                        eps_end=0.5, eps_decay_steps=1000, huber_delta=1.0)
    st, m = jax.jit(dqn.make_train(cfg))(jax.random.PRNGKey(0))
    for obs, q in want.items():
        got = np.asarray(dqn.q_values(st, jnp.array([[float(obs)]])))[0]
        np.testing.assert_allclose(got, q, atol=0.1)


def test_seed_behaviour_and_no_recompilation():
    train = jax.jit(dqn.make_train(TINY))
    hp = dqn.C.hparams(TINY)
    s0, m0 = train(jax.random.PRNGKey(0), hp)
    s0b, m0b = train(jax.random.PRNGKey(0), hp)
    s1, m1 = train(jax.random.PRNGKey(1), dqn.C.hparams(TINY, {"learning_rate": 1e-3, "gamma": 0.9}))
    assert train._cache_size() == 1  # new seed and new traced hyperparameters: same program
    assert same(s0.params, s0b.params)  # same seed: bit-identical
    assert not same(s0.params, s1.params)


def test_bad_input_is_one_sentence():
    with pytest.raises(ConfigError, match=r"env='Pendulum-v1' has a continuous action space .*DQN needs a discrete one"):
        dqn.make_trainer(dqn.DQNConfig(env="Pendulum-v1"))
    with pytest.raises(ConfigError, match=r"env='Cartpole' is not a known environment"):
        dqn.make_trainer(dqn.DQNConfig(env="Cartpole"))
    with pytest.raises(ConfigError, match=r"buffer_size=64 is smaller than batch_size=128"):
        dqn.make_trainer(dqn.DQNConfig(buffer_size=64))
    with pytest.raises(ConfigError, match="explore_probs"):
        dqn.make_trainer(dqn.DQNConfig(explore_probs=(0.3, 0.6, 0.1)))


def test_exploration_distribution_and_dueling_double_minatar():
    cfg = dqn.DQNConfig(env="Freeway-MinAtar", num_envs=2, total_steps=40, buffer_size=64, batch_size=8,
                        learning_starts=8, explore_probs=(0.3, 0.6, 0.1), dueling=True, double=True, huber_delta=1.0)
    st, m = jax.jit(dqn.make_train(cfg))(jax.random.PRNGKey(0))
    assert st.buffer.data["obs"].dtype == jnp.uint8 and st.buffer.data["obs"].shape == (64, 10, 10, 7)
    assert np.isfinite(np.asarray(m["loss"])).all()
    acts = np.asarray(st.buffer.data["action"][:40])
    assert np.bincount(acts, minlength=3)[1] > np.bincount(acts, minlength=3)[2]  # UP (0.6) over DOWN (0.1)
    info = dqn_fit.inspect(st, n=3)
    assert np.asarray(info["q"]).shape == (3, 3) and len(info["action"]) == 3


def test_cartpole_learns_quickly(tmp_path):
    """A short CartPole run through the runner with evaluation episodes: well above random (~22)."""
    cfg = dqn.DQNConfig(total_steps=40_000, num_envs=10, learning_starts=2_000, eps_decay_steps=20_000,
                        learning_rate=1e-3, target_period=500, hidden=(64, 64))
    out = rl_fit.fit(cfg, seed=0, run_dir=tmp_path / "run", eval_episodes=8, progress=False, chunk_steps=1000)
    best = max(r.get("eval_return", 0) for r in out["history"])
    assert best >= 150, [r.get("eval_return") for r in out["history"]]
    assert (tmp_path / "run" / "curves.png").is_file() and (tmp_path / "run" / "metrics.jsonl").is_file()


def test_study_grid_in_one_compile(tmp_path):
    grid = {"learning_rate": [1e-3, 1e-4], "gamma": [0.9, 0.99]}
    out = rl_fit.study(TINY, seeds=2, grid=grid, run_dir=tmp_path, eval_episodes=2, progress=False, chunk_steps=50)
    assert len(out["table"]) == 4 and {"learning_rate", "gamma", "train_return", "eval_return"} <= set(out["table"][0])
    assert out["timings"]["runs"] == 8
    assert out["result"].final["loss"].shape == (2, 2, 2)
    for f in ("table.md", "study.json", "curves_learning_rate.png", "curves_gamma.png"):
        assert (tmp_path / f).is_file()
