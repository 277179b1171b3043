"""Host side of SeqGAN (and LeakGAN, :mod:`jaxgen.generative.leakgan_fit`) on :mod:`jaxgen.core.fit`:
data, per-epoch metrics and samples, the CLI.

:func:`load_task` gives the data of ``--task oracle`` (10,000 training and 2,000 held-out
sequences sampled from the SeqGAN oracle with a fixed seed) or ``--task coco`` (the Image-COCO
captions, vocabulary of both splits, saved as ``RUN_DIR/vocab.json``). Every epoch of
``pretrain_g`` (LeakGAN: ``pretrain``) and every ``eval_every``-th round of ``adversarial`` (and the last of each
phase) :class:`EpochHook` logs

* oracle: ``nll_oracle`` (the oracle's NLL of ``eval_n`` generated sequences), ``nll_test``;
* coco: ``nll_test``; ``bleu2`` .. ``bleu5`` against all the test captions (the protocol of
  Texygen's published tables: real training captions score 0.736 / 0.513 / 0.329 / 0.211 there,
  Texygen's MLE row 0.731 / 0.497 / 0.305 / 0.189); ``fast_bleu2`` .. against the first 500 test
  captions only (Texygen's "fast" mode, its default during training); ``self_bleu2`` .. (first
  500 samples);

and writes ``RUN_DIR/samples/<phase>_<epoch>.txt`` (decoded sentences). At the end:
``curves.png``, ``samples.txt`` and the final metrics on ``final_n`` samples (10,000, the
paper's) in ``results.json``. ``jaxgen sample RUN_DIR --n 20`` prints decoded sentences.
Which mode each phase runs in (scan / loop) the runner decides.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from jaxgen.core import checkpoint as ckpt
from jaxgen.core import config as C
from jaxgen.core import fit as F
from jaxgen.core.cli_options import overrides
from jaxgen.core.errors import ConfigError
from jaxgen.core.hooks import EveryEpochs
from jaxgen.data import text as D
from jaxgen.eval.bleu import bleu, self_bleu
from jaxgen.generative import seqgan as S

ORDERS = (2, 3, 4, 5)
FAST_BLEU_REFS = 500  # Texygen's "fast" BLEU: only the first 500 reference sentences
SELF_BLEU_N = 500


def load_task(task: str, data_dir: str | None = None, limit: int | None = None, max_len: int = 0) -> dict:
    """``{"train": int32 [N, L], "test": int32 [M, L], "vocab": Vocab | None, "oracle": params | None,
    "test_text": token lists}`` of ``task`` (``max_len``: oracle: the sequence length, 0 for 20;
    coco: 0 for the longest caption + 1)."""
    if task == "oracle":
        oracle = D.load_oracle(D.oracle_path(data_dir) if data_dir else None)
        data = D.oracle_data(oracle, length=max_len or D.ORACLE_LEN)
        train = np.asarray(data["train"])[:limit]
        return {"train": train, "test": np.asarray(data["test"]), "vocab": None, "oracle": oracle, "test_text": None}
    c = D.load_coco(data_dir, max_len, limit)
    return {"train": c["train"], "test": c["test"], "vocab": c["vocab"], "oracle": None, "test_text": c["test_text"]}


def module_of(config):
    """The pure module of a config: SeqGAN's, or LeakGAN's (which shares this host side)."""
    from jaxgen.generative import leakgan

    return leakgan if isinstance(config, leakgan.LeakGANConfig) else S


def fit_config(config: S.SeqGANConfig, data: dict) -> S.SeqGANConfig:
    """``config`` with the vocabulary size and sequence length of the data (coco)."""
    if config.task == "coco":
        config = dataclasses.replace(config, vocab_size=len(data["vocab"]), seq_len=int(data["train"].shape[1]))
    return module_of(config).validate(config, int(data["train"].shape[0]))


def as_text(cfg: S.SeqGANConfig, vocab, ids) -> list[str]:
    ids = np.asarray(ids)
    return vocab.decode_text(ids) if vocab is not None else [" ".join(map(str, row)) for row in ids]


def text_metrics(sents: list, refs: list) -> dict:
    """BLEU of generated token lists ``sents`` against all of ``refs`` (``bleu2`` .. ``bleu5``),
    against the first 500 only (``fast_bleu2`` ..), and their self-BLEU (``self_bleu2`` .., first
    500 of ``sents``)."""
    out = {f"bleu{k}": v for k, v in bleu(sents, refs, ORDERS).items()}
    out.update({f"fast_bleu{k}": v for k, v in bleu(sents, refs, ORDERS, max_refs=FAST_BLEU_REFS).items()})
    out.update({f"self_bleu{k}": v for k, v in self_bleu(sents, ORDERS, max_hyps=SELF_BLEU_N).items()})
    return out


class Evaluator:
    """The metrics of one state (see the module docstring), jitted once per ``n``."""

    def __init__(self, cfg: S.SeqGANConfig, data: dict):
        self.cfg, self.vocab, self.oracle = cfg, data["vocab"], data["oracle"]
        self.test = jax.numpy.asarray(data["test"])
        self.refs = data["test_text"]
        mod = module_of(cfg)
        self._sample = jax.jit(mod.sample, static_argnums=2)
        self._nll_test = jax.jit(mod.nll_test)
        self._nll_oracle = jax.jit(D.oracle_nll) if self.oracle is not None else None

    def __call__(self, state, n: int, key=None) -> tuple[dict, np.ndarray]:
        key = jax.random.PRNGKey(1234) if key is None else key
        x = self._sample(state, key, n)
        out = {"nll_test": float(self._nll_test(state, self.test))}
        if self.oracle is not None:
            out["nll_oracle"] = float(self._nll_oracle(self.oracle, x))
        if self.vocab is not None:
            out.update(text_metrics(self.vocab.decode(np.asarray(x)), self.refs))
        return out, np.asarray(x)


class EpochHook:
    """Metrics and a samples file after an epoch (``pretrain_g``) or round (``adversarial``)."""

    def __init__(self, cfg, data, run_dir: Path | None, eval_n: int, n_text: int = 100):
        self.evaluate, self.run_dir, self.eval_n, self.n_text = Evaluator(cfg, data), run_dir, eval_n, n_text
        self.cfg, self.vocab = cfg, data["vocab"]

    def __call__(self, info) -> dict:
        if self.run_dir is not None and self.vocab is not None and not (self.run_dir / D.VOCAB_FILE).exists():
            self.vocab.save(self.run_dir)
        if info.phase == "pretrain_d":
            return {}
        epoch = info.phase_epoch if info.phase != "adversarial" else info.phase_step
        m, x = self.evaluate(info.state, self.eval_n, jax.random.PRNGKey(info.step))
        if self.run_dir is not None:
            d = self.run_dir / "samples"
            d.mkdir(exist_ok=True)
            (d / f"{info.phase}_{epoch:04d}.txt").write_text("\n".join(as_text(self.cfg, self.vocab, x[: self.n_text])) + "\n")
        return {"epoch": epoch, **m}


def job(config: S.SeqGANConfig, data: dict, run_dir: Path | None = None, eval_n: int = 2000, final_n: int = 10000,
        eval_every: int = 1, evaluate: bool = True) -> F.Job:
    cfg = fit_config(config, data)
    mod = module_of(cfg)
    trainer = mod.make_trainer(cfg, data)
    hooks = []
    if evaluate:
        hook = EpochHook(cfg, data, run_dir, eval_n)
        hooks = [EveryEpochs(hook, 1, phases=(mod.EPOCH_PHASE,)), EveryEpochs(hook, eval_every, phases=("adversarial",))]

    def finish(res, run_dir) -> dict:
        if not evaluate:
            return {}
        m, x = Evaluator(cfg, data)(res.state, final_n, jax.random.PRNGKey(99))
        if run_dir is not None:
            (run_dir / "samples.txt").write_text("\n".join(as_text(cfg, data["vocab"], x[:1000])) + "\n")
        return {"eval": {**m, "n": final_n}}

    curves = ("g_mle_loss", "d_loss", "d_acc", "reward", "nll_oracle", "nll_test", "bleu2", "bleu3", "bleu4", "bleu5",
              "self_bleu2")
    curves += ("goal_loss", "intrinsic") if mod is not S else ()
    title = f"{mod.NAME} {cfg.task}" + (" (MLE only)" if getattr(cfg, "mle_only", False) else "")
    return F.Job(trainer, hooks, finish, curves=curves, title=title)


def fit(config: S.SeqGANConfig, data: dict, *, seed: int = 0, run_dir=None, resume: bool = False, chunk_steps=None,
        mode: str = "auto", progress: bool = True, eval_n: int = 2000, final_n: int = 10000, eval_every: int = 1,
        evaluate: bool = True) -> dict:
    """Train ``config`` on ``data`` (:func:`load_task`); the results of :func:`jaxgen.core.fit.fit`."""
    run_dir = Path(run_dir) if run_dir is not None else None
    j = job(config, data, run_dir, eval_n, final_n, eval_every, evaluate)
    return F.fit(j, seed=seed, run_dir=run_dir, resume=resume, chunk_steps=chunk_steps, mode=mode, progress=progress)


def load_state(run_dir: Path, module=S) -> S.SeqGANState:
    return ckpt.restore_run(Path(run_dir), module.CONFIG, module.init)


def sample_run(run_dir, n: int = 20, seed: int = 0, temperature: float = 1.0, module=S) -> list[str]:
    """Decoded sentences of ``n`` samples of the run's latest checkpoint."""
    if not temperature > 0:
        raise ConfigError(f"--temperature={temperature} is out of range; accepted: a number > 0.")
    run_dir = Path(run_dir)
    state = load_state(run_dir, module)
    vocab = D.Vocab.load(run_dir) if state.config.task == "coco" else None
    x = jax.jit(module.sample, static_argnums=2)(state, jax.random.PRNGKey(seed), n, temperature)
    return as_text(state.config, vocab, x)


