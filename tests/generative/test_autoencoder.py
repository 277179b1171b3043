"""The autoencoder family: corruption, binarisation, every model/arch, evaluation, CLI."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.cli import main
from jaxgen.core import runner
from jaxgen.core.errors import ConfigError
from jaxgen.data.transforms import binarize, corrupt
from jaxgen.eval.likelihood import evaluate
from jaxgen.generative import autoencoder as ae


def test_binarize_modes():
    x = jnp.array([0.2, 0.5, 0.51, 0.9])
    np.testing.assert_array_equal(binarize(None, x, "threshold"), [0, 0, 1, 1])
    xs = jnp.full((20000,), 0.3)
    s = binarize(jax.random.PRNGKey(0), xs, "stochastic")
    assert set(np.unique(s)) <= {0.0, 1.0} and abs(float(s.mean()) - 0.3) < 0.02
    np.testing.assert_array_equal(binarize(None, x, "none"), x)


@pytest.mark.parametrize("level", [0.25, 0.5])
def test_masking_noise_drops_that_share(level):
    x = jnp.ones((100, 28, 28, 1))
    y = corrupt(jax.random.PRNGKey(0), x, "mask", level)
    assert abs(float(1 - y.mean()) - level) < 0.01


def test_gaussian_noise_std_and_clipping():
    g = corrupt(jax.random.PRNGKey(0), jnp.full((100, 28, 28, 1), 0.5), "gaussian", 0.1)
    assert abs(float(g.std()) - 0.1) < 0.005  # 5 sigma from the clip bounds: clipping is negligible
    g = corrupt(jax.random.PRNGKey(0), jnp.full((100, 28, 28, 1), 0.5), "gaussian", 0.5)
    assert float(g.min()) == 0.0 and float(g.max()) == 1.0


@pytest.mark.parametrize(
    "model,arch,latent,extra",
    [
        ("vae", "mlp", 2, {}),
        ("vae", "conv", 16, {}),
        ("ae", "mlp", 1024, {"sparsity": 0.01}),  # over-complete with sparsity
        ("ae", "conv", 16, {}),
        ("dae", "mlp", 32, {"noise": "mask", "noise_level": 0.5}),
        ("dae", "conv", 16, {"noise": "gaussian", "noise_level": 0.25}),
    ],
)
def test_every_model_learns(model, arch, latent, extra, mnist_small):
    images, _ = mnist_small
    cfg = ae.AEConfig(model=model, arch=arch, latent=latent, hidden=128, epochs=1, batch_size=50, **extra)
    tr = ae.make_trainer(cfg, {"images": images[:1500]})
    res = runner.run(tr, 0, chunk_steps=10, progress=False, mode="loop")
    first, last = res.history[0]["recon"], res.history[-1]["recon"]
    assert last < 0.8 * first, (first, last)
    x = jnp.asarray(images[:4], jnp.float32) / 255
    assert ae.reconstruct(res.state, x).shape == (4, 28, 28, 1)
    assert ae.encode_mean(res.state, x).shape == (4, latent)


def test_vae_reaches_elbo_threshold_and_iwae_is_tighter(mnist_small, mnist_test_small):
    images, _ = mnist_small
    test_images, _ = mnist_test_small
    cfg = ae.AEConfig(arch="mlp", latent=16, hidden=256, epochs=8, batch_size=100)
    res = runner.run(ae.make_trainer(cfg, {"images": images}), 0, progress=False, mode="loop")
    m = evaluate(ae.likelihood_model(res.state), test_images, iwae_k=100)
    assert m["neg_elbo"] < 150.0, m  # untrained: ~545 nats; after 160 steps on 2k images well under 150
    assert m["iwae"] <= m["neg_elbo"] + 0.5  # the k=100 bound is at least as tight
    assert m["iwae"] > 0.8 * m["neg_elbo"]


def test_bad_config_one_sentence(mnist_small):
    images, _ = mnist_small
    with pytest.raises(ConfigError, match=r"batch_size=5000 is out of range; accepted: a whole number from 1 to the training-set size \(2000\)"):
        ae.make_trainer(ae.AEConfig(batch_size=5000), {"images": images})
    with pytest.raises(ConfigError, match="arch='resnet' is not accepted"):
        ae.validate(ae.AEConfig(arch="resnet"))
    with pytest.raises(ConfigError, match="latent=0"):
        ae.validate(ae.AEConfig(latent=0))


def test_cli_train_resume_sample_and_errors(tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data", "bundled", "--test-data", "bundled", "--limit", "1000", "--hidden", "64", "--iwae-k", "10", "--no-progress"]
    assert main(["train", "vae", "--latent", "2", "--epochs", "2", "--batch-size", "100", "--run-dir", str(run), *common]) == 0
    for name in ("reconstructions.png", "samples.png", "latent.png", "curves.png", "results.json", "metrics.jsonl", "config.json"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert results["test"]["iwae"] <= results["test"]["neg_elbo"] + 1.0
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "val_neg_elbo" in rows[0]  # one row per epoch, with the held-out -ELBO
    assert main(["sample", str(run), "--n", "16"]) == 0 and (run / "sampled.png").is_file()
    capsys.readouterr()
    # a resume with another config is refused in one sentence, and nothing is lost
    code = main(["train", "vae", "--latent", "3", "--epochs", "2", "--batch-size", "100", "--resume", str(run), *common])
    err = capsys.readouterr().err
    assert code == 2 and "another config" in err and "latent" in err and "Traceback" not in err
    assert (run / "results.json").is_file()
    assert main(["train", "vae", "--latent", "0", *common]) == 2
    assert "latent=0 is out of range" in capsys.readouterr().err
    assert main(["train", "vae", "--data", "nowhere", "--limit", "10"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["train", "gan-of-doom"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'gan-of-doom'" in err and err.count("\n") == 1
