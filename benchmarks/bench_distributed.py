"""Overhead of the multi-process path: one sweep (one compile) run as

* 1 process x 2 CPU devices (the single-process sharded sweep of today),
* 2 processes x 1 CPU device (jax.distributed on 127.0.0.1, gloo collectives),
* 2 processes x 2 CPU devices,

each a fresh launch; per launch the sweep runs ``--repeats + 1`` times in the same processes
(the first pays the compile; the others reuse it) and the table gives compile time apart from
run time (median of the repeats) and env steps/s over all 64 runs. On a 2-core machine the
distributed path cannot be faster: the point is how much slower it is.

The sweep is an MLP VAE on 2000 bundled MNIST digits (``--algo vae``, the default: 16 seeds x
2 learning rates) or PPO CartPole (``--algo ppo``, 64 seeds). The PPO sweep over 2 CPU devices
of one process used to never return (jax 0.10.2: batched LAPACK QR of the vmapped orthogonal
init deadlocking XLA's pool; fixed by jaxgen.nets.init, benchmarks/notes/distributed.md).

    python benchmarks/bench_distributed.py                 # the table (and a Markdown copy)
    python benchmarks/bench_distributed.py --algo ppo --seeds 64 --total-steps 10240 --repeats 2
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def worker(args) -> None:
    """One process: the sweep, ``repeats + 1`` times; process 0 prints one JSON line."""
    import time

    from jaxgen.core import distributed

    if os.environ.get("JAX_NUM_PROCESSES"):
        distributed.initialize(timeout_s=60)
    import dataclasses

    import jax
    import numpy as np

    from jaxgen.core.sweep import sweep

    grid = {}
    if args.algo == "ppo":
        from jaxgen.rl import ppo

        cfg = ppo.validate(dataclasses.replace(ppo.PPOConfig(), total_steps=args.total_steps))
        tr, per_step, metric = ppo.make_trainer(cfg), cfg.batch_size, "episode_return"
    else:
        from jaxgen.data.mnist import load_mnist
        from jaxgen.generative import autoencoder as ae

        images = np.asarray(load_mnist("train", "bundled").images)[np.random.default_rng(0).permutation(5000)[:2000]]
        cfg = ae.AEConfig(model="vae", arch="mlp", hidden=128, latent=8, batch_size=100, epochs=args.epochs)
        tr, per_step, metric = ae.make_trainer(cfg, {"images": images}), cfg.batch_size, "loss"
        grid = {"learning_rate": [1e-3, 3e-4]}
    runs = []
    for _ in range(args.repeats + 1):
        t = time.perf_counter()
        res = sweep(tr, seeds=args.seeds, grid=grid, progress=False, mode="scan", chunk_steps=max(1, tr.num_steps // 4))
        runs.append({"wall_s": time.perf_counter() - t, **{k: res.timings[k] for k in ("compile_s", "run_s", "host_s")}})
    if distributed.is_main():
        ret = float(np.mean(res.final[metric]))
        n_runs = args.seeds * max(1, len(grid.get("learning_rate", [])))
        print(json.dumps({"processes": jax.process_count(), "devices": jax.device_count(), "runs": runs,
                          "units": tr.num_steps * per_step * n_runs, "final": ret, "metric": metric,
                          "n_runs": n_runs}), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int, devices: int, args) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(devices), PYTHONPATH=str(HERE.parent))
    port = _free_port()
    cmd = [sys.executable, __file__, "--worker", "--seeds", str(args.seeds), "--total-steps", str(args.total_steps),
           "--repeats", str(args.repeats), "--algo", args.algo, "--epochs", str(args.epochs)]
    procs = []
    try:
        for i in range(processes):
            e = dict(env)
            if processes > 1:
                e.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes),
                         JAX_PROCESS_ID=str(i))
            procs.append(subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          start_new_session=True))
        outs = [p.communicate(timeout=args.timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    for p, (o, e) in zip(procs, outs):
        if p.returncode:
            raise SystemExit(f"{processes} x {devices}: a process failed:\n{e[-3000:]}")
    return json.loads(outs[0][0].strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", default="vae", choices=("vae", "ppo"))
    p.add_argument("--seeds", type=int, default=16, help="seeds (VAE: per learning rate, 2 of them)")
    p.add_argument("--total-steps", type=int, default=40960, help="PPO: env steps per seed")
    p.add_argument("--epochs", type=int, default=4, help="VAE: epochs of 2000 images per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    import statistics

    from _timing import header, load_average, markdown_table, text_table

    rows = []
    for procs, devs in ((1, 2), (2, 1), (2, 2)):
        r = launch(procs, devs, args)
        reps = r["runs"][1:]
        run_s = statistics.median(x["run_s"] for x in reps)
        spread = (max(x["run_s"] for x in reps) - min(x["run_s"] for x in reps)) / run_s
        rows.append({"layout": f"{procs} proc x {devs} dev", "global devices": r["devices"],
                     "compile s": round(r["runs"][0]["compile_s"], 2), "run s (median)": round(run_s, 3),
                     "spread": f"{spread:.0%}", "host s": round(statistics.median(x["host_s"] for x in reps), 3),
                     ("env steps/s" if args.algo == "ppo" else "samples/s"): int(r["units"] / run_s),
                     f"mean final {r['metric']}": round(r["final"], 2)})
    base = rows[0]["run s (median)"]
    for row in rows:
        row["vs 1x2"] = f"{row['run s (median)'] / base:.2f}x"
    print(header("jax", "jaxlib"))
    what = (f"PPO CartPole-v1 sweep: {args.seeds} seeds x {args.total_steps} env steps" if args.algo == "ppo" else
            f"MLP VAE sweep: {2 * args.seeds} runs (2 learning rates x {args.seeds} seeds) x {args.epochs} epochs of 2000 "
            "MNIST digits")
    print(f"{what}, one compile, scan chunks; {args.repeats} timed repeats per layout; load {load_average()}")
    cols = list(rows[0])
    table = [[row[c] for c in cols] for row in rows]
    print(text_table(cols, table))
    print()
    print(markdown_table(cols, table))


if __name__ == "__main__":
    main()
