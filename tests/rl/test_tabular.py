"""Tabular methods: the line world's converged Q, Q-learning, VI/PI, FrozenLake; a stored
Q-learning config with the old ``num_steps`` (updates)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core.errors import ConfigError
from jaxgen.core import config as C
from jaxgen.rl import envs, probes, tabular as T


def test_line_world_rules():
    env, params = envs.make("LineWorld")
    assert isinstance(env, probes.LineWorld) and T.LineWorld is probes.LineWorld  # an own env, not the agent's
    step = jax.jit(env.step_env)
    s = T.LineState(cell=jnp.int32(8), time=0)
    _, ns, r, term, _ = step(jax.random.PRNGKey(0), s, 1, params)  # jump past the end
    assert float(r) == -10 and bool(term)
    _, ns, r, term, _ = step(jax.random.PRNGKey(0), T.LineState(cell=jnp.int32(1), time=0), 1, params)
    assert int(ns.cell) == 3 and float(r) == -10 and bool(term)  # hole
    _, ns, r, term, _ = step(jax.random.PRNGKey(0), T.LineState(cell=jnp.int32(0), time=0), 0, params)
    assert int(ns.cell) == 1 and float(r) == 1 and not bool(term)


def test_value_and_policy_iteration_give_the_converged_table():
    mdp = T.line_world_mdp()
    q, v, _ = T.value_iteration(mdp, 0.9)
    np.testing.assert_allclose(q, T.LINE_WORLD_Q, atol=1e-4)
    q2, v2, pi, _ = T.policy_iteration(mdp, 0.9)
    np.testing.assert_allclose(q2, T.LINE_WORLD_Q, atol=1e-4)
    assert set(np.unique(T.LINE_WORLD_Q)) == {-10.0, 0.0, 10.0}


def test_q_learning_converges_and_greedy_reaches_goal():
    cfg = T.QLearningConfig(total_steps=5000)
    state, metrics = jax.jit(jax.vmap(T.make_train(cfg)))(jax.random.split(jax.random.PRNGKey(0), 8))
    assert state.q.shape == (8, 10, 2)
    np.testing.assert_allclose(state.q, np.broadcast_to(T.LINE_WORLD_Q, (8, 10, 2)), atol=1e-2)
    ret = T.greedy_returns("LineWorld", state.q[0], jax.random.PRNGKey(1), 4)
    assert np.all(np.asarray(ret) >= 10)  # the +10 of the goal was collected (a hole would give -10)
    assert metrics["episode_return"].shape == (8, 5000)


def test_frozen_lake_model_matches_env_and_methods_agree():
    env, params = envs.make("FrozenLake-misc")
    mdp = T.frozen_lake_mdp(env)
    np.testing.assert_allclose(mdp.P.sum(-1), 1.0, atol=1e-6)
    # the model's transition probabilities against the env's own sampled step (cell 6, action right)
    keys = jax.random.split(jax.random.PRNGKey(0), 6000)
    from gymnax.environments.misc.frozen_lake import EnvState
    ns = jax.vmap(lambda k: env.step_env(k, EnvState(position=jnp.int32(6), time=0), 2, params)[1].position)(keys)
    freq = np.bincount(np.asarray(ns), minlength=16) / len(keys)
    np.testing.assert_allclose(freq, mdp.P[6, 2], atol=0.03)
    q, v, _ = T.value_iteration(mdp, 0.99)
    q2, v2, pi, _ = T.policy_iteration(mdp, 0.99)
    np.testing.assert_allclose(v, v2, atol=1e-3)
    assert float(v[0]) == pytest.approx(0.542, abs=0.005)
    success = float(T.greedy_returns("FrozenLake-misc", q, jax.random.PRNGKey(0), 1000).mean())
    assert 0.68 < success < 0.80  # the optimal policy's ~74 % within the 100-step limit


def test_q_learning_frozen_lake():
    cfg = T.QLearningConfig(env="FrozenLake-misc", total_steps=60_000, gamma=0.99, alpha=0.05, epsilon=0.5)
    state, _ = jax.jit(jax.vmap(T.make_train(cfg)))(jax.random.split(jax.random.PRNGKey(0), 2))
    success = float(T.greedy_returns("FrozenLake-misc", state.q[0], jax.random.PRNGKey(0), 500).mean())
    assert success > 0.6


def test_q_learning_bad_env():
    with pytest.raises(ConfigError, match="Discrete one"):
        T.make_trainer(T.QLearningConfig(env="CartPole-v1"))


def test_stored_num_steps_counted_updates():
    # num_steps was the number of updates (vector steps): total_steps counts env steps
    old = C.from_dict(T.QLearningConfig, {"env": "LineWorld", "num_envs": 4, "num_steps": 250})
    assert old.total_steps == 1000 and old.num_iterations == 250
    assert T.make_trainer(old).num_steps == 250
    assert C.from_dict(T.QLearningConfig, {"num_steps": 7}).total_steps == 7
