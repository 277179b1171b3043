"""SeqGAN (Yu et al. 2017): an LSTM generator trained by policy gradient, its rewards the Monte
Carlo estimates of a text-CNN discriminator's score of completed sequences.

One run, three phases (:meth:`jaxgen.core.train.Trainer.phased`), one state type:

1. ``pretrain_g``: maximum likelihood (teacher forcing) on the real sequences, ``batch_size``
   per step, ``pretrain_g_epochs`` passes (paper: 120 for the oracle task).
2. ``pretrain_d``: the discriminator on real vs generated sequences, one minibatch of
   ``d_batch_size`` (half real, half freshly sampled by G) per step, ``pretrain_d_updates``
   steps (paper: 50 rounds x 3 epochs over 10,000 real + 10,000 generated = 46,800 updates of 64).
3. ``adversarial``: one step = one round: ``g_steps`` policy-gradient updates of G, then the
   rollout network follows G (``rollout = rate * rollout + (1 - rate) * G`` for the LSTM and the
   output layer, the embedding copied, rate 0.8: SeqGAN's ``ROLLOUT.update_params``), then
   ``adv_d_updates`` discriminator updates on fresh negatives (paper: 5 x 3 epochs = 4,680).

The policy-gradient update: G samples ``batch_size`` sequences; ``Q(y_<t, y_t)`` is the mean of
D's probability of "real" over ``n_rollouts`` completions of the prefix ``y_<=t`` by the rollout
network (D's score of the whole sequence at the last token), all prefixes x completions in
one batched scan (:func:`jaxgen.nets.text.mc_rewards`); the loss is the shared REINFORCE
surrogate :func:`jaxgen.losses.policy_gradient.policy_gradient_loss` on the tokens' log-probabilities
with Q as weights (no baseline, as the paper).

``mle_only=True`` is the MLE baseline: no discriminator phases, and the adversarial phase is
replaced by ``rounds`` more epochs of maximum likelihood (so both runs train for
``pretrain_g_epochs + rounds`` epochs of G).

Choices made here (not covered by the house rules):

* Optimisers as SeqGAN's code: G Adam(0.01) with global-norm clipping 5 -- separate Adam
  states for MLE and for the policy gradient (SeqGAN builds two optimisers; ``pg_learning_rate``
  may give the second its own rate, e.g. 0.02 in the oracle benchmark) -- D Adam(1e-4);
  D's loss is the softmax cross-entropy plus ``d_l2`` x the L2 of its output layer; dropout
  keep probability ``d_keep`` in D's updates only.
* D's negatives are sampled fresh for every D minibatch (the paper regenerates a set of
  10,000 every 3 epochs): the same number of D updates, never a stale negative.
* COCO: sequences are ``[words, <eos>, <pad>...]`` (:mod:`jaxgen.data.text`); G learns every
  position (as Texygen), its samples are made canonical (everything after the first end
  token is padding) before D sees them; the start input is ``<pad>`` (id 0). The oracle task
  has no special tokens (start token 0, as the paper).
* Step randomness is ``fold_in(state.key, state.step)``; minibatches of real data are
  epoch-wise shuffled (:func:`jaxgen.core.train.batch_indices`).

Contract (DESIGN.md): ``init(key, config, hparams=None) -> SeqGANState``,
``make_trainer(config, data) -> Trainer`` (data: ``{"train": int32 [N, L]}``), the phase steps
:func:`mle_step`, :func:`d_step`, :func:`adversarial_step`, :func:`pg_update`; :func:`sample`.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxgen.core import config as C
from jaxgen.core import optim
from jaxgen.core.errors import ConfigError
from jaxgen.core.train import Phase, Trainer, batch_indices
from jaxgen.core.train import make_train as _make_train
from jaxgen.data.text import EOS, ORACLE_LEN, ORACLE_START, ORACLE_VOCAB, canonical
from jaxgen.losses.policy_gradient import policy_gradient_loss
from jaxgen.nets import text as T

TASKS = ("oracle", "coco")
DATA_SEED = 0x5E9


@dataclasses.dataclass(frozen=True)
class SeqGANConfig:
    """SeqGAN config. Defaults: the paper's synthetic-oracle experiment."""

    RESUME_MAY_CHANGE: ClassVar[tuple] = ()

    task: str = C.static("oracle", "oracle (the synthetic LSTM oracle, NLL-oracle) or coco (Image-COCO captions, BLEU)", TASKS)
    vocab_size: int = C.static(ORACLE_VOCAB, "vocabulary size (coco: set from the data)", accepts=C.whole(2))
    seq_len: int = C.static(ORACLE_LEN, "sequence length (oracle: 20, the paper's, or longer; coco: the longest caption + 1 unless given)", accepts=C.whole(2, 200))
    emb_dim: int = C.static(32, "generator embedding size", accepts=C.whole(1))
    hidden_dim: int = C.static(32, "generator LSTM size", accepts=C.whole(1))
    batch_size: int = C.static(64, "sequences per G update (MLE minibatch; PG samples)", accepts=C.whole(1))
    pretrain_g_epochs: int = C.static(120, "MLE pre-training epochs of G", accepts=C.whole(0))
    pretrain_d_updates: int = C.static(46800, "D pre-training minibatch updates (paper 50 x 3 epochs over 2 x 10,000 = 46,800)", accepts=C.whole(0))
    rounds: int = C.static(200, "adversarial rounds (mle_only: extra MLE epochs)", accepts=C.whole(0))
    g_steps: int = C.static(1, "policy-gradient updates of G per round", accepts=C.whole(1))
    adv_d_updates: int = C.static(4680, "D minibatch updates per round (paper 5 x 3 epochs = 4,680)", accepts=C.whole(0))
    n_rollouts: int = C.static(16, "Monte Carlo completions per prefix", accepts=C.whole(1))
    d_batch_size: int = C.static(64, "sequences per D update (half real, half generated)", accepts=C.whole(2))
    d_emb_dim: int = C.static(64, "discriminator embedding size", accepts=C.whole(1))
    d_widths: tuple = C.static(T.PAPER_WIDTHS, "discriminator filter widths (each <= seq_len)", accepts=C.sizes(1, whole=True))
    d_filters: tuple = C.static(T.PAPER_FILTERS, "filters of each width", accepts=C.sizes(1, whole=True))
    mle_only: bool = C.static(False, "the MLE baseline: no D, the adversarial phase replaced by `rounds` MLE epochs")
    g_learning_rate: float = C.traced(0.01, "G's Adam learning rate (MLE; the policy gradient too unless pg_learning_rate)", accepts=C.number(0, 1, lo_open=True))
    pg_learning_rate: float = C.traced(0.0, "G's Adam learning rate for the policy gradient (0: g_learning_rate, as SeqGAN's code)", accepts=C.number(0, 1, hi_open=True, words="0 (g_learning_rate) or a number in (0, 1)"))
    d_learning_rate: float = C.traced(1e-4, "D's Adam learning rate", accepts=C.number(0, 1, lo_open=True))
    grad_clip: float = C.traced(5.0, "global-norm clipping of G's gradients", accepts=C.number(0, lo_open=True))
    rollout_rate: float = C.traced(0.8, "rollout network update: rollout = rate * rollout + (1 - rate) * G", accepts=C.number(0, 1))
    d_keep: float = C.traced(0.75, "D's dropout keep probability in its updates", accepts=C.number(0, 1, lo_open=True))
    d_l2: float = C.traced(0.2, "weight of the L2 of D's output layer", accepts=C.number(0))
    temperature: float = C.traced(1.0, "G's sampling temperature in training", accepts=C.number(0, lo_open=True))

    @property
    def start_token(self) -> int:
        return ORACLE_START if self.task == "oracle" else 0

    def steps_per_epoch(self, n: int) -> int:
        return n // self.batch_size


