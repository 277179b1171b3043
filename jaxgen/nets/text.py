"""Networks over token sequences: the LSTM language model (SeqGAN's generator, rollout network
and synthetic oracle) and the text CNN discriminator (Zhang & LeCun 2015; Kim 2014; SeqGAN).

**The LSTM** is written as pure functions over a parameter dict (so that the oracle's stored
arrays, the generator and its delayed rollout copy are the same object type, and Polyak
averaging is a tree map). The four gates are fused into one matrix, in the order input,
forget, output, candidate::

    {"emb": [V, E], "W": [E, 4H], "U": [H, 4H], "b": [4H], "Wo": [H, V], "bo": [V]}

with the recurrence of the SeqGAN oracle (no peepholes, h and c start at zero, x the
embedding of the previous token, ``start`` at t = 0)::

    i, f, o = sigmoid(x W_* + h U_* + b_*);  c~ = tanh(x W_c + h U_c + b_c)
    c = f * c_prev + i * c~;  h = o * tanh(c);  logits = h Wo + bo

:func:`oracle_params` converts the stored oracle arrays (``Wi, Ui, bi, ...``) to this layout.

**Sampling** draws a token from ``softmax(logits / temperature)`` by inverting the CDF with one
uniform number per token (:func:`categorical`): the same distribution as
``jax.random.categorical`` (Gumbel-max), which needs V random numbers per token -- with
V = 5,000 the random numbers dominate a rollout on the CPU (measured in
``benchmarks/seqgan_oracle.py``). The LSTM's output layer and the draw are computed a tile of
rows at a time (:func:`sample_head`), and a rollout batch runs two prefixes' completions per row
(:func:`paired_continuations`): SeqGAN's oracle rollouts 4.6 s -> 0.9 s per PG step on 2 cores.

**The discriminator** (:class:`TextCNN`): an embedding, one 1-D convolution per filter width
(ReLU, max over time), a highway layer, dropout and a two-class linear output, as in SeqGAN
(embedding 64; widths 1-10, 15, 20 with 100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160,
160 filters). Its probability of "real" is :func:`real_prob`. The convolutions are
:class:`jaxgen.nets.conv.Conv1D` (flax ``nn.Conv``'s parameters; a matmul backward, since XLA:CPU's
own convolution weight gradient is ~14x slower inside the loops D is trained in).
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core.distributions import categorical_from_uniform, categorical_sample
from jaxgen.nets.conv import Conv1D

Params = dict

#: SeqGAN's discriminator: filter widths and the number of filters of each
PAPER_WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
PAPER_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


# --------------------------------------------------------------------------- the LSTM language model

def lstm_init(key: jax.Array, vocab: int, emb: int, hidden: int, std: float = 0.1) -> Params:
    """SeqGAN's generator initialisation: every weight and bias ~ N(0, std^2)."""
    ks = jax.random.split(key, 6)
    n = lambda k, shape: std * jax.random.normal(k, shape, jnp.float32)
    return {"emb": n(ks[0], (vocab, emb)), "W": n(ks[1], (emb, 4 * hidden)), "U": n(ks[2], (hidden, 4 * hidden)),
            "b": n(ks[3], (4 * hidden,)), "Wo": n(ks[4], (hidden, vocab)), "bo": n(ks[5], (vocab,))}


ORACLE_ARRAYS = {"g_embeddings": ("V", "E"), "Wi": ("E", "H"), "Ui": ("H", "H"), "bi": ("H",),
                 "Wf": ("E", "H"), "Uf": ("H", "H"), "bf": ("H",), "Wog": ("E", "H"), "Uog": ("H", "H"),
                 "bog": ("H",), "Wc": ("E", "H"), "Uc": ("H", "H"), "bc": ("H",), "Wo": ("H", "V"), "bo": ("V",)}


def oracle_params(arrays) -> Params:
    """The fused parameter dict of the SeqGAN oracle's stored arrays (``g_embeddings``,
    ``Wi, Ui, bi`` (input), ``Wf, Uf, bf`` (forget), ``Wog, Uog, bog`` (output), ``Wc, Uc, bc``
    (candidate), ``Wo, bo``)."""
    a = {k: jnp.asarray(arrays[k], jnp.float32) for k in ORACLE_ARRAYS}
    return {"emb": a["g_embeddings"], "W": jnp.concatenate([a["Wi"], a["Wf"], a["Wog"], a["Wc"]], 1),
            "U": jnp.concatenate([a["Ui"], a["Uf"], a["Uog"], a["Uc"]], 1),
            "b": jnp.concatenate([a["bi"], a["bf"], a["bog"], a["bc"]]), "Wo": a["Wo"], "bo": a["bo"]}


