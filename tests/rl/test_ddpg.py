"""DDPG / TD3: the target and losses against hand-computed values, the box squash, target smoothing,
Polyak targets and the delayed actor, learning a continuous probe, seeds and no recompilation."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core.errors import ConfigError
from jaxgen.losses.value import clipped_double_q_target
from jaxgen.rl import ddpg

TINY = ddpg.DDPGConfig(env="Probe-Continuous", num_envs=4, total_steps=4 * 300, buffer_size=1000, batch_size=32,
                       hidden=(16,), learning_starts=64, gamma=0.5, tau=0.05, actor_lr=1e-2,
                       critic_lr=1e-2)
TD3_TINY = dataclasses.replace(TINY, twin=True, policy_delay=2, target_noise=0.2)


def leaves(t):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(t)]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


@pytest.fixture(scope="module")
def trained():
    train = jax.jit(ddpg.make_train(TD3_TINY))
    hp = ddpg.C.hparams(TD3_TINY)
    return train, hp, train(jax.random.PRNGKey(0), hp)


def test_target_and_losses_hand_computed():
    r = jnp.array([1.0, -0.5, 2.0])
    term = jnp.array([False, True, False])
    q_next = jnp.array([[3.0, 10.0, -1.0], [2.0, 20.0, 4.0]])  # [C=2, B=3]
    y = clipped_double_q_target(r, term, q_next, 0.9)
    np.testing.assert_allclose(y, [1 + 0.9 * 2.0, -0.5, 2 + 0.9 * -1.0], rtol=1e-6)
    y1 = clipped_double_q_target(r, term, q_next[:1], 0.9)  # DDPG: one critic, no minimum
    np.testing.assert_allclose(y1, [1 + 0.9 * 3.0, -0.5, 2 - 0.9], rtol=1e-6)
    q = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = jnp.array([2.0, 2.0, 2.0])
    # sum over critics of the mean squared error: (1 + 0 + 1) / 3 + (4 + 4 + 4) / 3
    np.testing.assert_allclose(ddpg.critic_loss(q, target), 2 / 3 + 4.0, rtol=1e-6)
    np.testing.assert_allclose(ddpg.actor_loss(jnp.array([1.0, 3.0])), -2.0)
    # the squash onto a box: tanh 0 -> the middle, +-inf -> the bounds
    np.testing.assert_allclose(ddpg.squash(jnp.array([0.0, 50.0, -50.0]), -2.0, 2.0), [0.0, 2.0, -2.0], atol=1e-6)
    np.testing.assert_allclose(ddpg.squash(jnp.array([0.0]), 0.0, 1.0), [0.5])
    # smoothing noise is clipped to +-clip, the action to the box
    a = ddpg.smooth(jax.random.PRNGKey(0), jnp.zeros((1000, 1)), 10.0, 0.3, -0.2, 1.0)
    assert float(a.min()) == pytest.approx(-0.2) and float(a.max()) == pytest.approx(0.3)


def test_td_target_uses_target_actor_and_critics(trained):
    st = trained[2][0]
    st = st.replace(hparams={**st.hparams, "target_noise": jnp.float32(0.0)}, critic_target=jax.tree_util.tree_map(lambda x: x * 1.5, st.critic_target))
    b = ddpg.build(TD3_TINY)
    batch = {"obs": jnp.array([[0.0], [1.0]]), "action": jnp.zeros((2, 1)), "reward": jnp.array([0.5, 1.0]),
             "next_obs": jnp.array([[1.0], [1.0]]), "terminated": jnp.array([False, True])}
    y = ddpg.td_target(st, jax.random.PRNGKey(1), batch)
    mu = b.actor.apply({"params": st.actor_target}, batch["next_obs"])
    q = [b.critic.apply({"params": jax.tree_util.tree_map(lambda x: x[c], st.critic_target)}, batch["next_obs"], mu)
         for c in range(2)]
    want = 0.5 + 0.5 * min(float(q[0][0]), float(q[1][0]))
    np.testing.assert_allclose(y, [want, 1.0], rtol=1e-5)


def test_polyak_targets_and_delayed_actor(trained):
    st = trained[2][0]
    batch = jax.tree_util.tree_map(lambda x: x[:8], st.buffer.data)
    step = jax.jit(ddpg.learn_step)
    s1, _ = step(st.replace(updates=jnp.int32(0)), (batch, jax.random.PRNGKey(0)))  # update 1: critics only
    assert same(s1.actor, st.actor) and same(s1.actor_target, st.actor_target) and not same(s1.critic, st.critic)
    s2, _ = step(s1, (batch, jax.random.PRNGKey(1)))  # update 2: actor and targets
    assert not same(s2.actor, s1.actor)
    for t_old, new, t in zip(leaves(s1.actor_target), leaves(s2.actor), leaves(s2.actor_target)):
        np.testing.assert_allclose(t, 0.95 * t_old + 0.05 * new, rtol=1e-5, atol=1e-7)
    for t_old, new, t in zip(leaves(s1.critic_target), leaves(s2.critic), leaves(s2.critic_target)):
        np.testing.assert_allclose(t, 0.95 * t_old + 0.05 * new, rtol=1e-5, atol=1e-7)
    assert jax.tree_util.tree_leaves(s2.critic)[0].shape[0] == 2  # twin critics stacked


def test_learns_continuous_probe(trained):
    _, _, (st, m) = trained
    mu = np.asarray(ddpg.act(st, jax.random.PRNGKey(0), jnp.array([[0.0], [1.0]]), True))[:, 0]
    np.testing.assert_allclose(mu, [-0.5, 0.5], atol=0.15)
    ret, length = jax.jit(lambda s, k: ddpg.evaluate(s, k, 4))(st, jax.random.PRNGKey(0))
    assert np.all(np.asarray(length) == 2) and float(np.mean(ret)) > -0.03


def test_seed_behaviour_and_no_recompilation(trained):
    train, hp, (s0, _) = trained
    s0b, _ = train(jax.random.PRNGKey(0), hp)
    s1, _ = train(jax.random.PRNGKey(1), ddpg.C.hparams(TD3_TINY, {"actor_lr": 3e-4, "tau": 0.01}))
    assert train._cache_size() == 1
    assert same(s0.actor, s0b.actor) and not same(s0.actor, s1.actor)


def test_bad_input():
    with pytest.raises(ConfigError, match=r"env='CartPole-v1' has a discrete action space; DDPG and TD3 need"):
        ddpg.make_trainer(ddpg.DDPGConfig(env="CartPole-v1"))
    with pytest.raises(ConfigError, match=r"buffer_size=16 is smaller than a batch"):
        ddpg.make_trainer(dataclasses.replace(TINY, buffer_size=16))
