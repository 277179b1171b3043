"""BLEU and self-BLEU of generated text, vectorised (numpy): the text-GAN benchmark metrics.

The text-GAN papers (SeqGAN, LeakGAN, Texygen) report, for each generated sentence, the
sentence BLEU against the *whole* reference set (every reference sentence is a reference of
every hypothesis), with NLTK's smoothing ``method1`` (a zero n-gram match count becomes
``epsilon = 0.1``), averaged over the hypotheses; BLEU-n uses uniform weights ``1/n`` over
the orders ``1..n``. Self-BLEU (Zhu et al. 2018, Texygen) is the same with the generated set
as its own references, each sentence scored against all the *others* (diversity: lower is
more diverse).

This module computes exactly what ``nltk.translate.bleu_score.sentence_bleu(refs, hyp, w,
smoothing_function=SmoothingFunction().method1)`` computes for every hypothesis (checked to
1e-6 on COCO captions in ``tests/eval/test_bleu.py``), but for all hypotheses at once:

* sentences become a padded integer array; every n-gram becomes one integer code
  (pairs of an (n-1)-gram code and a token, re-numbered densely by ``np.unique``), so
  codes are shared by references and hypotheses;
* for each order the maximum count of each n-gram over the references is one sort-based
  reduction; for self-BLEU the maximum over *the other* sentences follows from the largest
  count, how many sentences reach it and the second largest;
* clipped counts, totals, the closest reference length (ties: the shorter) and the brevity
  penalty are array operations.

Tokens may be strings or integers (any hashable); a sentence is a sequence of tokens.
Texygen's defaults (its "fast" mode) use the first 500 reference sentences and, for
self-BLEU, the first 500 generated ones: pass ``max_refs`` / ``max_hyps``.
"""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

EPSILON = 0.1  # NLTK SmoothingFunction().method1's epsilon

Sentence = Sequence[Hashable]


