"""LeakGAN (Guo et al. 2018): long text by a hierarchical generator that reads the features its
discriminator leaks -- a Manager LSTM over D's feature vector of the current prefix emits goals,
a Worker LSTM's per-token output matrix is scored by their embedding (:mod:`jaxgen.nets.leak`).

D is SeqGAN's text CNN (:class:`jaxgen.nets.text.TextCNN`; its highway output is the leaked
feature f_t), trained as in SeqGAN (:func:`jaxgen.generative.seqgan.d_train`: real vs fresh
samples, softmax cross-entropy + L2 of the output layer, dropout). One run, three phases
(:meth:`jaxgen.core.train.Trainer.phased`), one state type:

1. ``pretrain_d``: ``pretrain_d_updates`` D minibatch updates (so the first features mean something).
2. ``pretrain`` (interleaved, as the paper): one step = ``pretrain_d_per_step`` D updates, then
   one generator update on a real minibatch: the Worker by maximum likelihood, the Manager by
   the goal-direction loss ``-mean cos(f_{t+c} - f_t, g_t)`` on D's features of the real
   prefixes. ``pretrain_epochs`` epochs of ``batch_size``.
3. ``adversarial``: one step = one round: ``g_steps`` adversarial updates (G samples
   ``batch_size`` sequences reading D's features at every step; ``Q`` is the mean of D's
   probability of "real" over ``n_rollouts`` completions by G of the prefixes of ``c, 2c, ..``
   tokens (:func:`jaxgen.nets.text.mc_rewards` with LeakGAN's policy, vmapped over prefixes and
   rollouts); optionally rank-rescaled (:func:`jaxgen.losses.policy_gradient.rank_rescale`,
   ``rescale``); the Manager by ``-mean Q_t cos(f_{t+c} - f_t, g_t)``, the Worker by the shared
   REINFORCE surrogate with the intrinsic reward ``cos(f_{t+c} - f_t, g_t)``), then
   ``retrain_steps`` pre-training updates (the paper's interleaved MLE "re-training"), then
   ``adv_d_updates`` D updates.

Choices made here (not covered by the house rules):

* The goal window ``w_t = psi^T sum_{i=0}^{c-1} g_{t-i}`` includes the current goal (see
  :mod:`jaxgen.nets.leak`); the goals reach the Worker's losses through ``stop_gradient``.
* Rollouts are by G itself (the original code; SeqGAN's delayed copy is not kept).
* ``adv_objective``: ``paper`` (default) weights every token by its own intrinsic reward and
  every goal by its own Q; ``code`` replaces both by their batch means, which is what the
  published code computes (``tf.losses.cosine_distance`` reduces to the mean): its Worker then
  raises the likelihood of its own samples by one weight. ``adv_learning_rate``: the published
  code's G rate is 0.0015 at length 20 (0.0005 at 40), decayed; jaxgen's default G rate is 0.01.
* Two Adam states for G (pre-training / adversarial, as SeqGAN's two optimisers), each over the
  sum of the Worker's and the Manager's loss (their parameters are disjoint); global-norm
  clipping ``grad_clip``. Prefixes are padded with token 0 before D reads them (the original).
* COCO: as SeqGAN (:mod:`jaxgen.generative.seqgan`): G's samples are made canonical before D
  scores them; D's features during generation are of the raw prefix.

Contract (DESIGN.md): ``init(key, config, hparams=None) -> LeakGANState``,
``make_trainer(config, data) -> Trainer`` (data: ``{"train": int32 [N, L]}``); the phase steps
:func:`d_step`, :func:`pretrain_step`, :func:`adversarial_step`; :func:`sample`, :func:`nll_test`.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxgen.core import config as C
from jaxgen.core import optim
from jaxgen.core.errors import ConfigError
from jaxgen.core.train import Phase, Trainer
from jaxgen.core.train import make_train as _make_train
from jaxgen.data.text import ORACLE_LEN, ORACLE_START, ORACLE_VOCAB, canonical
from jaxgen.generative import seqgan as S
from jaxgen.losses.policy_gradient import policy_gradient_loss, rank_rescale
from jaxgen.nets import leak as LK
from jaxgen.nets import text as T

TASKS = S.TASKS
OBJECTIVES = ("paper", "code")
PAD = 0  # the token that pads a prefix before D reads it


@dataclasses.dataclass(frozen=True)
class LeakGANConfig:
    """LeakGAN config. Defaults: the paper's synthetic-oracle experiment (length 20), with
    SeqGAN's D (the 12-width CNN; its feature size 1,720 is the Manager's goal space)."""

    RESUME_MAY_CHANGE: ClassVar[tuple] = ()

    task: str = C.static("oracle", "oracle (the synthetic LSTM oracle, NLL-oracle) or coco (Image-COCO captions, BLEU)", TASKS)
    vocab_size: int = C.static(ORACLE_VOCAB, "vocabulary size (coco: set from the data)", accepts=C.whole(2))
    seq_len: int = C.static(ORACLE_LEN, "sequence length (oracle: 20 or 40 in the paper; coco: the longest caption + 1 unless given)", accepts=C.whole(2, 200))
    emb_dim: int = C.static(32, "Worker embedding size", accepts=C.whole(1))
    hidden_dim: int = C.static(32, "Worker LSTM size", accepts=C.whole(1))
    manager_dim: int = C.static(32, "Manager LSTM size", accepts=C.whole(1))
    goal_size: int = C.static(16, "goal embedding size k (w_t; the Worker's output matrix is k x vocab)", accepts=C.whole(1))
    step_size: int = C.static(4, "c: goals summed over the last c steps, features compared c steps ahead, Q every c tokens", accepts=C.whole(1))
    batch_size: int = C.static(64, "sequences per G update (MLE minibatch; adversarial samples)", accepts=C.whole(1))
    pretrain_d_updates: int = C.static(500, "D minibatch updates before the interleaved pre-training", accepts=C.whole(0))
    pretrain_epochs: int = C.static(80, "interleaved pre-training epochs of G (Worker MLE + Manager goal loss)", accepts=C.whole(0))
    pretrain_d_per_step: int = C.static(1, "D updates per pre-training step of G", accepts=C.whole(0))
    rounds: int = C.static(100, "adversarial rounds", accepts=C.whole(0))
    g_steps: int = C.static(1, "adversarial updates of G per round", accepts=C.whole(1))
    retrain_steps: int = C.static(5, "pre-training (MLE) updates of G per round (the paper's interleaved re-training)", accepts=C.whole(0))
    adv_d_updates: int = C.static(15, "D minibatch updates per round", accepts=C.whole(0))
    n_rollouts: int = C.static(4, "Monte Carlo completions per prefix (prefixes of c, 2c, .. tokens)", accepts=C.whole(1))
    rescale: bool = C.static(True, "rank-based rescaled activation of the Q estimates (the paper's bootstrapped rescaling)")
    adv_objective: str = C.static("paper", "paper: per-token intrinsic rewards and Q weights (the paper's equations); "
                                  "code: both averaged over the batch first, as the published code's cosine does", OBJECTIVES)
    d_batch_size: int = C.static(64, "sequences per D update (half real, half generated)", accepts=C.whole(2))
    d_emb_dim: int = C.static(64, "discriminator embedding size", accepts=C.whole(1))
    d_widths: tuple = C.static(T.PAPER_WIDTHS, "discriminator filter widths (each <= seq_len)", accepts=C.sizes(1, whole=True))
    d_filters: tuple = C.static(T.PAPER_FILTERS, "filters of each width (their sum is the feature size)", accepts=C.sizes(1, whole=True))
    g_learning_rate: float = C.traced(0.01, "G's Adam learning rate (pre-training and re-training; adversarial too unless adv_learning_rate)", accepts=C.number(0, 1, lo_open=True))
    adv_learning_rate: float = C.traced(0.0, "G's Adam learning rate for the adversarial updates (0: g_learning_rate; the published code: 0.0015 at length 20, 0.0005 at 40)", accepts=C.number(0, 1, hi_open=True, words="0 (g_learning_rate) or a number in (0, 1)"))
    d_learning_rate: float = C.traced(1e-4, "D's Adam learning rate", accepts=C.number(0, 1, lo_open=True))
    grad_clip: float = C.traced(5.0, "global-norm clipping of G's gradients", accepts=C.number(0, lo_open=True))
    d_keep: float = C.traced(0.75, "D's dropout keep probability in its updates", accepts=C.number(0, 1, lo_open=True))
    d_l2: float = C.traced(0.2, "weight of the L2 of D's output layer", accepts=C.number(0))
    temperature: float = C.traced(1.0, "G's sampling temperature in training", accepts=C.number(0, lo_open=True))
    rescale_delta: float = C.traced(16.0, "the rescaled activation's smoothness delta", accepts=C.number(0, lo_open=True))

    @property
    def start_token(self) -> int:
        return ORACLE_START if self.task == "oracle" else 0

    @property
    def feature_size(self) -> int:
        return int(sum(self.d_filters))

    def steps_per_epoch(self, n: int) -> int:
        return n // self.batch_size


def validate(config: LeakGANConfig, num_examples: int | None = None) -> LeakGANConfig:
    """ConfigError (one sentence) for an out-of-range config; the config otherwise."""
    S.check_text_gan(config, num_examples)
    C.require(config, "step_size", config.step_size < config.seq_len, f"a whole number from 1 to seq_len - 1 ({config.seq_len - 1})")
    return config


# --------------------------------------------------------------------------- state

class LeakGANState(struct.PyTreeNode):
    """Generator (Worker, Manager, psi), discriminator, their optimiser states, key, step, hparams."""

    g: dict
    g_opt_mle: optax.OptState
    g_opt_adv: optax.OptState
    d: dict
    d_opt: optax.OptState
    key: jax.Array
    step: jax.Array
    hparams: dict
    config: LeakGANConfig = struct.field(pytree_node=False)


def init(key: jax.Array, config: LeakGANConfig, hparams: dict | None = None) -> LeakGANState:
    cfg = config
    d_net, g_tx, d_tx = S.build(cfg)  # SeqGAN's D and optimisers (the config has its fields)
    hp = C.hparams(cfg, hparams)
    kg, kd, krun = jax.random.split(key, 3)
    g = LK.init(kg, cfg.vocab_size, cfg.emb_dim, cfg.hidden_dim, cfg.feature_size, cfg.manager_dim, cfg.goal_size)
    d = d_net.init(kd, jnp.zeros((2, cfg.seq_len), jnp.int32))["params"]
    adv_lr = jnp.where(hp["adv_learning_rate"] > 0, hp["adv_learning_rate"], hp["g_learning_rate"])
    g_opt = lambda lr: optim.set_hyperparams(g_tx.init(g), {"learning_rate": lr, "max_grad_norm": hp["grad_clip"]})  # noqa: E731
    d_opt = optim.set_hyperparams(d_tx.init(d), {"learning_rate": hp["d_learning_rate"]})
    return LeakGANState(g=g, g_opt_mle=g_opt(hp["g_learning_rate"]), g_opt_adv=g_opt(adv_lr), d=d, d_opt=d_opt, key=krun,
                        step=jnp.zeros((), jnp.int32), hparams=hp, config=cfg)


# --------------------------------------------------------------------------- pieces

def feat_fn(state: LeakGANState, d_params=None):
    """D's leaked features ``int [M, L] -> [M, F]`` (the highway output, no dropout)."""
    d_net = S.build(state.config)[0]
    d_params = state.d if d_params is None else d_params
    return lambda x: d_net.apply({"params": d_params}, x, features=True)


