"""BLEU-2..5 and self-BLEU speed: jaxgen.eval.bleu (vectorised numpy) vs NLTK's sentence_bleu
(smoothing method1, Texygen's metric), on real COCO captions, Texygen's protocol (hypotheses
against the first 500 test captions; self-BLEU of 500 sentences).

    python benchmarks/seqgan_bleu.py --hyps 2000 --nltk-hyps 40
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402

from jaxgen.data.text import coco_dir, load_corpus  # noqa: E402
from jaxgen.eval.bleu import bleu, self_bleu, sentence_bleu_matrix  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hyps", type=int, default=2000)
    p.add_argument("--nltk-hyps", type=int, default=40, help="hypotheses NLTK scores (its time is per hypothesis)")
    a = p.parse_args()
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    train, test = load_corpus(coco_dir() / "image_coco.txt"), load_corpus(coco_dir() / "test_coco.txt")
    hyps, refs = train[: a.hyps], test[:500]
    print(_timing.header("numpy", "nltk"), "| load", _timing.load_average())
    ours = _timing.repeat(lambda: bleu(hyps, refs), repeats=3)
    ours_self = _timing.repeat(lambda: self_bleu(hyps, max_hyps=500), repeats=3)
    sm = SmoothingFunction().method1
    t = time.perf_counter()
    ref = np.array([[sentence_bleu(refs, h, tuple([1 / n] * n), smoothing_function=sm) for n in (2, 3, 4, 5)]
                    for h in hyps[: a.nltk_hyps]])
    nltk_s = (time.perf_counter() - t) / a.nltk_hyps  # per hypothesis, all four orders
    err = np.abs(sentence_bleu_matrix(hyps[: a.nltk_hyps], refs, 5)[:, 1:] - ref).max()
    rows = [["BLEU-2..5, 500 refs", a.hyps, ours.median, nltk_s * a.hyps, nltk_s * a.hyps / ours.median],
            ["self-BLEU-2..5, 500 sentences", 500, ours_self.median, nltk_s * 500, nltk_s * 500 / ours_self.median]]
    print(_timing.text_table(["metric", "hypotheses", "jaxgen s", "nltk s (extrapolated)", "speed-up"], rows))
    print(f"max |jaxgen - nltk| over {a.nltk_hyps} hypotheses x 4 orders: {err:.2e}")


if __name__ == "__main__":
    main()
