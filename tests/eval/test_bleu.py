"""The vectorised BLEU / self-BLEU against NLTK's sentence_bleu (smoothing method1, Texygen's)
on real COCO captions, to 1e-6."""
import numpy as np
import pytest

from conftest import SHARED_DATA
from jaxgen.eval.bleu import bleu, self_bleu, sentence_bleu_matrix

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
COCO = SHARED_DATA / "coco_captions"


def _nltk(refs, hyp, n):
    sm = nltk_bleu.SmoothingFunction().method1
    return nltk_bleu.sentence_bleu(refs, hyp, tuple([1.0 / n] * n), smoothing_function=sm)


@pytest.fixture(scope="module")
def captions():
    train = [l.split() for l in (COCO / "image_coco.txt").read_text().splitlines()]
    test = [l.split() for l in (COCO / "test_coco.txt").read_text().splitlines()]
    return train, test


def test_bleu_equals_nltk_on_real_captions(captions):
    train, test = captions
    # captions, edge cases: empty, one word, words no reference has, a repeated word
    hyps = train[:30] + [[], ["a"], ["zzqx", "qqzx"], ["a"] * 12, test[3]]
    refs = test[:150]
    ours = sentence_bleu_matrix(hyps, refs, 5)
    ref = np.array([[_nltk(refs, h, n) for n in range(1, 6)] for h in hyps])
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)
    assert ours[-1].min() > 0.99  # a reference scores 1
    got = bleu(hyps, refs, orders=(2, 3, 4, 5))
    assert got == pytest.approx({n: ref[:, n - 1].mean() for n in (2, 3, 4, 5)}, abs=1e-6)


def test_self_bleu_equals_nltk_with_each_sentence_left_out(captions):
    train, _ = captions
    sents = train[100:140] + [train[100], ["a"], []]  # a duplicate (its twin is a reference), a stub
    ours = sentence_bleu_matrix(sents, None, 5)
    ref = np.array([[_nltk(sents[:i] + sents[i + 1:], h, n) for n in range(1, 6)] for i, h in enumerate(sents)])
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)
    assert self_bleu(sents, (2, 3), max_hyps=10) == pytest.approx(
        {n: np.mean([_nltk(sents[:10][:i] + sents[:10][i + 1:], h, n) for i, h in enumerate(sents[:10])])
         for n in (2, 3)}, abs=1e-6)
    assert self_bleu([["x", "y"]] * 5, (2,))[2] == pytest.approx(1.0)  # identical sentences: no diversity
