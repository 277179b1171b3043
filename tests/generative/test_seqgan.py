"""SeqGAN: the Monte Carlo Q against exact enumeration, the policy-gradient sign, D's shapes,
a phased run (resume across phase boundaries, seeds, no recompilation), the CLI. Tiny
configs on a tiny vocabulary (task coco with made-up sequences), so the whole file is quick."""
import dataclasses
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import optim, runner
from jaxgen.core.errors import ConfigError
from jaxgen.generative import seqgan as S
from jaxgen.nets import text as T

V, L = 6, 5
TINY = S.SeqGANConfig(task="coco", vocab_size=V, seq_len=L, emb_dim=8, hidden_dim=8, batch_size=8,
                      pretrain_g_epochs=2, pretrain_d_updates=3, rounds=3, adv_d_updates=2, n_rollouts=4,
                      d_batch_size=8, d_emb_dim=4, d_widths=(1, 2), d_filters=(3, 3))


def tiny_data(n=32, seed=0):
    """Sequences ``[w w w <eos> <pad>]``-like over words 2..5 (ids 0/1 are pad/eos)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, V, size=(n, L)).astype(np.int32)
    x[:, 3], x[:, 4] = 1, 0
    return {"train": x}


def test_rollout_q_matches_exact_enumeration():
    """Q(prefix) = E[score(completion)] under the rollout policy, enumerated over all 3^3
    sequences of a 3-token vocabulary, vs the Monte Carlo mean of 3,000 completions."""
    p = T.lstm_init(jax.random.PRNGKey(0), 3, 4, 4, std=1.0)
    table = jax.random.uniform(jax.random.PRNGKey(1), (3, 3, 3))
    score = lambda x: table[x[:, 0], x[:, 1], x[:, 2]]  # noqa: E731
    seqs = jnp.array([[0, 1, 2], [2, 2, 0]], jnp.int32)
    q = np.asarray(jax.jit(lambda k: T.mc_rewards(score, p, k, seqs, 3000, start=1))(jax.random.PRNGKey(2)))
    all_seqs = jnp.array(list(itertools.product(range(3), repeat=3)), jnp.int32)
    logp = np.asarray(jax.jit(T.token_logp, static_argnums=2)(p, all_seqs, 1))  # [27, 3]
    s = np.asarray(score(all_seqs))
    for b, y in enumerate(np.asarray(seqs)):
        for t in (1, 2):  # prefix of t tokens: condition on it, weight by p(rest | prefix)
            match = (np.asarray(all_seqs)[:, :t] == y[:t]).all(1)
            w = np.exp(logp[match][:, t:].sum(1))
            exact = float((w * s[match]).sum() / w.sum())
            assert abs(q[b, t - 1] - exact) < 0.02, (b, t, q[b, t - 1], exact)
        assert q[b, 2] == pytest.approx(float(table[tuple(y)]))  # the whole sequence: D's own score


@pytest.mark.parametrize("length", [5, 6])  # an odd and an even number of prefixes
def test_paired_rollouts_equal_each_prefix_completed_on_its_own(length):
    """Near-greedy (temperature 1e-4): the rollouts of every prefix -- two completions to a scan
    row -- equal each prefix's own greedy continuation, for prefixes of random tokens."""
    p = T.lstm_init(jax.random.PRNGKey(0), V, 8, 8, std=1.0)
    seqs = jax.random.randint(jax.random.PRNGKey(1), (3, length), 0, V)
    cold = 1e-4
    full = np.asarray(jax.jit(lambda k: T.rollouts(p, k, seqs, 2, 0, cold))(jax.random.PRNGKey(2)))
    assert full.shape == (length - 1, 2, 3, length)
    _, (hs, cs) = T.hidden_states(p, seqs, 0)
    for t in range(1, length):
        own = T.continue_from(p, jax.random.PRNGKey(3), seqs[:, t - 1], (hs[t - 1], cs[t - 1]), length - t, cold)
        want = np.concatenate([np.asarray(seqs[:, :t]), np.asarray(own)], axis=1)
        for n in range(2):
            np.testing.assert_array_equal(full[t - 1, n], want)