def generate(state: LeakGANState, g: dict, key: jax.Array, n: int, temperature=1.0, raw: bool = False) -> jax.Array:
    """``n`` sequences ``int32 [n, L]`` of generator ``g`` reading ``state.d``'s features (coco:
    canonical unless ``raw``)."""
    cfg = state.config
    x = LK.sample(g, feat_fn(state), key, n, cfg.seq_len, cfg.start_token, cfg.step_size, PAD, temperature)
    return x if (cfg.task == "oracle" or raw) else canonical(x)


def d_update(state: LeakGANState, real: jax.Array, key: jax.Array) -> tuple[LeakGANState, dict]:
    """One D update on ``real [B/2, L]`` and as many fresh samples of G (SeqGAN's D step)."""
    kg, kd = jax.random.split(key)
    fake = generate(state, state.g, kg, real.shape[0], state.hparams["temperature"])
    return S.d_train(state, real, fake, kd)


def pretrain_loss(state: LeakGANState, g: dict, tokens: jax.Array):
    """Worker NLL per token + Manager goal-direction loss (Q = 1) on real ``tokens [B, L]``."""
    cfg = state.config
    tf = LK.teacher(g, feat_fn(state), tokens, cfg.start_token, cfg.step_size, PAD)
    nll = -jnp.mean(LK.token_logp(tf["logits"], tokens))
    goal = LK.goal_loss(tf["feats"], tf["goals"], jnp.ones(tokens.shape), cfg.step_size)
    return nll + goal, {"g_mle_loss": nll, "goal_loss": goal}


