"""LeakGAN: goal normalisation and the c-step goal sum, the Worker's logits, the intrinsic
reward's cosine and the rank rescaling against hand computations; the leaked features are D's
and no gradient reaches D; sampling, teacher forcing and rollouts agree; a phased run (resume
across phase boundaries, seeds, no recompilation). One tiny config, compiled once per module."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import runner
from jaxgen.core.errors import ConfigError
from jaxgen.generative import leakgan as L
from jaxgen.losses.policy_gradient import rank_rescale
from jaxgen.nets import leak as LK
from jaxgen.nets import text as T

V, LEN = 6, 8
TINY = L.LeakGANConfig(task="coco", vocab_size=V, seq_len=LEN, emb_dim=8, hidden_dim=8, manager_dim=8, goal_size=4,
                       step_size=2, batch_size=8, pretrain_d_updates=2, pretrain_epochs=8, pretrain_d_per_step=1,
                       rounds=2, retrain_steps=1, adv_d_updates=2, n_rollouts=2, d_batch_size=8, d_emb_dim=4,
                       d_widths=(1, 2), d_filters=(3, 3), g_learning_rate=0.05)


def tiny_data(n=32, seed=0):
    """``[w w w w w <eos> <pad> <pad>]`` over words 2..5 (ids 0/1 are pad/eos)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, V, size=(n, LEN)).astype(np.int32)
    x[:, 5], x[:, 6:] = 1, 0
    return {"train": x}


# --------------------------------------------------------------------------- the math by hand

def test_goals_are_unit_vectors_and_summed_over_the_last_c_steps():
    np.testing.assert_allclose(LK.normalise(jnp.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])
    m = {k: jax.random.normal(jax.random.PRNGKey(i), shape) for i, (k, shape) in
         enumerate({"W": (5, 16), "U": (4, 16), "b": (16,), "Wg": (4, 5), "bg": (5,)}.items())}
    goal, (h, _) = jax.jit(LK.manager_step)(m, jnp.ones((7, 5)), (jnp.zeros((7, 4)), jnp.zeros((7, 4))))
    np.testing.assert_allclose(jnp.linalg.norm(goal, axis=-1), 1.0, rtol=1e-6)
    raw = np.asarray(h @ m["Wg"] + m["bg"])
    np.testing.assert_allclose(goal, raw / np.linalg.norm(raw, axis=-1, keepdims=True), rtol=1e-5)
    g = jnp.array([[1.0], [2.0], [4.0], [8.0], [16.0]])  # [L=5, 1]
    # c = 2: g_t + g_{t-1};  c = 4: up to four goals, none before t = 0
    np.testing.assert_allclose(LK.window_sum(g, 2)[:, 0], [1, 3, 6, 12, 24])
    np.testing.assert_allclose(LK.window_sum(g, 4)[:, 0], [1, 3, 7, 15, 30])


def test_worker_logits_by_hand():
    # H = 2, k = 2, V = 3:  logits_v = sum_k w_k (sum_j h_j O[j, k, v] + bO[k, v])
    o = jnp.array([[[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], [[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]]])  # [2, 2, 3]
    bo = jnp.array([[0.5, 0.0, 0.0], [0.0, 0.0, -1.0]])
    h, w = jnp.array([2.0, -1.0]), jnp.array([1.0, 2.0])
    # O_t = h O + bO = [[2 + .5, -3, 4], [-1, 1, -1 - 1]];  O_t^T w = [2.5 - 2, -3 + 2, 4 - 4]
    logits = LK.worker_logits({"O": o, "bO": bo}, h, w)
    np.testing.assert_allclose(logits, [0.5, -1.0, 0.0], rtol=1e-6)
    assert LK.worker_logits({"O": o, "bO": bo}, jnp.stack([h, h]), jnp.stack([w, 2 * w])).shape == (2, 3)


def test_intrinsic_reward_is_the_cosine_of_the_feature_change_c_steps_ahead():
    feats = jnp.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 3.0]])[:, None]  # f_0..f_3, [L+1=4, B=1, F=2]
    goals = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])[:, None]  # g_0..g_2
    r = LK.intrinsic_reward(feats, goals, 2)  # [B, L]
    # t=0: f_2 - f_0 = (1, 1) vs (1, 0): 1/sqrt2;  t=1: f_3 - f_1 = (-1, 3) vs (0, 1): 3/sqrt10;
    # t=2: f_3 - f_2 (clipped at the end) = (-1, 2) vs (.6, .8): (-.6 + 1.6)/sqrt5
    np.testing.assert_allclose(r[0], [1 / np.sqrt(2), 3 / np.sqrt(10), 1.0 / np.sqrt(5)], rtol=1e-6)
    q = jnp.array([[1.0, 0.0, 2.0]])
    assert float(LK.goal_loss(feats, goals, q, 2)) == pytest.approx(-float(r[0, 0] + 2 * r[0, 2]) / 3, rel=1e-6)


