"""Masked statistics against hand-computed values."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.losses.masked import masked_count, masked_mean, masked_standardize


def test_masked_mean_hand_values():
    x = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # [T=3, B=2]
    m = jnp.array([[1, 1], [1, 0], [0, 0]], jnp.float32)
    # (1 + 2 + 3) / 3 = 2
    assert float(masked_mean(x, m)) == pytest.approx(2.0)
    assert float(masked_mean(x, m.astype(bool))) == pytest.approx(2.0)  # a boolean mask too
    # no mask: (1 + ... + 6) / 6 = 3.5
    assert float(masked_mean(x)) == pytest.approx(3.5)
    # nothing valid: 0, not NaN (the count is floored at 1)
    assert float(masked_mean(x, jnp.zeros_like(x))) == 0.0
    assert float(masked_count(jnp.zeros((2,)))) == 1.0 and float(masked_count(m)) == 3.0


def test_masked_standardize_hand_values():
    x = jnp.array([1.0, 3.0, 100.0])
    m = jnp.array([1.0, 1.0, 0.0])
    # valid: 1, 3 -> mean 2, population sd 1 -> (-1, 1); the masked 100 -> (100 - 2) / 1 = 98
    np.testing.assert_allclose(masked_standardize(x, m, eps=0.0), [-1.0, 1.0, 98.0], rtol=1e-6)
    # no mask: mean 104/3, sd from the three values
    mu = 104.0 / 3
    sd = np.sqrt(((1 - mu) ** 2 + (3 - mu) ** 2 + (100 - mu) ** 2) / 3)
    np.testing.assert_allclose(masked_standardize(x, eps=0.0), [(1 - mu) / sd, (3 - mu) / sd, (100 - mu) / sd],
                               rtol=1e-5)
    # equal values: 0, not NaN
    np.testing.assert_allclose(masked_standardize(jnp.array([2.0, 2.0])), [0.0, 0.0])


def test_shape_mismatch_is_refused():
    with pytest.raises(AssertionError):
        masked_mean(jnp.zeros((3, 2)), jnp.zeros((2, 3)))