def test_tiled_head_sampling_does_not_depend_on_the_tile():
    p = T.lstm_init(jax.random.PRNGKey(0), 70, 4, 8, std=1.0)
    h = jax.random.normal(jax.random.PRNGKey(1), (5, 7, 8))  # 35 rows: tiles of 4 with a ragged end
    draws = [np.asarray(T.sample_head(p, h, jax.random.PRNGKey(2), 1.0, tile)) for tile in (4, 16, 512)]
    assert draws[0].shape == (5, 7) and len(np.unique(draws[0])) > 5
    np.testing.assert_array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0], draws[2])


def test_policy_gradient_raises_the_probability_of_high_q_tokens():
    p = T.lstm_init(jax.random.PRNGKey(0), V, 8, 8)
    seqs = jax.jit(T.sample, static_argnums=(2, 3, 4))(p, jax.random.PRNGKey(1), 256, L, 0)
    q = (seqs == 3).astype(jnp.float32)  # token 3 has Q 1, every other token 0

    @jax.jit
    def prob3_after(lr):
        grads = jax.grad(lambda g: S.pg_loss(TINY, g, seqs, q))(p)  # the module's loss (shared estimator)
        p2 = jax.tree_util.tree_map(lambda w, g: w - lr * g, p, grads)
        return jnp.sum(jnp.exp(T.token_logp(p2, seqs, 0)) * q) / jnp.sum(q)

    before, after, wrong = prob3_after(0.0), prob3_after(2.0), prob3_after(-2.0)
    assert after > before * 1.1 and wrong < before * 0.95


def test_policy_gradient_learning_rate_is_its_own_or_g_learning_rate():
    def rates(**kw):
        s = S.init(jax.random.PRNGKey(0), dataclasses.replace(TINY, **kw))
        return float(optim.hyperparam(s.g_opt_mle, "learning_rate")), float(optim.hyperparam(s.g_opt_pg, "learning_rate"))

    assert rates() == pytest.approx((0.01, 0.01))  # 0: the MLE rate, as SeqGAN's code
    assert rates(g_learning_rate=0.003) == pytest.approx((0.003, 0.003))
    assert rates(pg_learning_rate=0.02) == pytest.approx((0.01, 0.02))
    traced = S.init(jax.random.PRNGKey(0), TINY, {"pg_learning_rate": 0.05})  # a traced hyperparameter
    assert float(optim.hyperparam(traced.g_opt_pg, "learning_rate")) == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="pg_learning_rate=1.5 is out of range"):
        S.validate(dataclasses.replace(TINY, pg_learning_rate=1.5))


def test_discriminator_shapes_and_l2():
    d = T.TextCNN(V, 4, (1, 2, 5), (3, 2, 4))
    x = jnp.zeros((7, L), jnp.int32)
    params = jax.jit(d.init)(jax.random.PRNGKey(0), x)["params"]
    assert params["conv5"]["kernel"].shape == (5, 4, 4) and params["embedding"].shape == (V, 4)
    assert params["highway"]["kernel"].shape == (9, 9) and params["out"]["kernel"].shape == (9, 2)
    logits = jax.jit(d.apply)({"params": params}, x, 0.75, jax.random.PRNGKey(1))
    assert logits.shape == (7, 2)
    p = T.real_prob(logits)
    assert p.shape == (7,) and bool(jnp.all((p > 0) & (p < 1)))
    l2 = 0.5 * (jnp.sum(params["out"]["kernel"] ** 2) + jnp.sum(params["out"]["bias"] ** 2))
    assert float(T.output_l2(params)) == pytest.approx(float(l2))
    with pytest.raises(ConfigError, match=r"d_widths=\(1, 9\) is out of range; accepted: .*seq_len \(5\)"):
        S.validate(S.SeqGANConfig(task="coco", seq_len=5, vocab_size=V, d_widths=(1, 9), d_filters=(2, 2)))


