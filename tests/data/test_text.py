"""Text data: the SeqGAN oracle against a hand-written numpy LSTM on its real parameters, the
caption vocabulary's round trip, and one sentence for unreadable files."""
import json

import numpy as np

import jax
import jax.numpy as jnp
import pytest

from conftest import SHARED_DATA
from jaxgen.core.errors import DataError
from jaxgen.data import text as D
from jaxgen.nets import text as T

ORACLE = SHARED_DATA / "seqgan_oracle" / "target_params.npz"
COCO = SHARED_DATA / "coco_captions"


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_oracle_logp(a, tokens, start=0):
    """log p(y_t | y_<t) by the README's recurrence, gate by gate, float64."""
    a = {k: np.asarray(v, np.float64) for k, v in a.items()}
    n, length = tokens.shape
    h = np.zeros((n, a["Ui"].shape[0]))
    c = np.zeros_like(h)
    prev = np.full(n, start)
    out = np.zeros((n, length))
    for t in range(length):
        x = a["g_embeddings"][prev]
        i = _sigmoid(x @ a["Wi"] + h @ a["Ui"] + a["bi"])
        f = _sigmoid(x @ a["Wf"] + h @ a["Uf"] + a["bf"])
        o = _sigmoid(x @ a["Wog"] + h @ a["Uog"] + a["bog"])
        cand = np.tanh(x @ a["Wc"] + h @ a["Uc"] + a["bc"])
        c = f * c + i * cand
        h = o * np.tanh(c)
        logits = h @ a["Wo"] + a["bo"]
        logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        out[:, t] = logits[np.arange(n), tokens[:, t]] - logz
        prev = tokens[:, t]
    return out


@pytest.fixture(scope="module")
def oracle():
    return D.load_oracle(ORACLE)


def test_oracle_recurrence_matches_numpy_on_the_real_parameters(oracle):
    with np.load(ORACLE) as z:
        arrays = {k: z[k] for k in z.files}
    tokens = np.asarray(D.oracle_sample(oracle, jax.random.PRNGKey(0), 8, batch=8))
    ours = np.asarray(T.token_logp(oracle, jnp.asarray(tokens), 0))
    np.testing.assert_allclose(ours, numpy_oracle_logp(arrays, tokens), atol=2e-4)
    assert tokens.shape == (8, 20) and tokens.min() >= 0 and tokens.max() < 5000


def test_oracle_scores_its_own_samples_near_the_published_entropy(oracle):
    x = D.oracle_sample(oracle, jax.random.PRNGKey(1), 200, batch=200)
    nll = float(D.oracle_nll(oracle, x))
    assert 5.6 < nll < 5.9  # published 5.75 (the paper's 10,000 samples)
    uniform = float(D.oracle_nll(oracle, jax.random.randint(jax.random.PRNGKey(2), (200, 20), 0, 5000)))
    assert uniform > 9.0


def test_categorical_draws_the_softmax_distribution():
    logits = jax.random.normal(jax.random.PRNGKey(5), (130,)) * 2  # > 2 blocks of 64, with a ragged end
    x = T.categorical(jax.random.PRNGKey(3), jnp.broadcast_to(logits, (20_000, 130)), 1.0)
    freq = np.bincount(np.asarray(x), minlength=130) / 20_000
    np.testing.assert_allclose(freq, np.asarray(jax.nn.softmax(logits)), atol=1.2e-2)
    cold = T.categorical(jax.random.PRNGKey(4), jnp.broadcast_to(logits, (1000, 130)), 1e-3)
    assert (np.asarray(cold) == int(jnp.argmax(logits))).all()


