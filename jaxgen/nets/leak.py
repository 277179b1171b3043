"""LeakGAN's hierarchical generator (Guo et al. 2018): a Manager LSTM that reads the feature
vector the discriminator "leaks" and emits goals, and a Worker LSTM whose per-token output
matrix is steered by them.

Parameters are a dict of plain arrays (as :mod:`jaxgen.nets.text`'s LSTM)::

    {"worker":  {"emb": [V, E], "W": [E, 4H], "U": [H, 4H], "b": [4H], "O": [H, k, V], "bO": [k, V]},
     "manager": {"W": [F, 4M], "U": [M, 4M], "b": [4M], "Wg": [M, F], "bg": [F]},
     "psi": [F, k]}

with F the feature size of D (``sum(filters)``), k the goal embedding size (paper 16), M the
Manager's hidden size. Step t (emitting token y_t, with y_<t generated so far):

* f_t = D's feature vector (:class:`jaxgen.nets.text.TextCNN` with ``features=True``) of the
  prefix y_<t padded to length L with ``pad``; no gradient flows into D (``stop_gradient``);
* Manager: ``h^M_t = LSTM(f_t, h^M_{t-1})``, ``g_t = normalise(h^M_t Wg + bg)`` (unit norm, [F]);
* ``w_t = psi^T sum_{i=0}^{c-1} g_{t-i}`` (the c most recent goals, zero before t = 0) [k];
* Worker: ``h^W_t = LSTM(emb[y_{t-1}], h^W_{t-1})``, ``O_t = h^W_t O + bO`` [k, V] and
  ``logits_t = O_t^T w_t`` [V].

The window includes the current goal (the paper writes ``g_{t-c} .. g_{t-1}``; the original code
keeps a learned initial goal instead), so w_0 is not zero. The Worker's losses see the goals
through ``stop_gradient``: the Manager learns only from its own goal-direction loss
(:func:`goal_loss`), the Worker (and psi) from maximum likelihood or the intrinsic reward
(:func:`intrinsic_reward`), as in the original code's separate parameter lists.

Shapes: ``feat_fn: int [M, L] -> float [M, F]`` (D's features, a closure over D's parameters);
time-first arrays ``[L, B, ...]`` inside, ``[B, L]`` for per-token outputs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.nets import text as T

Params = dict


def init(key: jax.Array, vocab: int, emb: int, hidden: int, feat: int, manager_hidden: int, goal_size: int,
         std: float = 0.1) -> Params:
    """Every weight and bias ~ N(0, std^2) (SeqGAN's / LeakGAN's generator initialisation)."""
    ks = jax.random.split(key, 12)
    n = lambda k, shape: std * jax.random.normal(k, shape, jnp.float32)  # noqa: E731
    worker = {"emb": n(ks[0], (vocab, emb)), "W": n(ks[1], (emb, 4 * hidden)), "U": n(ks[2], (hidden, 4 * hidden)),
              "b": n(ks[3], (4 * hidden,)), "O": n(ks[4], (hidden, goal_size, vocab)), "bO": n(ks[5], (goal_size, vocab))}
    m = manager_hidden
    manager = {"W": n(ks[6], (feat, 4 * m)), "U": n(ks[7], (m, 4 * m)), "b": n(ks[8], (4 * m,)),
               "Wg": n(ks[9], (m, feat)), "bg": n(ks[10], (feat,))}
    return {"worker": worker, "manager": manager, "psi": n(ks[11], (feat, goal_size))}


def sizes(g: Params) -> dict:
    """``{"V", "E", "H", "F", "M", "k"}`` of a parameter dict."""
    w, m = g["worker"], g["manager"]
    return {"V": w["emb"].shape[0], "E": w["emb"].shape[1], "H": w["U"].shape[0], "F": m["Wg"].shape[1],
            "M": m["U"].shape[0], "k": g["psi"].shape[1]}


def normalise(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``x / |x|`` over the last axis (zero stays zero)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def cosine(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Cosine similarity over the last axis, ``[...]`` (0 where either vector is zero)."""
    return jnp.sum(normalise(a, eps) * normalise(b, eps), axis=-1)


def manager_step(manager: Params, f: jax.Array, carry):
    """``f [..., F]``, carry ``(h, c)`` each ``[..., M]`` -> ``(goal g [..., F] (unit norm), carry)``."""
    carry = T.recur(manager, f, carry)
    return normalise(carry[0] @ manager["Wg"] + manager["bg"]), carry


