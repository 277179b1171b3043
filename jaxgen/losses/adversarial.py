"""Adversarial losses: GAN losses, the gradient penalty, R1 and weight clipping, as small pure
functions on discriminator scores -- for the GANs, GAIL's discriminator and the text GANs.

Every discriminator output here is a raw score (a logit for the minimax game, a critic value
for WGAN / hinge); nothing applies a sigmoid before the loss. Shapes: ``real`` and ``fake``
scores are ``[B]`` (one per example; the two batches may differ in size), images or any
other inputs ``[B, ...]``; the losses are scalars ``[]``.

==========  ===========================================================  ==========================
loss        discriminator / critic (minimised)                           generator (minimised)
==========  ===========================================================  ==========================
``bce``     BCE(real -> 1) + BCE(fake -> 0)                              BCE(fake -> 1) (non-saturating)
            = E[softplus(-D(x))] + E[softplus(D(G(z)))]                  = E[softplus(-D(G(z)))]
``wgan``    E[D(G(z))] - E[D(x)]  (+ weight clipping to [-c, c])         -E[D(G(z))]
``wgan-gp`` E[D(G(z))] - E[D(x)] + lambda E[(|grad D(x^)|_2 - 1)^2]      -E[D(G(z))]
``hinge``   E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]                     -E[D(G(z))]
==========  ===========================================================  ==========================

Penalties on the discriminator's input gradient share one helper, :func:`input_grad_sq_norms`:
the gradient penalty (Gulrajani et al. 2017) at interpolates :func:`interpolate` and R1
(Mescheder et al. 2018) at real inputs. Weights (the smoothing, lambda, gamma, the clip
bound) may be traced scalars; the caller multiplies the penalties by their weight.

References: Goodfellow et al. 2014 (minimax, non-saturating G); Salimans et al. 2016
(one-sided label smoothing); Arjovsky et al. 2017 (WGAN, clipping, RMSProp); Gulrajani et al.
2017 (WGAN-GP: x^ = eps x + (1 - eps) G(z), eps ~ U[0, 1] per example); Lim & Ye 2017 /
Miyato et al. 2018 (hinge); Mescheder et al. 2018 (R1).
"""
from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp

LOSSES = ("bce", "wgan", "wgan-gp", "hinge")
REWARDS = ("softplus", "logit")


def _no_smoothing(smoothing) -> bool:
    """Whether ``smoothing`` is a Python zero (then its term is not computed at all)."""
    return isinstance(smoothing, (int, float)) and smoothing == 0


def bce_d_loss(real: jax.Array, fake: jax.Array, smoothing: float | jax.Array = 0.0) -> jax.Array:
    """Minimax discriminator loss -E[log sigmoid(real)] - E[log(1 - sigmoid(fake))].

    Args:
      real: scores (logits) of real examples ``[B]``.
      fake: scores of generated examples ``[B']``.
      smoothing: s, one-sided label smoothing (Salimans et al. 2016): the real target is
        1 - s, i.e. the real term is E[(1 - s) softplus(-real) + s softplus(real)]; fakes keep
        target 0. A scalar (may be traced); a Python 0 skips the term.
    Returns:
      ``[]``.
    """
    chex.assert_rank([real, fake], 1)
    if _no_smoothing(smoothing):
        real_term = jax.nn.softplus(-real)
    else:
        chex.assert_rank(smoothing, 0)
        real_term = (1.0 - smoothing) * jax.nn.softplus(-real) + smoothing * jax.nn.softplus(real)
    return jnp.mean(real_term) + jnp.mean(jax.nn.softplus(fake))


def bce_g_loss(fake: jax.Array) -> jax.Array:
    """Non-saturating generator loss -E[log sigmoid(fake)]. ``fake [B] -> []``."""
    chex.assert_rank(fake, 1)
    return jnp.mean(jax.nn.softplus(-fake))


