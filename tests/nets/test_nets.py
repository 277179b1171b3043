"""The sub-pixel up-convolution computes the same function as flax ConvTranspose."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nets.conv import ConvDecoder, ConvEncoder, PatchConv, SubPixelConvTranspose, extract_patches


@pytest.mark.parametrize("shape,features", [((2, 7, 7, 64), 32), ((3, 5, 9, 3), 1), ((1, 4, 4, 8), 16)])
def test_subpixel_equals_conv_transpose(shape, features):
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    ref = nn.ConvTranspose(features, (4, 4), (2, 2), padding="SAME")
    params = ref.init(jax.random.PRNGKey(1), x)
    params = jax.tree_util.tree_map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
    fast = SubPixelConvTranspose(features)
    y_ref, y = ref.apply(params, x), fast.apply(params, x)
    assert y.shape == (shape[0], 2 * shape[1], 2 * shape[2], features)
    np.testing.assert_allclose(y, y_ref, atol=2e-5, rtol=1e-5)
    g_ref = jax.grad(lambda p: jnp.sum(jnp.sin(ref.apply(p, x))))(params)
    g = jax.grad(lambda p: jnp.sum(jnp.sin(fast.apply(p, x))))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, atol=2e-4, rtol=1e-4)


def test_conv_encoder_decoder_shapes():
    x = jnp.zeros((5, 28, 28, 1))
    enc = ConvEncoder(32)
    assert enc.apply(enc.init(jax.random.PRNGKey(0), x), x).shape == (5, 32)
    z = jnp.zeros((5, 16))
    for kind in ("subpixel", "transpose"):
        dec = ConvDecoder(1, deconv=kind)
        assert dec.apply(dec.init(jax.random.PRNGKey(0), z), z).shape == (5, 28, 28, 1)


@pytest.mark.parametrize("shape,kernel", [((3, 10, 10, 4), (3, 3)), ((2, 7, 9, 2), (2, 4))])
def test_patch_conv_equals_conv_with_same_params(shape, kernel):
    """PatchConv computes nn.Conv(padding="VALID") exactly, and so do its gradients."""
    x = jax.random.normal(jax.random.key(0), shape)
    ref = nn.Conv(5, kernel, padding="VALID")
    params = ref.init(jax.random.key(1), x)
    fast = PatchConv(5, kernel)
    np.testing.assert_allclose(fast.apply(params, x), ref.apply(params, x), atol=1e-5)
    g_ref = jax.grad(lambda p: jnp.sum(jnp.sin(ref.apply(p, x))))(params)
    g_fast = jax.grad(lambda p: jnp.sum(jnp.sin(fast.apply(p, x))))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_ref), jax.tree_util.tree_leaves(g_fast)):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_extract_patches_order_is_hwio():
    """Window (i, j) holds x[i+dy, j+dx, c] at position (dy * kw + dx) * C + c."""
    x = jnp.arange(2 * 4 * 5 * 3, dtype=jnp.float32).reshape(2, 4, 5, 3)
    p = extract_patches(x, 2, 3)
    assert p.shape == (2, 3, 3, 18)
    assert p[1, 2, 1, (1 * 3 + 2) * 3 + 1] == x[1, 3, 3, 1]


def test_conv1d_equals_flax_conv_forward_and_both_gradients():
    """jaxgen.nets.conv.Conv1D (XLA forward, matmul backward) computes flax's VALID nn.Conv with
    the same parameter tree, to 1e-5, and its input and weight gradients too -- also inside a scan."""
    import flax.linen as nn

    from jaxgen.nets.conv import Conv1D

    x = jax.random.normal(jax.random.PRNGKey(0), (3, 9, 5))
    for w in (1, 4, 9):
        ours, ref = Conv1D(7, w), nn.Conv(7, (w,), padding="VALID")
        params = ref.init(jax.random.PRNGKey(w), x)
        assert jax.tree_util.tree_structure(ours.init(jax.random.PRNGKey(w), x)) == jax.tree_util.tree_structure(params)
        params = jax.tree_util.tree_map(lambda a: a + 0.3, params)  # a non-zero bias
        np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)
        loss = lambda m: (lambda p, x: jnp.sum(jnp.sin(m.apply(p, x))))  # noqa: E731
        g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
        g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
        for a, b in zip(jax.tree_util.tree_leaves(g_ours), jax.tree_util.tree_leaves(g_ref)):
            np.testing.assert_allclose(a, b, atol=1e-5)
        scanned = jax.lax.scan(lambda c, i: (c, jax.grad(loss(ours))(params, x + i)), 0, jnp.arange(2.0))[1]
        np.testing.assert_allclose(scanned["params"]["kernel"][0], g_ref[0]["params"]["kernel"], atol=1e-5)