def test_rank_rescale_by_hand():
    q = jnp.array([[0.1, 5.0], [0.5, 4.0], [0.3, 6.0]])  # ranked per column over the batch of 3
    s = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    want = [[s(16 * (1 / 3 - 0.5)), s(16 * (2 / 3 - 0.5))], [s(16 * (1 - 0.5)), s(16 * (1 / 3 - 0.5))],
            [s(16 * (2 / 3 - 0.5)), s(16 * (1 - 0.5))]]
    np.testing.assert_allclose(rank_rescale(q, 16.0), want, rtol=1e-6)


# --------------------------------------------------------------------------- the generator and D

@pytest.fixture(scope="module")
def state():
    return jax.jit(L.init, static_argnums=1)(jax.random.PRNGKey(3), TINY)


def test_the_leaked_features_are_ds_and_no_gradient_reaches_d(state):
    x = jnp.asarray(tiny_data()["train"][:4])
    q = jnp.ones(x.shape)

    @jax.jit
    def probe(state):
        tf = LK.teacher(state.g, L.feat_fn(state), x, 0, 2, L.PAD)
        prefix2 = jnp.where(jnp.arange(LEN) < 2, x, 0)
        f2 = T.TextCNN(V, 4, (1, 2), (3, 3)).apply({"params": state.d}, prefix2, features=True)
        gd_pre = jax.grad(lambda d: L.pretrain_loss(state.replace(d=d), state.g, x)[0])(state.d)
        gd_adv = jax.grad(lambda d: L.adversarial_loss(state.replace(d=d), state.g, x, q)[0])(state.d)
        # the Worker's MLE reaches psi but not the Manager (goals through stop_gradient); the goal loss the Manager only
        nll = jax.grad(lambda g: -jnp.mean(LK.token_logp(LK.teacher(g, L.feat_fn(state), x, 0, 2, 0)["logits"], x)))(state.g)
        gl = jax.grad(lambda g: L.pretrain_loss(state, g, x)[1]["goal_loss"])(state.g)
        return tf, f2, gd_pre, gd_adv, nll, gl

    tf, f2, gd_pre, gd_adv, nll, gl = probe(state)
    np.testing.assert_allclose(tf["feats"][2], f2, rtol=1e-5)
    assert tf["feats"].shape == (LEN + 1, 4, 6) and tf["goals"].shape == (LEN, 4, 6) and tf["logits"].shape == (4, LEN, V)
    absmax = lambda tree: max(float(jnp.max(jnp.abs(v))) for v in jax.tree_util.tree_leaves(tree))  # noqa: E731
    assert absmax(gd_pre) == 0.0 and absmax(gd_adv) == 0.0
    assert absmax(nll["manager"]) == 0.0 and absmax(nll["psi"]) > 0
    assert absmax(gl["manager"]) > 0 and absmax(gl["worker"]) == 0.0 and absmax(gl["psi"]) == 0.0


