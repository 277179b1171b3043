"""Sample-quality metrics for MNIST generators, in the features of our own classifier.

* **MNIST FID**: the Fréchet distance between Gaussians fitted to the penultimate features
  (128-d) of :mod:`jaxgen.eval.mnist_classifier` for two image sets,
  ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` (Heusel et al. 2017, with our classifier
  in place of Inception). Float64, on the host; the matrix square root's trace is
  ``sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))``.
* **Classifier score**: ``exp(E_x[KL(p(y|x) || p(y))])`` (the Inception-score analogue; 10 is
  the maximum, for confident predictions spread evenly over the digits).
* **Label accuracy** (conditional GANs): the share of samples classified as their requested label.

The figures depend on the sample size (FID is biased upwards for small N), so every FID is
reported beside the **real-data floor**: the FID between two disjoint halves of the real test
split, with the same N. :class:`MnistEvaluator` fixes the reference: the test images are
shuffled with a fixed seed (MNIST's test split is ordered by writer population: its first
5,000 images are the cleaner ones, and an unshuffled split gives a floor of ~36 instead of
~3 at N = 5,000), then images ``[N:2N]`` are the reference set and ``[0:N]`` the real half
for the floor.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

import jax

from jaxgen.eval.mnist_classifier import MnistClassifier, load_classifier


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [F], covariance [F, F]) of ``features [N, F]`` in float64."""
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2)."""
    r1 = _sqrt_psd(np.asarray(s1, np.float64))
    m = r1 @ np.asarray(s2, np.float64) @ r1
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)))
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def fid_from_features(fa: np.ndarray, fb: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(fa), *gaussian_stats(fb))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def code_purity(codes: np.ndarray, classes: np.ndarray) -> float:
    """Share of samples whose class ``[N]`` is the most common class of their code ``[N]``
    (1: every code is one digit; the unsupervised-clustering accuracy of InfoGAN's codes)."""
    hits = sum(np.bincount(classes[codes == c]).max() for c in np.unique(codes))
    return float(hits / len(codes))


def classifier_score(probs: np.ndarray) -> float:
    """exp(mean_x KL(p(y|x) || p(y))) with p(y) the mean of ``probs [N, K]``."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    py = p.mean(0, keepdims=True)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=-1))))


class MnistEvaluator:
    """FID / classifier score / label accuracy against a fixed real reference.

    Args:
      test_images: uint8 [M, 28, 28, 1] real images (the test split), M >= 2 * n.
      n: samples per FID (reference and floor both use n).
      classifier: a :class:`MnistClassifier` (default: :func:`load_classifier`).
    """

    def __init__(self, test_images: np.ndarray, n: int = 5000, classifier: MnistClassifier | None = None,
                 test_labels: np.ndarray | None = None):
        if len(test_images) < 2 * n:
            raise ValueError(f"n={n} needs at least {2 * n} real images; got {len(test_images)}.")
        self.clf = classifier or load_classifier()
        self.n = n
        order = np.random.default_rng(0).permutation(len(test_images))
        real = np.asarray(test_images, np.float32)[order] / 255.0
        test_labels = None if test_labels is None else np.asarray(test_labels)[order]
        la, fa = self.clf.logits_and_features(real[:n])
        lb, fb = self.clf.logits_and_features(real[n:2 * n])
        self.ref_stats = gaussian_stats(fb)
        self.floor = frechet_distance(*gaussian_stats(fa), *self.ref_stats)
        self.real_score = classifier_score(softmax(la))
        self.real_label_acc = (float(np.mean(np.argmax(la, -1) == np.asarray(test_labels[:n])))
                               if test_labels is not None else None)

    def __call__(self, images01: np.ndarray, labels: np.ndarray | None = None, codes: np.ndarray | None = None) -> dict:
        """Metrics of generated images in [0, 1] ``[N, 28, 28, 1]`` (N = n for a comparable FID);
        ``labels [N]``: requested digits (label accuracy); ``codes [N]``: InfoGAN codes (purity)."""
        logits, feats = self.clf.logits_and_features(np.asarray(images01, np.float32))
        out = {"fid": frechet_distance(*gaussian_stats(feats), *self.ref_stats), "fid_floor": self.floor,
               "score": classifier_score(softmax(logits)), "score_real": self.real_score}
        if labels is not None:
            out["label_acc"] = float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))
        if codes is not None:
            out["code_purity"] = code_purity(np.asarray(codes), np.argmax(logits, -1))
        return out


def evaluate_generator(sample_fn: Callable, evaluator: MnistEvaluator, key=None, n: int | None = None) -> dict:
    """Draw ``n`` (default ``evaluator.n``) samples with ``sample_fn`` and score them.

    ``sample_fn(key, n) -> (images, labels, codes)``: images in [0, 1] ``[n, 28, 28, 1]``;
    ``labels`` ``int [n]`` the digits requested of a conditional generator (scored by label
    accuracy) or None; ``codes`` ``int [n]`` the categorical latent codes given to an
    unsupervised one (InfoGAN; scored by code purity) or None. The family builds it (e.g.
    the GAN family's ``gan.sampler(state, truncation)``); the metric knows no family.
    ``key`` defaults to ``PRNGKey(1234)``.
    """
    n = n or evaluator.n
    key = jax.random.PRNGKey(1234) if key is None else key
    images, labels, codes = sample_fn(key, n)
    return evaluator(np.asarray(images), None if labels is None else np.asarray(labels),
                     None if codes is None else np.asarray(codes))
