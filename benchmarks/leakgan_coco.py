"""MLE vs SeqGAN vs LeakGAN on the Image-COCO captions: BLEU-2..5 against all the test captions
(the protocol of Texygen's published tables, :mod:`jaxgen.generative.seqgan_fit`), against the
first 500 (Texygen's "fast" mode) and self-BLEU, beside Texygen's rows, and decoded samples of
each.

Every arm: ``--pretrain-epochs`` MLE (LeakGAN: interleaved) epochs, then ``--rounds`` rounds
(MLE: as many more MLE epochs, ``mle_only``); one seed each (``--seed``).

    python benchmarks/leakgan_coco.py --limit 2000 --out benchmarks/notes/leakgan/coco.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402

from jaxgen.generative import leakgan as L  # noqa: E402
from jaxgen.generative import seqgan as S  # noqa: E402
from jaxgen.generative import seqgan_fit  # noqa: E402

TEXYGEN = {"MLE": (0.731, 0.497, 0.305, 0.189), "SeqGAN": (0.745, 0.498, 0.294, 0.180), "LeakGAN": (0.746, 0.528, 0.355, 0.230)}


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=None, help="first N captions of each split")
    p.add_argument("--seq-len", type=int, default=0, help="0: the longest caption + 1")
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--pretrain-d-updates", type=int, default=100)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--retrain-steps", type=int, default=5)
    p.add_argument("--adv-d-updates", type=int, default=5)
    p.add_argument("--n-rollouts", type=int, default=4)
    p.add_argument("--d-emb-dim", type=int, default=32)
    p.add_argument("--d-widths", default="1,2,3,4,5,10,15,20")
    p.add_argument("--d-filters", default="16,16,16,16,16,16,16,16")
    p.add_argument("--final-n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", default="mle,seqgan,leakgan")
    p.add_argument("--out", default="benchmarks/notes/leakgan/coco.json")
    return p.parse_args()


def main():
    a = parse()
    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    print(_timing.header("jax", "flax", "optax"), flush=True)
    data = seqgan_fit.load_task("coco", limit=a.limit, max_len=a.seq_len)
    print(f"coco: {data['train'].shape} train, vocabulary {len(data['vocab'])}", flush=True)
    common = dict(task="coco", pretrain_d_updates=a.pretrain_d_updates, rounds=a.rounds, adv_d_updates=a.adv_d_updates,
                  n_rollouts=a.n_rollouts, d_emb_dim=a.d_emb_dim, d_widths=ints(a.d_widths), d_filters=ints(a.d_filters))
    configs = {"MLE": S.SeqGANConfig(pretrain_g_epochs=a.pretrain_epochs, mle_only=True, **common),
               "SeqGAN": S.SeqGANConfig(pretrain_g_epochs=a.pretrain_epochs, **common),
               "LeakGAN": L.LeakGANConfig(pretrain_epochs=a.pretrain_epochs, retrain_steps=a.retrain_steps, **common)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, cfg in configs.items():
        if name.lower() not in a.arms.split(","):
            continue
        t = time.perf_counter()
        res = seqgan_fit.fit(cfg, data, seed=a.seed, run_dir=out.parent / f"coco-{name.lower()}", eval_n=200,
                             final_n=a.final_n, eval_every=max(1, a.rounds), progress=False, mode="loop")
        samples = (Path(res["run_dir"]) / "samples.txt").read_text().splitlines()[:8]
        results[name] = {"eval": res["eval"], "wall_s": time.perf_counter() - t, "samples": samples,
                         "load": _timing.load_average()}
        print(name, results[name], flush=True)
        out.write_text(json.dumps({"args": vars(a), "results": results}, indent=1, default=str))
    keys = [f"{kind}bleu{n}" for kind in ("", "fast_", "self_") for n in (2, 3, 4, 5)]
    # the yardstick: real training captions scored as if generated (what a perfect G would reach)
    real = seqgan_fit.text_metrics(data["vocab"].decode(data["train"][: a.final_n]), data["test_text"])
    results_real = {"real training captions": {"eval": real}}
    print("real training captions:", {k: round(v, 4) for k, v in real.items()}, flush=True)
    out.write_text(json.dumps({"args": vars(a), "results": results, "real_captions": real}, indent=1, default=str))
    rows = [[n, *[r["eval"].get(k, "") for k in keys]] for n, r in {**results, **results_real}.items()]
    rows += [[f"{n} (Texygen)", *v, *[""] * 8] for n, v in TEXYGEN.items()]
    print(_timing.text_table(["arm", *[f"{kind}BLEU-{n}" for kind in ("", "fast ", "self ") for n in (2, 3, 4, 5)]], rows))
    for n, r in results.items():
        print(f"--- {n}")
        print("\n".join(r["samples"]))


if __name__ == "__main__":
    main()
