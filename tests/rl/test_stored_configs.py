"""Run directories written before the renames: their config.json loads into the new fields
(``MOVED`` / ``upgrade``) and their state has the structure today's ``init`` builds (the
optimiser state above all), so checkpoints restore. One policy-network config builds one
network."""
import jax
import jax.numpy as jnp
import optax

from jaxgen.core import config as C
from jaxgen.rl import dqn, envs, policies, ppo, reinforce
from jaxgen.rl.policies import PolicyNetConfig

OLD_PPO = {"env": "Breakout-MinAtar", "num_envs": 64, "num_steps": 128, "total_steps": 10_000_000, "update_epochs": 4,
           "num_minibatches": 8, "network": "mlp", "hidden": [256, 256], "activation": "relu", "log_std": "param",
           "log_std_init": 0.0, "anneal_lr": False, "clip_value": True, "normalize_advantages": True,
           "normalize_obs": False, "scale_rewards": False, "unroll": 1, "learning_rate": 5e-4, "gamma": 0.999,
           "gae_lambda": 0.95, "clip_eps": 0.2, "vf_clip": 0.2, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5,
           "eval_greedy": 0.0, "fused_net": False}


def test_an_old_flat_ppo_config_loads_into_the_nested_one():
    cfg = C.from_dict(ppo.PPOConfig, OLD_PPO)
    assert cfg == ppo.MINATAR  # the stored MinAtar run is today's MinAtar preset
    assert cfg.rollout_len == 128 and cfg.policy == PolicyNetConfig(network="mlp", hidden=(256, 256), activation="relu")
    assert C.from_dict(ppo.PPOConfig, C.to_dict(cfg)) == cfg  # and today's dict round-trips


def test_an_old_reinforce_config_loads_with_the_mlp_it_had():
    old = {"env": "Breakout-MinAtar", "num_envs": 4, "num_updates": 3, "rollout_len": 0, "hidden": [32],
           "activation": "tanh", "log_std": "param", "log_std_init": 0.0}
    cfg = C.from_dict(reinforce.ReinforceConfig, old)
    assert cfg.policy == PolicyNetConfig(network="mlp", hidden=(32,))  # REINFORCE never used the conv torso
    assert cfg.num_iterations == 3 and cfg.eval_greedy == 0.0
    assert C.from_dict(reinforce.ReinforceConfig, {}).policy.network == "mlp"


def test_dqn_clip_norm_zero_meant_none():
    assert C.from_dict(dqn.DQNConfig, {"max_grad_norm": 0.0}).max_grad_norm == float("inf")
    assert C.from_dict(dqn.DQNConfig, {"max_grad_norm": 10.0}).max_grad_norm == 10.0
    assert "max_grad_norm" in C.traced_names(dqn.DQNConfig())


def _structure(tree):
    return jax.tree_util.tree_structure(tree)


def test_optimiser_states_keep_the_structure_old_checkpoints_hold():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros((3,))}

    def old_pg_tx(learning_rate, max_grad_norm):  # what PPO / REINFORCE used to build
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=1e-5))

    old_pg = optax.inject_hyperparams(old_pg_tx)(learning_rate=1e-3, max_grad_norm=0.5).init(params)
    new_pg = ppo.build(ppo.PPOConfig()).tx.init(params)
    assert _structure(new_pg) == _structure(old_pg)
    assert _structure(reinforce.build(reinforce.ReinforceConfig()).tx.init(params)) == _structure(old_pg)
    # DQN's default (clip 10): chain(clip, inject_hyperparams(adam))
    old_dqn = optax.chain(optax.clip_by_global_norm(10.0), optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)).init(params)
    new_dqn = dqn.optimizer(dqn.DQNConfig(), jnp.float32(10.0)).init(params)
    assert _structure(new_dqn) == _structure(old_dqn)


def test_one_policy_config_builds_one_network():
    net = PolicyNetConfig(hidden=(32, 32), activation="relu")
    spec = envs.spec("CartPole-v1")
    a = policies.actor_critic(net, spec)
    assert policies.actor_critic(PolicyNetConfig(hidden=(32, 32), activation="relu"), spec) is a  # equal configs: one module
    ppo_net = ppo.build(ppo.PPOConfig(policy=net)).net
    assert ppo_net is a and reinforce.build(reinforce.ReinforceConfig(policy=net)).net is a
    # parameters made by one agent's network load into the other's: the same tree
    p = a.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))["params"]
    out, v = ppo_net.apply({"params": p}, jnp.zeros((2, 4)))
    assert out.loc.shape == (2, 2) and v.shape == (2,)
    # auto picks the conv torso for image observations
    assert policies.actor_critic(PolicyNetConfig(), envs.spec("Breakout-MinAtar")).conv
    assert not policies.actor_critic(PolicyNetConfig(network="mlp"), envs.spec("Breakout-MinAtar")).conv
