"""LeakGAN vs SeqGAN vs MLE on the synthetic oracle (length 20 or 40), seeds vmapped in one compile.

Arms (every arm's seeds in one vmapped program per phase, compile time measured apart):

* MLE: the LSTM of SeqGAN, ``--pretrain-epochs`` MLE epochs, then as many more MLE minibatch
  updates as LeakGAN's rounds make G updates (``rounds x (1 + retrain_steps)``);
* SeqGAN: the same MLE pre-training (shared with the MLE arm), ``--pretrain-d-updates`` D
  updates, ``--rounds`` rounds (1 policy-gradient step, ``--n-rollouts`` per prefix, ``--adv-d-updates`` D);
* LeakGAN: ``--pretrain-d-updates`` D updates, ``--pretrain-epochs`` interleaved epochs (Worker
  MLE + Manager goal loss, ``--pretrain-d-per-step`` D updates a step), ``--rounds`` rounds
  (1 adversarial step with rollouts every c tokens, ``--retrain-steps`` MLE updates, ``--adv-d-updates`` D).

Printed: NLL-oracle of ``--final-n`` samples per arm (mean and per seed; also after pre-training;
also of samples drawn at temperature 2/3, as the published LeakGAN code draws its evaluation
samples: logits x 1.5),
wall time of every phase with compile apart, per adversarial round, tokens/s of sampling; a JSON
with all of it (``--out``).

    python benchmarks/leakgan_oracle.py --seq-len 20 --seeds 3 --out benchmarks/notes/leakgan/oracle20.json
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402

from jaxgen.core import config as C  # noqa: E402
from jaxgen.core.sweep import vmap_trainer  # noqa: E402
from jaxgen.data import text as D  # noqa: E402
from jaxgen.generative import leakgan as L  # noqa: E402
from jaxgen.generative import seqgan as S  # noqa: E402


COLD = 1 / 1.5  # the published LeakGAN code samples its evaluation sequences with logits x 1.5


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-len", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pretrain-epochs", type=int, default=1)
    p.add_argument("--pretrain-d-updates", type=int, default=100)
    p.add_argument("--pretrain-d-per-step", type=int, default=0)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--retrain-steps", type=int, default=5)
    p.add_argument("--adv-d-updates", type=int, default=5)
    p.add_argument("--n-rollouts", type=int, default=4)
    p.add_argument("--seqgan-rollouts", type=int, default=None,
                   help="SeqGAN's completions per prefix (default: --n-rollouts; its paper: 16, LeakGAN's: 4)")
    p.add_argument("--leakgan-adv-lr", type=float, default=0.0,
                   help="LeakGAN's adversarial Adam rate (0: its G rate, 0.01; the published code: 0.0015 at length 20)")
    p.add_argument("--adv-objective", default="paper",
                   help="LeakGAN's adv_objective; several (comma-separated): one adversarial phase each, from one pre-training")
    p.add_argument("--eval-rounds", default="", help="LeakGAN: also NLL-oracle after these rounds (comma-separated)")
    p.add_argument("--d-emb-dim", type=int, default=32)
    p.add_argument("--d-widths", default="1,2,3,4,5,10,15,20")
    p.add_argument("--d-filters", default="16,16,16,16,16,16,16,16")
    p.add_argument("--final-n", type=int, default=2000)
    p.add_argument("--limit", type=int, default=None, help="train on the first N of the 10,000 oracle sequences")
    p.add_argument("--arms", default="mle,seqgan,leakgan")
    p.add_argument("--out", default="benchmarks/notes/leakgan/oracle20.json")
    return p.parse_args()


def main():
    a = parse()
    for objective in a.adv_objective.split(","):
        if objective not in L.OBJECTIVES:
            raise SystemExit(f"--adv-objective {objective!r} is not an objective; accepted: {', '.join(L.OBJECTIVES)}.")
    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    common = dict(seq_len=a.seq_len, pretrain_d_updates=a.pretrain_d_updates, rounds=a.rounds,
                  adv_d_updates=a.adv_d_updates, d_emb_dim=a.d_emb_dim,
                  d_widths=ints(a.d_widths), d_filters=ints(a.d_filters))
    scfg = S.SeqGANConfig(pretrain_g_epochs=a.pretrain_epochs, n_rollouts=a.seqgan_rollouts or a.n_rollouts, **common)
    lcfg = L.LeakGANConfig(pretrain_epochs=a.pretrain_epochs, pretrain_d_per_step=a.pretrain_d_per_step,
                           retrain_steps=a.retrain_steps, n_rollouts=a.n_rollouts, adv_learning_rate=a.leakgan_adv_lr,
                           adv_objective=a.adv_objective.split(",")[0], **common)
    arms = a.arms.split(",")
    print(_timing.header("jax", "flax", "optax"))
    print("load average at start:", _timing.load_average())
    print("SeqGAN/MLE config:", C.to_dict(scfg))
    print("LeakGAN config:", C.to_dict(lcfg))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    oracle = D.load_oracle()
    data = D.oracle_data(oracle, length=a.seq_len)
    data = {"train": data["train"][: a.limit], "test": data["test"]}
    print(f"oracle data: {data['train'].shape} train; oracle's NLL of its own test set: "
          f"{float(D.oracle_nll(oracle, jnp.asarray(data['test']))):.3f}", flush=True)
    keys = np.stack([np.asarray(jax.random.PRNGKey(s)) for s in range(a.seeds)])
    spe = scfg.steps_per_epoch(int(data["train"].shape[0]))
    timings, final, wall = {}, {}, {}

    def vtrainer(mod, cfg):
        tr = mod.make_trainer(cfg, data)
        hp = {k: np.repeat(np.asarray(v)[None], a.seeds) for k, v in C.hparams(cfg).items()}
        return vmap_trainer(tr, keys, hp)

    def run(name, step, state, d, n):
        """``n`` calls of the jitted vmapped ``step``; the first call's extra time is compile."""
        f = jax.jit(step, donate_argnums=0)
        t = time.perf_counter()
        state, _ = f(state, d)
        jax.block_until_ready(state)
        first = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(n - 1):
            state, _ = f(state, d)
        jax.block_until_ready(state)
        run_s = time.perf_counter() - t
        per = run_s / max(1, n - 1) if n > 1 else first
        timings[name] = {"steps": n, "run_s": run_s + per, "s_per_step": per, "compile_s": max(0.0, first - per)}
        print(f"{name}: {n} steps, run {run_s + per:.1f}s ({per * 1e3:.0f} ms/step), compile ~{max(0.0, first - per):.1f}s "
              f"[{time.strftime('%H:%M:%S')}, load {_timing.load_average()}]", flush=True)
        return state

    @functools.cache
    def nll_program(mod):
        """One jitted evaluation per module (temperature traced): reports do not recompile it."""
        return jax.jit(jax.vmap(lambda s, key, t: D.oracle_nll(oracle, mod.sample(s, key, a.final_n, t)),
                                in_axes=(0, None, None)))

    def nll_oracle(mod, state, key, temperature=1.0):
        return jax.device_get(nll_program(mod)(state, key, jnp.float32(temperature))).tolist()

    def save():
        result = {"args": vars(a), "seqgan_config": C.to_dict(scfg), "leakgan_config": C.to_dict(lcfg), "seeds": a.seeds,
                  "nll_oracle": final, "timings": timings, "wall_s_compile_included": wall,
                  "load_average_end": _timing.load_average(), "machine": _timing.header()}
        out.write_text(json.dumps(result, indent=1, default=str))

    def report(arm, tag, mod, state):
        v = nll_oracle(mod, state, jax.random.PRNGKey(4242))
        cold = nll_oracle(mod, state, jax.random.PRNGKey(4242), COLD)
        final.setdefault(arm, {})[tag] = v
        final[arm][f"{tag} T=2/3"] = cold
        print(f"  {arm} {tag}: NLL-oracle {np.mean(v):.3f} ({', '.join(f'{x:.3f}' for x in v)}); "
              f"sampled at temperature 2/3: {np.mean(cold):.3f}", flush=True)
        save()

    if "mle" in arms or "seqgan" in arms:
        t0 = time.perf_counter()
        vt = vtrainer(S, scfg)
        ph = {p.name: p for p in vt.phases}
        st = run("seqgan/pretrain_g", ph["pretrain_g"].step, vt.init(None), vt.data, a.pretrain_epochs * spe)
        report("mle", "pretrained", S, st)
        pre = jax.tree_util.tree_map(jnp.copy, st)
        shared = time.perf_counter() - t0
        if "seqgan" in arms:
            t1 = time.perf_counter()
            sg = run("seqgan/pretrain_d", ph["pretrain_d"].step, jax.tree_util.tree_map(jnp.copy, pre), vt.data,
                     a.pretrain_d_updates)
            sg = run("seqgan/adversarial round", ph["adversarial"].step, sg, vt.data, a.rounds)
            wall["seqgan"] = shared + time.perf_counter() - t1
            report("seqgan", "final", S, sg)
        if "mle" in arms:
            t1 = time.perf_counter()
            mle = run("mle/continued", jax.vmap(S.mle_step, in_axes=(0, None)), pre, vt.data,
                      a.rounds * (1 + a.retrain_steps))
            wall["mle"] = shared + time.perf_counter() - t1
            report("mle", "final", S, mle)
    if "leakgan" in arms:
        t0 = time.perf_counter()
        vt = vtrainer(L, lcfg)
        ph = {p.name: p for p in vt.phases}
        st = vt.init(None)
        if a.pretrain_d_updates:
            st = run("leakgan/pretrain_d", ph["pretrain_d"].step, st, vt.data, a.pretrain_d_updates)
        st = run("leakgan/pretrain", ph["pretrain"].step, st, vt.data, a.pretrain_epochs * spe)
        t_eval = time.perf_counter()
        report("leakgan", "pretrained", L, st)
        t_eval = time.perf_counter() - t_eval
        pre, t_pre = st, time.perf_counter() - t0 - t_eval
        for i, objective in enumerate(a.adv_objective.split(",")):
            arm, t0, t_eval = "leakgan" + (f"-{objective}" if i else ""), time.perf_counter(), 0.0
            st = pre if i == len(a.adv_objective.split(",")) - 1 else jax.tree_util.tree_map(jnp.copy, pre)
            st = st.replace(config=dataclasses.replace(st.config, adv_objective=objective))
            if i:
                final[arm] = {k: v for k, v in final["leakgan"].items() if k.startswith("pretrained")}
            done = 0
            for r in sorted({int(x) for x in a.eval_rounds.split(",") if x and 0 < int(x) < a.rounds} | {a.rounds}):
                name = f"{arm}/adversarial round" + (f"s {done + 1}-{r}" if done else "")
                st = run(name, ph["adversarial"].step, st, vt.data, r - done)
                done = r
                if r < a.rounds:
                    t = time.perf_counter()
                    report(arm, f"round {r}", L, st)
                    t_eval += time.perf_counter() - t
            wall[arm] = t_pre + time.perf_counter() - t0 - t_eval
            report(arm, "final", L, st)
        one = jax.tree_util.tree_map(lambda x: x[0], st)
        samp = jax.jit(lambda k: L.sample(one, k, 2000))
        lt = _timing.repeat(lambda: jax.block_until_ready(samp(jax.random.PRNGKey(3))), repeats=3)
        timings["leakgan/sample 2000"] = {"tokens_per_s": 2000 * a.seq_len / lt.median}
    if "seqgan" in arms:
        one = jax.tree_util.tree_map(lambda x: x[0], sg)
        samp = jax.jit(lambda k: S.sample(one, k, 2000))
        stt = _timing.repeat(lambda: jax.block_until_ready(samp(jax.random.PRNGKey(3))), repeats=3)
        timings["seqgan/sample 2000"] = {"tokens_per_s": 2000 * a.seq_len / stt.median}
    save()
    print()
    rows = [[arm, np.mean(v["final"]), ", ".join(f"{x:.3f}" for x in v["final"]),
             np.mean(v["pretrained"]) if "pretrained" in v else "", np.mean(v["final T=2/3"]), wall.get(arm, "")]
            for arm, v in final.items() if "final" in v]
    print(_timing.text_table(["arm", f"NLL-oracle ({a.final_n}) mean", "per seed", "after pre-training",
                              "sampled at T=2/3", "arm wall s"], rows))
    print("published (LeakGAN paper): len 20: MLE 9.04, SeqGAN 8.74, LeakGAN 7.04; len 40: 10.41 / 10.31 / 7.19")
    print(_timing.text_table(["phase (all seeds, one program)", "steps", "run s", "ms/step", "compile s"],
                             [[k, v["steps"], v["run_s"], v["s_per_step"] * 1e3, v["compile_s"]]
                              for k, v in timings.items() if "steps" in v]))
    print({k: f"{v['tokens_per_s']:,.0f} tokens/s" for k, v in timings.items() if "tokens_per_s" in v})
    print("load average at end:", _timing.load_average())


if __name__ == "__main__":
    main()
