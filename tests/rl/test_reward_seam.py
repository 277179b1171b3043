"""PPO's reward seam: ``update = collect -> advantages(reward) -> learn`` and
``update(state, reward_fn=...)`` (what GAIL composes with)."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.rl import ppo
from jaxgen.rl.policies import PolicyNetConfig

CFG = ppo.PPOConfig(num_envs=4, rollout_len=16, total_steps=4 * 16 * 4, update_epochs=2, num_minibatches=2,
                    policy=PolicyNetConfig(hidden=(16,)))


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_env_reward_through_the_seam_is_update_bit_for_bit():
    s0 = ppo.init(jax.random.PRNGKey(0), CFG)
    plain = jax.jit(ppo.update)
    seam = jax.jit(lambda s: ppo.update(s, reward_fn=lambda traj: traj["reward"]))
    a, ma = plain(s0)
    b, mb = seam(s0)
    assert leaves_equal(a, b) and leaves_equal(ma, mb)
    # the three public pieces, composed by hand, are the same iteration
    k_roll, k_learn = jax.random.split(jax.random.fold_in(s0.key, s0.step))
    s, traj = ppo.collect(s0, k_roll)
    assert traj["reward"].shape == (16, 4) and traj["obs"].shape == (16, 4, 4)
    s, adv, target = ppo.advantages(s, traj, traj["reward"])
    assert adv.shape == target.shape == (16, 4)
    c, mc = ppo.learn(s, traj, adv, target, k_learn)
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(c.params)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)  # eager vs jitted: same math
    assert int(c.step) == 1


def test_a_reward_of_zeros_learns_something_else_and_compiles_once():
    s0 = ppo.init(jax.random.PRNGKey(0), CFG)
    calls = []

    def zero_reward(traj):
        calls.append(1)  # counts traces
        return jnp.zeros_like(traj["reward"])

    step = jax.jit(lambda s: ppo.update(s, reward_fn=zero_reward))
    s1, m1 = step(s0)
    s2, m2 = step(s1)
    assert step._cache_size() == 1 and len(calls) == 1  # no recompilation on the second call
    a, _ = jax.jit(ppo.update)(s0)
    assert not leaves_equal(a.params, s1.params)
    # the episode statistics still report the environment's returns
    np.testing.assert_array_equal(m1["episode_return"], jax.jit(ppo.update)(s0)[1]["episode_return"])
    assert int(s2.step) == 2


def test_reward_scaling_uses_the_supplied_reward():
    cfg = ppo.PPOConfig(env="Pendulum-v1", num_envs=2, rollout_len=8, total_steps=2 * 8 * 2, update_epochs=1,
                        num_minibatches=1, scale_rewards=True, policy=PolicyNetConfig(hidden=(8,)))
    s0 = ppo.init(jax.random.PRNGKey(0), cfg)
    _, traj = ppo.collect(s0, jax.random.PRNGKey(1))
    s_env, _, _ = ppo.advantages(s0, traj, traj["reward"])
    s_two, _, _ = ppo.advantages(s0, traj, 2.0 * traj["reward"])
    # the running return statistics follow the reward given: twice the reward, twice the mean return
    assert float(s_env.ret_rms.mean) < 0  # Pendulum's rewards are negative
    np.testing.assert_allclose(s_two.ret_rms.mean, 2.0 * s_env.ret_rms.mean, rtol=1e-6)
