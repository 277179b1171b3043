"""Value losses, Huber and Q-learning targets against hand-computed values."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.losses.value import clipped_value_loss, double_q_target, huber, q_learning_target, value_loss


def test_value_loss_and_clipping():
    v, old, t = jnp.array([2.0]), jnp.array([1.0]), jnp.array([3.0])
    # unclipped 0.5 * (2 - 3)^2 = 0.5; clipped value 1 + 0.2 = 1.2 -> 0.5 * (1.2 - 3)^2 = 1.62; max -> 1.62
    assert float(value_loss(v, t)) == pytest.approx(0.5)
    assert float(clipped_value_loss(v, old, t, 0.2)) == pytest.approx(1.62, rel=1e-6)
    # inside the clip range the clipped loss is the plain one: V = 1.1, old 1.0 -> 0.5 * 1.9^2
    assert float(clipped_value_loss(jnp.array([1.1]), old, t, 0.2)) == pytest.approx(0.5 * 1.9**2, rel=1e-6)
    # masked: errors 1, 2, 3 with the last masked -> 0.5 * (1 + 4) / 2 = 1.25; gradient -> V - t on valid entries / 2
    v3, t3, m3 = jnp.array([1.0, 2.0, 3.0]), jnp.zeros(3), jnp.array([1.0, 1.0, 0.0])
    assert float(value_loss(v3, t3, m3)) == pytest.approx(1.25)
    np.testing.assert_allclose(jax.grad(value_loss)(v3, t3, m3), [0.5, 1.0, 0.0])


def test_huber_hand_values():
    x = jnp.array([0.0, 0.5, -0.5, 1.0, 2.0, -3.0])
    np.testing.assert_allclose(huber(x), [0.0, 0.125, 0.125, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(huber(jnp.array([3.0]), delta=2.0), [4.0])  # 2 * (3 - 1)
    np.testing.assert_allclose(huber(jnp.array([3.0]), delta=float("inf")), [4.5])  # the squared error


def test_td_targets_hand_values():
    r = jnp.array([1.0, 0.0, -1.0])
    term = jnp.array([False, True, False])
    q_next = jnp.array([[1.0, 3.0], [5.0, 7.0], [-2.0, -4.0]])
    np.testing.assert_allclose(q_learning_target(r, term, q_next, 0.9), [1 + 0.9 * 3, 0.0, -1 + 0.9 * -2])
    q_online = jnp.array([[2.0, 1.0], [0.0, 1.0], [0.0, 1.0]])  # picks a=0, a=1, a=1
    np.testing.assert_allclose(double_q_target(r, term, q_next, q_online, 0.5), [1 + 0.5 * 1, 0.0, -1 + 0.5 * -4])


def test_shape_checks():
    with pytest.raises(AssertionError):
        q_learning_target(jnp.zeros(3), jnp.zeros(3, bool), jnp.zeros((4, 2)), 0.9)
    with pytest.raises(AssertionError):
        value_loss(jnp.zeros(3), jnp.zeros(4))