def pack(sentences: Sequence[Sentence], table: dict | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Sentences as ``(tokens int64 [M, Lmax] padded with -1, lengths int64 [M], table)``;
    ``table`` maps a token to its integer id (extended with unseen tokens; pass the same table
    to pack references and hypotheses alike)."""
    table = {} if table is None else table
    lengths = np.fromiter((len(s) for s in sentences), np.int64, len(sentences))
    width = max(1, int(lengths.max(initial=0)))
    tokens = np.full((len(sentences), width), -1, np.int64)
    for i, s in enumerate(sentences):
        if len(s):
            tokens[i, : len(s)] = [table.setdefault(t, len(table)) for t in s]
    return tokens, lengths, table


def ngram_codes(tokens: np.ndarray, lengths: np.ndarray, max_n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For n = 1..max_n: ``(sentence index [K_n], dense n-gram code [K_n])`` of every n-gram
    occurrence of the packed sentences (``tokens [M, L]``, ``lengths [M]``)."""
    m = tokens.shape[0]
    vocab = int(tokens.max(initial=0)) + 1
    out = []
    codes = tokens  # [M, L - n + 1]: the code of the n-gram starting at each position
    for n in range(1, max_n + 1):
        if n > 1:
            if codes.shape[1] < 2:
                out.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
                continue
            pair = codes[:, :-1] * vocab + np.maximum(tokens[:, n - 1:], 0)
            _, dense = np.unique(pair, return_inverse=True)
            codes = dense.reshape(pair.shape).astype(np.int64)
        valid = np.arange(codes.shape[1])[None, :] + n <= lengths[:, None]
        rows = np.broadcast_to(np.arange(m)[:, None], codes.shape)
        out.append((rows[valid].astype(np.int64), codes[valid]))
    return out


def _counts(rows: np.ndarray, codes: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(row, code)`` pairs and how often each occurs."""
    key, cnt = np.unique(rows * base + codes, return_counts=True)
    return key // base, key % base, cnt


def _max_counts(rows, codes, ncodes: int, exclude_self: bool):
    """Per code: the largest count over the reference rows (``max1``); for ``exclude_self`` also
    how many rows reach it (``nmax``) and the second largest count (``max2``, 0 if none)."""
    r, c, cnt = _counts(rows, codes, ncodes)
    max1 = np.zeros(ncodes, np.int64)
    np.maximum.at(max1, c, cnt)
    if not exclude_self:
        return max1, None, None
    at_max = cnt == max1[c]
    nmax = np.bincount(c[at_max], minlength=ncodes)
    max2 = np.zeros(ncodes, np.int64)
    np.maximum.at(max2, c[~at_max], cnt[~at_max])
    return max1, nmax, max2


def _closest_ref_length(hyp_len: np.ndarray, ref_lens: np.ndarray, exclude_self: bool) -> np.ndarray:
    """NLTK's closest reference length (ties: the shorter) of each hypothesis; with
    ``exclude_self`` the hypotheses are the references and each one's own length is left out once."""
    ul, uc = np.unique(ref_lens, return_counts=True)
    avail = np.ones((len(hyp_len), len(ul)), bool)
    if exclude_self:
        own = ul[None, :] == hyp_len[:, None]
        avail &= ~(own & (uc[None, :] < 2))
    dist = np.abs(ul[None, :] - hyp_len[:, None]).astype(np.float64)
    key = np.where(avail, dist * (2.0 * (ul.max(initial=0) + 1)) + ul[None, :], np.inf)
    return ul[np.argmin(key, axis=1)]


def sentence_bleu_matrix(hypotheses: Sequence[Sentence], references: Sequence[Sentence] | None, max_n: int = 5,
                         epsilon: float = EPSILON) -> np.ndarray:
    """``float64 [M, max_n]``: column ``n-1`` is each hypothesis' smoothed sentence BLEU-n
    (uniform weights over orders 1..n) against all ``references`` (None: self-BLEU, each
    hypothesis against all the other hypotheses)."""
    exclude_self = references is None
    if exclude_self:
        sents = list(hypotheses)
        m = len(sents)
    else:
        m = len(hypotheses)
        sents = list(hypotheses) + list(references)
    if m == 0:
        return np.zeros((0, max_n))
    tokens, lengths, _ = pack(sents)
    grams = ngram_codes(tokens, lengths, max_n)
    hyp_len = lengths[:m]
    ref_lens = lengths if exclude_self else lengths[m:]
    logp = np.zeros((m, max_n))
    no_unigram = np.zeros(m, bool)
    for n, (rows, codes) in enumerate(grams, start=1):
        ncodes = int(codes.max(initial=-1)) + 1
        den = np.maximum(1, hyp_len - n + 1)
        num = np.zeros(m, np.int64)
        if ncodes:
            is_hyp = rows < m
            ref_rows, ref_codes = (rows, codes) if exclude_self else (rows[~is_hyp], codes[~is_hyp])
            max1, nmax, max2 = _max_counts(ref_rows, ref_codes, ncodes, exclude_self)
            h, c, cnt = _counts(rows[is_hyp], codes[is_hyp], ncodes)
            if exclude_self:  # the largest count among the other sentences
                other = np.where((cnt < max1[c]) | (nmax[c] >= 2), max1[c], max2[c])
            else:
                other = max1[c]
            num = np.bincount(h, np.minimum(cnt, other), minlength=m).astype(np.int64)
        p = np.where(num > 0, num / den, epsilon / den)
        logp[:, n - 1] = np.log(p)
        if n == 1:
            no_unigram = num == 0
    r = _closest_ref_length(hyp_len, ref_lens, exclude_self)
    with np.errstate(divide="ignore"):
        bp = np.where(hyp_len > r, 1.0, np.where(hyp_len == 0, 0.0, np.exp(1.0 - r / np.maximum(hyp_len, 1))))
    orders = np.arange(1, max_n + 1)
    mean_logp = np.cumsum(logp, axis=1) / orders[None, :]
    out = bp[:, None] * np.exp(mean_logp)
    out[no_unigram] = 0.0
    return out


def bleu(hypotheses: Sequence[Sentence], references: Sequence[Sentence], orders: Sequence[int] = (2, 3, 4, 5),
         max_refs: int | None = None, max_hyps: int | None = None) -> dict[int, float]:
    """``{n: mean over hypotheses of sentence BLEU-n against all references}`` (Texygen's BLEU).

    Args:
      hypotheses: generated sentences (token sequences).
      references: the reference set (e.g. the test captions); only the first ``max_refs`` used.
      orders: the BLEU orders n to report.
      max_hyps: only the first this many hypotheses.
    """
    refs = list(references)[:max_refs]
    hyps = list(hypotheses)[:max_hyps]
    if not refs:
        raise ValueError("bleu() needs at least one reference sentence")
    mat = sentence_bleu_matrix(hyps, refs, max(orders))
    return {n: float(mat[:, n - 1].mean()) if len(hyps) else 0.0 for n in orders}


def self_bleu(sentences: Sequence[Sentence], orders: Sequence[int] = (2, 3, 4, 5),
              max_hyps: int | None = None) -> dict[int, float]:
    """``{n: mean self-BLEU-n}``: each of the first ``max_hyps`` sentences against all the
    other ones of that subset (Texygen's self-BLEU; higher = less diverse)."""
    sents = list(sentences)[:max_hyps]
    if len(sents) < 2:
        raise ValueError("self_bleu() needs at least two sentences")
    mat = sentence_bleu_matrix(sents, None, max(orders))
    return {n: float(mat[:, n - 1].mean()) for n in orders}


__all__ = ["bleu", "self_bleu", "sentence_bleu_matrix", "pack", "ngram_codes", "EPSILON"]
