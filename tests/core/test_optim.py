"""jaxgen.core.optim.flat_view: the optimiser on one flat vector is the leaf-by-leaf optimiser."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxgen.core import optim


def _setup(params):
    tx = optim.optimizer("adam", max_grad_norm=0.5, learning_rate=1e-2)
    return tx, optim.init_opt_state(tx, params, {"learning_rate": 1e-2})


def test_flat_view_steps_equal_the_leaf_by_leaf_steps_and_restore_the_structures():
    params = {"a": {"w": jnp.arange(6.0).reshape(3, 2), "b": jnp.zeros(2)}, "c": jnp.arange(4.0) - 2.0}
    tx, opt = _setup(params)
    grads = [jax.tree_util.tree_map(lambda x, i=i: jnp.sin(3.0 * x + i), params) for i in range(3)]
    p_tree, o_tree = params, opt
    flat, o_flat, unravel, restore = optim.flat_view(params, opt)
    for g in grads:
        u, o_tree = tx.update(g, o_tree, p_tree)
        p_tree = optax.apply_updates(p_tree, u)
        u, o_flat = tx.update(ravel_pytree(g)[0], o_flat, flat)
        flat = flat + u
    assert flat.shape == (12,) and jax.tree_util.tree_map(jnp.shape, o_flat).inner_state[1][0].mu == (12,)
    p_back, o_back = restore(flat, o_flat)
    assert jax.tree_util.tree_structure((p_back, o_back)) == jax.tree_util.tree_structure((p_tree, o_tree))
    for a, b in zip(jax.tree_util.tree_leaves((p_back, o_back)), jax.tree_util.tree_leaves((p_tree, o_tree))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert jax.tree_util.tree_structure(unravel(flat)) == jax.tree_util.tree_structure(params)


def test_first_flat_step_is_hand_computed_and_scalars_stay_scalars():
    # one array as the parameters: only the arrays of its shape (Adam's moments) are flattened
    params = jnp.array([[1.0, -2.0], [3.0, 0.5]])
    tx, opt = _setup(params)
    flat, o_flat, _, restore = optim.flat_view(params, opt)
    assert jnp.shape(optim.hyperparam(o_flat, "learning_rate")) == () and o_flat.count.shape == ()
    g = jnp.array([3.0, -4.0, 0.0, 12.0])  # norm 13 > 0.5: clipped to norm 0.5, signs kept
    u, o_flat = tx.update(g, o_flat, flat)
    # Adam's first step is lr * m_hat / (sqrt(v_hat) + eps) = lr * g / (|g| + eps): -lr * sign(g)
    np.testing.assert_allclose(u, [-1e-2, 1e-2, 0.0, -1e-2], rtol=1e-5)
    p, o = restore(flat + u, o_flat)
    assert p.shape == (2, 2) and o.inner_state[1][0].mu.shape == (2, 2)
    np.testing.assert_allclose(o.inner_state[1][0].mu, 0.1 * g.reshape(2, 2) * 0.5 / 13.0, rtol=1e-5)