def validate(config: SeqGANConfig, num_examples: int | None = None) -> SeqGANConfig:
    """ConfigError (one sentence) for an out-of-range config; the config otherwise."""
    return check_text_gan(config, num_examples)


def check_text_gan(config, num_examples: int | None = None):
    """The checks every text GAN's config (SeqGAN's, LeakGAN's: the same task, data and
    discriminator fields) must pass; ConfigError (one sentence) or the config."""
    C.check_fields(config)
    C.require(config, "d_filters", len(config.d_filters) == len(config.d_widths) and len(config.d_widths) > 0,
              f"one whole number >= 1 per filter width ({len(config.d_widths)} widths)")
    C.require(config, "d_widths", max(config.d_widths) <= config.seq_len,
              f"a comma-separated list of whole numbers from 1 to seq_len ({config.seq_len})")
    C.require(config, "d_batch_size", config.d_batch_size % 2 == 0, "an even whole number >= 2 (half real, half generated)")
    if config.task == "oracle":
        C.require(config, "vocab_size", config.vocab_size == ORACLE_VOCAB, f"{ORACLE_VOCAB} with task='oracle' (the oracle's)")
    if num_examples is not None:
        C.require(config, "batch_size", config.batch_size <= num_examples,
                  f"a whole number from 1 to the training-set size ({num_examples})")
        C.require(config, "d_batch_size", config.d_batch_size // 2 <= num_examples,
                  f"an even whole number from 2 to twice the training-set size ({num_examples})")
    return config


