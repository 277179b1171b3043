"""Shared RL plumbing: env creation and the environment spec, the vectorised env (auto-reset,
terminated vs truncated), episode statistics, the replay buffer and exploration. (The loss
math is tested in tests/losses.)"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core.errors import ConfigError
from jaxgen.rl import buffers, envs, exploration


def test_make_known_and_unknown():
    env, params = envs.make("CartPole-v1")
    assert envs.obs_shape(env, params) == (4,)
    s = envs.spec("CartPole-v1")
    assert s.discrete and s.action_dim == 2 and s.action_shape == () and s.obs_shape == (4,) and s.max_steps == 500
    assert envs.spec("CartPole-v1") is s  # cached: one object per name
    s = envs.spec("LineWorld")
    assert s.discrete and s.action_dim == 2 and s.obs_shape == () and s.max_steps == 100
    with pytest.raises(ConfigError, match=r"env='CartPole-v9' is not a known environment.*CartPole-v1"):
        envs.make("CartPole-v9")
    with pytest.raises(ConfigError, match=r"env='CartPole-v9' is not a known environment"):
        envs.spec("CartPole-v9")
    with pytest.raises(ConfigError, match="continuous action space"):
        envs.require_discrete(envs.spec("Pendulum-v1"), "DQN")


def test_env_spec_of_a_box_and_env_action():
    s = envs.spec("Pendulum-v1")
    assert not s.discrete and s.action_dim == 1 and s.action_shape == (1,) and s.obs_shape == (3,)
    np.testing.assert_array_equal(s.low, [-2.0])
    np.testing.assert_array_equal(s.high, [2.0])
    # a Gaussian sample [B, D] is clipped to [low, high] and shaped as the env's action
    np.testing.assert_array_equal(envs.env_action(s, jnp.array([[3.0], [-0.5], [-7.0]])), [[2.0], [-0.5], [-2.0]])
    d = envs.spec("CartPole-v1")
    a = jnp.array([1, 0, 1], jnp.int32)
    assert envs.env_action(d, a) is a  # a discrete action goes through unchanged


def test_vec_env_truncation_is_not_termination():
    env, params = envs.make("Probe-TimeLimit")  # never terminates, time limit 5
    venv = envs.VecEnv(env, params, 3)
    obs, st = venv.reset(jax.random.PRNGKey(0))
    step = jax.jit(venv.step)
    flags = []
    for t in range(10):
        st, out = step(jax.random.PRNGKey(t), st, jnp.zeros(3, jnp.int32))
        flags.append((bool(out.terminated[0]), bool(out.truncated[0])))
    assert flags[4] == (False, True) and flags[9] == (False, True)
    assert all(f == (False, False) for i, f in enumerate(flags) if i not in (4, 9))


def test_vec_env_termination_and_final_obs():
    env, params = envs.make("Probe-Discount")  # obs 0 -> obs 1 -> terminated
    venv = envs.VecEnv(env, params, 2)
    obs, st = venv.reset(jax.random.PRNGKey(0))
    st, out = venv.step(jax.random.PRNGKey(1), st, jnp.zeros(2, jnp.int32))
    assert not out.terminated.any() and np.all(out.obs == 1) and np.all(out.final_obs == 1)
    st, out = venv.step(jax.random.PRNGKey(2), st, jnp.zeros(2, jnp.int32))
    assert out.terminated.all() and not out.truncated.any()
    assert np.all(out.final_obs == 1) and np.all(out.obs == 0)  # auto-reset obs vs the obs reached
    assert np.all(out.reward == 1)


def test_episode_stats_report():
    s = envs.EpisodeStats.create(2)
    s = s.record(jnp.array([1.0, 2.0]), jnp.array([False, False]))
    s, m = s.report()
    assert float(m["episodes"]) == 0 and float(m["episode_return"]) == 0  # none finished yet: no NaN
    s = s.record(jnp.array([1.0, 2.0]), jnp.array([True, False]))
    s = s.record(jnp.array([1.0, 2.0]), jnp.array([False, True]))
    s, m = s.report()
    assert float(m["episodes"]) == 2
    assert float(m["episode_return"]) == pytest.approx((2.0 + 6.0) / 2)
    assert float(m["episode_length"]) == pytest.approx((2 + 3) / 2)
    s, m = s.report()  # nothing finished: the last mean is repeated
    assert float(m["episodes"]) == 0 and float(m["episode_return"]) == pytest.approx(4.0)
    assert int(s.total) == 2


def test_rollout_returns_cartpole_random():
    env, params = envs.make("Probe-Discount")
    ret, length = jax.jit(lambda k: envs.rollout_returns(env, params, lambda k, o: jnp.zeros(o.shape[0], jnp.int32), k, 4))(
        jax.random.PRNGKey(0))
    assert np.all(ret == 1) and np.all(length == 2)


def test_ring_buffer_wraparound_and_sampling_written_slots():
    buf = buffers.init({"x": jnp.zeros((2,)), "a": jnp.zeros((), jnp.int32)}, capacity=5)
    add = jax.jit(buffers.add)
    buf = add(buf, {"x": jnp.ones((3, 2)) * jnp.arange(1, 4)[:, None], "a": jnp.arange(1, 4)})
    assert int(buf.size) == 3 and int(buf.pos) == 3
    idx = np.asarray(buffers.sample_indices(buf, jax.random.PRNGKey(0), 1000))
    assert set(idx.tolist()) == {0, 1, 2}  # only written slots, all of them
    batch = buffers.sample(buf, jax.random.PRNGKey(1), 64)
    assert set(np.asarray(batch["a"]).tolist()) <= {1, 2, 3}
    np.testing.assert_array_equal(batch["x"][:, 0], batch["a"])  # fields stay aligned
    buf = add(buf, {"x": jnp.zeros((4, 2)), "a": jnp.arange(4, 8)})  # 4,5 fill; 6,7 overwrite slots 0,1
    assert int(buf.size) == 5 and int(buf.pos) == 2
    np.testing.assert_array_equal(buf.data["a"], [6, 7, 3, 4, 5])
    idx = np.asarray(buffers.sample_indices(buf, jax.random.PRNGKey(2), 2000))
    assert set(idx.tolist()) == set(range(5))
    counts = np.bincount(idx, minlength=5)
    assert counts.min() > 300  # uniform: ~400 each


def test_linear_epsilon_schedule():
    eps = lambda t: float(exploration.linear_epsilon(t, 1.0, 0.1, 1000))
    assert eps(0) == pytest.approx(1.0)
    assert eps(500) == pytest.approx(0.55)
    assert eps(1000) == pytest.approx(0.1)
    assert eps(5000) == pytest.approx(0.1)


def test_epsilon_greedy_distribution():
    q = jnp.tile(jnp.array([[0.0, 5.0, 1.0]]), (20000, 1))
    a = np.asarray(exploration.epsilon_greedy(jax.random.PRNGKey(0), q, 0.0))
    assert np.all(a == 1)
    a = np.asarray(exploration.epsilon_greedy(jax.random.PRNGKey(0), q, 1.0, jnp.array([0.3, 0.6, 0.1])))
    np.testing.assert_allclose(np.bincount(a, minlength=3) / len(a), [0.3, 0.6, 0.1], atol=0.015)
    a = np.asarray(exploration.epsilon_greedy(jax.random.PRNGKey(1), q, 0.5))
    np.testing.assert_allclose(np.bincount(a, minlength=3) / len(a), [0.5 / 3, 0.5 + 0.5 / 3, 0.5 / 3], atol=0.015)


def test_reset_state_is_strongly_typed_so_a_stepped_state_does_not_recompile():
    """Freeway's gymnax reset returns a weak int32 field; VecEnv.reset strips weak types, so the
    state after a step has the same avals and a jitted step compiles once."""
    env, params = envs.make("Freeway-MinAtar")
    venv = envs.VecEnv(env, params, 2)
    obs, state = venv.reset(jax.random.PRNGKey(0))
    assert not any(jax.typeof(x).weak_type for x in jax.tree_util.tree_leaves((obs, state)))
    step = jax.jit(venv.step)
    state1, _ = step(jax.random.PRNGKey(1), state, jnp.zeros(2, jnp.int32))
    step(jax.random.PRNGKey(2), state1, jnp.zeros(2, jnp.int32))
    assert step._cache_size() == 1
