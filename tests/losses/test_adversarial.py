"""Adversarial losses, gradient penalty, R1 and clipping against hand-computed values; chex
shape checks on entry."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.losses import adversarial as L

LN3 = math.log(3.0)


def test_bce_losses_hand_computed():
    real = jnp.array([0.0, LN3])  # sigmoid: 1/2, 3/4
    fake = jnp.array([0.0, -LN3])  # sigmoid: 1/2, 1/4
    # D: -[log 1/2 + log 3/4]/2 - [log(1 - 1/2) + log(1 - 1/4)]/2 = log 2 + log 4/3 = log 8/3
    np.testing.assert_allclose(L.bce_d_loss(real, fake), math.log(8 / 3), rtol=1e-6)
    # non-saturating G on fake logits [0, ln 3]: -[log 1/2 + log 3/4]/2
    np.testing.assert_allclose(L.bce_g_loss(jnp.array([0.0, LN3])), 0.5 * math.log(8 / 3), rtol=1e-6)
    # stable for saturated logits
    assert np.isfinite(float(L.bce_d_loss(jnp.array([-200.0]), jnp.array([200.0]))))
    np.testing.assert_allclose(L.bce_d_loss(jnp.array([-200.0]), jnp.array([200.0])), 400.0, rtol=1e-6)


def test_bce_label_smoothing_hand_computed():
    # real logit ln 3 (sigmoid 3/4), target 0.9: -(0.9 log 3/4 + 0.1 log 1/4); fake logit 0: log 2
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25)) + math.log(2.0)
    np.testing.assert_allclose(L.bce_d_loss(jnp.array([LN3]), jnp.array([0.0]), 0.1), expected, rtol=1e-6)
    np.testing.assert_allclose(L.d_loss("bce", jnp.array([LN3]), jnp.array([0.0]), 0.1), expected, rtol=1e-6)
    # the smoothed loss is minimised at sigmoid(real) = 0.9, not at 1
    grad = jax.grad(lambda r: L.bce_d_loss(r, jnp.array([0.0]), 0.1))(jnp.array([math.log(9.0)]))
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)


def test_wgan_and_hinge_hand_computed():
    real, fake = jnp.array([1.0, 3.0]), jnp.array([-1.0, 0.5])
    np.testing.assert_allclose(L.wgan_d_loss(real, fake), -0.25 - 2.0)
    np.testing.assert_allclose(L.wgan_g_loss(fake), 0.25)
    # hinge: relu(1 - [0.5, 2]) = [0.5, 0] -> 0.25; relu(1 + [-2, 0.5]) = [0, 1.5] -> 0.75
    np.testing.assert_allclose(L.hinge_d_loss(jnp.array([0.5, 2.0]), jnp.array([-2.0, 0.5])), 1.0)
    assert float(L.g_loss("hinge", fake)) == float(L.g_loss("wgan-gp", fake)) == 0.25
    assert float(L.d_loss("wgan-gp", real, fake)) == float(L.d_loss("wgan", real, fake))
    np.testing.assert_allclose(L.d_accuracy(jnp.array([1.0, -1.0]), jnp.array([-1.0, -2.0])), 0.75)


def test_r1_penalty_hand_computed():
    # critic 0.5 |x|^2: grad = x; |grad|^2 = 25 and 1 -> 0.5 * mean = 6.5
    x = jnp.array([[3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(L.r1_penalty(lambda z: 0.5 * jnp.sum(z**2, -1), x), 6.5, rtol=1e-5)
    # a constant critic has no input gradient
    np.testing.assert_allclose(L.r1_penalty(lambda z: jnp.zeros(z.shape[0]), x), 0.0, atol=1e-12)


def test_gradient_penalty_hand_computed():
    # critic 0.5 |x|^2: grad = x; |x| = 5 and 1 -> mean((5-1)^2, (1-1)^2) = 8
    x = jnp.array([[3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(L.gradient_penalty(lambda z: 0.5 * jnp.sum(z**2, -1), x), 8.0, rtol=1e-5)
    # linear critic with |w| = 2 everywhere: (2 - 1)^2 = 1; with |w| = 1: 0
    w = jnp.array([1.2, 1.6])
    np.testing.assert_allclose(L.gradient_penalty(lambda z: z @ w, x), 1.0, rtol=1e-5)
    np.testing.assert_allclose(L.gradient_penalty(lambda z: z @ (w / 2), x), 0.0, atol=1e-6)
    # images: per-example gradient over all pixels (critic 3 * sum(x)): |grad| = 3 * sqrt(4)
    imgs = jnp.ones((3, 2, 2, 1))
    np.testing.assert_allclose(L.gradient_penalty(lambda z: 3 * z.sum((1, 2, 3)), imgs), 25.0, rtol=1e-5)


def test_interpolates_lie_on_segments():
    k = jax.random.PRNGKey(0)
    real, fake = jax.random.normal(k, (64, 5, 5, 1)), jnp.zeros((64, 5, 5, 1))
    xh = L.interpolate(jax.random.PRNGKey(1), real, fake)
    eps = xh / real  # one eps per example, shared by its pixels
    assert float(jnp.max(jnp.std(eps.reshape(64, -1), axis=1))) < 1e-4
    assert 0 <= float(eps.min()) and float(eps.max()) <= 1 and float(jnp.std(eps[:, 0, 0, 0])) > 0.15


def test_clip_weights():
    p = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array(-0.02)}}
    c = L.clip_weights(p, 0.01)
    np.testing.assert_allclose(c["a"], [-0.01, 0.005, 0.01])
    np.testing.assert_allclose(c["b"]["c"], -0.01)


def test_unknown_loss_one_sentence():
    with pytest.raises(ValueError, match="loss='lsgan' is not accepted"):
        L.d_loss("lsgan", jnp.zeros(2), jnp.zeros(2))


def test_shape_checks_on_entry():
    with pytest.raises(AssertionError):
        L.bce_d_loss(jnp.zeros((4, 1)), jnp.zeros(4))  # scores must be [B], not [B, 1]
    with pytest.raises(AssertionError):
        L.g_loss("hinge", jnp.zeros(()))
    with pytest.raises(AssertionError):
        L.interpolate(jax.random.PRNGKey(0), jnp.zeros((2, 3)), jnp.zeros((3, 3)))
    with pytest.raises(AssertionError):  # a critic returning [B, 1] instead of [B]
        L.r1_penalty(lambda z: jnp.sum(z, -1, keepdims=True), jnp.ones((2, 3)))
    with pytest.raises(AssertionError):
        L.bce_d_loss(jnp.zeros(2), jnp.zeros(2), jnp.zeros(2))  # the smoothing is a scalar
    # the real and fake batches may differ in size (GAIL: expert and policy batches)
    np.testing.assert_allclose(L.bce_d_loss(jnp.zeros(2), jnp.zeros(3)), 2 * math.log(2.0), rtol=1e-6)


def test_traced_smoothing_and_clip_equal_constants():
    real, fake = jnp.array([LN3, -1.0]), jnp.array([0.0, 2.0])
    f = jax.jit(lambda s: L.bce_d_loss(real, fake, s))
    np.testing.assert_allclose(f(0.1), L.bce_d_loss(real, fake, 0.1), rtol=1e-6)
    np.testing.assert_allclose(f(0.0), L.bce_d_loss(real, fake), rtol=1e-6)  # traced 0 = no smoothing
    p = {"a": jnp.array([-1.0, 0.5])}
    np.testing.assert_allclose(jax.jit(L.clip_weights)(p, 0.2)["a"], [-0.2, 0.2])
