"""eval/ takes callables and imports no family; the metrics against hand-computed values
with toy callables; one compile for many states."""
import ast
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.eval import likelihood as LK

EVAL_DIR = Path(__file__).resolve().parents[2] / "jaxgen" / "eval"
LOG2 = math.log(2.0)


def test_eval_imports_no_family():
    for path in EVAL_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("jaxgen.generative", "jaxgen.rl")), (path.name, name)
        assert "generative" not in path.read_text(), path.name


def _toy(variational: bool, scale: float = 1.0):
    """A 'model' whose decoder ignores the code and outputs logits ``scale * w`` (w a parameter)."""
    def encode(params, x):
        b = x.shape[0]
        z = jnp.zeros((b, 3))
        return (z, z) if variational else z

    def decode(params, z):
        return jnp.broadcast_to(params["w"], (z.shape[0], 28, 28, 1)) * scale

    return encode, decode


def test_likelihood_hand_computed_with_toy_callables():
    images = np.zeros((7, 28, 28, 1), np.uint8)
    images[:, :14] = 255  # half the pixels on: binary targets
    enc, dec = _toy(True)
    # logits 0: -log p(x|z) = 784 log 2 for any x; q(z|x) = N(0, I) = p(z): KL = 0, and the
    # importance weights p(x, z) / q(z|x) = p(x|z) exactly, so IWAE = -ELBO = 784 log 2
    m = LK.evaluate(LK.LikelihoodModel({"w": jnp.zeros(())}, enc, dec, variational=True), images, iwae_k=5, batch_size=3)
    np.testing.assert_allclose([m["neg_elbo"], m["iwae"], m["recon_bce"]], [784 * LOG2] * 3, rtol=1e-5)  # float32 sums
    np.testing.assert_allclose(m["recon_sq"], 784 * 0.25, rtol=1e-6)  # sigmoid(0) = 1/2 vs 0/1 targets
    # logits ln 3 (p = 3/4): on-pixels cost log 4/3, off-pixels log 4; no ELBO for an AE
    enc, dec = _toy(False)
    m = LK.evaluate(LK.LikelihoodModel({"w": jnp.full((), math.log(3.0))}, enc, dec, variational=False), images)
    assert set(m) == {"recon_bce", "recon_sq"}
    np.testing.assert_allclose(m["recon_bce"], 392 * math.log(4 / 3) + 392 * math.log(4), rtol=1e-5)
    np.testing.assert_allclose(m["recon_sq"], 392 * (1 / 16) + 392 * (9 / 16), rtol=1e-5)


def test_likelihood_compiles_once_for_new_params():
    enc, dec = _toy(True)
    images = np.full((4, 28, 28, 1), 255, np.uint8)
    before = LK._evaluate._cache_size()
    a = LK.evaluate(LK.LikelihoodModel({"w": jnp.zeros(())}, enc, dec, True), images)
    b = LK.evaluate(LK.LikelihoodModel({"w": jnp.ones(())}, enc, dec, True), images)
    assert LK._evaluate._cache_size() == before + 1 and a["neg_elbo"] != b["neg_elbo"]


def test_autoencoder_likelihood_model_is_stable_and_matches_its_loss(mnist_small):
    from jaxgen.generative import autoencoder as ae

    cfg = ae.AEConfig(hidden=32, latent=4)
    s1, s2 = ae.init(jax.random.PRNGKey(0), cfg), ae.init(jax.random.PRNGKey(1), cfg)
    m1, m2 = ae.likelihood_model(s1), ae.likelihood_model(s2)
    assert (m1.encode, m1.decode) == (m2.encode, m2.decode)  # the same functions: one compile
    images = mnist_small[0][:8]
    x = jnp.asarray(images[:8] > 127, jnp.float32)
    mean, log_var = m1.encode(s1.params, x)
    np.testing.assert_allclose(mean, ae.encode_mean(s1, x), rtol=1e-6)
    assert m1.decode(s1.params, mean).shape == (8, 28, 28, 1) and m1.binarize == cfg.binarize


def test_evaluate_generator_takes_a_sampler():
    from jaxgen.eval import fid as F

    class Ev:  # records what the metric hands to the evaluator
        n = 6

        def __call__(self, images, labels=None, codes=None):
            return {"shape": images.shape, "labels": labels, "codes": codes}

    seen = []

    def sample_fn(key, n):
        seen.append((np.asarray(key).tolist(), n))
        return jnp.zeros((n, 28, 28, 1)), jnp.arange(n) % 3, None

    out = F.evaluate_generator(sample_fn, Ev())
    assert seen == [(np.asarray(jax.random.PRNGKey(1234)).tolist(), 6)] and out["shape"] == (6, 28, 28, 1)
    np.testing.assert_array_equal(out["labels"], [0, 1, 2, 0, 1, 2]) and out["codes"] is None
    out = F.evaluate_generator(sample_fn, Ev(), jax.random.PRNGKey(5), 4)
    assert seen[-1][1] == 4 and out["shape"][0] == 4


@pytest.mark.parametrize("variant,field", [({}, None), ({"conditional": True}, "labels"), ({"info_codes": 10}, "codes")])
def test_gan_sampler_requests_balanced_labels_or_codes(variant, field):
    from jaxgen.generative import gan

    state = gan.init(jax.random.PRNGKey(0), gan.GANConfig(arch="mlp", mlp_hidden=(16,), z_dim=4, batch_size=8, **variant))
    images, labels, codes = gan.sampler(state, 0.5)(jax.random.PRNGKey(2), 12)
    assert images.shape == (12, 28, 28, 1) and 0 <= float(images.min()) and float(images.max()) <= 1
    got = {"labels": labels, "codes": codes}
    for k, v in got.items():
        if k == field:
            np.testing.assert_array_equal(v, np.arange(12) % 10)
        else:
            assert v is None
    requested = None if field is None else jnp.arange(12) % 10
    np.testing.assert_allclose(images, gan.sample(state, jax.random.PRNGKey(2), 12, requested, 0.5), atol=1e-6)
