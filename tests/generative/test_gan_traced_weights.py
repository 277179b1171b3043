"""Traced GAN loss weights: a sweep over r1_weight / ema is one compile, its values give
different runs, a value equal to the config's gives the plain run; a term the config does not
compile refuses a traced weight; the EMA warm-up by hand with vmapped decays."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import runner
from jaxgen.core.errors import ConfigError
from jaxgen.core.sweep import sweep
from jaxgen.generative import augment as A
from jaxgen.generative import gan

SMALL = dict(arch="mlp", mlp_hidden=(32, 64), z_dim=16, batch_size=32, epochs=1)
leaves = jax.tree_util.tree_leaves


@pytest.fixture(scope="module")
def data(mnist_small):
    images, labels = mnist_small
    return {"images": images[:640], "labels": labels[:640]}


def _counting(trainer):
    traces = []

    def step(s, d):
        traces.append(1)
        return trainer.step(s, d)

    return trainer._replace(step=step), traces


def _assert_close_trees(a, b, rtol=2e-4, atol=2e-6):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.mark.parametrize("field,values,extra", [("r1_weight", [1.0, 5.0], {}), ("ema", [0.5, 0.9], {})])
def test_sweep_compiles_once_differs_per_value_and_matches_plain_runs(field, values, extra, data):
    cfg = gan.GANConfig(**SMALL, **{field: values[-1]}, **extra)
    tr, traces = _counting(gan.make_trainer(cfg, data))
    res = sweep(tr, seeds=1, grid={field: values}, progress=False, mode="scan", chunk_steps=tr.num_steps)
    assert len(traces) == 1  # one compile for both values
    np.testing.assert_allclose(np.asarray(res.state.hparams[field]), values, rtol=1e-6)
    runs = [jax.tree_util.tree_map(lambda x, i=i: x[i], res.state) for i in range(len(values))]
    if field == "r1_weight":  # the weight changes D's updates, hence the whole run
        assert res.final["d_loss"][0, 0] != res.final["d_loss"][1, 0]
        assert not np.allclose(leaves(runs[0].d.params)[0], leaves(runs[1].d.params)[0])
    else:  # the decay changes only the average: both members train the same G
        _assert_close_trees(runs[0].g.params, runs[1].g.params, rtol=0, atol=0)
        assert not np.allclose(leaves(gan.averaged_params(runs[0]))[0], leaves(gan.averaged_params(runs[1]))[0])
    for v, swept in zip(values, runs):  # each member = the plain run of the config with that value
        plain = runner.run(gan.make_trainer(gan.GANConfig(**SMALL, **{field: v}, **extra), data), 0, progress=False,
                           mode="scan", chunk_steps=tr.num_steps).state
        _assert_close_trees(swept.d.params, plain.d.params)
        _assert_close_trees(swept.g.aux, plain.g.aux)


@pytest.mark.parametrize("field,config_value,traced,extra", [
    ("r1_weight", 5.0, 1.0, {}),
    ("label_smoothing", 0.2, 0.1, {}),
    ("ema", 0.9, 0.05, {}),  # below the warm-up (0.1, 2/11): it caps the decay
    ("info_weight", 2.0, 0.5, {"info_codes": 10}),
    ("augment_p", 1.0, 0.4, {"augment": "translation,cutout"}),
    ("augment_p", 0.4, 1.0, {"augment": "translation"}),
])
def test_traced_value_equals_the_config_with_that_value(field, config_value, traced, extra, data):
    """Bit for bit: the traced value weights the same compiled term as the config's value."""
    def two_steps(cfg, hp=None):
        tr = gan.make_trainer(cfg, data)
        s = tr.init(jax.random.PRNGKey(0), hp)
        step = jax.jit(tr.step)
        for _ in range(2):
            s, m = step(s, tr.data)
        return s, m

    base = {**SMALL, **extra}
    want, m_want = two_steps(gan.GANConfig(**base, **{field: traced}))
    got, m_got = two_steps(gan.GANConfig(**base, **{field: config_value}), {field: traced})
    other, _ = two_steps(gan.GANConfig(**base, **{field: config_value}))
    assert m_got == m_want or {k: float(v) for k, v in m_got.items()} == {k: float(v) for k, v in m_want.items()}
    for a, b in zip(leaves((got.g.params, got.d.params, got.g.aux)), leaves((want.g.params, want.d.params, want.g.aux))):
        np.testing.assert_array_equal(a, b)
    changed = leaves(other.g.aux)[0] if field == "ema" else leaves(other.d.params)[0]
    same = leaves(got.g.aux)[0] if field == "ema" else leaves(got.d.params)[0]
    assert not np.array_equal(changed, same)  # and the value matters