def wgan_d_loss(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Critic loss E[fake] - E[real] (the negated Wasserstein estimate). ``[B], [B'] -> []``."""
    chex.assert_rank([real, fake], 1)
    return jnp.mean(fake) - jnp.mean(real)


def wgan_g_loss(fake: jax.Array) -> jax.Array:
    """Generator loss -E[critic(fake)] (also the hinge generator loss). ``fake [B] -> []``."""
    chex.assert_rank(fake, 1)
    return -jnp.mean(fake)


def hinge_d_loss(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Hinge discriminator loss E[relu(1 - real)] + E[relu(1 + fake)]. ``[B], [B'] -> []``."""
    chex.assert_rank([real, fake], 1)
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def d_loss(loss: str, real: jax.Array, fake: jax.Array, smoothing: float | jax.Array = 0.0) -> jax.Array:
    """The discriminator loss of ``loss`` (one of :data:`LOSSES`) on scores ``real [B]``,
    ``fake [B']`` -> ``[]``, without the gradient penalty (added by the caller); ``smoothing``:
    bce's one-sided label smoothing (ignored by the other losses)."""
    if loss == "bce":
        return bce_d_loss(real, fake, smoothing)
    if loss in ("wgan", "wgan-gp"):
        return wgan_d_loss(real, fake)
    if loss == "hinge":
        return hinge_d_loss(real, fake)
    raise ValueError(f"loss={loss!r} is not accepted; choose one of: {', '.join(LOSSES)}.")


def g_loss(loss: str, fake: jax.Array) -> jax.Array:
    """The generator loss of ``loss`` on the scores of its samples ``fake [B]`` -> ``[]``."""
    if loss == "bce":
        return bce_g_loss(fake)
    if loss in LOSSES:
        return wgan_g_loss(fake)
    raise ValueError(f"loss={loss!r} is not accepted; choose one of: {', '.join(LOSSES)}.")


def interpolate(key: jax.Array, real: jax.Array, fake: jax.Array) -> jax.Array:
    """x^ = eps * real + (1 - eps) * fake with eps ~ U[0, 1], one per example.

    ``real``, ``fake``: ``[B, ...]`` (the same shape) -> ``[B, ...]``."""
    chex.assert_equal_shape([real, fake])
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    return eps * real + (1.0 - eps) * fake


def input_grad_sq_norms(critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """|grad_x critic(x)_i|_2^2 per example: ``critic: [B, ...] -> [B]``, ``x [B, ...]`` -> ``[B]``.

    The gradient is that of the sum of the scores over the batch: each example's own input
    gradient when the critic treats examples independently (no batch norm)."""
    def total(xx):
        scores = critic(xx)
        chex.assert_shape(scores, (xx.shape[0],))
        return jnp.sum(scores)

    grads = jax.grad(total)(x)
    return jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1)


def gradient_penalty(critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """E[(|grad_x critic(x)|_2 - 1)^2] over the examples of ``x [B, ...]`` (Gulrajani et al.
    2017; ``x`` = :func:`interpolate` of real and fake) -> ``[]``; the caller multiplies by lambda.

    ``critic`` maps ``[B, ...] -> [B]`` with examples independent (no batch norm)."""
    norms = jnp.sqrt(input_grad_sq_norms(critic, x) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def r1_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
    """R1 (Mescheder et al. 2018): 0.5 E[|grad_x D(x)|_2^2] at real inputs ``[B, ...]`` -> ``[]``;
    the caller multiplies by gamma. With batch norm in D the gradient is that of the batch's
    summed score."""
    return 0.5 * jnp.mean(input_grad_sq_norms(critic, real))


def clip_weights(params, c: float | jax.Array):
    """Every leaf of ``params`` clamped to [-c, c] (WGAN's crude Lipschitz constraint); ``c``
    a scalar (may be traced)."""
    chex.assert_rank(c, 0)
    return jax.tree_util.tree_map(lambda p: jnp.clip(p, -c, c), params)


def d_accuracy(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Share of real scores > 0 and fake scores < 0 (the discriminator's accuracy at threshold
    0, the two batches weighted equally). ``[B], [B'] -> []``."""
    chex.assert_rank([real, fake], 1)
    return 0.5 * (jnp.mean(real > 0) + jnp.mean(fake < 0))


def discriminator_reward(logits: jax.Array, form: str) -> jax.Array:
    """A reward from a discriminator's logits ``z`` (``D = sigmoid(z)`` the probability of
    "expert"), elementwise ``[...] -> [...]`` (GAIL, Ho & Ermon 2016; AIRL, Fu et al. 2018):

    * ``softplus``: ``-log(1 - D) = softplus(z)`` > 0 (a bonus for every step survived: it
      favours long episodes, right where the expert survives, biased where it ends early);
    * ``logit``: ``log D - log(1 - D) = z`` (signed; the AIRL form, neutral about episode length
      only in expectation).

    Both computed from the logit, stable for any ``z``."""
    if form == "softplus":
        return jax.nn.softplus(logits)
    if form == "logit":
        return logits
    raise ValueError(f"reward={form!r} is not accepted; choose one of: {', '.join(REWARDS)}.")
