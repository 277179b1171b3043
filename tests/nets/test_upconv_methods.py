"""Every up-convolution method computes flax's transposed convolution with the same parameters,
forward and gradients (issue 21: the GEMM + col2im form is the CPU default)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nets import gan as gnets
from jaxgen.nets.conv import ConvDecoder, SubPixelConvTranspose, col2im_conv_transpose, resolve_method

METHODS = ("matmul", "subpixel", "xla")


def _params(module, x, seed=2):
    """Random parameters of ``module`` for input ``x`` (numpy: flax's init would compile its
    truncated-normal sampler, seconds on this CPU)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(module.init, jax.random.key(0), x)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(0.3 * rng.standard_normal(s.shape), jnp.float32), shapes)


def _check_same(ref, fast, params, x):
    """Same output and same gradients (w.r.t. the parameters and the input) to ~1e-5."""
    y_ref, y = jax.jit(ref.apply)(params, x), jax.jit(fast.apply)(params, x)
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, atol=1e-5, rtol=1e-5)
    loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))  # noqa: E731
    g_ref = jax.jit(jax.grad(loss(ref), (0, 1)))(params, x)
    g = jax.jit(jax.grad(loss(fast), (0, 1)))(params, x)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,features", [((2, 7, 7, 16), 32), ((3, 5, 6, 3), 1)])
def test_conv_transpose4_methods_equal_flax(method, shape, features):
    x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
    ref = nn.ConvTranspose(features, (4, 4), (2, 2), padding="SAME")
    params = _params(ref, x)
    _check_same(ref, SubPixelConvTranspose(features, method=method), params, x)


@pytest.mark.parametrize("method", METHODS)
def test_upconv3_methods_equal_flax(method):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 4, 8)), jnp.float32)
    ref = nn.ConvTranspose(16, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    params = _params(ref, x)
    _check_same(ref, gnets.UpConv3(16, method=method), params, x)


def test_col2im_taps_land_on_hand_computed_pixels():
    """One input pixel, one tap: tap (ty, tx) of x[m, n] lands on output (2m + 2 - ty, 2n + 2 - tx)."""
    x = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(1.0)
    for ty, tx in [(0, 0), (1, 3), (3, 2)]:
        k = jnp.zeros((4, 4, 1, 1)).at[ty, tx, 0, 0].set(2.0)
        y = jax.jit(col2im_conv_transpose, static_argnums=2)(x, k, 2)[0, :, :, 0]
        assert y.shape == (6, 6)
        assert float(y[2 + 2 - ty, 2 + 2 - tx]) == 2.0 and float(jnp.sum(y)) == 2.0


def test_methods_share_parameter_names_and_auto_resolves_by_backend():
    """Checkpoints move between methods: the decoder's and DCGAN generator's parameter trees are
    the same whichever method computes them; "auto" is matmul on CPU."""
    z = jnp.zeros((2, 8))
    shapes = lambda m: jax.eval_shape(m.init, jax.random.key(0), z)  # noqa: E731
    trees = [shapes(ConvDecoder(1, deconv=m)) for m in ("auto",) + METHODS]
    assert all(t == trees[0] for t in trees) and "SubPixelConvTranspose_1" in trees[0]["params"]
    g = [shapes(gnets.DCGANGenerator(28, 1, width=4, deconv=m)) for m in ("auto",) + METHODS]
    assert all(t == g[0] for t in g) and g[0]["params"]["UpConv3_0"]["kernel"].shape == (3, 3, 16, 8)
    assert resolve_method("auto") == ("matmul" if jax.default_backend() == "cpu" else "xla")
    with pytest.raises(ValueError, match="'cudnn' is not accepted"):
        resolve_method("cudnn")