def test_ema_warm_up_hand_computed_with_vmapped_decays(data):
    tr = gan.make_trainer(gan.GANConfig(**SMALL, ema=0.5), data)
    keys = jnp.stack([jax.random.PRNGKey(0)] * 2)
    s0 = jax.vmap(tr.init)(keys, {"ema": jnp.array([0.05, 0.5])})
    step = jax.jit(jax.vmap(tr.step, in_axes=(0, None)))
    s1, _ = step(s0, tr.data)
    s2, _ = step(s1, tr.data)
    p0, p1, p2 = (leaves(s.g.params) for s in (s0, s1, s2))
    # decay min(ema, (1 + t) / (10 + t)): ema 0.05 caps it at iterations 0 and 1 (0.1 and 2/11 above it);
    # ema 0.5 leaves the warm-up's 0.1 then 2/11
    for i, (d0, d1) in enumerate([(0.05, 0.05), (0.1, 2 / 11)]):
        want = [d1 * (d0 * a[i] + (1 - d0) * b[i]) + (1 - d1) * c[i] for a, b, c in zip(p0, p1, p2)]
        for w, got in zip(want, leaves(gan.averaged_params(s2))):
            np.testing.assert_allclose(got[i], w, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("field,extra", [("r1_weight", {}), ("label_smoothing", {}), ("ema", {}),
                                         ("info_weight", {"info_codes": 10, "info_weight": 0.0})])
def test_a_term_the_config_does_not_compile_refuses_a_traced_weight(field, extra):
    cfg = gan.GANConfig(**{**SMALL, **extra})
    with pytest.raises(ConfigError, match=rf"{field}=.* which is not computed with the config's {field}=0; set {field} to a nonzero"):
        gan.init(jax.random.PRNGKey(0), cfg, {field: 1.0 if field != "label_smoothing" else 0.1})
    with pytest.raises(ConfigError, match=field):
        gan.check_hparams(gan.resolve(cfg), {field: [0.0, 0.5]})  # a sweep grid's values
    gan.init(jax.random.PRNGKey(0), cfg, {field: 0.0})  # a zero is the config's own value
    gan.check_hparams(gan.resolve(gan.GANConfig(**{**SMALL, **extra, field: 0.1})), {field: [0.0, 0.3]})


@pytest.mark.parametrize("field,value,extra,reason", [
    ("info_weight", 0.5, {}, "info_codes=0"),
    ("augment_p", 0.5, {}, "augment='none'"),
    ("gp_weight", 5.0, {}, "loss='bce'"),
    ("clip", 0.1, {"loss": "wgan-gp"}, "loss='wgan-gp'"),
])
def test_weights_of_terms_another_option_leaves_out_are_refused(field, value, extra, reason):
    cfg = gan.resolve(gan.GANConfig(**{**SMALL, **extra}))
    with pytest.raises(ConfigError, match=rf"{field}=.*which is not computed with {reason}; sweep it with a config that uses it"):
        gan.check_hparams(cfg, {field: [getattr(cfg, field), value]})
    gan.check_hparams(cfg, {field: getattr(cfg, field)})  # its own value: fine
    gan.init(jax.random.PRNGKey(0), cfg, gan.C.hparams(cfg))  # every traced value, as a sweep passes them


def test_default_run_compiles_no_optional_term(data):
    tr = gan.make_trainer(gan.GANConfig(**SMALL), data)
    s = tr.init(jax.random.PRNGKey(0), None)
    _, m = jax.jit(tr.step)(s, tr.data)
    assert not {"r1", "info_ce", "g_info_ce"} & set(m) and gan.averaged_params(s) is None
    # the default step has no R1 pass (D's input gradient, then its parameter gradient: 3 x the
    # matmuls of D's 3 layers more) and no smoothing term (one softplus fewer)
    def count(c, op):
        jaxpr = jax.make_jaxpr(gan.make_trainer(c, data).step)(gan.init(jax.random.PRNGKey(0), c), tr.data)
        return str(jaxpr).count(op)

    plain = gan.GANConfig(**SMALL)
    assert count(gan.GANConfig(**SMALL, r1_weight=1.0), "dot_general") >= count(plain, "dot_general") + 9
    assert count(gan.GANConfig(**SMALL, label_smoothing=0.1), "softplus") > count(plain, "softplus")


def test_traced_augment_probability_one_is_diffaugment():
    x = jax.random.uniform(jax.random.PRNGKey(0), (6, 28, 28, 1), minval=-1, maxval=1)
    for policy in ("translation", "cutout", "translation,cutout"):
        np.testing.assert_array_equal(A.augment(policy, jax.random.PRNGKey(3), x, jnp.float32(1.0)),
                                      A.augment(policy, jax.random.PRNGKey(3), x, 1.0))
    f = jax.jit(lambda p: A.augment("cutout", jax.random.PRNGKey(3), x, p))
    np.testing.assert_array_equal(f(0.0), x)  # p = 0: no image is augmented