def test_adversarial_losses_paper_and_published_code_by_hand(state):
    """paper: per-token intrinsic rewards and Q weights; code: both replaced by their batch means
    (the published code's reduced cosine) -- each against the formula written out."""
    x = jnp.asarray(tiny_data()["train"][:4])
    q = jnp.asarray(np.random.default_rng(1).uniform(size=x.shape), jnp.float32)
    code = state.replace(config=TINY.__class__(**{**TINY.__dict__, "adv_objective": "code"}))

    @jax.jit
    def probe(state, code):
        tf = LK.teacher(state.g, L.feat_fn(state), x, 0, 2, L.PAD)
        logp = LK.token_logp(tf["logits"], x)
        d = tf["feats"][jnp.minimum(jnp.arange(LEN) + 2, LEN)] - tf["feats"][:-1]  # f_{t+c} - f_t
        norm = lambda v: jnp.maximum(jnp.linalg.norm(v, axis=-1), 1e-8)  # noqa: E731  (0 where the prefix stops changing)
        cos = (jnp.sum(d * tf["goals"], -1) / norm(d) / norm(tf["goals"])).T
        return (L.adversarial_loss(state, state.g, x, q)[1], L.adversarial_loss(code, code.g, x, q)[1], logp, cos)

    paper, published, logp, cos = probe(state, code)
    np.testing.assert_allclose(paper["worker_loss"], -jnp.mean(cos * logp), rtol=1e-5)
    np.testing.assert_allclose(paper["manager_loss"], -jnp.mean(q * cos), rtol=1e-5)
    np.testing.assert_allclose(published["worker_loss"], -jnp.mean(cos) * jnp.mean(logp), rtol=1e-5)
    np.testing.assert_allclose(published["manager_loss"], -jnp.mean(q) * jnp.mean(cos), rtol=1e-5)
    assert abs(float(paper["worker_loss"] - published["worker_loss"])) > 1e-4


def test_sampling_teacher_forcing_and_rollouts_agree(state):
    """Near-greedy sampling (temperature 1e-4) with D's features read every step: teacher forcing
    on the samples picks the same tokens, and rollouts from their prefixes complete them unchanged."""
    cold = 1e-4
    pol = LK.policy(L.feat_fn(state), 2, L.PAD)

    @jax.jit
    def probe(state):
        x = L.generate(state, state.g, jax.random.PRNGKey(0), 5, cold, raw=True)
        tf = LK.teacher(state.g, L.feat_fn(state), x, 0, 2, L.PAD)
        full = T.rollouts(state.g, jax.random.PRNGKey(1), x, 3, 0, cold, pol, every=2)  # prefixes of 2, 4, 6
        q = T.mc_rewards(lambda s: jnp.sum(s, -1) * 1.0, state.g, jax.random.PRNGKey(1), x, 2, 0, cold, pol, every=3)
        return x, tf["logits"], full, q

    x, logits, full, q = probe(state)
    np.testing.assert_array_equal(jnp.argmax(logits, -1), x)
    assert full.shape == (3, 3, 5, LEN)
    np.testing.assert_array_equal(full, jnp.broadcast_to(x, full.shape))
    np.testing.assert_allclose(q, jnp.broadcast_to(jnp.sum(x, -1, keepdims=True) * 1.0, x.shape))


def test_adversarial_learning_rate_is_its_own_or_g_learning_rate():
    from jaxgen.core import optim

    def rates(cfg, hp=None):
        s = L.init(jax.random.PRNGKey(0), cfg, hp)
        return float(optim.hyperparam(s.g_opt_mle, "learning_rate")), float(optim.hyperparam(s.g_opt_adv, "learning_rate"))

    assert rates(TINY) == pytest.approx((0.05, 0.05))  # 0: G's rate
    assert rates(TINY.__class__(**{**TINY.__dict__, "adv_learning_rate": 0.0015})) == pytest.approx((0.05, 0.0015))
    assert rates(TINY, {"adv_learning_rate": 0.002}) == pytest.approx((0.05, 0.002))  # traced
    with pytest.raises(ConfigError, match="adv_learning_rate=1.5 is out of range"):
        L.validate(TINY.__class__(**{**TINY.__dict__, "adv_learning_rate": 1.5}))


def test_config_errors():
    with pytest.raises(ConfigError, match=r"step_size=8 is out of range; accepted: .*seq_len - 1 \(7\)"):
        L.validate(TINY.__class__(**{**TINY.__dict__, "step_size": 8}))
    with pytest.raises(ConfigError, match=r"have length 8 but seq_len=7"):
        L.make_trainer(TINY.__class__(**{**TINY.__dict__, "seq_len": 7, "d_widths": (1, 2)}), tiny_data())
    with pytest.raises(ConfigError, match=r"adv_objective='both'.*paper, code"):
        L.validate(TINY.__class__(**{**TINY.__dict__, "adv_objective": "both"}))