def window_sum(goals: jax.Array, c: int) -> jax.Array:
    """``sum_{i=0}^{c-1} goals[t-i]`` for every t of time-first ``goals [L, ...]`` (entries before
    t = 0 are zero) -> ``[L, ...]``."""
    cs = jnp.cumsum(goals, axis=0)
    shifted = jnp.concatenate([jnp.zeros((c,) + goals.shape[1:], goals.dtype), cs], axis=0)[: goals.shape[0]]
    return cs - shifted


def worker_logits(worker: Params, h: jax.Array, w: jax.Array) -> jax.Array:
    """``logits [..., V] = (h O + bO)^T w`` for ``h [..., H]``, ``w [..., k]``: the Worker's
    output matrix ``O_t [k, V]`` scored by the goal embedding (one matmul of ``h (x) w``)."""
    hd, k, v = worker["O"].shape
    hw = (h[..., :, None] * w[..., None, :]).reshape(*h.shape[:-1], hd * k)
    return hw @ worker["O"].reshape(hd * k, v) + w @ worker["bO"]


def features_of(feat_fn, tokens: jax.Array) -> jax.Array:
    """D's features of ``tokens int [..., L]`` -> ``[..., F]``, with no gradient into D."""
    f = feat_fn(tokens.reshape(-1, tokens.shape[-1]))
    return jax.lax.stop_gradient(f.reshape(*tokens.shape[:-1], f.shape[-1]))


def prefixes(tokens: jax.Array, pad: int) -> jax.Array:
    """``int [L+1, B, L]``: entry t = ``tokens [B, L]`` with positions >= t set to ``pad``."""
    length = tokens.shape[1]
    t = jnp.arange(length + 1)[:, None, None]
    return jnp.where(jnp.arange(length)[None, None, :] < t, tokens[None], pad).astype(tokens.dtype)


def teacher(g: Params, feat_fn, tokens: jax.Array, start: int, c: int, pad: int) -> dict:
    """Teacher forcing over ``tokens int [B, L]``: ``{"feats": [L+1, B, F]`` (f_t of the prefix of
    t tokens), ``"goals": [L, B, F]``, ``"w": [L, B, k]``, ``"logits": [B, L, V]``, ``"worker":
    (h, c) [L, B, H]`` (the state that predicts y_t, :func:`jaxgen.nets.text.hidden_states`),
    ``"manager": (h, c) [L, B, M]`` (after f_0 .. f_t)}``."""
    feats = features_of(feat_fn, prefixes(tokens, pad))  # [L+1, B, F]

    def mstep(carry, f):
        goal, carry = manager_step(g["manager"], f, carry)
        return carry, (goal, carry)

    m = g["manager"]["U"].shape[0]
    zero = jnp.zeros((tokens.shape[0], m), jnp.float32)
    _, (goals, mcarry) = jax.lax.scan(mstep, (zero, zero), feats[:-1])
    w = window_sum(jax.lax.stop_gradient(goals), c) @ g["psi"]  # [L, B, k]
    h, wcarry = T.hidden_states(g["worker"], tokens, start)  # [B, L, H]
    logits = worker_logits(g["worker"], h, jnp.swapaxes(w, 0, 1))
    return {"feats": feats, "goals": goals, "w": w, "logits": logits, "worker": wcarry, "manager": mcarry}


def token_logp(logits: jax.Array, tokens: jax.Array, temperature=1.0) -> jax.Array:
    """``log softmax(logits / temperature)`` of ``tokens [B, L]`` from ``logits [B, L, V]``."""
    z = logits / temperature
    return jnp.take_along_axis(z, tokens[..., None], axis=-1)[..., 0] - jax.nn.logsumexp(z, axis=-1)


def directions(feats: jax.Array, c: int) -> jax.Array:
    """The feature changes ``f_{min(t+c, L)} - f_t`` for t = 0 .. L-1, ``[L, B, F]`` from ``feats [L+1, B, F]``."""
    length = feats.shape[0] - 1
    ahead = feats[jnp.minimum(jnp.arange(length) + c, length)]
    return ahead - feats[:-1]


