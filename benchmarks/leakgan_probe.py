"""A probe of LeakGAN's adversarial update on the oracle: one shared pre-training, then the
adversarial phase alone (no MLE re-training, so only the adversarial update moves G) under
several variants of the update, NLL-oracle every ``--eval-every`` rounds.

Variants (``--variants``, comma-separated):

* ``paper``: jaxgen's update (:func:`jaxgen.generative.leakgan.adversarial_loss`);
* ``worker_off`` / ``manager_off``: one of its two losses only;
* any variant name followed by ``@LR`` (e.g. ``paper@0.0015``): that adversarial Adam rate;
  and/or by ``+rtN``: N MLE re-training updates a round (default none);
* ``objective=code``: ``adv_objective="code"`` (the published code's batch-mean cosines).

    python benchmarks/leakgan_probe.py --pretrain-epochs 5 --rounds 30 --variants paper,worker_off,manager_off
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402

from jaxgen.core import optim  # noqa: E402
from jaxgen.data import text as D  # noqa: E402
from jaxgen.generative import leakgan as L  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--pretrain-d-updates", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--adv-d-updates", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--eval-n", type=int, default=2000)
    p.add_argument("--variants", default="paper,worker_off,manager_off")
    p.add_argument("--out", default="/tmp/leakgan_probe.json")
    return p.parse_args()


def loss_of(part: str, original):
    """``original`` (:func:`jaxgen.generative.leakgan.adversarial_loss`) with only the Manager's
    (``worker_off``) or only the Worker's (``manager_off``) term as the loss."""

    def loss(state, g, seqs, q):
        _, m = original(state, g, seqs, q)
        return m["manager_loss"] if part == "worker_off" else m["worker_loss"], m

    return loss


def main():
    a = parse()
    print(_timing.header("jax", "flax", "optax"), flush=True)
    oracle = D.load_oracle()
    data = D.oracle_data(oracle, length=20)
    cfg = L.LeakGANConfig(pretrain_epochs=a.pretrain_epochs, pretrain_d_per_step=0, pretrain_d_updates=a.pretrain_d_updates,
                          rounds=a.rounds, retrain_steps=0, adv_d_updates=a.adv_d_updates, d_emb_dim=64,
                          d_filters=(32,) * 8, d_widths=(1, 2, 3, 4, 5, 10, 15, 20))
    tr = L.make_trainer(cfg, {"train": data["train"]})
    ph = {p.name: p for p in tr.phases}
    state = tr.init(jax.random.PRNGKey(a.seed), None)
    nll = jax.jit(lambda s, k: D.oracle_nll(oracle, L.sample(s, k, a.eval_n)))
    t = time.perf_counter()
    for name, n in (("pretrain_d", a.pretrain_d_updates), ("pretrain", a.pretrain_epochs * cfg.steps_per_epoch(10000))):
        f = jax.jit(ph[name].step, donate_argnums=0)
        for _ in range(n):
            state, _ = f(state, tr.data)
        print(f"{name}: {n} steps, {time.perf_counter() - t:.0f}s, NLL-oracle {float(nll(state, jax.random.PRNGKey(7))):.3f}",
              flush=True)
    pre = state
    out = {"args": vars(a), "pretrained": float(nll(pre, jax.random.PRNGKey(7))), "variants": {}}
    original = L.adversarial_loss
    for variant in a.variants.split(","):
        variant_, _, retrain = variant.partition("+rt")
        name, _, lr = variant_.partition("@")
        s = jax.tree_util.tree_map(jnp.copy, pre)
        if retrain:
            s = s.replace(config=dataclasses.replace(s.config, retrain_steps=int(retrain)))
        if name.startswith("objective="):
            s = s.replace(config=dataclasses.replace(s.config, adv_objective=name.split("=")[1]))
            L.adversarial_loss = original
        else:
            L.adversarial_loss = original if name == "paper" else loss_of(name, original)
        if lr:
            s = s.replace(g_opt_adv=optim.set_hyperparams(s.g_opt_adv, {"learning_rate": float(lr)}))
        step = jax.jit(lambda s, d: L.adversarial_step(s, d))  # a fresh function: traced anew with this variant's loss
        curve, t = [], time.perf_counter()
        for r in range(1, a.rounds + 1):
            s, m = step(s, tr.data)
            if r % a.eval_every == 0 or r == a.rounds:
                v = float(nll(s, jax.random.PRNGKey(7)))
                m = {k: float(x) for k, x in m.items()}
                curve.append({"round": r, "nll_oracle": v, **m})
                print(f"  {variant} round {r}: NLL-oracle {v:.3f} "
                      + " ".join(f"{k} {x:.3g}" for k, x in m.items() if k in ("intrinsic", "intrinsic_pos",
                                                                             "worker_loss", "manager_loss", "reward")),
                      flush=True)
        out["variants"][variant] = {"curve": curve, "wall_s": time.perf_counter() - t}
        Path(a.out).write_text(json.dumps(out, indent=1))
    L.adversarial_loss = original
    print(_timing.text_table(["variant", *[f"r{c['round']}" for c in out["variants"][variant]["curve"]]],
                             [[v, *[c["nll_oracle"] for c in d["curve"]]] for v, d in out["variants"].items()]))
    print(f"after pre-training: {out['pretrained']:.3f}; load {_timing.load_average()}")


if __name__ == "__main__":
    main()