def g_pretrain_update(state: LeakGANState, tokens: jax.Array) -> tuple[LeakGANState, dict]:
    """One pre-training update of G on ``tokens [B, L]`` (:func:`pretrain_loss`)."""
    grads, m = jax.grad(lambda g: pretrain_loss(state, g, tokens), has_aux=True)(state.g)
    updates, opt = S.build(state.config)[1].update(grads, state.g_opt_mle, state.g)
    return state.replace(g=optax.apply_updates(state.g, updates), g_opt_mle=opt), m


def q_values(state: LeakGANState, seqs: jax.Array, key: jax.Array) -> jax.Array:
    """Monte Carlo Q ``[B, L]`` of G's raw samples ``seqs`` (D's score of completed prefixes of
    ``c, 2c, ..`` tokens by G; rank-rescaled if ``rescale``); no gradient."""
    cfg, hp = state.config, state.hparams
    score = (lambda x: S.d_score(state, x)) if cfg.task == "oracle" else (lambda x: S.d_score(state, canonical(x)))
    pol = LK.policy(feat_fn(state), cfg.step_size, PAD)
    q = T.mc_rewards(score, state.g, key, seqs, cfg.n_rollouts, cfg.start_token, hp["temperature"], pol, cfg.step_size)
    q = rank_rescale(q, hp["rescale_delta"]) if cfg.rescale else q
    return jax.lax.stop_gradient(q)