def sizes(p: Params) -> tuple[int, int, int]:
    """``(vocab V, embedding E, hidden H)`` of a parameter dict."""
    return p["emb"].shape[0], p["emb"].shape[1], p["U"].shape[0]


def zero_carry(p: Params, batch_shape: tuple) -> tuple[jax.Array, jax.Array]:
    h = jnp.zeros((*batch_shape, p["U"].shape[0]), jnp.float32)
    return h, h


def recur(p: Params, x: jax.Array, carry):
    """The LSTM recurrence on an input vector: ``x [..., E]``, ``carry (h, c)`` each ``[..., H]``
    -> the new ``(h, c)`` (only ``p["W"], p["U"], p["b"]`` are read, so LeakGAN's Manager, an
    LSTM over feature vectors, uses it too)."""
    h, c = carry
    z = x @ p["W"] + h @ p["U"] + p["b"]
    i, f, o, g = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


def cell(p: Params, token: jax.Array, carry):
    """One step: ``token int [...]`` (the previous token), ``carry (h, c)`` each ``[..., H]``
    -> ``(logits [..., V], new carry)``."""
    h, c = recur(p, p["emb"][token], carry)
    return h @ p["Wo"] + p["bo"], (h, c)


def inputs_of(tokens: jax.Array, start: int) -> jax.Array:
    """The input tokens of teacher forcing: ``[start, y_0, ..., y_{L-2}]`` for ``tokens [B, L]``."""
    return jnp.concatenate([jnp.full_like(tokens[:, :1], start), tokens[:, :-1]], axis=1)


def hidden_states(p: Params, tokens: jax.Array, start: int):
    """Teacher forcing: ``(h [B, L, H], carries)`` where ``carries[t]`` (each ``[L, B, H]``, time
    first) is the state after the inputs ``start, y_0, ..., y_{t-1}`` -- the state that predicts
    ``y_t`` from ``h``."""
    def step(carry, tok):
        carry = recur(p, p["emb"][tok], carry)
        return carry, carry

    _, (hs, cs) = jax.lax.scan(step, zero_carry(p, tokens.shape[:1]), inputs_of(tokens, start).T)
    return jnp.swapaxes(hs, 0, 1), (hs, cs)


def token_logp(p: Params, tokens: jax.Array, start: int, temperature=1.0) -> jax.Array:
    """``log p(y_t | y_<t)`` of every token, ``float [B, L]`` (teacher forcing)."""
    h, _ = hidden_states(p, tokens, start)
    return head_logp(p, h, tokens, temperature)


LOGP_TILE = 256  # head_logp(): rows of logits per tile


def head_logp(p: Params, h: jax.Array, tokens: jax.Array, temperature=1.0, tile: int = LOGP_TILE) -> jax.Array:
    """``log softmax((h Wo + bo) / temperature)[token]`` per row: ``h [..., H]``, ``tokens int [...]``
    -> ``float [...]``. Above ``2 tile`` rows the ``rows x V`` logits are never held whole: the
    forward and the backward (:func:`_tiled_logp`, a custom VJP that recomputes each tile's
    logits) run ``tile`` rows at a time -- SeqGAN's MLE minibatch (1,280 x 5,000 logits) 1.45x
    faster forward + backward on XLA:CPU."""
    lead = h.shape[:-1]
    rows, tok = h.reshape(-1, h.shape[-1]), tokens.reshape(-1)
    temp = jnp.asarray(temperature, h.dtype)
    m = rows.shape[0]
    if m <= 2 * tile:
        return _logp_rows(rows, p["Wo"], p["bo"], tok, temp)[0].reshape(lead)
    pad = -m % tile
    out = _tiled_logp(jnp.pad(rows, ((0, pad), (0, 0))), p["Wo"], p["bo"], jnp.pad(tok, (0, pad)), temp, tile)
    return out[:m].reshape(lead)


def _logp_rows(h, wo, bo, tok, temp):
    """``(log p[tok] [M], logsumexp [M])`` of ``h [M, H]`` (logits scaled by ``1 / temp``)."""
    z = (h @ wo + bo) / temp
    lse = jax.nn.logsumexp(z, axis=-1)
    return jnp.take_along_axis(z, tok[:, None], axis=-1)[:, 0] - lse, lse


