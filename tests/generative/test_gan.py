"""The GAN module: per-loss defaults, every variant steps, seeds, no recompilation, sweeps,
divergence, and a short learning test (discriminator accuracy, falling MNIST FID)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import runner
from jaxgen.core.checkpoint import Checkpointer
from jaxgen.core.errors import CheckpointError, ConfigError, DivergenceError
from jaxgen.core.sweep import sweep
from jaxgen.generative import gan

SMALL = dict(arch="mlp", mlp_hidden=(32, 64), z_dim=16, batch_size=32, epochs=1)


@pytest.fixture(scope="module")
def data(mnist_small):
    images, labels = mnist_small
    return {"images": images[:640], "labels": labels[:640]}


def test_loss_defaults():
    r = gan.resolve(gan.GANConfig())
    assert (r.optimizer, r.g_learning_rate, r.d_learning_rate, r.adam_b1, r.adam_b2, r.n_critic, r.d_norm) == ("adam", 2e-4, 2e-4, 0.5, 0.999, 1, "batch")
    r = gan.resolve(gan.GANConfig(loss="wgan"))
    assert (r.optimizer, r.d_learning_rate, r.n_critic, r.clip) == ("rmsprop", 5e-5, 5, 0.01)
    r = gan.resolve(gan.GANConfig(loss="wgan-gp"))
    assert (r.optimizer, r.g_learning_rate, r.adam_b1, r.adam_b2, r.n_critic, r.gp_weight, r.d_norm) == ("adam", 1e-4, 0.5, 0.9, 5, 10.0, "layer")
    assert gan.resolve(gan.GANConfig(loss="hinge", sn=True)).d_norm == "none"
    assert gan.resolve(gan.GANConfig(g_learning_rate=1e-3, n_critic=2)).g_learning_rate == 1e-3
    assert gan.resolve(gan.resolve(gan.GANConfig(loss="wgan"))) == gan.resolve(gan.GANConfig(loss="wgan"))


def test_bad_configs_one_sentence(data):
    with pytest.raises(ConfigError, match="d_norm='batch' is not accepted with loss='wgan-gp'"):
        gan.validate(gan.GANConfig(loss="wgan-gp", d_norm="batch"))
    with pytest.raises(ConfigError, match="augment='flip' is not accepted"):
        gan.validate(gan.GANConfig(augment="flip"))
    with pytest.raises(ConfigError, match="arch='resnet' is not accepted"):
        gan.validate(gan.GANConfig(arch="resnet"))
    with pytest.raises(ConfigError, match="conditional=True needs labels"):
        gan.make_trainer(gan.GANConfig(**SMALL, conditional=True), {"images": data["images"]})
    with pytest.raises(ConfigError, match=r"the images have shape \(28, 28, 1\) but the config expects \(64, 64, 3\)"):
        gan.make_trainer(gan.GANConfig(**{**SMALL, "image_size": 64, "channels": 3}), data)
    with pytest.raises(ConfigError, match=r"batch_size=200 is out of range.*n_critic \(5\)"):
        gan.make_trainer(gan.GANConfig(**{**SMALL, "batch_size": 200, "loss": "wgan"}), data)


@pytest.mark.parametrize("loss,extra", [("bce", {}), ("wgan", {"conditional": True, "n_critic": 2}),
                                        ("wgan-gp", {"sn": True, "n_critic": 2, "augment": "translation,cutout"}),
                                        ("bce", {"augment": "translation", "augment_p": 0.3}),
                                        ("bce", {"r1_weight": 5.0, "label_smoothing": 0.1}),
                                        ("hinge", {"info_codes": 10, "r1_weight": 1.0}),
                                        ("hinge", {"sn": True, "conditional": True, "cond_d": "concat"})])
def test_every_variant_steps(loss, extra, data):
    tr = gan.make_trainer(gan.GANConfig(**SMALL, loss=loss, **extra), data)
    s0 = tr.init(jax.random.PRNGKey(0), None)
    s1, m = jax.jit(tr.step)(s0, tr.data)
    assert all(np.isfinite(float(v)) for v in m.values())
    assert int(s1.step) == 1 and int(s1.d.step) == tr.config.n_critic and int(s1.g.step) == 1
    # a random critic's input-gradient norm is not exactly 1, nor its gradient at real images 0:
    # the penalties are strictly positive when computed (a term silently zeroed would fail here)
    assert ("gp" in m) == (loss == "wgan-gp") and (loss != "wgan-gp" or float(m["gp"]) > 0)
    assert ("r1" in m) == ("r1_weight" in extra) and ("r1_weight" not in extra or float(m["r1"]) > 0)
    assert ("info_ce" in m) == ("g_info_acc" in m) == ("info_codes" in extra)
    if loss == "wgan":
        assert max(float(jnp.max(jnp.abs(p))) for p in jax.tree_util.tree_leaves(s1.d.params)) <= 0.01 + 1e-7
    if extra.get("sn"):
        u0, u1 = jax.tree_util.tree_leaves(s0.d.aux["spectral"]), jax.tree_util.tree_leaves(s1.d.aux["spectral"])
        assert all(not np.allclose(a, b) for a, b in zip(u0, u1) if a.size > 1)  # power iteration state advances in the train state
    if extra.get("conditional"):
        x = gan.sample(s1, jax.random.PRNGKey(0), 5, jnp.array([3, 3, 3, 7, 7]))
        assert x.shape == (5, 28, 28, 1) and 0 <= float(x.min()) and float(x.max()) <= 1


def test_generator_weight_average_hand_computed_and_used_for_samples(data):
    tr = gan.make_trainer(gan.GANConfig(**SMALL, ema=0.999), data)
    s0 = tr.init(jax.random.PRNGKey(0), None)
    step = jax.jit(tr.step)
    s1, _ = step(s0, tr.data)
    s2, _ = step(s1, tr.data)
    # decay warm-up min(0.999, (1 + t) / (10 + t)): 0.1 after iteration 0, 2/11 after iteration 1
    p0, p1, p2 = (jax.tree_util.tree_leaves(s.g.params) for s in (s0, s1, s2))
    want = [(2 / 11) * (0.1 * a + 0.9 * b) + (9 / 11) * c for a, b, c in zip(p0, p1, p2)]
    for w, got in zip(want, jax.tree_util.tree_leaves(gan.averaged_params(s2))):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-7)
    z = jax.random.normal(jax.random.PRNGKey(1), (4, 16))
    assert not np.allclose(gan.generate(s2, z), gan.generate(s2, z, average=False))
    assert gan.averaged_params(gan.init(jax.random.PRNGKey(0), gan.GANConfig(**SMALL))) is None
    with pytest.raises(ConfigError, match="ema=1.0"):
        gan.validate(gan.GANConfig(ema=1.0))


def test_label_smoothing_range():
    assert gan.validate(gan.GANConfig(label_smoothing=0.1)).label_smoothing == 0.1
    with pytest.raises(ConfigError, match="label_smoothing=0.6"):
        gan.validate(gan.GANConfig(label_smoothing=0.6))
    with pytest.raises(ConfigError, match="label_smoothing=0.1.*unless loss='bce'"):
        gan.validate(gan.GANConfig(loss="hinge", label_smoothing=0.1))


def test_infogan_term_hand_computed_and_codes_learned(data):
    cfg = gan.GANConfig(**SMALL, info_codes=2, info_weight=0.5)
    logits, codes = jnp.array([[0.0, np.log(3.0)], [0.0, 0.0], [2.0, 0.0]]), jnp.array([1, 0, 0])
    term, m = gan._info_term(cfg, gan.C.hparams(cfg), logits, codes)
    ce = (-np.log(0.75) + np.log(2.0) - np.log(np.exp(2) / (np.exp(2) + 1))) / 3
    np.testing.assert_allclose([float(m["info_ce"]), float(term), float(m["info_acc"])], [ce, 0.5 * ce, 1.0], rtol=1e-5)
    assert gan._info_term(gan.GANConfig(**SMALL), {}, logits, codes)[1] == {}
    with pytest.raises(ConfigError, match="info_codes=10 is out of range.*0 when conditional=True"):
        gan.validate(gan.GANConfig(conditional=True, info_codes=10))
    # G and Q cooperate on the code: within 160 iterations Q reads it from G's images far above chance (1/10)
    train = gan.make_train(gan.GANConfig(**{**SMALL, "epochs": 8}, info_codes=10, g_learning_rate=1e-3, d_learning_rate=1e-3), data)
    state, metrics = jax.jit(train)(jax.random.PRNGKey(0))
    assert float(metrics["g_info_acc"][:20].mean()) < 0.3 and float(metrics["g_info_acc"][-20:].mean()) > 0.7
    x = gan.sample(state, jax.random.PRNGKey(1), 6, jnp.array([0, 0, 0, 9, 9, 9]))  # codes requested like labels
    assert x.shape == (6, 28, 28, 1)


def test_linear_learning_rate_decay_hand_computed(data):
    cfg = gan.GANConfig(**{**SMALL, "epochs": 4}, lr_decay_start=2)
    got = [float(gan.lr_factor(cfg, t, 10)) for t in (0, 20, 30, 35, 40, 45)]
    np.testing.assert_allclose(got, [1, 1, 0.5, 0.25, 0, 0], atol=1e-7)
    assert float(gan.lr_factor(gan.GANConfig(**SMALL), 10**6, 10)) == 1.0  # 0: constant rates
    # 640 images / batch 32 = 20 iterations per epoch; decay over epoch 2 of 2: at iteration 30, 1/2 of the rate
    decayed, constant = (gan.make_trainer(gan.GANConfig(**{**SMALL, "epochs": 2}, lr_decay_start=k), data) for k in (1, 0))
    s0, s0c = (t.init(jax.random.PRNGKey(0), None).replace(step=jnp.int32(30)) for t in (decayed, constant))
    s_dec, _ = jax.jit(decayed.step)(s0, decayed.data)
    s_con, _ = jax.jit(constant.step)(s0c, constant.data)
    assert float(s_dec.g.opt_state.hyperparams["learning_rate"]) == pytest.approx(1e-4)
    # the same batch and gradients: D's first Adam update scales with the rate
    for a, b, c in zip(*(jax.tree_util.tree_leaves(s.d.params) for s in (s0, s_dec, s_con))):
        np.testing.assert_allclose(b - a, 0.5 * (c - a), rtol=1e-4, atol=1e-7)  # float32 rounding of the params
    s_end, _ = jax.jit(decayed.step)(s0.replace(step=jnp.int32(40)), decayed.data)  # past the end: rate 0
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(s0.d.params), jax.tree_util.tree_leaves(s_end.d.params)))
    with pytest.raises(ConfigError, match=r"lr_decay_start=5 is out of range.*below epochs \(5\)"):
        gan.validate(gan.GANConfig(epochs=5, lr_decay_start=5))


def test_seeds_reproduce_and_differ_without_recompiling(data):
    tr = gan.make_trainer(gan.GANConfig(**SMALL), data)
    traces = []

    def step(s, d):
        traces.append(1)
        return tr.step(s, d)

    jstep = jax.jit(step)
    out = []
    for seed in (0, 0, 1):
        s = tr.init(jax.random.PRNGKey(seed), None)
        for _ in range(3):
            s, m = jstep(s, tr.data)
        out.append({k: float(v) for k, v in m.items()})
    assert len(traces) == 1  # one compile for every seed and step
    assert out[0] == out[1] and out[0] != out[2]


def test_sweep_over_learning_rates_and_seeds_in_one_compile(data):
    tr = gan.make_trainer(gan.GANConfig(**SMALL), data)
    res = sweep(tr, seeds=2, grid={"d_learning_rate": [1e-4, 1e-3]}, progress=False, mode="scan", chunk_steps=tr.num_steps)
    assert res.final["d_loss"].shape == (2, 2)
    assert len(np.unique(np.round(res.final["d_loss"], 6))) == 4
    np.testing.assert_allclose(np.asarray(res.state.d.opt_state.hyperparams["learning_rate"]), [1e-4, 1e-4, 1e-3, 1e-3], rtol=1e-6)


def test_divergence_stops_with_message_and_keeps_last_good_checkpoint(data, tmp_path):
    tr = gan.make_trainer(gan.GANConfig(**{**SMALL, "epochs": 2}), data)
    with pytest.raises(DivergenceError, match="training diverged at step 5: metric"):
        runner.run(tr, 0, hparams={"d_learning_rate": 1e30}, chunk_steps=5, progress=False, mode="loop")

    def poisoned(state, d):  # a numerical blow-up of the discriminator after step 10
        bad = jnp.where(state.step >= 10, jnp.nan, 1.0)
        state = state.replace(d=state.d.replace(params=jax.tree_util.tree_map(lambda p: p * bad, state.d.params)))
        return gan.data_step(state, d)

    with pytest.raises(DivergenceError, match=r"last good checkpoint \(step 10\) is kept"):
        runner.run(tr._replace(step=poisoned), 0, run_dir=tmp_path / "run", chunk_steps=5, progress=False, mode="loop",
                   checkpoint_every=1)
    c = Checkpointer(tmp_path / "run")
    assert c.latest_step() == 10
    s = c.restore(tr.init(jax.random.PRNGKey(0), None))
    c.close()
    assert int(s.step) == 10 and all(np.isfinite(np.asarray(p)).all() for p in jax.tree_util.tree_leaves(s.d.params))


def test_short_learning_run_discriminator_accuracy_and_falling_fid(mnist_small, mnist_test_small):
    from jaxgen.eval.fid import MnistEvaluator, evaluate_generator

    images, labels = mnist_small
    test_images, _ = mnist_test_small
    ev = MnistEvaluator(test_images, n=250)
    cfg = gan.GANConfig(arch="mlp", mlp_hidden=(128, 256), batch_size=50, epochs=8)
    tr = gan.make_trainer(cfg, {"images": images, "labels": labels})
    s0 = tr.init(jax.random.PRNGKey(0), None)
    fid0 = evaluate_generator(gan.sampler(s0), ev)["fid"]
    res = runner.run(tr, 0, chunk_steps=40, progress=False, mode="loop")
    fid1 = evaluate_generator(gan.sampler(res.state), ev)["fid"]
    assert res.history[0]["d_acc"] > 0.7, res.history[0]  # D separates real from early fakes
    assert fid1 < 0.7 * fid0, (fid0, fid1, ev.floor)  # measured: 1089 -> ~560 after 320 steps


def test_resume_extends_a_run_to_more_epochs(data, tmp_path):
    import dataclasses
    import json

    cfg = gan.GANConfig(**SMALL)
    tr1 = gan.make_trainer(cfg, data)
    runner.run(tr1, 0, run_dir=tmp_path, progress=False, mode="loop")
    tr2 = gan.make_trainer(dataclasses.replace(cfg, epochs=2, lr_decay_start=1), data)  # longer, decaying
    res = runner.run(tr2, 0, run_dir=tmp_path, progress=False, resume=True)
    assert int(res.state.step) == 2 * tr1.steps_per_epoch
    stored = json.loads((tmp_path / "config.json").read_text())["config"]
    assert (stored["epochs"], stored["lr_decay_start"]) == (2, 1)  # the run as extended
    # decayed linearly over the added epoch: the last update's rate is 2e-4 * 1 / steps_per_epoch
    assert float(res.state.g.opt_state.hyperparams["learning_rate"]) == pytest.approx(2e-4 / tr1.steps_per_epoch, rel=1e-5)
    with pytest.raises(CheckpointError, match="z_dim"):  # anything else is still refused
        runner.run(gan.make_trainer(dataclasses.replace(cfg, epochs=3, z_dim=8), data), 0, run_dir=tmp_path,
                   progress=False, resume=True)