def adversarial_loss(state: LeakGANState, g: dict, seqs: jax.Array, q: jax.Array):
    """Manager: ``-mean Q_t cos(f_{t+c} - f_t, g_t)``; Worker: REINFORCE with the intrinsic reward.

    ``adv_objective="code"``: the intrinsic rewards ``[B, L]`` and ``q`` replaced by their batch
    means, as in the published LeakGAN code (its ``tf.losses.cosine_distance`` returns the mean
    over the batch): the Worker then maximises the log-likelihood of its own samples weighted by
    one number, and the Manager the mean cosine weighted by the mean Q."""
    cfg = state.config
    tf = LK.teacher(g, feat_fn(state), seqs, cfg.start_token, cfg.step_size, PAD)
    logp = LK.token_logp(tf["logits"], seqs, state.hparams["temperature"])
    r = LK.intrinsic_reward(tf["feats"], tf["goals"], cfg.step_size)
    if cfg.adv_objective == "code":
        r, q = jnp.full_like(r, jnp.mean(r)), jnp.full_like(q, jnp.mean(q))
    worker = policy_gradient_loss(logp, r)
    manager = LK.goal_loss(tf["feats"], tf["goals"], q, cfg.step_size)
    return worker + manager, {"worker_loss": worker, "manager_loss": manager, "intrinsic": jnp.mean(r)}


def adv_update(state: LeakGANState, key: jax.Array) -> tuple[LeakGANState, dict]:
    """One adversarial update of G: sample, Q by rollouts, both losses (:func:`adversarial_loss`)."""
    cfg, hp = state.config, state.hparams
    ks, kr = jax.random.split(key)
    seqs = generate(state, state.g, ks, cfg.batch_size, hp["temperature"], raw=True)
    q = q_values(state, seqs, kr)
    grads, m = jax.grad(lambda g: adversarial_loss(state, g, seqs, q), has_aux=True)(state.g)
    updates, opt = S.build(cfg)[1].update(grads, state.g_opt_adv, state.g)
    reward = S.d_score(state, seqs if cfg.task == "oracle" else canonical(seqs))
    return state.replace(g=optax.apply_updates(state.g, updates), g_opt_adv=opt), {**m, "reward": jnp.mean(reward)}


# --------------------------------------------------------------------------- the phase steps