# --------------------------------------------------------------------------- state

class SeqGANState(struct.PyTreeNode):
    """Generator, its rollout copy, discriminator, their optimiser states, key, step, hparams."""

    g: dict
    g_opt_mle: optax.OptState
    g_opt_pg: optax.OptState
    rollout: dict
    d: dict
    d_opt: optax.OptState
    key: jax.Array
    step: jax.Array
    hparams: dict
    config: SeqGANConfig = struct.field(pytree_node=False)


@functools.lru_cache(maxsize=None)
def build(config: SeqGANConfig):
    """``(discriminator module, G optimiser, D optimiser)`` (cached: stable treedefs)."""
    d = T.TextCNN(config.vocab_size, config.d_emb_dim, tuple(config.d_widths), tuple(config.d_filters))
    g_tx = optim.optimizer("adam", learning_rate=0.01, max_grad_norm=5.0)
    d_tx = optim.optimizer("adam", learning_rate=1e-4)
    return d, g_tx, d_tx


def init(key: jax.Array, config: SeqGANConfig, hparams: dict | None = None) -> SeqGANState:
    cfg = config
    d_net, g_tx, d_tx = build(cfg)
    hp = C.hparams(cfg, hparams)
    kg, kd, krun = jax.random.split(key, 3)
    g = T.lstm_init(kg, cfg.vocab_size, cfg.emb_dim, cfg.hidden_dim)
    d = d_net.init(kd, jnp.zeros((2, cfg.seq_len), jnp.int32))["params"]
    pg_lr = jnp.where(hp["pg_learning_rate"] > 0, hp["pg_learning_rate"], hp["g_learning_rate"])
    g_opt = lambda lr: optim.set_hyperparams(g_tx.init(g), {"learning_rate": lr, "max_grad_norm": hp["grad_clip"]})  # noqa: E731
    d_opt = optim.set_hyperparams(d_tx.init(d), {"learning_rate": hp["d_learning_rate"]})
    return SeqGANState(g=g, g_opt_mle=g_opt(hp["g_learning_rate"]), g_opt_pg=g_opt(pg_lr), rollout=jax.tree_util.tree_map(jnp.copy, g), d=d,
                       d_opt=d_opt, key=krun, step=jnp.zeros((), jnp.int32), hparams=hp, config=cfg)


# --------------------------------------------------------------------------- pieces

def generate(cfg: SeqGANConfig, params: dict, key: jax.Array, n: int, temperature=1.0) -> jax.Array:
    """``n`` sequences ``int32 [n, L]`` (coco: canonical, see :func:`jaxgen.data.text.canonical`)."""
    x = T.sample(params, key, n, cfg.seq_len, cfg.start_token, temperature)
    return x if cfg.task == "oracle" else canonical(x)


def d_logits(state: SeqGANState, d_params, tokens, key=None):
    d_net = build(state.config)[0]
    return d_net.apply({"params": d_params}, tokens, state.hparams["d_keep"], key)


def d_score(state: SeqGANState, tokens: jax.Array) -> jax.Array:
    """D's probability that each of ``tokens int [M, L]`` is real, ``[M]`` (no dropout)."""
    return T.real_prob(d_logits(state, state.d, tokens))


def d_loss(state: SeqGANState, d_params, tokens, labels, key):
    """Softmax cross-entropy of D on ``tokens [M, L]`` with ``labels int [M]`` (1 real) + L2 term."""
    logits = d_logits(state, d_params, tokens, key)
    ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    acc = jnp.mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32))
    return ce + state.hparams["d_l2"] * T.output_l2(d_params), {"d_loss": ce, "d_acc": acc}


def real_batch(state: SeqGANState, data: dict, counter, size: int, stream: int) -> jax.Array:
    """An epoch-wise shuffled minibatch ``int32 [size, L]`` of ``data["train"]``; ``counter``
    numbers the minibatches of one ``stream`` (MLE, D)."""
    n = data["train"].shape[0]
    idx = batch_indices(jax.random.fold_in(jax.random.fold_in(state.key, DATA_SEED), stream), counter, n, size)
    return data["train"][idx]