def intrinsic_reward(feats: jax.Array, goals: jax.Array, c: int) -> jax.Array:
    """The Worker's reward ``cos(f_{t+c} - f_t, g_t)``, ``[B, L]`` (no gradient)."""
    return jax.lax.stop_gradient(cosine(directions(feats, c), goals)).T


def goal_loss(feats: jax.Array, goals: jax.Array, q: jax.Array, c: int) -> jax.Array:
    """The Manager's goal-direction loss ``-mean_t Q_t cos(f_{t+c} - f_t, g_t)`` (``q [B, L]``;
    1 in pre-training, the Monte Carlo Q in adversarial training); gradient into the goals only."""
    cos = cosine(jax.lax.stop_gradient(directions(feats, c)), goals).T  # [B, L]
    return -jnp.mean(jax.lax.stop_gradient(q) * cos)


# --------------------------------------------------------------------------- sampling and rollouts

def policy(feat_fn, c: int, pad: int) -> T.Policy:
    """The generator as a :class:`jaxgen.nets.text.Policy` (for :func:`jaxgen.nets.text.rollouts`
    and :func:`jaxgen.nets.text.mc_rewards`), reading D's features through ``feat_fn``.

    Its carry: ``(worker (h, c), manager (h, c), goals [..., c, F] (the last c, oldest first),
    prefix int [..., L], t int [...])``."""

    def step(g, k, tok, carry, temperature=1.0):
        wc, mc, buf, prefix, t = carry
        f = features_of(feat_fn, prefix)
        goal, mc = manager_step(g["manager"], f, mc)
        buf = jnp.concatenate([buf[..., 1:, :], goal[..., None, :]], axis=-2)
        w = jax.lax.stop_gradient(jnp.sum(buf, axis=-2)) @ g["psi"]
        wc = T.recur(g["worker"], g["worker"]["emb"][tok], wc)
        nxt = T.categorical(k, worker_logits(g["worker"], wc[0], w), temperature)
        at = jnp.arange(prefix.shape[-1]) == t[..., None]
        prefix = jnp.where(at, nxt[..., None], prefix)
        return nxt, (wc, mc, buf, prefix, t + 1)

    def prefix_states(g, tokens, start):
        b, length = tokens.shape
        tf = teacher(g, feat_fn, tokens, start, c, pad)
        hs, cs = tf["worker"]
        hm, cm = tf["manager"]
        gp = jnp.concatenate([jnp.zeros((c,) + tf["goals"].shape[1:]), tf["goals"]])  # [c + L, B, F]
        ts = jnp.arange(1, length)
        buf = jnp.moveaxis(gp[ts[:, None] + jnp.arange(c)[None, :]], 1, 2)  # [L-1, B, c, F]: g_{t-c} .. g_{t-1}
        pre = prefixes(tokens, pad)[1:length]
        tt = jnp.broadcast_to(ts[:, None], (length - 1, b))
        carry = ((hs[: length - 1], cs[: length - 1]), (hm[: length - 1], cm[: length - 1]), buf, pre, tt)
        return tokens.T[: length - 1], carry

    return T.Policy(prefix_states, step)


def start_carry(g: Params, n: int, length: int, c: int, pad: int):
    """The carry before the first token, for ``n`` sequences of ``length``."""
    s = sizes(g)
    z = lambda d: jnp.zeros((n, d), jnp.float32)  # noqa: E731
    return ((z(s["H"]), z(s["H"])), (z(s["M"]), z(s["M"])), jnp.zeros((n, c, s["F"]), jnp.float32),
            jnp.full((n, length), pad, jnp.int32), jnp.zeros((n,), jnp.int32))


def sample(g: Params, feat_fn, key: jax.Array, n: int, length: int, start: int, c: int, pad: int,
           temperature=1.0) -> jax.Array:
    """``n`` sequences ``int32 [n, length]`` (one ``lax.scan``, D's features read every step)."""
    tok = jnp.full((n,), start, jnp.int32)
    return T.run_steps(policy(feat_fn, c, pad).step, g, key, tok, start_carry(g, n, length, c, pad), length,
                       temperature)


__all__ = ["init", "sizes", "normalise", "cosine", "manager_step", "window_sum", "worker_logits", "features_of",
           "prefixes", "teacher", "token_logp", "directions", "intrinsic_reward", "goal_loss", "policy",
           "start_carry", "sample"]