def test_mle_learns_and_discriminator_separates():
    cfg = TINY.__class__(**{**TINY.__dict__, "pretrain_g_epochs": 30, "rounds": 0, "mle_only": True,
                            "g_learning_rate": 0.05})
    tr = S.make_trainer(cfg, tiny_data())
    state, metrics = jax.jit(S.make_train(cfg, tiny_data()))(jax.random.PRNGKey(0))
    loss = np.asarray(metrics["pretrain_g"]["g_mle_loss"])
    assert loss[:4].mean() > 1.5 and loss[-4:].mean() < 1.0  # uniform over 6 tokens: 1.79
    x = np.asarray(jax.jit(S.sample, static_argnums=2)(state, jax.random.PRNGKey(1), 200))
    assert (x[:, 3] == 1).mean() > 0.9 and (x[:, 4] == 0).mean() > 0.9  # learned the end token and padding
    assert tr.phase_starts() == {"pretrain_g": 0}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("seqgan")
    tr = S.make_trainer(TINY, tiny_data())
    res = runner.run(tr, 5, run_dir=d / "full", chunk_steps=2, progress=False, mode="loop")
    return tr, res, d


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_phases_run_in_order_and_resume_across_the_boundaries_bit_identically(full_run):
    tr, full, d = full_run
    assert [p.name for p in tr.phases] == ["pretrain_g", "pretrain_d", "adversarial"]
    assert int(full.state.step) == tr.num_steps == 8 + 3 + 3
    assert [r["phase"] for r in full.history] == ["pretrain_g"] * 4 + ["pretrain_d"] * 2 + ["adversarial"] * 2
    assert "g_mle_loss" in full.history[0] and 0 < full.history[-1]["reward"] < 1  # D's mean score of G's samples
    assert {"pg_loss", "q_mean", "d_loss", "d_acc"} <= set(full.history[-1])
    # stopped at the pretrain_g / pretrain_d boundary (4 chunks, step 8), then inside pretrain_d
    # and at the start of adversarial: the resumed run equals the uninterrupted one
    run = d / "stopped"
    part = runner.run(tr, 5, run_dir=run, chunk_steps=2, progress=False, mode="loop", stop_after_chunks=4)
    assert int(part.state.step) == 8
    mid = runner.run(tr, 5, run_dir=run, chunk_steps=2, progress=False, mode="loop", resume=True, stop_after_chunks=2)
    assert int(mid.state.step) == 11
    res = runner.run(tr, 5, run_dir=run, chunk_steps=2, progress=False, mode="loop", resume=True)
    assert _leaves_equal(res.state, full.state)


def test_seeds_and_no_recompilation(full_run):
    tr, full, _ = full_run
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: compiles.append(event) if "backend_compile" in event else None)
    again = runner.run(tr, 5, chunk_steps=2, progress=False, mode="loop")  # same seed, same programs
    assert _leaves_equal(again.state, full.state)
    assert compiles == []  # every phase's program is reused
    other = runner.run(tr, 6, chunk_steps=2, progress=False, mode="loop")
    assert not np.allclose(other.state.g["Wo"], full.state.g["Wo"])


def test_seeds_vmapped_in_one_program_equal_their_single_runs():
    from jaxgen.core.sweep import sweep

    cfg = TINY.__class__(**{**TINY.__dict__, "mle_only": True, "rounds": 0})
    tr = S.make_trainer(cfg, tiny_data())
    res = sweep(tr, seeds=[5, 6], chunk_steps=4, progress=False, mode="loop")
    one = runner.run(tr, 6, chunk_steps=4, progress=False, mode="loop")
    np.testing.assert_allclose(res.state.g["Wo"][1], one.state.g["Wo"], rtol=2e-4, atol=2e-5)
    assert not np.allclose(res.state.g["Wo"][0], res.state.g["Wo"][1])


