"""SeqGAN vs MLE on the synthetic oracle (Yu et al. 2017), seeds vmapped in one compile.

Both arms share the MLE pre-training (``--pretrain-epochs``, all seeds in one vmapped
program); then the state is copied: the MLE arm trains ``--rounds`` more MLE epochs, the
SeqGAN arm pre-trains D (``--pretrain-d-updates``) and runs ``--rounds`` adversarial rounds,
so both train G for the same number of epochs. NLL-oracle (``--eval-n`` samples scored by the
oracle) and NLL-test (G's NLL of 2,000 held-out oracle sequences) are logged every
``--eval-every`` epochs / rounds, and NLL-oracle on 10,000 samples at the end (the paper's).

Printed: the table of final NLL-oracle per arm (mean and per seed), wall time of every phase
with compile apart, one adversarial round, tokens/s of sampling and of rollouts; written
(``--out``): a JSON with the curves and timings, and ``<name>_curves.png`` beside it.

    python benchmarks/seqgan_oracle.py --seeds 3 --out benchmarks/notes/seqgan/oracle.json

The paper's settings are the defaults of :class:`jaxgen.generative.seqgan.SeqGANConfig`
(120 MLE epochs, 46,800 D pre-training updates, 200 rounds of 1 PG step + 4,680 D updates,
16 rollouts, the 12-width CNN); ``--paper`` uses them all.
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

from jaxgen.core import config as C  # noqa: E402
from jaxgen.core.sweep import vmap_trainer  # noqa: E402
from jaxgen.data import text as D  # noqa: E402
from jaxgen.generative import seqgan as S  # noqa: E402
from jaxgen.nets import text as T  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-offset", type=int, default=0, help="the seeds are seed-offset .. seed-offset + seeds - 1")
    p.add_argument("--pg-learning-rate", type=float, default=0.0, help="G's Adam rate for the policy gradient (0: 0.01, G's MLE rate)")
    p.add_argument("--pretrain-epochs", type=int, default=120)
    p.add_argument("--pretrain-d-updates", type=int, default=46800)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--adv-d-updates", type=int, default=4680)
    p.add_argument("--n-rollouts", type=int, default=16)
    p.add_argument("--d-widths", default=",".join(map(str, T.PAPER_WIDTHS)))
    p.add_argument("--d-filters", default=",".join(map(str, T.PAPER_FILTERS)))
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--eval-n", type=int, default=2000)
    p.add_argument("--final-n", type=int, default=10000)
    p.add_argument("--out", default="benchmarks/notes/seqgan/oracle.json", help="the JSON file, or a folder to write oracle.json in")
    p.add_argument("--no-mle-arm", action="store_true",
                   help="skip the MLE arm's continued epochs (its plateau, ~9.05, is known): the SeqGAN arm alone")
    return p.parse_args()


def main():
    a = parse()
    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    cfg = S.SeqGANConfig(pretrain_g_epochs=a.pretrain_epochs, pretrain_d_updates=a.pretrain_d_updates, rounds=a.rounds,
                         adv_d_updates=a.adv_d_updates, n_rollouts=a.n_rollouts, d_widths=ints(a.d_widths),
                         d_filters=ints(a.d_filters), pg_learning_rate=a.pg_learning_rate)
    print(_timing.header("jax", "flax", "optax"))
    print("load average at start:", _timing.load_average())
    print("config:", {k: v for k, v in C.to_dict(cfg).items()})
    out = Path(a.out)
    if out.is_dir() or not out.suffix:  # a folder: the JSON (and its curves PNG) go inside it
        out = out / "oracle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    oracle = D.load_oracle()
    t0 = time.perf_counter()
    data = D.oracle_data(oracle)
    print(f"oracle data: {data['train'].shape} train, {data['test'].shape} test in {time.perf_counter() - t0:.1f}s")
    trainer = S.make_trainer(cfg, data)
    keys = np.stack([np.asarray(jax.random.PRNGKey(s)) for s in range(a.seed_offset, a.seed_offset + a.seeds)])
    hp = {k: np.repeat(np.asarray(v)[None], a.seeds) for k, v in C.hparams(cfg).items()}
    vt = vmap_trainer(trainer, keys, hp)
    phases = {p.name: p for p in vt.phases}
    d = vt.data
    spe = cfg.steps_per_epoch(int(data["train"].shape[0]))

    def vjit(step):
        return jax.jit(step, donate_argnums=0)

    steps = {name: vjit(p.step) for name, p in phases.items()}
    mle_step = vjit(jax.vmap(S.mle_step, in_axes=(0, None)))

    @jax.jit
    def evaluate(state, key, test):
        """(NLL-oracle [R], NLL-test [R]) of every run."""
        def one(s, k):
            x = S.sample(s, k, a.eval_n)
            return D.oracle_nll(oracle, x), S.nll_test(s, test)
        return jax.vmap(one, in_axes=(0, None))(state, key)

    @jax.jit
    def final_eval(state, key):
        return jax.vmap(lambda s: D.oracle_nll(oracle, S.sample(s, key, a.final_n)))(state)

    test = jnp.asarray(data["test"])
    timings, curves = {}, {"mle": [], "seqgan": []}

    def log(arm, epoch, state, extra=None):
        no, nt = jax.device_get(evaluate(state, jax.random.PRNGKey(1000 + epoch), test))
        row = {"epoch": epoch, "nll_oracle": no.tolist(), "nll_test": nt.tolist(), **(extra or {})}
        curves[arm].append(row)
        print(f"  {arm:6s} epoch {epoch:4d}: nll-oracle {np.mean(no):.3f} ({', '.join(f'{x:.3f}' for x in no)}), "
              f"nll-test {np.mean(nt):.3f}  [{time.strftime('%H:%M:%S')}, load {_timing.load_average()}]", flush=True)

    def run(name, step, state, n, on_epoch=None, per_epoch=1):
        """``n`` steps of ``step``; compile time apart (the first call); returns the state."""
        t = time.perf_counter()
        state, m = step(state, d)
        jax.block_until_ready(state)
        first = time.perf_counter() - t
        t = time.perf_counter()
        done = 1
        while done < n:
            state, m = step(state, d)
            done += 1
            if on_epoch is not None and done % per_epoch == 0:
                jax.block_until_ready(state)
                hold = time.perf_counter()
                on_epoch(done // per_epoch, state, m)
                t += time.perf_counter() - hold  # evaluation time is not run time
        jax.block_until_ready(state)
        run_s = time.perf_counter() - t
        per = run_s / max(1, n - 1)
        timings[name] = {"steps": n, "first_call_s": first, "run_s": run_s + per, "s_per_step": per,
                         "compile_s": max(0.0, first - per)}
        print(f"{name}: {n} steps, run {run_s + per:.1f}s ({per * 1e3:.1f} ms/step), compile ~{max(0.0, first - per):.1f}s",
              flush=True)
        return state, m

    state = vt.init(None)
    t_all = time.perf_counter()
    log("mle", 0, state)
    ev = lambda arm, off=0: (lambda e, s, m: log(arm, off + e, s) if (off + e) % a.eval_every == 0 else None)  # noqa: E731
    state, _ = run("pretrain_g", steps["pretrain_g"], state, cfg.pretrain_g_epochs * spe, ev("mle"), spe)
    for arm in ("seqgan",):
        curves[arm].append(dict(curves["mle"][-1]))
    pre = jax.tree_util.tree_map(jnp.copy, state)
    # the SeqGAN arm
    sg, _ = run("pretrain_d", steps["pretrain_d"], jax.tree_util.tree_map(jnp.copy, pre), cfg.pretrain_d_updates)
    rounds_log = []

    def on_round(r, s, m):
        rounds_log.append({k: np.asarray(v).tolist() for k, v in jax.device_get(m).items()})
        if r % a.eval_every == 0:
            log("seqgan", cfg.pretrain_g_epochs + r, s, {"reward": float(np.mean(m["reward"]))})

    sg, _ = run("adversarial", steps["adversarial"], sg, cfg.rounds, on_round, 1)
    seqgan_time = time.perf_counter() - t_all
    # the MLE arm, the same total epochs of G
    arms = (("seqgan", sg),)
    if not a.no_mle_arm:
        mle, _ = run("mle_continue", mle_step, pre, cfg.rounds * spe, ev("mle", cfg.pretrain_g_epochs), spe)
        arms += (("mle", mle),)
    fin = {arm: jax.device_get(final_eval(s, jax.random.PRNGKey(4242))).tolist() for arm, s in arms}

    # speed of sampling and rollouts (one seed's generator, this process)
    one = jax.tree_util.tree_map(lambda x: x[0], sg)
    samp = jax.jit(lambda k: S.sample(one, k, 10000))
    st = _timing.repeat(lambda: jax.block_until_ready(samp(jax.random.PRNGKey(3))), repeats=3)
    seqs = samp(jax.random.PRNGKey(5))[: cfg.batch_size]
    roll = jax.jit(lambda k: T.rollouts(one.rollout, k, seqs, cfg.n_rollouts, cfg.start_token))
    rt = _timing.repeat(lambda: jax.block_until_ready(roll(jax.random.PRNGKey(4))), repeats=3)
    L = cfg.seq_len
    roll_tokens = (L // 2) * L * cfg.n_rollouts * cfg.batch_size  # computed: ceil((L-1)/2) rows of L steps (paired)
    speed = {"sample_tokens_per_s": 10000 * L / st.median, "rollout_tokens_per_s": roll_tokens / rt.median,
             "rollout_useful_tokens_per_s": cfg.n_rollouts * cfg.batch_size * L * (L - 1) / 2 / rt.median}
    result = {"config": C.to_dict(cfg), "seeds": a.seeds, "final_nll_oracle": fin,
              "final_mean": {k: float(np.mean(v)) for k, v in fin.items()}, "timings": timings,
              "seqgan_wall_s": seqgan_time, "speed": speed, "curves": curves, "rounds": rounds_log,
              "load_average_end": _timing.load_average(), "machine": _timing.header()}
    print()  # the figures first: an unwritable --out must not lose an hour's result
    print(_timing.text_table(["arm", "G epochs", "NLL-oracle (10k) mean", "per seed"],
                             [[k, cfg.pretrain_g_epochs + cfg.rounds, np.mean(v), ", ".join(f"{x:.3f}" for x in v)]
                              for k, v in fin.items()]), flush=True)
    try:
        out.write_text(json.dumps(result, indent=1))
    except OSError as e:
        print(f"--out={str(out)!r} cannot be written ({e.strerror}); the result above is not saved.")
    print("published: MLE 9.04, SeqGAN 8.74, the oracle's own samples 5.75")
    print(_timing.text_table(["phase", "steps", "run s", "ms/step", "compile s"],
                             [[k, v["steps"], v["run_s"], v["s_per_step"] * 1e3, v["compile_s"]] for k, v in timings.items()]))
    print({k: f"{v:,.0f}" for k, v in speed.items()})
    print("load average at end:", _timing.load_average())
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for arm, rows in curves.items():
            e = [r["epoch"] for r in rows]
            for i, key in enumerate(("nll_oracle", "nll_test")):
                y = np.array([r[key] for r in rows])
                ax[i].plot(e, y.mean(1), label=f"{arm} (mean of {a.seeds})")
                ax[i].fill_between(e, y.min(1), y.max(1), alpha=0.2)
                ax[i].set_title(key.replace("_", "-")), ax[i].set_xlabel("epoch (G)")
        ax[0].axhline(8.74, ls=":", c="k", label="SeqGAN paper 8.74")
        ax[0].legend()
        fig.tight_layout()
        fig.savefig(out.with_name(f"{out.stem}_curves.png"), dpi=90)
    except Exception as e:  # pragma: no cover - plotting is optional
        print("no plot:", e)


if __name__ == "__main__":
    main()