class SeqGANFamily(F.Family):
    """SeqGAN's host side; ``SeqGANFamily(jaxgen.generative.leakgan)`` is LeakGAN's."""

    def __init__(self, module=S):
        self.module = module

    commands = ("sample",)
    summary = ("nll_oracle", "nll_test", "bleu2", "bleu4", "self_bleu2", "reward")
    chunk_help = "steps per compiled chunk (default: one epoch; adversarial: one round)"
    sample_options = (("--temperature", dict(type=float, default=1.0, help="SeqGAN: sampling temperature")),)

    def add_args(self, p, command: str) -> None:
        g = p.add_argument_group("data and evaluation")
        g.add_argument("--data-dir", default=None, help="directory of target_params.npz (oracle) or of "
                                                        "image_coco.txt / test_coco.txt (coco); default ../shared/data")
        g.add_argument("--limit", type=int, default=None, help="use only the first N training sequences")
        g.add_argument("--eval-n", type=int, default=2000, help="samples per evaluation during training")
        g.add_argument("--final-n", type=int, default=10000, help="samples of the final evaluation")
        g.add_argument("--eval-every", type=int, default=5, help="evaluate every this many adversarial rounds")
        g.add_argument("--no-eval", action="store_true", help="no metrics or sample files")

    def label(self, algo, config) -> str:
        return f"{self.module.NAME} {config.task}" + (" MLE baseline" if getattr(config, "mle_only", False) else "")

    def run_name(self, algo, config) -> str:
        return f"{self.module.NAME.lower()}-{config.task}" + ("-mle" if getattr(config, "mle_only", False) else "")

    def _data(self, config, args):
        given = overrides(args, self.module.CONFIG)
        max_len = given.get("seq_len", 0) if config.task == "coco" else config.seq_len
        data = load_task(config.task, args.data_dir, args.limit, max_len)
        print(f"data: {config.task}: {data['train'].shape[0]} training sequences of length {data['train'].shape[1]}"
              + (f", vocabulary {len(data['vocab'])}" if data["vocab"] is not None else ""))
        return data

    def train(self, algo, config, args, run_dir, resume) -> dict:
        for name in ("eval_n", "final_n", "eval_every"):
            v = getattr(args, name)
            if not (isinstance(v, int) and v >= (2 if name != "eval_every" else 1)):
                raise ConfigError(f"--{name.replace('_', '-')}={v} is out of range; accepted: a whole number >= "
                                  f"{2 if name != 'eval_every' else 1}.")
        data = self._data(config, args)
        return fit(config, data, seed=args.seed, run_dir=run_dir, resume=resume, chunk_steps=args.chunk_steps,
                   mode=args.mode, progress=not args.no_progress, eval_n=args.eval_n, final_n=args.final_n,
                   eval_every=args.eval_every, evaluate=not args.no_eval)

    def report(self, algo, out: dict) -> list[str]:
        ev = out.get("eval") or {}
        lines = super().report(algo, out)
        if ev:
            lines.append("   final (" + f"{ev['n']} samples): " + ", ".join(f"{k} {v:.4g}" for k, v in ev.items() if k != "n"))
        return lines + [f"   samples, plots and logs in {out['run_dir']}"]

    def sweep(self, algo, config, args) -> list[str]:
        from jaxgen.core.sweep import sweep

        data = self._data(config, args)
        cfg = fit_config(config, data)
        res = sweep(self.module.make_trainer(cfg, data), seeds=args.seeds, grid=F.parse_grid(args.grid),
                    progress=not args.no_progress, mode=args.mode)
        return F.sweep_table(res)

    def bench_trainer(self, algo, config):
        """The oracle's training set (``../shared/data``; DataError, hence skipped, where absent),
        counted in generator sequences (``batch_size`` a step)."""
        data = load_task(config.task, max_len=config.seq_len if config.task == "oracle" else 0)
        cfg = fit_config(config, data)
        return self.module.make_trainer(cfg, data), cfg.batch_size, "sequences"

    def load(self, algo, run_dir: Path):
        return load_state(run_dir, self.module)

    def eval(self, algo, run_dir: Path, args) -> dict:
        state = load_state(run_dir, self.module)
        cfg = state.config
        if cfg.task == "coco":  # the run's own vocabulary
            vocab = D.Vocab.load(run_dir)
            test_text = D.load_corpus(D.coco_dir() / "test_coco.txt", vocab.tokenize or "words")
            test_text = [s for s in test_text if all(w in vocab.index for w in s)]
            data = {"vocab": vocab, "oracle": None, "test_text": test_text, "test": vocab.encode(test_text, cfg.seq_len)}
        else:
            data = load_task(cfg.task, max_len=cfg.seq_len)
        n = getattr(args, "n", None) or 10000
        m, _ = Evaluator(cfg, data)(state, n, jax.random.PRNGKey(1234 if args.seed is None else args.seed))
        return {"step": int(state.step), "n": n, **m}

    def sample(self, algo, run_dir: Path, args) -> list[str]:
        return sample_run(run_dir, args.n, args.seed or 0, args.temperature, self.module)


FAMILY = SeqGANFamily()
