"""Shared math against hand-computed values (and the categorical sampler against its frequencies)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core.distributions import (
    bernoulli_log_prob,
    categorical_from_uniform,
    categorical_sample,
    diag_gaussian_log_prob,
    kl_diag_gaussian_std_normal,
    reparameterize,
)


def test_kl_hand_computed():
    # 0.5 * [(1 + 1 - 1 - 0) + (2 + 0 - 1 - log 2)] = 0.5 * (2 - log 2)
    kl = kl_diag_gaussian_std_normal(jnp.array([1.0, 0.0]), jnp.array([0.0, math.log(2.0)]))
    np.testing.assert_allclose(kl, 0.5 * (2 - math.log(2.0)), rtol=1e-6)
    # KL of N(0, I) to itself is zero
    assert float(kl_diag_gaussian_std_normal(jnp.zeros(5), jnp.zeros(5))) == 0.0


def test_bernoulli_cross_entropy_hand_computed():
    # logits 2: log sigmoid(2) = -0.126928, log(1 - sigmoid(2)) = -2.126928; logits 0: log 0.5
    logits = jnp.array([[2.0, 2.0, 0.0]])
    x = jnp.array([[1.0, 0.0, 1.0]])
    lp = bernoulli_log_prob(logits, x, axes=-1)
    np.testing.assert_allclose(lp, [-0.126928 - 2.126928 - math.log(2.0)], rtol=1e-5)
    # stable for large logits
    assert np.isfinite(float(bernoulli_log_prob(jnp.array([80.0, -80.0]), jnp.array([0.0, 1.0]), axes=-1)))


def test_diag_gaussian_log_prob_hand_computed():
    np.testing.assert_allclose(diag_gaussian_log_prob(jnp.zeros(1), 0.0, jnp.zeros(1)), -0.5 * math.log(2 * math.pi), rtol=1e-6)
    # x=1, mean=0, var=4 (log_var=log 4): -0.5*(log 2pi + log 4 + 1/4)
    v = diag_gaussian_log_prob(jnp.ones(1), 0.0, jnp.full(1, math.log(4.0)))
    np.testing.assert_allclose(v, -0.5 * (math.log(2 * math.pi) + math.log(4.0) + 0.25), rtol=1e-6)


def test_reparameterization_gradient():
    key = jax.random.PRNGKey(3)
    mean, log_var = jnp.array([0.5, -1.0, 2.0]), jnp.array([0.0, 1.0, -2.0])
    z = reparameterize(key, mean, log_var)
    eps = (z - mean) / jnp.exp(0.5 * log_var)
    g_mean, g_lv = jax.grad(lambda m, lv: jnp.sum(reparameterize(key, m, lv)), argnums=(0, 1))(mean, log_var)
    np.testing.assert_allclose(g_mean, np.ones(3), rtol=1e-6)
    np.testing.assert_allclose(g_lv, 0.5 * jnp.exp(0.5 * log_var) * eps, rtol=1e-5)
    # the estimator is unbiased: E[z] = mean, Var[z] = exp(log_var)
    zs = reparameterize(key, mean, log_var, num_samples=20000)
    np.testing.assert_allclose(zs.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(zs.var(0), jnp.exp(log_var), rtol=0.05)


@pytest.mark.parametrize("v", [4, 200])  # one cumulative sum (actions); two levels (a vocabulary)
def test_categorical_inverse_cdf_by_hand_and_frequencies(v):
    p = np.arange(1, v + 1, dtype=np.float64)
    p /= p.sum()
    logits = jnp.asarray(np.log(p), jnp.float32)
    cdf = np.cumsum(p)
    # just below / above each boundary of the cumulative probabilities
    eps = p.min() / 4
    u = np.concatenate([cdf[:-1] - eps, cdf[:-1] + eps, [0.0, 0.999999]]).astype(np.float32)
    want = np.concatenate([np.arange(v - 1), np.arange(1, v), [0, v - 1]])
    np.testing.assert_array_equal(categorical_from_uniform(jnp.asarray(u), jnp.broadcast_to(logits, (len(u), v))), want)
    draws = categorical_sample(jax.random.PRNGKey(0), jnp.broadcast_to(logits, (200_000, v)))
    freq = np.bincount(np.asarray(draws), minlength=v) / 200_000
    np.testing.assert_allclose(freq, p, atol=4e-3)
    cold = categorical_sample(jax.random.PRNGKey(1), jnp.broadcast_to(logits, (100, v)), 1e-4)  # temperature
    assert (np.asarray(cold) == v - 1).all()
