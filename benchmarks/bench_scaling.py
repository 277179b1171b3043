"""Scaling curves: throughput against the number of seeds vmapped and (PPO) the number of envs.

    python benchmarks/bench_scaling.py                          # PPO, DQN, VAE; seeds 1..256; PPO envs 1..256
    python benchmarks/bench_scaling.py --algos ppo --seeds 1,2,4 --envs 4,16 --out /tmp/scaling

Each point is one program, timed as ``jaxgen bench`` times it (:func:`jaxgen.bench.measure`:
the whole run of all seeds vmapped as ONE jitted program, compile apart, median of
``--repeats`` calls after an untimed one). Units: env steps (RL) and training samples (VAE),
all seeds together. The runs are short (``--ppo-steps``, ``--dqn-steps``, ``--vae-steps``)
so that the 256-seed points fit a few minutes on a 2-core CPU: throughput, not learning, is
measured. Writes ``scaling.md`` (the table), ``scaling.json`` and ``scaling.png`` (units/s
against seeds, log-log, and PPO's units/s against num_envs) under ``--out``.

Columns: ``per_s`` units/s of all seeds; ``vs_1`` = per_s / the first point's per_s;
``efficiency`` = vs_1 / (n / n_first) (1.0: perfect scaling; falls as the cores saturate).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from jaxgen import bench, registry  # noqa: E402
from jaxgen.core import config as C  # noqa: E402
from jaxgen.core import timing as T  # noqa: E402

HEADERS = ["algo", "axis", "n", "compile s", "run s", "spread", "units/s", "vs_1", "efficiency"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algos", default="ppo,dqn,vae", help="comma-separated: ppo, dqn, vae")
    p.add_argument("--seeds", default="1,2,4,8,16,32,64,128,256")
    p.add_argument("--envs", default="1,4,16,64,256", help="PPO num_envs points (1 seed each); empty: none")
    p.add_argument("--ppo-steps", type=int, default=65_536, help="PPO env steps per seed (multiple of envs x 128)")
    p.add_argument("--dqn-steps", type=int, default=10_000, help="DQN env steps per seed")
    p.add_argument("--vae-epochs", type=int, default=1, help="VAE (MLP, MNIST sample) epochs per seed")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--devices", type=int, default=1, help="XLA CPU devices (e.g. 2: one per core); a point whose "
                                                      "seeds divide over them splits its seeds over them")
    p.add_argument("--out", default=str(HERE / "results" / "scaling"))
    a = p.parse_args(argv)
    a.algos = [s for s in a.algos.split(",") if s]
    a.seeds = [int(s) for s in a.seeds.split(",") if s]
    a.envs = [int(s) for s in a.envs.split(",") if s]
    return a


def config(name: str, args, **over):
    algo = registry.get(name)
    # DQN learns from its 1,000th env step here (its default, 10,000, would leave a 10k-step run without a
    # gradient step: one seed then skips learning (lax.cond), vmapped seeds compute it and discard it)
    base = {"ppo": {"total_steps": args.ppo_steps}, "dqn": {"total_steps": args.dqn_steps, "learning_starts": 1000},
            "vae": {"arch": "mlp", "epochs": args.vae_epochs}}[name]
    return algo, algo.validate(C.replace(algo.preset(), {**algo.fixed, **base, **over}))


def curve(name: str, axis: str, points, args, log) -> list[list]:
    """Rows of one curve: seeds (``axis="seeds"``) or PPO num_envs (``axis="num_envs"``, 1 seed)."""
    rows, first = [], None
    for n in points:
        if axis == "seeds":
            algo, cfg = config(name, args)
            seeds = n
        else:
            rollout = registry.get(name).preset().rollout_len
            algo, cfg = config(name, args, num_envs=n, total_steps=max(args.ppo_steps, n * rollout))
            seeds = 1
        trainer, per_step, unit = algo.fam.bench_trainer(algo, cfg)
        m = bench.measure(trainer, seeds, args.repeats)
        per_s = trainer.num_steps * per_step * seeds / m["run_s"]
        first = first or (n, per_s)
        vs_1 = per_s / first[1]
        rows.append([name, axis, n, m["compile_s"], m["run_s"], f"{100 * m['spread']:.0f} %", per_s, vs_1,
                     vs_1 / (n / first[0])])
        log(f"  {name} {axis}={n}: compile {m['compile_s']:.1f}s run {m['run_s']:.3f}s {per_s:,.0f} {unit}/s "
            f"(x{vs_1:.2f}, load {T.load_average()})")
    return rows


def plot(rows: list[list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = [a for a in ("seeds", "num_envs") if any(r[1] == a for r in rows)]
    fig, ax = plt.subplots(1, len(axes), figsize=(5.5 * len(axes), 4), squeeze=False)
    for i, axis in enumerate(axes):
        for name in dict.fromkeys(r[0] for r in rows if r[1] == axis):
            pts = [(r[2], r[6]) for r in rows if r[0] == name and r[1] == axis]
            ax[0, i].plot(*zip(*pts), "o-", label=name + (" (samples/s)" if name == "vae" else " (env steps/s)"))
        ax[0, i].set(xscale="log", yscale="log", xlabel=axis + (" vmapped" if axis == "seeds" else " (1 seed, PPO)"),
                     ylabel="units/s, all seeds")
        ax[0, i].grid(True, which="both", alpha=0.3)
        ax[0, i].legend()
    fig.suptitle(f"jaxgen throughput scaling ({T.cpu_model()}, {T.core_count()} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    import jax

    jax.config.update("jax_num_cpu_devices", args.devices)  # before JAX's first use of a device
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = T.header("jax", "jaxlib", "flax") + f" | {args.devices} XLA CPU device(s)"
    print(head, flush=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    rows = []
    for name in args.algos:
        rows += curve(name, "seeds", args.seeds, args, log)
    if "ppo" in args.algos and args.envs:
        rows += curve("ppo", "num_envs", args.envs, args, log)
    md = T.markdown_table(HEADERS, rows)
    print(T.text_table(HEADERS, rows))
    (out / "scaling.md").write_text(f"{head}\n\n`python benchmarks/bench_scaling.py {' '.join(sys.argv[1:])}`\n\n{md}\n\n"
                                    f"Load average at the end: {T.load_average()}.\n")
    (out / "scaling.json").write_text(json.dumps({"header": head, "headers": HEADERS, "rows": rows}, indent=1, default=float))
    plot(rows, out / "scaling.png")
    print(f"wrote {out / 'scaling.md'}, scaling.json, scaling.png; load average at the end: {T.load_average()}")


if __name__ == "__main__":
    main()
