"""jaxmarl's particle tasks against the mpe2 package (the PettingZoo MPE that AgileRL and most
PyTorch MADDPGs train on), step for step: the same start state, the same continuous actions,
the same observations and per-agent rewards for mpe2's whole 25-step episode -- so that a
return measured in one is a return of the other task, up to the episode-length convention
(mpe2 truncates after 25 steps, jaxmarl reports done on its 26th).

mpe2 is the reference here (a dev dependency, like nltk for BLEU); jaxgen itself never imports it.
"""
import numpy as np
import pytest

mpe2 = pytest.importorskip("mpe2")

from jaxgen.rl import ma_envs  # noqa: E402

MPE2 = {"simple_spread": "simple_spread_v3", "simple_adversary": "simple_adversary_v3"}


def _mpe2_env(task: str, seed: int):
    import importlib

    mod = importlib.import_module(f"mpe2.{MPE2[task]}")
    env = mod.parallel_env(continuous_actions=True, max_cycles=25)
    obs, _ = env.reset(seed=seed)
    return env, obs


def _jaxmarl_state(sp: ma_envs.MASpec, world, key):
    """jaxmarl's state with every position and velocity (and simple_adversary's goal) copied
    from mpe2's world."""
    import jax.numpy as jnp

    _, st = sp.env.reset(key)
    ents = list(world.agents) + list(world.landmarks)
    st = st.replace(p_pos=jnp.asarray(np.stack([e.state.p_pos for e in ents]), jnp.float32),
                    p_vel=jnp.asarray(np.stack([e.state.p_vel for e in ents]), jnp.float32))
    if sp.name == "simple_adversary":
        goal = world.agents[1].goal_a
        st = st.replace(goal=jnp.asarray(list(world.landmarks).index(goal)))
    return st


@pytest.mark.parametrize("task", ["simple_spread", "simple_adversary"])
def test_jaxmarl_and_mpe2_agree_for_25_steps(task):
    import jax

    sp = ma_envs.spec(task)
    step = jax.jit(sp.env.step_env)
    rng = np.random.default_rng(3)
    for seed in range(2):
        env, obs = _mpe2_env(task, seed)
        assert list(env.agents) == list(sp.agents)
        st = _jaxmarl_state(sp, env.unwrapped.world, jax.random.PRNGKey(seed))
        jobs = sp.env.get_obs(st)
        for a in sp.agents:
            np.testing.assert_allclose(np.asarray(jobs[a]), obs[a], atol=1e-5)
        for t in range(25):
            acts = {a: rng.uniform(0, 1, 5).astype(np.float32) for a in sp.agents}
            obs, rew, term, trunc, _ = env.step(acts)
            jobs, st, jrew, jdone, _ = step(jax.random.PRNGKey(t), st, {a: jax.numpy.asarray(v) for a, v in acts.items()})
            for a in sp.agents:
                np.testing.assert_allclose(np.asarray(jobs[a]), obs[a], atol=2e-4, err_msg=f"{task} obs {a} step {t}")
                np.testing.assert_allclose(float(jrew[a]), rew[a], atol=2e-4, err_msg=f"{task} reward {a} step {t}")
                assert not term[a]
                # mpe2 truncates after its 25th step; jaxmarl's done comes one step later.
                assert trunc[a] == (t == 24)
                assert not bool(jdone[a])
        jdone = step(jax.random.PRNGKey(25), st, {a: jax.numpy.zeros(5) for a in sp.agents})[3]
        assert all(bool(jdone[a]) for a in sp.agents)
        assert sp.episode_steps == 26