def d_update(state: SeqGANState, real: jax.Array, key: jax.Array) -> tuple[SeqGANState, dict]:
    """One D update on ``real [B/2, L]`` and as many fresh samples of G."""
    kg, kd = jax.random.split(key)
    fake = generate(state.config, state.g, kg, real.shape[0], state.hparams["temperature"])
    return d_train(state, real, fake, kd)


def d_train(state, real: jax.Array, fake: jax.Array, key: jax.Array):
    """One D update on ``real`` and ``fake int [M, L]`` (dropout key ``key``); ``state``: any state
    with SeqGAN's ``d, d_opt, hparams, config`` fields (LeakGAN's too)."""
    kd = key
    tokens = jnp.concatenate([real, fake])
    labels = jnp.concatenate([jnp.ones(real.shape[0], jnp.int32), jnp.zeros(fake.shape[0], jnp.int32)])
    grads, m = jax.grad(lambda p: d_loss(state, p, tokens, labels, kd), has_aux=True)(state.d)
    updates, opt = build(state.config)[2].update(grads, state.d_opt, state.d)
    return state.replace(d=optax.apply_updates(state.d, updates), d_opt=opt), m


def mle_loss(cfg: SeqGANConfig, g: dict, tokens: jax.Array) -> jax.Array:
    """Teacher-forcing NLL per token of ``tokens [B, L]``."""
    return -jnp.mean(T.token_logp(g, tokens, cfg.start_token))


def pg_loss(cfg: SeqGANConfig, g: dict, seqs: jax.Array, q: jax.Array) -> jax.Array:
    """The REINFORCE surrogate of G on its sampled ``seqs int [B, L]`` weighted by ``q [B, L]``
    (:func:`jaxgen.losses.policy_gradient.policy_gradient_loss` on the tokens' log-probabilities)."""
    return policy_gradient_loss(T.token_logp(g, seqs, cfg.start_token), q)


def pg_update(state: SeqGANState, key: jax.Array) -> tuple[SeqGANState, dict]:
    """One policy-gradient update of G: sample ``batch_size`` sequences, Q by Monte Carlo
    rollouts scored by D, the REINFORCE surrogate on the tokens' log-probabilities."""
    cfg, hp = state.config, state.hparams
    ks, kr = jax.random.split(key)
    seqs = generate(cfg, state.g, ks, cfg.batch_size, hp["temperature"])
    score = (lambda x: d_score(state, x)) if cfg.task == "oracle" else (lambda x: d_score(state, canonical(x)))
    q = T.mc_rewards(score, state.rollout, kr, seqs, cfg.n_rollouts, cfg.start_token, hp["temperature"])
    q = jax.lax.stop_gradient(q)

    loss, grads = jax.value_and_grad(lambda g: pg_loss(cfg, g, seqs, q))(state.g)
    updates, opt = build(cfg)[1].update(grads, state.g_opt_pg, state.g)
    g = optax.apply_updates(state.g, updates)
    return state.replace(g=g, g_opt_pg=opt), {"pg_loss": loss, "reward": jnp.mean(q[:, -1]), "q_mean": jnp.mean(q)}


def update_rollout(rollout: dict, g: dict, rate) -> dict:
    """SeqGAN's delayed copy: ``rate * rollout + (1 - rate) * g`` (the embedding copied)."""
    new = optim.polyak(rollout, g, 1.0 - rate)
    return {**new, "emb": g["emb"]}


# --------------------------------------------------------------------------- the phase steps

def mle_step(state: SeqGANState, data: dict) -> tuple[SeqGANState, dict]:
    """One MLE minibatch update of G (phase ``pretrain_g``, and the MLE baseline)."""
    cfg = state.config
    tokens = real_batch(state, data, state.step, cfg.batch_size, 0)
    loss, grads = jax.value_and_grad(lambda g: mle_loss(cfg, g, tokens))(state.g)
    updates, opt = build(cfg)[1].update(grads, state.g_opt_mle, state.g)
    g = optax.apply_updates(state.g, updates)
    return state.replace(g=g, g_opt_mle=opt, step=state.step + 1), {"g_mle_loss": loss}


