"""Policy-gradient surrogates against hand-computed values and gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.losses.policy_gradient import (approx_kl, clip_fraction, clipped_surrogate, clipped_surrogate_loss,
                                           policy_gradient_loss)


def test_policy_gradient_loss_value_and_gradients():
    logp, w, m = jnp.array([-1.0, -2.0, -3.0]), jnp.array([2.0, -1.0, 5.0]), jnp.array([1.0, 1.0, 0.0])
    # -(m . (logp * w)) / sum(m) = -((-1)(2) + (-2)(-1)) / 2 = 0
    assert float(policy_gradient_loss(logp, w, m)) == pytest.approx(0.0)
    # d/dlogp = -m w / sum(m) = (-1, 0.5, 0); the weights get no gradient
    np.testing.assert_allclose(jax.grad(policy_gradient_loss)(logp, w, m), [-1.0, 0.5, 0.0])
    np.testing.assert_allclose(jax.grad(policy_gradient_loss, argnums=1)(logp, w, m), [0.0, 0.0, 0.0])
    # no mask: the plain mean -((-1)(2) + (-2)(-1) + (-3)(5)) / 3 = 5
    assert float(policy_gradient_loss(logp, w)) == pytest.approx(5.0)
    # [T, B] inputs
    lp2 = jnp.array([[-1.0, -0.5], [-2.0, -4.0]])
    w2 = jnp.array([[1.0, 2.0], [3.0, 0.5]])
    m2 = jnp.array([[1.0, 1.0], [1.0, 0.0]])
    # -(-1 - 1 - 6) / 3 = 8/3
    assert float(policy_gradient_loss(lp2, w2, m2)) == pytest.approx(8.0 / 3.0)


def test_clipped_surrogate_at_the_clip_boundaries():
    eps = 0.2
    f = lambda r, a: clipped_surrogate(jnp.asarray(r), jnp.asarray(a), eps)
    g = jax.grad(f)
    # A > 0: capped at (1 + eps) A above the boundary (no gradient), unclipped below 1 + eps
    np.testing.assert_allclose([f(1.3, 2.0), g(1.3, 2.0)], [2.4, 0.0], rtol=1e-6)
    np.testing.assert_allclose([f(1.1, 2.0), g(1.1, 2.0)], [2.2, 2.0], rtol=1e-6)
    np.testing.assert_allclose([f(0.5, 2.0), g(0.5, 2.0)], [1.0, 2.0], rtol=1e-6)  # pessimistic side keeps the gradient
    # A < 0: floored at (1 - eps) A below the boundary (no gradient), unclipped above 1 - eps
    np.testing.assert_allclose([f(0.7, -1.0), g(0.7, -1.0)], [-0.8, 0.0], rtol=1e-6)
    np.testing.assert_allclose([f(0.9, -1.0), g(0.9, -1.0)], [-0.9, -1.0], rtol=1e-6)
    np.testing.assert_allclose([f(1.5, -1.0), g(1.5, -1.0)], [-1.5, -1.0], rtol=1e-6)
    # at the boundaries themselves the two branches agree
    np.testing.assert_allclose([f(1.2, 1.0), f(0.8, -1.0)], [1.2, -0.8], rtol=1e-6)


def test_clipped_surrogate_loss_and_diagnostics():
    ratio, adv = jnp.array([1.3, 1.1, 0.7, 1.0]), jnp.array([2.0, 2.0, -1.0, 4.0])
    # objectives 2.4, 2.2, -0.8, 4.0 -> loss -(7.8 / 4) = -1.95
    assert float(clipped_surrogate_loss(ratio, adv, 0.2)) == pytest.approx(-1.95)
    # with the last sample masked out: -(3.8 / 3)
    assert float(clipped_surrogate_loss(ratio, adv, 0.2, jnp.array([1.0, 1.0, 1.0, 0.0]))) == pytest.approx(-3.8 / 3)
    # |rho - 1| = 0.3, 0.1, 0.3, 0 against eps 0.2: 2 of 4 clipped
    assert float(clip_fraction(ratio, 0.2)) == pytest.approx(0.5)
    # (rho - 1) - log rho at rho = e: e - 2; at rho = 1: 0 -> mean (e - 2) / 2
    assert float(approx_kl(jnp.array([1.0, 0.0]))) == pytest.approx((np.e - 2.0) / 2, rel=1e-6)


def test_shape_mismatch_is_refused():
    with pytest.raises(AssertionError):
        policy_gradient_loss(jnp.zeros((4, 2)), jnp.zeros((4,)))