def test_mle_only_is_the_same_run_without_the_adversarial_phase():
    cfg = TINY.__class__(**{**TINY.__dict__, "mle_only": True})
    tr = S.make_trainer(cfg, tiny_data())
    assert [(p.name, p.num_steps) for p in tr.phases] == [("pretrain_g", (2 + 3) * 4)]


def test_coco_bleu_uses_every_test_caption_and_fast_bleu_the_first_500():
    from jaxgen.generative.seqgan_fit import text_metrics

    hyps = [["a", "red", "bus", "parked", "by", "trees"]] * 2
    refs = [["two", "dogs", "playing", str(i)] for i in range(500)] + [["a", "red", "bus", "parked", "by", "trees"]]
    m = text_metrics(hyps, refs)
    assert m["bleu2"] == pytest.approx(1.0) and m["bleu5"] == pytest.approx(1.0)
    assert m["fast_bleu2"] < 0.1  # the matching caption is the 501st: not among the fast references
    assert m["self_bleu2"] == pytest.approx(1.0)


def test_cli_train_and_sample_coco(tmp_path, capsys):
    from jaxgen import cli

    run = tmp_path / "run"
    argv = ["train", "seqgan", "--task", "coco", "--limit", "64", "--seq-len", "12", "--emb-dim", "8",
            "--hidden-dim", "8", "--batch-size", "16", "--pretrain-g-epochs", "1", "--pretrain-d-updates", "0",
            "--rounds", "0", "--adv-d-updates", "1", "--n-rollouts", "2", "--d-batch-size", "8", "--d-emb-dim", "4",
            "--d-widths", "1,2", "--d-filters", "2,2", "--eval-n", "20", "--final-n", "20", "--eval-every", "1",
            "--run-dir", str(run), "--no-progress", "--mode", "loop"]
    assert cli.main(argv) == 0
    res = json.loads((run / "results.json").read_text())
    assert {"bleu2", "bleu5", "fast_bleu2", "self_bleu2", "nll_test"} <= set(res["eval"])
    assert (run / "vocab.json").is_file() and (run / "samples" / "pretrain_g_0001.txt").is_file()
    assert (run / "curves.png").is_file()
    capsys.readouterr()
    assert cli.main(["sample", str(run), "--n", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    vocab = set(json.loads((run / "vocab.json").read_text())["tokens"])
    assert len(lines) == 5 and all(w in vocab for line in lines for w in line.split())


def test_tiled_log_probabilities_equal_the_plain_ones_and_their_gradients():
    """head_logp over tiles (a custom VJP) against the log-softmax of the whole logits, value
    and gradients with respect to h, Wo, bo and the temperature."""
    p = T.lstm_init(jax.random.PRNGKey(0), 50, 4, 6, std=1.0)
    h = jax.random.normal(jax.random.PRNGKey(1), (3, 13, 6))  # 39 rows: tiles of 8 with a ragged end
    tok = jax.random.randint(jax.random.PRNGKey(2), (3, 13), 0, 50)
    w = jax.random.normal(jax.random.PRNGKey(3), (3, 13))

    def plain(p, h, temp):
        return jnp.sum(w * jnp.take_along_axis(jax.nn.log_softmax((h @ p["Wo"] + p["bo"]) / temp), tok[..., None], -1)[..., 0])

    tiled = lambda p, h, temp: jnp.sum(w * T.head_logp(p, h, tok, temp, tile=8))  # noqa: E731
    np.testing.assert_allclose(tiled(p, h, 1.7), plain(p, h, 1.7), rtol=1e-5)
    ga, gb = jax.grad(tiled, argnums=(0, 1, 2))(p, h, 1.7), jax.grad(plain, argnums=(0, 1, 2))(p, h, 1.7)
    for k in ("Wo", "bo"):
        np.testing.assert_allclose(ga[0][k], gb[0][k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ga[1], gb[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ga[2], gb[2], rtol=1e-4)