def d_step(state: SeqGANState, data: dict) -> tuple[SeqGANState, dict]:
    """One D minibatch update (phase ``pretrain_d``)."""
    key = jax.random.fold_in(state.key, state.step)
    real = real_batch(state, data, state.step, state.config.d_batch_size // 2, 1)
    state, m = d_update(state, real, key)
    return state.replace(step=state.step + 1), m


def adversarial_step(state: SeqGANState, data: dict) -> tuple[SeqGANState, dict]:
    """One round: ``g_steps`` PG updates, the rollout update, ``adv_d_updates`` D updates."""
    cfg = state.config
    key = jax.random.fold_in(state.key, state.step)

    def g_body(s, i):
        s, m = pg_update(s, jax.random.fold_in(key, i))
        return s, m

    state, mg = jax.lax.scan(g_body, state, jnp.arange(cfg.g_steps))
    state = state.replace(rollout=update_rollout(state.rollout, state.g, state.hparams["rollout_rate"]))
    per_round = cfg.adv_d_updates

    def d_body(s, i):
        real = real_batch(s, data, s.step * per_round + i, cfg.d_batch_size // 2, 2)
        return d_update(s, real, jax.random.fold_in(jax.random.fold_in(key, 1 << 20), i))

    if per_round:
        state, md = jax.lax.scan(d_body, state, jnp.arange(per_round))
    else:
        md = {"d_loss": jnp.zeros((1,)), "d_acc": jnp.zeros((1,))}
    m = {**{k: jnp.mean(v) for k, v in mg.items()}, **{k: jnp.mean(v) for k, v in md.items()}}
    return state.replace(step=state.step + 1), m


# --------------------------------------------------------------------------- the run

PHASES = ("pretrain_g", "pretrain_d", "adversarial")
NAME = "SeqGAN"
EPOCH_PHASE = "pretrain_g"  # the phase whose epochs the host side evaluates


def phase_lengths(config: SeqGANConfig, n: int) -> dict:
    """``{phase: (num_steps, steps_per_epoch)}`` for ``n`` training sequences."""
    spe = config.steps_per_epoch(n)
    if config.mle_only:
        return {"pretrain_g": ((config.pretrain_g_epochs + config.rounds) * spe, spe)}
    d_epoch = max(1, (2 * n) // config.d_batch_size)
    return {"pretrain_g": (config.pretrain_g_epochs * spe, spe), "pretrain_d": (config.pretrain_d_updates, d_epoch),
            "adversarial": (config.rounds, 1)}


def text_gan_trainer(config, data: dict, validate_fn, phases_fn, init_fn) -> Trainer:
    """The phased run of a text GAN (SeqGAN, LeakGAN) over ``data = {"train": int [N, L]}``:
    ``validate_fn(config, N)`` gives the checked config, ``phases_fn(cfg, N)`` its list of
    :class:`~jaxgen.core.train.Phase`, ``init_fn(key, cfg, hparams)`` the first state; a length
    other than ``seq_len`` is one sentence."""
    train = jnp.asarray(data["train"], jnp.int32)
    n = int(train.shape[0])
    cfg = validate_fn(config, n)
    if tuple(train.shape[1:]) != (cfg.seq_len,):
        raise ConfigError(f"the training sequences have length {train.shape[1]} but seq_len={cfg.seq_len}; "
                          "set seq_len to the data's length.")
    return Trainer.phased(lambda key, hp=None: init_fn(key, cfg, hp), phases_fn(cfg, n), {"train": train}, cfg)


def _phases(cfg: SeqGANConfig, n: int) -> list:
    steps = {"pretrain_g": mle_step, "pretrain_d": d_step, "adversarial": adversarial_step}
    return [Phase(name, steps[name], num, spe) for name, (num, spe) in phase_lengths(cfg, n).items()]


def make_trainer(config: SeqGANConfig, data: dict) -> Trainer:
    """The phased run over ``data = {"train": int [N, L], ...}``."""
    return text_gan_trainer(config, data, validate, _phases, init)


def make_train(config: SeqGANConfig, data: dict):
    """``train(key, hparams=None) -> (state, {phase: metrics})`` as one program (jit/vmap it)."""
    return _make_train(make_trainer(config, data))


# --------------------------------------------------------------------------- sampling and metrics

def sample(state: SeqGANState, key: jax.Array, n: int, temperature=1.0) -> jax.Array:
    """``n`` generated sequences ``int32 [n, L]``."""
    return generate(state.config, state.g, key, n, temperature)


def nll_test(state: SeqGANState, tokens: jax.Array) -> jax.Array:
    """G's NLL per token of held-out real sequences ``tokens [M, L]``."""
    return T.nll(state.g, tokens, state.config.start_token)


__all__ = ["SeqGANConfig", "SeqGANState", "validate", "init", "make_trainer", "make_train", "mle_step", "d_step",
           "adversarial_step", "pg_update", "update_rollout", "sample", "nll_test", "d_score", "PHASES", "EOS"]
CONFIG = SeqGANConfig
