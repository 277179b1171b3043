"""Policy-gradient agents: policy heads (log-probs, entropy) against hand values, the shared
policy-network config, probe environments, seed behaviour, no recompilation, bad input,
PPO's reward seam, stored configs of before the renames, and short learning runs of PPO and
REINFORCE. (The surrogates and value losses are tested in tests/losses.)"""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import config as C
from jaxgen.core.errors import ConfigError
from jaxgen.rl import policies as P


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


# --- policy heads ---------------------------------------------------------------------------

def test_categorical_log_prob_and_entropy_hand_values():
    logits = jnp.log(jnp.array([[0.2, 0.3, 0.5], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(P.categorical_log_prob(logits, jnp.array([2, 0])), [math.log(0.5), math.log(1 / 3)], rtol=1e-6)
    h = -(0.2 * math.log(0.2) + 0.3 * math.log(0.3) + 0.5 * math.log(0.5))
    np.testing.assert_allclose(P.categorical_entropy(logits), [h, math.log(3)], rtol=1e-6)
    # shift invariance of logits
    np.testing.assert_allclose(P.categorical_log_prob(logits + 7.0, jnp.array([2, 0])),
                               P.categorical_log_prob(logits, jnp.array([2, 0])), rtol=1e-5)


def test_gaussian_log_prob_and_entropy_hand_values():
    mean = jnp.array([[0.0, 1.0]])
    log_std = jnp.array([0.0, math.log(2.0)])
    a = jnp.array([[1.0, 3.0]])
    # N(1; 0, 1): -0.5 log 2pi - 0.5 ; N(3; 1, 4): -0.5 log 2pi - log 2 - 0.5 * (2/2)^2
    want = (-0.5 * math.log(2 * math.pi) - 0.5) + (-0.5 * math.log(2 * math.pi) - math.log(2.0) - 0.5)
    np.testing.assert_allclose(P.gaussian_log_prob(mean, log_std, a), [want], rtol=1e-6)
    h = 2 * 0.5 * (1 + math.log(2 * math.pi)) + math.log(2.0)
    np.testing.assert_allclose(P.gaussian_entropy(log_std, mean.shape), [h], rtol=1e-6)
    # state-dependent log-std ([B, D]) gives the same per row
    np.testing.assert_allclose(P.gaussian_log_prob(mean, log_std[None], a), [want], rtol=1e-6)
    # sampling: log-prob of a sample equals the formula
    k = jax.random.PRNGKey(0)
    out = P.PolicyOut(jnp.zeros((1000, 2)), log_std)
    x, lp = P.sample_and_log_prob(k, out, False)
    np.testing.assert_allclose(lp, P.gaussian_log_prob(out.loc, log_std, x), rtol=1e-5)
    np.testing.assert_allclose(np.std(np.asarray(x), axis=0), [1.0, 2.0], rtol=0.1)


@pytest.mark.parametrize("mode", P.LOG_STD_MODES)
def test_actor_critic_shapes_and_log_std_modes(mode):
    net = P.ActorCritic(action_dim=2, discrete=False, hidden=(8,), log_std=mode, log_std_init=-0.5)
    obs = jnp.ones((5, 3))
    params = net.init(jax.random.PRNGKey(0), obs)["params"]
    out, v = net.apply({"params": params}, obs)
    assert out.loc.shape == (5, 2) and v.shape == (5,)
    assert ("log_std" in params) == (mode == "param")
    np.testing.assert_allclose(jnp.broadcast_to(out.log_std, (5, 2)), -0.5, atol=0.05)
    np.testing.assert_allclose(net.apply({"params": params}, obs, method="value"), v)
    net = P.ActorCritic(action_dim=3, discrete=True, hidden=(8,))
    params = net.init(jax.random.PRNGKey(0), obs)["params"]
    out, v = net.apply({"params": params}, obs)
    assert out.loc.shape == (5, 3) and out.log_std is None


# --- PPO ------------------------------------------------------------------------------------

from jaxgen.rl import ppo  # noqa: E402

PPO_TINY = ppo.PPOConfig(num_envs=4, rollout_len=16, total_steps=4 * 16 * 6, policy=P.PolicyNetConfig(hidden=(16,)))


@pytest.mark.parametrize("env,want", [
    ("Probe-TwoActions", {0: 1.0}),  # value +1 and action 1 learned
    ("Probe-Discount", {0: 0.5, 1: 1.0}),  # V(0) = gamma, V(1) = 1: bootstrapping and the terminal mask
    ("Probe-TimeLimit", {0: 2.0}),  # 1 / (1 - gamma): bootstraps through truncation
])
def test_ppo_learns_probe_envs(env, want):
    cfg = ppo.PPOConfig(env=env, num_envs=8, rollout_len=16, total_steps=8 * 16 * 120, policy=P.PolicyNetConfig(hidden=(16,)),
                        learning_rate=1e-2, gamma=0.5, gae_lambda=0.5, anneal_lr=False, clip_value=False, ent_coef=0.0)
    st, m = jax.jit(ppo.make_train(cfg))(jax.random.PRNGKey(0))
    for obs, v in want.items():
        out, val = ppo.policy_and_value(st, jnp.array([[float(obs)]]))
        np.testing.assert_allclose(val, [v], atol=0.1)
    if env == "Probe-TwoActions":
        assert float(jax.nn.softmax(out.loc)[0, 1]) > 0.9


def test_ppo_seed_behaviour_and_no_recompilation():
    train = jax.jit(ppo.make_train(PPO_TINY))
    s0, m0 = train(jax.random.PRNGKey(0), ppo.C.hparams(PPO_TINY))
    s0b, _ = train(jax.random.PRNGKey(0), ppo.C.hparams(PPO_TINY))
    s1, _ = train(jax.random.PRNGKey(1), ppo.C.hparams(PPO_TINY, {"learning_rate": 1e-3, "clip_eps": 0.1, "gae_lambda": 0.9}))
    assert train._cache_size() == 1
    assert same(s0.params, s0b.params) and not same(s0.params, s1.params)
    lr = np.asarray(m0["learning_rate"])  # annealed linearly to 0
    np.testing.assert_allclose(lr, 2.5e-4 * (1 - np.arange(6) / 6), rtol=1e-5)


def test_ppo_continuous_with_normalisation_and_vmapped_seeds():
    cfg = C.replace(ppo.PENDULUM, {"num_envs": 4, "rollout_len": 16, "total_steps": 4 * 16 * 4, "policy.hidden": (16,),
                                   "update_epochs": 2, "num_minibatches": 2, "policy.log_std": "state"})
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    st, m = jax.jit(jax.vmap(ppo.make_train(cfg)))(keys)
    assert np.isfinite(np.asarray(m["loss"])).all() and m["loss"].shape == (2, 4)
    assert float(st.obs_rms.count[0]) > 4 * 16 * 4 - 1 and float(st.ret_rms.var[0]) != 1.0
    s0 = jax.tree_util.tree_map(lambda x: x[0], st)
    a = ppo.act(s0, jax.random.PRNGKey(0), jnp.zeros((5, 3)))
    assert a.shape == (5, 1) and float(jnp.max(jnp.abs(a))) <= 2.0


def test_ppo_bad_input_is_one_sentence():
    with pytest.raises(ConfigError, match=r"num_minibatches=3 does not divide the batch of num_envs x rollout_len = 512"):
        ppo.make_trainer(ppo.PPOConfig(num_minibatches=3))
    with pytest.raises(ConfigError, match=r"env='Cartpole' is not a known environment"):
        ppo.make_trainer(ppo.PPOConfig(env="Cartpole"))
    with pytest.raises(ConfigError, match=r"policy.log_std='learned' is not accepted"):
        ppo.make_trainer(C.replace(ppo.PPOConfig(), {"policy.log_std": "learned"}))
    with pytest.raises(ConfigError, match=r"policy.hidden=\(64, 0\) is out of range"):
        ppo.make_trainer(C.replace(ppo.PPOConfig(), {"policy.hidden": (64, 0)}))


def test_ppo_cartpole_learns_quickly():
    cfg = dataclasses.replace(ppo.PPOConfig(), total_steps=100_352)
    st, m = jax.jit(ppo.make_train(cfg))(jax.random.PRNGKey(0))
    ret = np.asarray(m["episode_return"])
    assert ret[-10:].mean() >= 150, ret[::10]


# --- REINFORCE ------------------------------------------------------------------------------

from jaxgen.rl import reinforce  # noqa: E402


def test_first_episode_mask():
    done = jnp.array([[0, 0], [1, 0], [0, 1], [1, 0]], bool)
    np.testing.assert_array_equal(reinforce.first_episode_mask(done), [[1, 1], [1, 1], [0, 1], [0, 0]])


def test_reinforce_probe_seed_behaviour_and_no_recompilation():
    cfg = reinforce.ReinforceConfig(env="Probe-TwoActions", num_envs=8, num_updates=60, rollout_len=1,
                                    policy=P.PolicyNetConfig(network="mlp", hidden=(16,)), learning_rate=3e-2)
    train = jax.jit(reinforce.make_train(cfg))
    s0, m0 = train(jax.random.PRNGKey(0), reinforce.C.hparams(cfg))
    s0b, _ = train(jax.random.PRNGKey(0), reinforce.C.hparams(cfg))
    s1, _ = train(jax.random.PRNGKey(1), reinforce.C.hparams(cfg, {"learning_rate": 1e-2, "gamma": 0.9}))
    assert train._cache_size() == 1
    assert same(s0.params, s0b.params) and not same(s0.params, s1.params)
    out = s0.config and reinforce.build(cfg).net.apply({"params": s0.params}, jnp.zeros((1, 1)), method="policy")
    assert float(jax.nn.softmax(out.loc)[0, 1]) > 0.9  # learned the +1 action
    assert float(m0["episode_return"][-1]) > 0.8 and float(m0["env_steps"][-1]) == 60 * 8
    # eval_greedy is a traced hyperparameter that evaluate reads from the state, as PPO's
    greedy = s0.replace(hparams={**s0.hparams, "eval_greedy": jnp.float32(1.0)})
    ret, _ = jax.jit(lambda s, k: reinforce.evaluate(s, k, 16))(greedy, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(ret, np.ones(16))  # the greedy action is the +1 one
    assert "eval_greedy" in C.traced_names(cfg)


def test_reinforce_continuous_runs():
    cfg = reinforce.ReinforceConfig(env="Pendulum-v1", num_envs=2, num_updates=2, rollout_len=20,
                                    policy=P.PolicyNetConfig(hidden=(8,), log_std="fixed"))
    st, m = jax.jit(reinforce.make_train(cfg))(jax.random.PRNGKey(0))
    assert np.isfinite(np.asarray(m["loss"])).all()
    assert reinforce.act(st, jax.random.PRNGKey(0), jnp.zeros((3, 3))).shape == (3, 1)


def test_reinforce_cartpole_learns_quickly():
    cfg = reinforce.ReinforceConfig(num_updates=40)
    st, m = jax.jit(reinforce.make_train(cfg))(jax.random.PRNGKey(0))
    ret = np.asarray(m["episode_return"])
    assert ret[-5:].mean() >= 200, ret


# --- host side: fit, saved policy, eval, render --------------------------------------------

from jaxgen.rl import fit as rl_fit, render  # noqa: E402


def test_fit_saves_a_policy_that_eval_and_render_load(tmp_path):
    out = rl_fit.fit(PPO_TINY, seed=0, run_dir=tmp_path / "ppo", eval_episodes=2, progress=False, chunk_steps=3)
    for f in ("curves.png", "results.json", "metrics.jsonl", "config.json"):
        assert (tmp_path / "ppo" / f).is_file()
    assert out["final"]["env_steps"] == 6 * PPO_TINY.batch_size and "eval_return" in out["final"]
    st = rl_fit.load(tmp_path / "ppo")
    assert same(st.params, out["state"].params)
    ev = rl_fit.evaluate_run(tmp_path / "ppo", episodes=3)
    assert ev == rl_fit.evaluate_run(out["state"], episodes=3)  # the saved policy is the trained one
    assert ev["episodes"] == 3 and ev["mean_return"] == ev["mean_length"]  # CartPole pays 1 per step
    r = render.render(st, tmp_path / "strip.png", frames=4, max_steps=50)
    assert (tmp_path / "strip.png").is_file() and r["length"] >= 1
    g = render.render(st, tmp_path / "episode.gif", max_steps=12)
    from PIL import Image

    with Image.open(tmp_path / "episode.gif") as im:  # one animation frame per step played
        assert im.format == "GIF" and im.n_frames == g["length"] == min(r["length"], 12)
    cfg = reinforce.ReinforceConfig(num_envs=2, num_updates=2, rollout_len=30, policy=P.PolicyNetConfig(network="mlp", hidden=(8,)))
    out = rl_fit.fit(cfg, run_dir=tmp_path / "rf", eval_episodes=2, progress=False, chunk_steps=1)
    assert 0 < out["final"]["env_steps"] <= 2 * 2 * 30
    assert rl_fit.load(tmp_path / "rf").config == cfg


def test_minatar_frame_is_an_upscaled_picture():
    obs = np.zeros((10, 10, 4), np.float32)
    obs[2, 3, 1] = 1.0
    img = render.frame_rgb("Breakout-MinAtar", obs, scale=4)
    assert img.shape == (40, 40, 3) and img.dtype == np.uint8
    assert (img[0, 0] == 255).all() and not (img[2 * 4 + 1, 3 * 4 + 1] == 255).all()


def test_sweep_cli_trains_ppo_seeds_and_learning_rates_in_one_compile(tmp_path, capsys):
    import json

    from jaxgen import cli

    rc = cli.main(["sweep", "ppo", "--seeds", "2", "--grid", "learning_rate=3e-3,1e-5", "--num-envs", "4",
                   "--rollout-len", "16", "--total-steps", str(4 * 16 * 12), "--policy.hidden", "16", "--eval-every", "2",
                   "--threshold", "15", "--run-dir", str(tmp_path), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "one compile: 4 runs" in out
    blob = json.loads((tmp_path / "study.json").read_text())
    assert [r["learning_rate"] for r in blob["table"]] == [3e-3, 1e-5]
    first = np.asarray(blob["first_eval_reaching"], np.float64)  # [learning rate, seed]; NaN: never
    assert [r["reached"] for r in blob["table"]] == [f"{int(np.sum(~np.isnan(f)))}/2" for f in first]
    finals = np.asarray(blob["final_eval_return"])
    assert not np.isnan(first[finals >= 15]).any()  # a run whose last evaluation reached 15 has a first step
    assert len(blob["final_eval_return"]) == 2 and len(blob["final_eval_return"][0]) == 2
    assert (tmp_path / "curves_learning_rate.png").is_file() and (tmp_path / "table.md").is_file()


def test_a_sweep_initialises_three_runs_of_wide_mlps_without_hanging():
    # jax.jit(jax.vmap(init)) of >= 3 PPO nets with two 256-wide layers never returns under
    # XLA:CPU (jax 0.10.2) through a batched LAPACK QR; jaxgen.nets.init.orthogonal unbatches it, so
    # it returns under the default (concurrency-optimised) scheduler, which jaxgen leaves on. In a
    # subprocess, so a regression fails with a timeout instead of hanging the suite.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import jax
        from jaxgen.core.sweep import grid_runs, vmap_trainer
        from jaxgen.rl import ppo
        from jaxgen.rl.policies import PolicyNetConfig
        cfg = ppo.PPOConfig(env="Breakout-MinAtar", num_envs=4, rollout_len=8, total_steps=64,
                            policy=PolicyNetConfig(hidden=(256, 256), activation="relu"))
        tr = ppo.make_trainer(cfg)
        keys, hp, _ = grid_runs(tr.config, [0, 1, 2], {})
        s = jax.block_until_ready(vmap_trainer(tr, keys, hp).init(None))
        print(s.params["actor"]["Dense_1"]["kernel"].shape)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "(3, 256, 256)" in out.stdout
