"""Discounted returns and GAE against hand-computed values: episode ends inside the
rollout, termination (no bootstrap) and truncation (bootstrap from V(final_obs))."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.rl.returns import discounted_returns, gae, next_values

G = 0.5
F, T = False, True


def col(*x, dtype=jnp.float32):
    return jnp.asarray(x, dtype)[:, None]  # [T, 1]


def test_returns_one_episode_terminating():
    r = discounted_returns(col(1, 2, 3), col(F, F, T, dtype=bool), col(F, F, F, dtype=bool), col(9, 9, 9), G)
    # R2 = 3 (terminated: next_value ignored), R1 = 2 + .5*3 = 3.5, R0 = 1 + .5*3.5 = 2.75
    np.testing.assert_allclose(r[:, 0], [2.75, 3.5, 3.0])


def test_returns_episode_end_inside_rollout_and_bootstrap_at_end():
    # episode A: steps 0-1 (terminates at 1); episode B: steps 2-3, unfinished: bootstrap V = 4
    rew, term = col(1, 1, 1, 1), col(F, T, F, F, dtype=bool)
    trunc = col(F, F, F, F, dtype=bool)
    nv = col(7, 7, 7, 4)
    r = discounted_returns(rew, term, trunc, nv, G)
    # R3 = 1 + .5*4 = 3, R2 = 1 + .5*3 = 2.5, R1 = 1, R0 = 1 + .5*1 = 1.5
    np.testing.assert_allclose(r[:, 0], [1.5, 1.0, 2.5, 3.0])
    # plain Monte Carlo (no critic): next_value = 0
    r = discounted_returns(rew, term, trunc, jnp.zeros_like(rew), G)
    np.testing.assert_allclose(r[:, 0], [1.5, 1.0, 1.5, 1.0])


def test_returns_truncation_bootstraps_termination_does_not():
    rew = col(1, 1, 1)
    nv = col(0, 10, 0)  # V(final_obs) of step 1 = 10
    trunc = discounted_returns(rew, col(F, F, T, dtype=bool), col(F, T, F, dtype=bool), nv, G)
    term = discounted_returns(rew, col(F, T, T, dtype=bool), col(F, F, F, dtype=bool), nv, G)
    # truncated at 1: R1 = 1 + .5*10 = 6, R0 = 1 + .5*6 = 4; R2 = 1 (terminated)
    np.testing.assert_allclose(trunc[:, 0], [4.0, 6.0, 1.0])
    # terminated at 1: R1 = 1, R0 = 1.5
    np.testing.assert_allclose(term[:, 0], [1.5, 1.0, 1.0])


def test_gae_hand_values_with_episode_end_and_truncation():
    lam = 0.5
    rew = col(1, 0, 2, 1)
    val = col(1, 2, 3, 4)
    term = col(F, T, F, F, dtype=bool)
    trunc = col(F, F, T, F, dtype=bool)
    nv = col(2, 100, 8, 6)  # nv[0] = val[1]; nv[1] ignored (terminated); nv[2] = V(final_obs); nv[3] = bootstrap
    adv, tgt = gae(rew, val, nv, term, trunc, G, lam)
    d = np.array([1 + .5 * 2 - 1, 0 - 2, 2 + .5 * 8 - 3, 1 + .5 * 6 - 4])  # [1, -2, 3, 0]
    a3 = d[3]
    a2 = d[2]  # truncated: trace cut
    a1 = d[1]  # terminated: trace cut
    a0 = d[0] + G * lam * a1
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2, a3], rtol=1e-6)
    np.testing.assert_allclose(tgt[:, 0], np.array([a0, a1, a2, a3]) + np.array([1, 2, 3, 4]), rtol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_gae_limits(lam):
    rng = np.random.default_rng(0)
    t, n = 7, 3
    rew = jnp.asarray(rng.normal(size=(t, n)), jnp.float32)
    val = jnp.asarray(rng.normal(size=(t, n)), jnp.float32)
    term = jnp.asarray(rng.random((t, n)) < 0.2)
    trunc = jnp.asarray(rng.random((t, n)) < 0.2) & ~term
    final = jnp.asarray(rng.normal(size=(t, n)), jnp.float32)
    last = jnp.asarray(rng.normal(size=(n,)), jnp.float32)
    nv = next_values(val, final, term | trunc, last)
    adv, _ = gae(rew, val, nv, term, trunc, 0.9, lam)
    if lam == 0.0:
        want = rew + 0.9 * (1 - term) * nv - val
    else:
        want = discounted_returns(rew, term, trunc, nv, 0.9) - val
    np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)


def test_next_values():
    val = col(1, 2, 3)
    nv = next_values(val, col(7, 8, 9), col(F, T, F, dtype=bool), jnp.array([5.0]))
    np.testing.assert_allclose(nv[:, 0], [2, 8, 5])