# --------------------------------------------------------------------------- the phased run

@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("leakgan")
    tr = L.make_trainer(TINY, tiny_data())
    res = runner.run(tr, 5, run_dir=d / "full", chunk_steps=4, progress=False, mode="loop")
    return tr, res, d


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_phases_learn_and_resume_across_the_boundaries_bit_identically(full_run):
    tr, full, d = full_run
    assert [p.name for p in tr.phases] == ["pretrain_d", "pretrain", "adversarial"]
    assert int(full.state.step) == tr.num_steps == 2 + 8 * 4 + 2
    hist = full.history
    assert [r["phase"] for r in hist] == ["pretrain_d"] + ["pretrain"] * 8 + ["adversarial"]
    pre = [r["g_mle_loss"] for r in hist if r["phase"] == "pretrain"]
    assert pre[0] > 1.5 and pre[-1] < pre[0] - 0.4  # uniform over 6 tokens: 1.79
    assert {"worker_loss", "manager_loss", "intrinsic", "goal_loss", "d_loss", "d_acc"} <= set(hist[-1])
    assert 0 < hist[-1]["reward"] < 1 and -1 <= hist[-1]["intrinsic"] <= 1
    # stopped at the pretrain_d / pretrain boundary (step 2), then inside pretrain and at the start
    # of adversarial (step 34): the resumed run equals the uninterrupted one
    run = d / "stopped"
    part = runner.run(tr, 5, run_dir=run, chunk_steps=4, progress=False, mode="loop", stop_after_chunks=1)
    assert int(part.state.step) == 2
    mid = runner.run(tr, 5, run_dir=run, chunk_steps=4, progress=False, mode="loop", resume=True, stop_after_chunks=8)
    assert int(mid.state.step) == 34
    res = runner.run(tr, 5, run_dir=run, chunk_steps=4, progress=False, mode="loop", resume=True)
    assert _leaves_equal(res.state, full.state)


def test_seeds_and_no_recompilation(full_run):
    tr, full, _ = full_run
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: compiles.append(event) if "backend_compile" in event else None)
    again = runner.run(tr, 5, chunk_steps=4, progress=False, mode="loop")  # same seed, same programs
    assert _leaves_equal(again.state, full.state)
    assert compiles == []  # every phase's program is reused
    other = runner.run(tr, 6, chunk_steps=4, progress=False, mode="loop")
    assert not np.allclose(other.state.g["psi"], full.state.g["psi"])


def test_cli_train_and_sample_coco(tmp_path, capsys):
    """``jaxgen train leakgan --task coco`` on 64 real captions writes results, curves, samples
    and the vocabulary; ``jaxgen sample`` decodes sentences of that vocabulary."""
    import json

    from jaxgen import cli

    run = tmp_path / "run"
    argv = ["train", "leakgan", "--task", "coco", "--limit", "64", "--seq-len", "8", "--emb-dim", "8",
            "--hidden-dim", "8", "--manager-dim", "8", "--goal-size", "4", "--step-size", "2", "--batch-size", "16",
            "--pretrain-epochs", "1", "--pretrain-d-updates", "1", "--pretrain-d-per-step", "0", "--rounds", "0",
            "--retrain-steps", "1", "--adv-d-updates", "1", "--n-rollouts", "2", "--d-batch-size", "8",
            "--d-emb-dim", "4", "--d-widths", "1,2", "--d-filters", "2,2", "--eval-n", "16", "--final-n", "16",
            "--eval-every", "1", "--run-dir", str(run), "--no-progress", "--mode", "loop"]
    assert cli.main(argv) == 0
    res = json.loads((run / "results.json").read_text())
    assert {"bleu2", "bleu5", "self_bleu2", "nll_test"} <= set(res["eval"])
    assert (run / "vocab.json").is_file() and (run / "curves.png").is_file()
    assert any((run / "samples").glob("*.txt"))
    capsys.readouterr()
    assert cli.main(["sample", str(run), "--n", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    vocab = set(json.loads((run / "vocab.json").read_text())["tokens"])
    assert len(lines) == 4 and all(w in vocab for line in lines for w in line.split())
