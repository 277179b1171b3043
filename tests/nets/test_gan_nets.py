"""Shapes of every GAN architecture, the 3x3 up-convolution, the N(0, 0.02) init, and spectral
normalisation (power iteration, unit singular values)."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nets import gan as nets

B, Z = 3, 16


def test_upconv3_equals_flax_conv_transpose():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 5))
    ref = nn.ConvTranspose(7, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    p = ref.init(jax.random.PRNGKey(1), x)["params"]
    want = ref.apply({"params": p}, x)
    got = nets.upconv3_crop(x, p["kernel"], p["bias"])
    assert want.shape == got.shape == (2, 7, 7, 7)
    np.testing.assert_allclose(got, want, atol=1e-5)


def _g(arch, size, ch, nc):
    if arch == "mlp":
        return nets.MLPGenerator((size, size, ch), (32, 64), nc)
    return nets.DCGANGenerator(size, ch, width=8, num_classes=nc)


def _d(arch, size, nc, cond, sn, norm):
    if arch == "mlp":
        return nets.MLPDiscriminator((64, 32), nc, cond, sn)
    return nets.DCGANDiscriminator(size, 8, nc, cond, norm, sn)


@pytest.mark.parametrize("arch,size,ch", [("mlp", 28, 1), ("dcgan", 28, 1), ("dcgan", 64, 3), ("mlp", 64, 3)])
@pytest.mark.parametrize("nc,cond", [(0, "projection"), (10, "projection"), (10, "concat")])
def test_generator_and_discriminator_shapes(arch, size, ch, nc, cond):
    # shapes only (jax.eval_shape: no arithmetic), every combination
    k = jax.random.PRNGKey(0)
    z = jax.ShapeDtypeStruct((B, Z), jnp.float32)
    y = jax.ShapeDtypeStruct((B,), jnp.int32) if nc else None
    g = _g(arch, size, ch, nc)
    gv = jax.eval_shape(g.init, k, z, y)
    x, _ = jax.eval_shape(lambda v, z, y: g.apply(v, z, y, mutable=["batch_stats"]), gv, z, y)
    assert x.shape == (B, size, size, ch)
    for sn, norm in ((False, "batch"), (True, "none"), (False, "layer")):
        d = _d(arch, size, nc, cond, sn, norm)
        dv = jax.eval_shape(d.init, k, x, y)
        s, _ = jax.eval_shape(lambda v, x, y: d.apply(v, x, y, update_sn=sn, mutable=True), dv, x, y)
        assert s.shape == (B,), (sn, norm)
        if sn:
            assert "spectral" in dv


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_infogan_q_head_shapes(arch):
    x = jax.ShapeDtypeStruct((B, 28, 28, 1), jnp.float32)
    d = nets.MLPDiscriminator((64, 32), q_codes=7) if arch == "mlp" else nets.DCGANDiscriminator(28, 8, q_codes=7)
    dv = jax.eval_shape(d.init, jax.random.PRNGKey(0), x, None)
    (s, q), _ = jax.eval_shape(lambda v, x: d.apply(v, x, None, mutable=True), dv, x)
    assert s.shape == (B,) and q.shape == (B, 7)
    assert {"q_hidden", "q_out"} <= set(dv["params"])


def test_generator_output_is_tanh_bounded_and_init_is_n0_002():
    g = nets.DCGANGenerator(28, 1, width=8, num_classes=10)
    z, y = jax.random.normal(jax.random.PRNGKey(0), (B, Z)), jnp.arange(B)

    @jax.jit
    def run(z, y):
        v = g.init(jax.random.PRNGKey(1), z, y)
        return v, g.apply(v, z, y, mutable=["batch_stats"])[0]

    v, x = run(z, y)
    assert x.shape == (B, 28, 28, 1) and float(jnp.max(jnp.abs(x))) <= 1.0
    kern = np.concatenate([np.ravel(w) for w in jax.tree_util.tree_leaves(v["params"]) if w.ndim >= 2])
    assert abs(kern.std() - 0.02) < 0.002 and abs(kern.mean()) < 0.001
    scales = np.concatenate([np.ravel(w["scale"]) for k, w in v["params"].items() if k.startswith("BatchNorm")])
    assert abs(scales.mean() - 1.0) < 0.01 and 0.01 < scales.std() < 0.03  # N(1, 0.02)


def test_dcgan_layer_sizes_and_init():
    g = nets.DCGANGenerator(64, 3, width=16)
    p = jax.eval_shape(g.init, jax.random.PRNGKey(0), jnp.zeros((2, 100)))["params"]
    assert p["Dense_0"]["kernel"].shape == (100, 4 * 4 * 128)  # 4x4x8w: w = 128 gives 4x4x1024
    g28 = nets.DCGANGenerator(28, 1, width=16)
    p28 = jax.eval_shape(g28.init, jax.random.PRNGKey(0), jnp.zeros((2, 100)))["params"]
    assert p28["Dense_0"]["kernel"].shape == (100, 4 * 4 * 64)
    assert p28["UpConv3_0"]["kernel"].shape == (3, 3, 64, 32)  # one block fewer than 64x64
    assert sum(k.startswith("SubPixel") for k in p28) == 2 and sum(k.startswith("SubPixel") for k in p) == 4
    d = nets.DCGANDiscriminator(64, 16)
    pd = jax.eval_shape(d.init, jax.random.PRNGKey(0), jnp.zeros((2, 64, 64, 3)))["params"]
    assert sum(k.startswith("Conv") for k in pd) == 4


def test_power_iteration_finds_largest_singular_value():
    w = jax.random.normal(jax.random.PRNGKey(0), (30, 20))
    u0 = jnp.ones(20) / math.sqrt(20)
    sigma, _ = nets.power_iteration(w, u0, 100)
    np.testing.assert_allclose(sigma, np.linalg.svd(np.asarray(w), compute_uv=False)[0], rtol=1e-4)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_spectral_norm_layers_have_unit_singular_value(arch):
    if arch == "mlp":
        d = nets.MLPDiscriminator((64, 32), num_classes=10, sn=True, n_power=10)
        x = jnp.zeros((2, 28, 28, 1))
    else:
        d = nets.DCGANDiscriminator(28, width=8, num_classes=10, sn=True, norm="none", n_power=10)
        x = jnp.zeros((2, 28, 28, 1))
    y = jnp.zeros((2,), jnp.int32)
    v = d.init(jax.random.PRNGKey(0), x, y, update_sn=False)
    before = nets.spectral_report(v["params"], v["spectral"])
    assert len(before) == (3 if arch == "mlp" else 4)
    upd = jax.jit(lambda v: d.apply(v, x, y, update_sn=True, mutable=["spectral"])[1])
    for _ in range(30):  # 300 power iterations (random matrices have close top singular values)
        v = {**v, **upd(v)}
    report = nets.spectral_report(v["params"], v["spectral"])
    for name, (sigma, top) in report.items():
        assert abs(top - 1.0) < 1e-3, (name, sigma, top)
    # at init (one random u) the estimate is below the truth: the normalised SV exceeds 1
    assert max(t for _, t in before.values()) > 1.01
