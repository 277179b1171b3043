"""GAIL: the discriminator loss and reward forms against hand values, the input noise, clipping
and normalisation, the gradient penalty term, GAIL on a probe environment learning the
expert's action against the environment's reward, seeds, one compile for several numbers of
trajectories, no recompilation, the BC warm-start phase, bad demonstrations."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import config as C
from jaxgen.core.errors import ConfigError, DataError
from jaxgen.losses.adversarial import discriminator_reward
from jaxgen.rl import demos, gail, ppo
from jaxgen.rl.policies import PolicyNetConfig
from tests.conftest import SHARED_DATA


def one_sentence(msg: str, *words):
    assert "\n" not in msg and msg.endswith("."), msg
    for w in words:
        assert w in msg, (w, msg)


def test_reward_forms_hand_values():
    z = jnp.array([-2.0, 0.0, 3.0])
    d = 1.0 / (1.0 + np.exp(-np.array([-2.0, 0.0, 3.0])))
    np.testing.assert_allclose(discriminator_reward(z, "softplus"), -np.log(1.0 - d), rtol=1e-6)
    np.testing.assert_allclose(discriminator_reward(z, "softplus"), [0.126928, math.log(2.0), 3.048587], rtol=1e-5)
    np.testing.assert_allclose(discriminator_reward(z, "logit"), np.log(d) - np.log(1.0 - d), rtol=1e-5, atol=1e-6)
    assert np.isfinite(discriminator_reward(jnp.array([-500.0, 500.0]), "softplus")).all()
    with pytest.raises(ValueError, match="reward='x' is not accepted"):
        discriminator_reward(z, "x")


def test_reward_clip_and_normalisation():
    cfg = gail.GAILConfig(reward="logit", clip_reward=True)
    hp = C.hparams(cfg)
    z = jnp.array([[-200.0, -5.0], [3.0, 0.5]])
    np.testing.assert_allclose(gail.reward_of(cfg, hp, z), [[-100.0, -5.0], [0.0, 0.0]])  # the course's [-100, 0]
    r = gail.reward_of(dataclasses.replace(cfg, clip_reward=False, normalize_reward=True), hp, z)
    np.testing.assert_allclose([float(r.mean()), float(r.std())], [0.0, 1.0], atol=1e-4)


def test_noise_has_the_configured_spread():
    x = jnp.full((20000, 3), 2.0)
    y = np.asarray(gail.noised(jax.random.PRNGKey(0), x, 0.1))
    np.testing.assert_allclose(y.mean(0), 2.0, atol=5e-3)
    np.testing.assert_allclose(y.std(0), 0.1, rtol=0.03)
    np.testing.assert_array_equal(gail.noised(jax.random.PRNGKey(0), x, 0.0), x)


CFG = gail.GAILConfig(demos=str(SHARED_DATA / "expert_rollouts" / "cartpole.npz"))


def test_discriminator_loss_hand_values():
    spec = gail.build(CFG)[0]
    hp = {**C.hparams(CFG), "disc.noise_std": jnp.float32(0.0)}
    loss_fn = jax.jit(gail.d_loss_fn, static_argnums=1)
    xe = gail.features(spec, jnp.ones((5, 4)), jnp.array([0, 1, 1, 0, 1]))
    d_params = gail.build(CFG)[1].init(jax.random.PRNGKey(0), xe)["params"]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, d_params)  # D = 1/2 everywhere
    xp = gail.features(spec, -jnp.ones((5, 4)).at[0].set(2.0), jnp.zeros((5,), jnp.int32))
    assert xe.shape == (5, 6) and np.array_equal(xe[1, 4:], [0.0, 1.0])  # obs then the one-hot action
    loss, m = loss_fn(zeros, CFG, xe, xp, jax.random.PRNGKey(1), hp)
    np.testing.assert_allclose(loss, 2 * math.log(2.0), rtol=1e-6)  # -log(1/2) - log(1 - 1/2)
    # at the initial D: -mean log D(expert) - mean log(1 - D(policy)), by hand from its logits
    ze, zp = gail.logits(CFG, d_params, xe), gail.logits(CFG, d_params, xp)
    de, dp = 1 / (1 + np.exp(-np.asarray(ze))), 1 / (1 + np.exp(-np.asarray(zp)))
    want = -np.mean(np.log(de)) - np.mean(np.log(1 - dp))
    loss, m = loss_fn(d_params, CFG, xe, xp, jax.random.PRNGKey(1), hp)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(m["d_acc"], 0.5 * (np.mean(ze > 0) + np.mean(zp < 0)))
    gp_cfg = dataclasses.replace(CFG, disc=dataclasses.replace(CFG.disc, gradient_penalty=True))
    loss_gp, m_gp = loss_fn(d_params, gp_cfg, xe, xp, jax.random.PRNGKey(1), hp)
    assert float(m_gp["gp"]) > 0
    np.testing.assert_allclose(loss_gp, want + 10.0 * float(m_gp["gp"]), rtol=1e-5)


def test_bad_demonstrations_for_gail_are_one_sentence():
    with pytest.raises(DataError) as e:  # CartPole's file for a Pendulum generator
        gail.validate(dataclasses.replace(gail.PENDULUM, demos=CFG.demos))
    one_sentence(str(e.value), "cartpole.npz", "(4,)", "(3,)")
    with pytest.raises(ConfigError) as e:
        gail.validate(dataclasses.replace(CFG, num_trajectories=100.0))
    one_sentence(str(e.value), "num_trajectories=100.0", "[1, 57]")
    with pytest.raises(ConfigError) as e:  # a part's own check names the dotted field
        gail.validate(dataclasses.replace(CFG, ppo=dataclasses.replace(CFG.ppo, env="Nope-v0")))
    one_sentence(str(e.value), "ppo.env='Nope-v0'")


def test_reacher_preset_composes_ppo_s_and_reads_the_repository_expert():
    cfg = gail.validate(gail.PRESETS["reacher"])
    assert cfg.ppo == dataclasses.replace(ppo.PRESETS["reacher"], total_steps=1_000_000)  # composed, not copied
    assert cfg.env == "Reacher-misc" and cfg.demos == "" and cfg.disc.updates == 4
    d = gail.data_of(cfg)
    assert d["obs"].shape == (3200, 8) and d["action"].shape == (3200, 2) and int(d["ends"][-1]) == 3200
    assert int(demos.prefix_size(d["ends"], cfg.num_trajectories)) == 400  # 4 trajectories of 100 steps


# --------------------------------------------------------------------------- a probe: learn the expert's action

@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """The expert of Probe-TwoActions plays action 0, the one the environment rewards -1:
    only the discriminator's reward can teach it."""
    d = demos.record("Probe-TwoActions", lambda k, o: jnp.zeros(o.shape[0], jnp.int32), jax.random.PRNGKey(0), 16)
    path = demos.save(tmp_path_factory.mktemp("gail") / "zero.npz", d)
    p = ppo.PPOConfig(env="Probe-TwoActions", num_envs=4, rollout_len=8, total_steps=4 * 8 * 40, update_epochs=2,
                      num_minibatches=2, learning_rate=1e-2, anneal_lr=False, policy=PolicyNetConfig(hidden=(8,)))
    cfg = gail.GAILConfig(ppo=p, demos=str(path), num_trajectories=4,
                          disc=gail.DiscConfig(hidden=(8,), batch_size=16, updates=2, learning_rate=1e-2))
    train = jax.jit(jax.vmap(gail.make_train(cfg)))
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    hp = {k: jnp.full((3,), v) for k, v in C.hparams(cfg).items()}
    hp["num_trajectories"] = jnp.array([1.0, 4.0, 4.0])  # two numbers of trajectories in one compile
    return cfg, train, keys, hp