def _tiles(x: jax.Array, tile: int) -> jax.Array:
    return x.reshape((-1, tile) + x.shape[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _tiled_logp(h, wo, bo, tok, temp, tile):
    return _tiled_logp_fwd(h, wo, bo, tok, temp, tile)[0]


def _tiled_logp_fwd(h, wo, bo, tok, temp, tile):
    lp, lse = jax.lax.map(lambda a: _logp_rows(a[0], wo, bo, a[1], temp), (_tiles(h, tile), _tiles(tok, tile)))
    return lp.reshape(-1), (h, wo, bo, tok, temp, lse.reshape(-1))


def _tiled_logp_bwd(tile, res, g):
    """d log p[y] / d z = onehot(y) - softmax(z), per tile; ``z = (h Wo + bo) / T``."""
    h, wo, bo, tok, temp, lse = res

    def body(acc, a):
        d_wo, d_bo, d_temp = acc
        ht, tt, lt, gt = a
        z = (ht @ wo + bo) / temp
        prob = jnp.exp(z - lt[:, None])
        dz = gt[:, None] * (jax.nn.one_hot(tt, z.shape[-1], dtype=z.dtype) - prob)
        dl = dz / temp  # the gradient of the unscaled logits
        zy = jnp.take_along_axis(z, tt[:, None], axis=-1)[:, 0]
        d_temp = d_temp - jnp.sum(gt * (zy - jnp.sum(prob * z, axis=-1))) / temp
        return (d_wo + ht.T @ dl, d_bo + jnp.sum(dl, axis=0), d_temp), dl @ wo.T

    init = (jnp.zeros_like(wo), jnp.zeros_like(bo), jnp.zeros_like(temp))
    (d_wo, d_bo, d_temp), dh = jax.lax.scan(body, init, (_tiles(h, tile), _tiles(tok, tile), _tiles(lse, tile),
                                                         _tiles(g, tile)))
    return dh.reshape(h.shape), d_wo, d_bo, None, d_temp


_tiled_logp.defvjp(_tiled_logp_fwd, _tiled_logp_bwd)


def nll(p: Params, tokens: jax.Array, start: int, mask: jax.Array | None = None, chunk: int = 500) -> jax.Array:
    """Mean negative log-likelihood per token of ``tokens [N, L]`` (over ``mask``'s entries),
    ``chunk`` sequences at a time (the logits of all N would be ``N L V`` floats)."""
    n, length = tokens.shape
    mask = jnp.ones(tokens.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    b = min(chunk, n)
    pad = -n % b
    tok = jnp.pad(tokens, ((0, pad), (0, 0))).reshape(-1, b, length)
    msk = jnp.pad(mask, ((0, pad), (0, 0))).reshape(-1, b, length)
    tot = jax.lax.map(lambda tm: jnp.sum(token_logp(p, tm[0], start) * tm[1]), (tok, msk))
    return -jnp.sum(tot) / jnp.maximum(jnp.sum(mask), 1.0)


def categorical(key: jax.Array, logits: jax.Array, temperature=1.0) -> jax.Array:
    """One draw from ``softmax(logits / temperature)`` per row of ``logits [..., V]`` -> ``int32 [...]``
    (the inverse CDF of :func:`jaxgen.core.distributions.categorical_from_uniform`)."""
    return categorical_sample(key, logits, temperature)


TILE = 512  # sample_head(): rows of logits computed and sampled at a time (a tile of 512 x V stays in cache)


def sample_head(p: Params, h: jax.Array, key: jax.Array, temperature=1.0, tile: int = TILE) -> jax.Array:
    """One token per row of ``h [..., H]`` from ``softmax((h Wo + bo) / temperature)`` ->
    ``int32 [...]``. With more than ``2 tile`` rows the logits are made and sampled ``tile``
    rows at a time (``lax.map``): a rollout batch's ``rows x V`` logits (19,456 x 5,000 floats
    for SeqGAN's oracle round) would otherwise go through memory three times; tiled the step
    measured 2.3x faster on XLA:CPU. The uniforms are drawn for all rows at once, so the draw
    does not depend on ``tile``."""
    lead = h.shape[:-1]
    rows = h.reshape(-1, h.shape[-1])
    u = jax.random.uniform(key, rows.shape[:1])
    m = rows.shape[0]
    if m <= 2 * tile:
        return categorical_from_uniform(u, rows @ p["Wo"] + p["bo"], temperature).reshape(lead)
    pad = -m % tile
    hs, us = _tiles(jnp.pad(rows, ((0, pad), (0, 0))), tile), _tiles(jnp.pad(u, (0, pad)), tile)
    out = jax.lax.map(lambda a: categorical_from_uniform(a[1], a[0] @ p["Wo"] + p["bo"], temperature), (hs, us))
    return out.reshape(-1)[:m].reshape(lead)


def lstm_step(p: Params, key: jax.Array, token: jax.Array, carry, temperature=1.0):
    """One sampling step of the LSTM: the input ``token int [...]``, ``carry (h, c)`` ->
    ``(the next token int32 [...], the new carry)``."""
    carry = recur(p, p["emb"][token], carry)
    return sample_head(p, carry[0], key, temperature), carry


def run_steps(step: Callable, p: Params, key: jax.Array, token: jax.Array, carry, steps: int,
              temperature=1.0) -> jax.Array:
    """``steps`` tokens sampled by ``step(p, key, token, carry, temperature) -> (next token,
    carry)`` after ``token int [...]`` from ``carry`` (one ``lax.scan``) -> ``int32 [..., steps]``."""
    def body(c, k):
        nxt, carry = step(p, k, *c, temperature)
        return (nxt, carry), nxt

    _, out = jax.lax.scan(body, (token, carry), jax.random.split(key, steps))
    return jnp.moveaxis(out, 0, -1)


def continue_from(p: Params, key: jax.Array, token: jax.Array, carry, steps: int, temperature=1.0) -> jax.Array:
    """Sample ``steps`` tokens after ``token int [...]`` from state ``carry`` -> ``int32 [..., steps]``."""
    return run_steps(lstm_step, p, key, token, carry, steps, temperature)


def sample(p: Params, key: jax.Array, n: int, length: int, start: int, temperature=1.0) -> jax.Array:
    """``n`` sequences of ``length`` tokens, ``int32 [n, length]`` (one ``lax.scan``)."""
    tok = jnp.full((n,), start, jnp.int32)
    return continue_from(p, key, tok, zero_carry(p, (n,)), length, temperature)


class Policy(NamedTuple):
    """How a sequence model continues prefixes (:func:`rollouts`): the LSTM's by default,
    LeakGAN's Manager-Worker generator (:func:`jaxgen.nets.leak.policy`) too.

    ``prefix_states(p, tokens int [B, L], start) -> (token int [L-1, B], carry)``: for each
    prefix length t = 1 .. L-1 the last input token ``y_{t-1}`` and the state before it (a
    pytree of ``[L-1, B, ...]`` arrays); ``step(p, key, token int [...], carry, temperature)
    -> (next token int32 [...], new carry)``: one sampling step (:func:`lstm_step`'s signature)."""

    prefix_states: Callable
    step: Callable


def _lstm_prefix_states(p: Params, tokens: jax.Array, start: int):
    length = tokens.shape[1]
    _, (hs, cs) = hidden_states(p, tokens, start)  # [s]: the state after inputs start, y_0..y_{s-1}
    # prefix t (y_0..y_{t-1}) continues with input y_{t-1} from the state [t-1]
    return tokens.T[: length - 1], (hs[: length - 1], cs[: length - 1])


LSTM_POLICY = Policy(_lstm_prefix_states, lstm_step)


def splice(tokens: jax.Array, gen: jax.Array, every: int = 1) -> jax.Array:
    """``int32 [K, N, B, L]``: entry ``[j, n, b]`` = ``tokens[b, :t]`` then ``gen[j, n, b, :L-t]``
    with ``t = (j + 1) every`` (``tokens int [B, L]``, ``gen int [K, N, B, L-every]`` the
    completions of the prefixes of ``every, 2 every, .. < L`` tokens)."""
    length = tokens.shape[1]
    t = (jnp.arange(gen.shape[0]) + 1)[:, None, None, None] * every
    s = jnp.arange(length)[None, None, None, :]
    idx = jnp.clip(s - t, 0, gen.shape[-1] - 1)
    gen_full = jnp.take_along_axis(gen, jnp.broadcast_to(idx, gen.shape[:3] + (length,)), axis=-1)
    real = jnp.broadcast_to(tokens[None, None], gen_full.shape)
    return jnp.where(s < t, real, gen_full).astype(jnp.int32)


def paired_continuations(step: Callable, p: Params, key: jax.Array, token: jax.Array, carry, lengths: Sequence[int],
                         width: int, temperature=1.0) -> jax.Array:
    """Completions of K starts of different lengths, two to a row: ``int32 [K, ..., width]``,
    entry ``[j, ..., i]`` (``i < lengths[j]``) the i-th token sampled by ``step`` (:class:`Policy`)
    after ``token[j] int [K, ...]`` from ``carry[j]`` (a pytree of ``[K, ...]`` arrays); entries
    past ``lengths[j]`` are unspecified.

    Start j shares a row with start K-1-j: the row runs j's ``lengths[j]`` steps, then switches
    its state to K-1-j's and runs ``lengths[K-1-j]`` more. For the descending lengths of the
    prefixes of a sequence (L-1, L-2, .., 1) that is one scan of L steps over ceil(K/2) rows
    instead of L-1 steps over K rows: 190 row-steps instead of 361 for SeqGAN's length 20, no
    step spent past the end of a completion."""
    k = len(lengths)
    half = (k + 1) // 2
    n = np.asarray(lengths, np.int64)
    a = np.arange(half)
    b = k - 1 - a  # the middle start of an odd K pairs with itself: its second half is dropped
    total = int(np.max(n[a] + np.where(b != a, n[b], 0)))
    switch = jnp.asarray(n[a])
    first = jax.tree_util.tree_map(lambda x: x[a], (token, carry))
    second = jax.tree_util.tree_map(lambda x: x[b], (token, carry))

    def body(c, xs):
        s, kk = xs
        at = s == switch  # [half]: rows whose first completion ended

        def sel(new, old):
            return jnp.where(at.reshape((half,) + (1,) * (old.ndim - 1)), new, old)

        tok, cr = jax.tree_util.tree_map(sel, second, c)
        nxt, cr = step(p, kk, tok, cr, temperature)
        return (nxt, cr), nxt

    _, out = jax.lax.scan(body, first, (jnp.arange(total), jax.random.split(key, total)))
    out = jnp.moveaxis(out, 0, -1)  # [half, ..., total]
    j = np.arange(k)
    row = np.where(j < half, j, k - 1 - j)
    off = np.where(j < half, 0, n[row])  # the second start of a row begins where the first ended
    when = np.minimum(off[:, None] + np.arange(width)[None, :], total - 1)  # [K, width]
    full = out[row]  # [K, ..., total]
    idx = jnp.asarray(when).reshape((k,) + (1,) * (full.ndim - 2) + (width,))
    return jnp.take_along_axis(full, jnp.broadcast_to(idx, full.shape[:-1] + (width,)), axis=-1)


def rollouts(p: Params, key: jax.Array, tokens: jax.Array, n_rollouts: int, start: int, temperature=1.0,
             policy: Policy = LSTM_POLICY, every: int = 1) -> jax.Array:
    """Monte Carlo completions of every prefix: ``int32 [L-1, N, B, L]``, entry ``[t-1, n, b]`` =
    the first ``t`` tokens of ``tokens[b]`` (``int [B, L]``), then ``L - t`` tokens sampled by
    ``p`` (t = 1 .. L-1). All prefixes and completions run in one scan (two completions to a
    row, :func:`paired_continuations`: L steps over a batch of ``ceil((L-1)/2) N B``).
    ``policy``: the model ``p`` is (:class:`Policy`; default the LSTM). ``every``: only the
    prefixes of ``every, 2 every, .. < L`` tokens (``[(L-1) // every, N, B, L]``; LeakGAN's
    c-step rollouts)."""
    length = tokens.shape[1]
    tok, carry = policy.prefix_states(p, tokens, start)
    if every > 1:
        tok, carry = jax.tree_util.tree_map(lambda x: x[every - 1:: every], (tok, carry))
    grow = lambda x: jnp.broadcast_to(x[:, None], (x.shape[0], n_rollouts) + x.shape[1:])  # noqa: E731
    lengths = [length - (j + 1) * every for j in range(tok.shape[0])]
    gen = paired_continuations(policy.step, p, key, grow(tok), jax.tree_util.tree_map(grow, carry), lengths,
                               length - every, temperature)  # [K, N, B, L-every]
    return splice(tokens, gen, every)


def mc_rewards(score_fn, p: Params, key: jax.Array, tokens: jax.Array, n_rollouts: int, start: int,
               temperature=1.0, policy: Policy = LSTM_POLICY, every: int = 1) -> jax.Array:
    """SeqGAN's action values: ``Q [B, L]`` with ``Q[b, t-1]`` = the mean of ``score_fn`` over
    ``n_rollouts`` completions of the prefix ``tokens[b, :t]`` by ``p`` (t < L), and
    ``Q[b, L-1] = score_fn(tokens)[b]``. ``score_fn: int [M, L] -> float [M]`` (e.g. D's
    probability of "real"); the completions are scored one prefix length at a time (``lax.map``).
    ``policy``: the model ``p`` is (:func:`rollouts`). ``every > 1``: rollouts from the prefixes
    of ``every, 2 every, ..`` tokens only, each token taking the Q of the first of them at or
    after it (the last ones D's score of the whole sequence)."""
    b, length = tokens.shape
    full = rollouts(p, key, tokens, n_rollouts, start, temperature, policy, every)  # [K, N, B, L]
    scores = jax.lax.map(lambda x: score_fn(x.reshape(-1, length)).reshape(n_rollouts, b), full)
    q = jnp.concatenate([jnp.mean(scores, axis=1), score_fn(tokens)[None]], axis=0)  # [K + 1, B]
    if every == 1:
        return q.T
    j = jnp.minimum(jnp.arange(length) // every, q.shape[0] - 1)  # token s: the prefix of ceil((s+1)/every) blocks
    return q[j].T


# --------------------------------------------------------------------------- the text CNN

class TextCNN(nn.Module):
    """SeqGAN's discriminator: ``tokens int [B, L] -> logits [B, 2]`` (class 1 = real).

    Attributes:
      vocab: vocabulary size.
      emb: embedding size (paper 64).
      widths: filter widths (each <= L); filters: the number of filters of each width.
    Dropout (keep probability ``keep``, traced) is applied before the output layer when a
    ``dropout_key`` is given. ``features=True``: the highway layer's output ``[B, sum(filters)]``
    instead (the feature vector LeakGAN's generator reads; no dropout, the output layer unused).
    """

    vocab: int
    emb: int = 64
    widths: Sequence[int] = PAPER_WIDTHS
    filters: Sequence[int] = PAPER_FILTERS

    @nn.compact
    def __call__(self, tokens: jax.Array, keep=1.0, dropout_key: jax.Array | None = None,
                 features: bool = False) -> jax.Array:
        table = self.param("embedding", nn.initializers.uniform(2.0), (self.vocab, self.emb))
        x = table[tokens] - 1.0  # uniform in [-1, 1), as SeqGAN
        pooled = []
        for w, n in zip(self.widths, self.filters):
            y = Conv1D(n, w, kernel_init=nn.initializers.truncated_normal(0.1),
                       bias_init=nn.initializers.constant(0.1), name=f"conv{w}")(x)  # nn.Conv's params
            pooled.append(jnp.max(nn.relu(y), axis=1))
        hcat = jnp.concatenate(pooled, axis=-1)
        size = hcat.shape[-1]
        gate = jax.nn.sigmoid(nn.Dense(size, name="highway_gate")(hcat))
        hcat = gate * nn.relu(nn.Dense(size, name="highway")(hcat)) + (1.0 - gate) * hcat
        if features:  # LeakGAN's leaked feature vector (before dropout and the output layer)
            return hcat
        if dropout_key is not None:
            mask = jax.random.bernoulli(dropout_key, keep, hcat.shape)
            hcat = jnp.where(mask, hcat / keep, 0.0)
        return nn.Dense(2, kernel_init=nn.initializers.truncated_normal(0.1),
                        bias_init=nn.initializers.constant(0.1), name="out")(hcat)


def real_prob(logits: jax.Array) -> jax.Array:
    """D's probability that a sequence is real, ``[B]``, from its logits ``[B, 2]``."""
    return jax.nn.softmax(logits, axis=-1)[..., 1]


def output_l2(d_params: Params) -> jax.Array:
    """SeqGAN's L2 term: ``(|W|^2 + |b|^2) / 2`` of the output layer only."""
    out = d_params["out"]
    return 0.5 * (jnp.sum(out["kernel"] ** 2) + jnp.sum(out["bias"] ** 2))


__all__ = ["lstm_init", "oracle_params", "cell", "hidden_states", "token_logp", "head_logp", "nll", "categorical",
           "categorical_from_uniform", "sample_head", "lstm_step", "run_steps", "paired_continuations", "continue_from", "sample", "rollouts", "mc_rewards", "recur", "splice", "Policy", "LSTM_POLICY", "TextCNN", "real_prob", "output_l2",
           "PAPER_WIDTHS", "PAPER_FILTERS", "ORACLE_ARRAYS"]