def d_step(state: LeakGANState, data: dict) -> tuple[LeakGANState, dict]:
    """One D minibatch update (phase ``pretrain_d``)."""
    key = jax.random.fold_in(state.key, state.step)
    real = S.real_batch(state, data, state.step, state.config.d_batch_size // 2, 1)
    state, m = d_update(state, real, key)
    return state.replace(step=state.step + 1), m


def _d_updates(state, data, key, n: int, counter, stream: int):
    """``n`` D updates (``lax.scan``), real minibatches ``counter * n + i`` of ``stream``."""
    cfg = state.config

    def body(s, i):
        real = S.real_batch(s, data, counter * n + i, cfg.d_batch_size // 2, stream)
        return d_update(s, real, jax.random.fold_in(key, i))

    if not n:
        return state, {"d_loss": jnp.zeros(()), "d_acc": jnp.zeros(())}
    state, m = jax.lax.scan(body, state, jnp.arange(n))
    return state, {k: jnp.mean(v) for k, v in m.items()}


def pretrain_step(state: LeakGANState, data: dict) -> tuple[LeakGANState, dict]:
    """Interleaved pre-training: ``pretrain_d_per_step`` D updates, one G update (phase ``pretrain``)."""
    cfg = state.config
    key = jax.random.fold_in(state.key, state.step)
    state, md = _d_updates(state, data, jax.random.fold_in(key, 1 << 20), cfg.pretrain_d_per_step, state.step, 3)
    tokens = S.real_batch(state, data, state.step, cfg.batch_size, 0)
    state, mg = g_pretrain_update(state, tokens)
    return state.replace(step=state.step + 1), {**mg, **md}


def adversarial_step(state: LeakGANState, data: dict) -> tuple[LeakGANState, dict]:
    """One round: ``g_steps`` adversarial updates, ``retrain_steps`` MLE updates, ``adv_d_updates`` D updates."""
    cfg = state.config
    key = jax.random.fold_in(state.key, state.step)
    state, mg = jax.lax.scan(lambda s, i: adv_update(s, jax.random.fold_in(key, i)), state, jnp.arange(cfg.g_steps))
    m = {k: jnp.mean(v) for k, v in mg.items()}
    if cfg.retrain_steps:
        def retrain(s, i):
            return g_pretrain_update(s, S.real_batch(s, data, s.step * cfg.retrain_steps + i, cfg.batch_size, 4))

        state, mr = jax.lax.scan(retrain, state, jnp.arange(cfg.retrain_steps))
        m.update({k: jnp.mean(v) for k, v in mr.items()})
    state, md = _d_updates(state, data, jax.random.fold_in(key, 1 << 20), cfg.adv_d_updates, state.step, 2)
    return state.replace(step=state.step + 1), {**m, **md}


# --------------------------------------------------------------------------- the run

PHASES = ("pretrain_d", "pretrain", "adversarial")
NAME = "LeakGAN"
EPOCH_PHASE = "pretrain"  # the phase whose epochs the host side evaluates


def phase_lengths(config: LeakGANConfig, n: int) -> dict:
    """``{phase: (num_steps, steps_per_epoch)}`` for ``n`` training sequences."""
    spe = config.steps_per_epoch(n)
    d_epoch = max(1, (2 * n) // config.d_batch_size)
    return {"pretrain_d": (config.pretrain_d_updates, d_epoch), "pretrain": (config.pretrain_epochs * spe, spe),
            "adversarial": (config.rounds, 1)}


def _phases(cfg: LeakGANConfig, n: int) -> list:
    steps = {"pretrain_d": d_step, "pretrain": pretrain_step, "adversarial": adversarial_step}
    phases = [Phase(name, steps[name], num, spe) for name, (num, spe) in phase_lengths(cfg, n).items() if num]
    if not phases:
        raise ConfigError("pretrain_d_updates, pretrain_epochs and rounds are all 0; accepted: at least one of them >= 1.")
    return phases


def make_trainer(config: LeakGANConfig, data: dict) -> Trainer:
    """The phased run over ``data = {"train": int [N, L], ...}``."""
    return S.text_gan_trainer(config, data, validate, _phases, init)


def make_train(config: LeakGANConfig, data: dict):
    """``train(key, hparams=None) -> (state, {phase: metrics})`` as one program (jit/vmap it)."""
    return _make_train(make_trainer(config, data))


# --------------------------------------------------------------------------- sampling and metrics

def sample(state: LeakGANState, key: jax.Array, n: int, temperature=1.0) -> jax.Array:
    """``n`` generated sequences ``int32 [n, L]``."""
    return generate(state, state.g, key, n, temperature)


def nll_test(state: LeakGANState, tokens: jax.Array, chunk: int = 500) -> jax.Array:
    """G's NLL per token of held-out real sequences ``tokens [M, L]`` (``chunk`` at a time)."""
    cfg = state.config
    n, length = tokens.shape
    b = min(chunk, n)
    pad = -n % b
    tok = jnp.pad(tokens, ((0, pad), (0, 0))).reshape(-1, b, length)
    msk = (jnp.arange(n + pad) < n).reshape(-1, b, 1).astype(jnp.float32)

    def one(tm):
        tf = LK.teacher(state.g, feat_fn(state), tm[0], cfg.start_token, cfg.step_size, PAD)
        return jnp.sum(LK.token_logp(tf["logits"], tm[0]) * tm[1])

    return -jnp.sum(jax.lax.map(one, (tok, msk))) / (n * length)


__all__ = ["LeakGANConfig", "LeakGANState", "validate", "init", "make_trainer", "make_train", "d_step",
           "pretrain_step", "adversarial_step", "adv_update", "g_pretrain_update", "q_values", "pretrain_loss",
           "adversarial_loss", "sample", "nll_test", "feat_fn", "PHASES"]


CONFIG = LeakGANConfig