def test_gail_learns_the_expert_action_on_a_probe(probe):
    cfg, train, keys, hp = probe
    state, m = train(keys, hp)
    out, _ = jax.vmap(lambda s: ppo.policy_and_value(s.ppo, jnp.zeros((1, 1))))(state)
    p0 = np.asarray(jax.nn.softmax(out.loc, axis=-1))[:, 0, 0]
    assert (p0 > 0.9).all(), p0  # the expert's action, against the environment's reward
    ret = np.asarray(m["episode_return"])
    assert (ret[:, -1] < -0.8).all() and (ret[:, 0] > -0.5).all(), ret[:, [0, -1]]  # the true return: -1
    assert int(state.env_steps[0]) == cfg.ppo.total_steps


def test_gail_seeds_and_no_recompilation(probe):
    cfg, train, keys, hp = probe
    a, _ = train(keys, hp)
    b, _ = train(keys, hp)
    assert train._cache_size() == 1
    la, lb = jax.tree_util.tree_leaves(a.ppo.params), jax.tree_util.tree_leaves(b.ppo.params)
    assert all(np.array_equal(x, y) for x, y in zip(la, lb))  # same seeds, same result
    first = [x[1] for x in la]
    assert not all(np.array_equal(x[1], x[2]) for x in la)  # seeds 1 and 2 (both k=4) differ
    del first


def test_bc_warm_start_phase(probe):
    cfg, _, _, _ = probe
    w = dataclasses.replace(cfg, bc_epochs=2, bc_updates_per_epoch=20, bc_batch_size=8, bc_learning_rate=3e-2)
    trainer = gail.make_trainer(w)
    assert [p.name for p in trainer.schedule] == ["bc", "gail"] and trainer.num_steps == 2 + cfg.ppo.num_iterations
    bc_phase = trainer.schedule[0]
    step = jax.jit(bc_phase.step)  # the warm start alone (the gail phase is the probe run above)
    s0 = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    s1, m1 = step(s0, trainer.data)
    s2, m2 = step(s1, trainer.data)
    assert float(m2["bc_loss"]) < 0.1 < float(m1["bc_loss"])
    out, _ = ppo.policy_and_value(s2.ppo, jnp.zeros((1, 1)))
    assert int(jnp.argmax(out.loc[0])) == 0  # the warm start already plays the expert's action
    assert int(s2.step) == 2 and int(s2.ppo.step) == 0  # BC epochs count in the run, not as PPO iterations
