"""MADDPG / independent DDPG: the centralised critic's input (all observations and actions in agent
order), heterogeneous observations (zero padding = an agent-sized network), the critic target and
actor loss against hand computation, a probe where coordination is required, seeds and no
recompilation, and the jaxmarl vector env (26-step episodes, truncation, final observations)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core.errors import ConfigError
from jaxgen.rl import ma_envs, maddpg

PROBE = maddpg.MADDPGConfig(env="probe_sum", num_envs=8, total_steps=8 * 400, buffer_size=2000, batch_size=64,
                            update_every=8, learning_starts=256, hidden=(32,), actor_lr=1e-2, critic_lr=1e-2,
                            expl_noise=0.3, tau=0.05)


def leaves(t):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(t)]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


@pytest.fixture(scope="module")
def trained():
    train = jax.jit(maddpg.make_train(PROBE))
    hp = maddpg.C.hparams(PROBE)
    return train, hp, train(jax.random.PRNGKey(0), hp)


def test_centralised_critic_input_is_all_obs_and_actions_in_agent_order():
    sp = ma_envs.spec("probe_sum")  # observation sizes 1 and 2: padded to 2
    assert sp.obs_sizes == (1, 2) and sp.obs_dim == 2
    obs = jnp.array([[[1.0, 0.0], [2.0, 3.0]]])  # [B=1, A=2, O=2]; agent 0's second entry is padding
    act = jnp.array([[[10.0], [20.0]]])  # [B, A, D=1]
    x, a = maddpg.critic_input(sp, False, 1, obs, act)
    np.testing.assert_array_equal(x, [[1.0, 2.0, 3.0]])  # true observations, agent 0 then agent 1, no padding
    np.testing.assert_array_equal(a, [[10.0, 20.0]])
    x, a = maddpg.critic_input(sp, True, 1, obs, act)  # independent: own (padded) observation and action
    np.testing.assert_array_equal(x, [[2.0, 3.0]])
    np.testing.assert_array_equal(a, [[20.0]])
    np.testing.assert_array_equal(ma_envs.pad(sp, {"agent_0": jnp.array([[5.0]]), "agent_1": jnp.array([[6.0, 7.0]])}),
                                  [[[5.0, 0.0], [6.0, 7.0]]])


def test_padded_observation_equals_an_agent_sized_network():
    """Zero padding with per-agent parameters: the padded actor computes the unpadded one's function,
    and the weights that meet the padding get zero gradient (why no agent-id one-hot is needed)."""
    actor = maddpg.Actor(3, (8,), 0.0, 1.0)
    small = maddpg.Actor(3, (8,), 0.0, 1.0)
    o = jax.random.normal(jax.random.PRNGKey(0), (5, 8))
    padded = jnp.pad(o, ((0, 0), (0, 2)))
    p = actor.init(jax.random.PRNGKey(1), padded)["params"]
    k = p["MLP_0"]["Dense_0"]["kernel"]
    p_small = jax.tree_util.tree_map(lambda x: x, p)
    p_small["MLP_0"]["Dense_0"]["kernel"] = k[:8]
    np.testing.assert_allclose(actor.apply({"params": p}, padded), small.apply({"params": p_small}, o), rtol=1e-6)
    g = jax.grad(lambda q: jnp.sum(actor.apply({"params": q}, padded)))(p)
    assert np.all(np.asarray(g["MLP_0"]["Dense_0"]["kernel"][8:]) == 0)


def test_critic_target_and_actor_loss_hand_computed(trained):
    _, _, (st, _) = trained
    b = maddpg.build(PROBE)
    batch = jax.tree_util.tree_map(lambda x: x[:16], st.buffer.data)
    batches = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), batch)  # the same minibatch for both agents
    y = np.asarray(maddpg.critic_targets(st, batches))
    one = lambda t, i: jax.tree_util.tree_map(lambda x: x[i], t)
    nxt = batch["next_obs"]
    a_next = jnp.concatenate([b.actor.apply({"params": one(st.actor_target, i)}, nxt[:, i]) for i in range(2)], -1)
    x_next = jnp.concatenate([nxt[:, 0, :1], nxt[:, 1, :2]], -1)
    for i in range(2):
        q = b.critic.apply({"params": one(st.critic_target, i)}, x_next, a_next)
        want = batch["reward"][:, i] + 0.95 * (1 - batch["terminated"].astype(jnp.float32)) * q
        np.testing.assert_allclose(y[i], want, rtol=1e-5, atol=1e-6)
    # one learn step: its actor loss is -mean Q_i(new critic) with agent i's action replaced by mu_i(o_i)
    new, m = jax.jit(maddpg.learn_step)(st, batches)
    o = batch["obs"]
    x = jnp.concatenate([o[:, 0, :1], o[:, 1, :2]], -1)
    for i in range(2):
        own = b.actor.apply({"params": one(st.actor, i)}, o[:, i])
        act = batch["action"].at[:, i].set(own).reshape(16, -1)
        want = -jnp.mean(b.critic.apply({"params": one(new.critic, i)}, x, act))
        np.testing.assert_allclose(m[f"actor_loss_{i}"], want, rtol=1e-5, atol=1e-6)
    for t_old, p_new, t in zip(leaves(st.critic_target), leaves(new.critic), leaves(new.critic_target)):
        np.testing.assert_allclose(t, 0.95 * t_old + 0.05 * p_new, rtol=1e-5, atol=1e-7)  # Polyak, tau 0.05


def test_probe_needs_coordination_and_is_learned(trained):
    """Only the sum of the two actions is rewarded (random pair: about -0.42): both agents learn their share."""
    _, _, (st, m) = trained
    ret, _ = jax.jit(lambda s, k: maddpg.evaluate(s, k, 64))(st, jax.random.PRNGKey(0))
    assert float(np.mean(ret)) > -0.02, float(np.mean(ret))
    rnd = ma_envs.random_returns(ma_envs.spec("probe_sum"), jax.random.PRNGKey(0), 2000)["returns"]
    assert float(np.mean(rnd)) < -0.3


def test_seed_behaviour_and_no_recompilation(trained):
    train, hp, (s0, _) = trained
    s0b, _ = train(jax.random.PRNGKey(0), hp)
    s1, _ = train(jax.random.PRNGKey(1), maddpg.C.hparams(PROBE, {"actor_lr": 3e-3, "gamma": 0.9}))
    assert train._cache_size() == 1
    assert same(s0.actor, s0b.actor) and not same(s0.actor, s1.actor)
    assert jax.tree_util.tree_leaves(s0.actor)[0].shape[0] == 2  # per-agent parameters, stacked on the agent axis


def test_simple_spread_vector_env_episodes_and_random_return():
    sp = ma_envs.spec("simple_spread")
    assert sp.agents == ("agent_0", "agent_1", "agent_2") and sp.episode_steps == 26
    assert ma_envs.spec("simple_adversary").obs_sizes == (8, 10, 10)
    venv = sp.vec(200)

    @jax.jit
    def run(key):
        obs, st = venv.reset(key)

        def body(c, k):
            obs, st, ret = c
            a = jax.random.uniform(k, (200, 3, 5))
            st, out = venv.step(k, st, a)
            return (out.obs, st, ret + out.reward), (out.terminated, out.truncated, jnp.abs(out.obs - out.final_obs).max())

        return jax.lax.scan(body, (obs, st, jnp.zeros((200, 3))), jax.random.split(key, 26))

    (_, _, ret), (term, trunc, diff) = jax.device_get(run(jax.random.PRNGKey(0)))
    assert not term.any() and trunc[:25].sum() == 0 and trunc[25].all()  # the 26th step ends it, as a truncation
    assert diff[:25].max() == 0 and diff[25] > 0  # final_obs is the pre-reset observation
    assert abs(float(ret.mean()) + 26.2) < 1.5  # jaxmarl's per-agent random return


def test_bad_input():
    with pytest.raises(ConfigError, match=r"update_every=30 and num_envs=8 do not divide one another"):
        maddpg.make_trainer(dataclasses.replace(PROBE, update_every=30))
    with pytest.raises(ConfigError, match=r"env='simple_tag' is not a multi-agent task; accepted: simple_spread"):
        ma_envs.spec("simple_tag")