def test_caption_vocabulary_round_trip(tmp_path):
    train = D.load_corpus(COCO / "image_coco.txt")
    assert len(train) == 10000
    vocab = D.Vocab.build(train[:500])
    ids = vocab.encode(train[:500], 40)
    assert ids.shape == (500, 40) and ids.dtype == np.int32
    lengths = [len(s) for s in train[:500]]
    assert (ids[np.arange(500), lengths] == D.EOS).all() and ids[0, lengths[0] + 1:].max(initial=0) == D.PAD
    assert vocab.decode(ids) == train[:500]
    vocab.save(tmp_path)
    again = D.Vocab.load(tmp_path)
    assert again.tokens == vocab.tokens and again.decode_text(ids[:3]) == [" ".join(s) for s in train[:3]]
    assert again.tokenize is None and D.load_coco(COCO, limit=5).get("vocab").tokenize == "words"
    D.Vocab.build(train[:5], "space").save(tmp_path)
    assert D.Vocab.load(tmp_path).tokenize == "space"
    (tmp_path / "vocab.json").write_text(json.dumps(vocab.tokens))  # the older plain-list file: space-split runs
    assert D.Vocab.load(tmp_path).tokens == vocab.tokens and D.Vocab.load(tmp_path).tokenize == "space"
    short = vocab.encode(train[:1], 4)  # cut to max_len - 1 words + the end token
    assert vocab.decode(short) == [train[0][:3]] and short[0, 3] == D.EOS
    with pytest.raises(DataError, match="not in the vocabulary"):
        vocab.encode([["qqqzzz"]], 5)


def test_word_tokens_by_hand_and_against_nltks_treebank_tokenizer():
    assert D.word_tokens("A man's dog doesn't sit, 1,000 times at 11:59.") == [
        "a", "man", "'s", "dog", "does", "n't", "sit", ",", "1,000", "times", "at", "11:59", "."]
    assert D.word_tokens("st. louis is (sort of) old-fashioned / nice?") == [
        "st.", "louis", "is", "(", "sort", "of", ")", "old-fashioned", "/", "nice", "?"]
    nltk_tok = pytest.importorskip("nltk.tokenize").TreebankWordTokenizer()
    lines = (COCO / "image_coco.txt").read_text().splitlines() + (COCO / "test_coco.txt").read_text().splitlines()
    agree = np.mean([D.word_tokens(s) == nltk_tok.tokenize(s.lower()) for s in lines])
    assert agree > 0.998, agree  # the rest: nltk's `` '' for double quotes
    words = D.load_corpus(COCO / "image_coco.txt")
    space = D.load_corpus(COCO / "image_coco.txt", "space")
    assert words[0] == ["a", "bicycle", "replica", "with", "a", "clock", "as", "the", "front", "wheel", "."]
    assert space[0][-1] == "wheel." and max(map(len, words + D.load_corpus(COCO / "test_coco.txt"))) == 37  # Texygen's length
    with pytest.raises(DataError, match="tokenize='nltk' is not a tokenizer; accepted: words, space"):
        D.load_corpus(COCO / "image_coco.txt", "nltk")


def test_canonical_pads_after_the_first_end_token():
    x = jnp.array([[5, 1, 7, 0, 9], [4, 4, 0, 3, 1], [2, 3, 4, 5, 6]])
    np.testing.assert_array_equal(D.canonical(x), [[5, 1, 0, 0, 0], [4, 4, 1, 0, 0], [2, 3, 4, 5, 6]])


def test_unreadable_files_are_one_sentence(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00\x81 not text")
    for path, words in ((bad, "not readable UTF-8"), (tmp_path / "none.txt", "does not exist")):
        with pytest.raises(DataError, match=words) as e:
            D.load_corpus(path)
        assert "\n" not in str(e.value) and str(e.value).endswith(".")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(DataError, match="holds no sentence"):
        D.load_corpus(tmp_path / "empty.txt")
    (tmp_path / "o.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="not a readable npz"):
        D.load_oracle(tmp_path / "o.npz")
    np.savez(tmp_path / "w.npz", Wi=np.zeros((3, 3), np.float32))
    with pytest.raises(DataError, match="lacks g_embeddings"):
        D.load_oracle(tmp_path / "w.npz")
    (tmp_path / "vocab.json").write_text("{oops")
    with pytest.raises(DataError, match="not a readable vocabulary"):
        D.Vocab.load(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"tokenize": "chars", "tokens": ["<pad>", "<eos>"]}))
    with pytest.raises(DataError, match="not a vocabulary; expected .*words, space"):
        D.Vocab.load(tmp_path)
