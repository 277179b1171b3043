"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

With few training images the discriminator memorises them (on the 5k MNIST subset its
accuracy climbs to ~0.98 and the generator's signal fades). DiffAugment applies the same
random, differentiable transformation T to every image D sees, real and fake, in both
players' updates: D learns on T(x) and G's gradient flows back through T. Since G is
judged only through T, it is not pushed to produce transformed images.

Policies (``GANConfig.augment``): ``"none"``, ``"translation"``, ``"cutout"`` or
``"translation,cutout"``. Images are ``[B, H, W, C]`` in [-1, 1]; uncovered and cut-out
pixels take the background value -1.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

POLICIES = ("none", "translation", "cutout", "translation,cutout")
BACKGROUND = -1.0


def translate(key: jax.Array, x: jax.Array, ratio: float = 0.125) -> jax.Array:
    """Shift each image by its own whole-pixel offset in ``[-s, s]`` per axis, ``s =
    round(ratio * side)``; pixels shifted in are ``BACKGROUND``. ``x [B, H, W, C]``."""
    b, h, w, _ = x.shape
    sh, sw = max(1, round(ratio * h)), max(1, round(ratio * w))
    ky, kx = jax.random.split(key)
    dy = jax.random.randint(ky, (b,), -sh, sh + 1)
    dx = jax.random.randint(kx, (b,), -sw, sw + 1)
    padded = jnp.pad(x, ((0, 0), (sh, sh), (sw, sw), (0, 0)), constant_values=BACKGROUND)
    window = lambda img, oy, ox: jax.lax.dynamic_slice(img, (sh - oy, sw - ox, 0), (h, w, img.shape[-1]))
    return jax.vmap(window)(padded, dy, dx)


def cutout(key: jax.Array, x: jax.Array, ratio: float = 0.5) -> jax.Array:
    """Set one square per image to ``BACKGROUND``: side ``2 * ((round(ratio * H) - 1) // 2) + 1``
    (13 pixels at 28 with ratio 0.5), centre uniform over the image (the square may be clipped
    by the border). ``x [B, H, W, C]``."""
    b, h, w, _ = x.shape
    ch, cw = round(ratio * h), round(ratio * w)
    ky, kx = jax.random.split(key)
    cy = jax.random.randint(ky, (b, 1, 1), 0, h)
    cx = jax.random.randint(kx, (b, 1, 1), 0, w)
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    inside = (jnp.abs(rows - cy) <= (ch - 1) // 2) & (jnp.abs(cols - cx) <= (cw - 1) // 2)  # [B, H, W]
    return jnp.where(inside[..., None], BACKGROUND, x)


def augment(policy: str, key: jax.Array, x: jax.Array, p: float | jax.Array = 1.0) -> jax.Array:
    """``x [B, H, W, C]`` through the transformations named in ``policy`` (identity for "none"),
    each applied to an image with probability ``p`` (drawn per image and transformation).

    ``p = 1`` is DiffAugment. A smaller ``p`` (as in ADA, Karras et al. 2020) keeps the
    augmentations from "leaking" into G: with translation at ``p = 1``, generated MNIST
    digits drift off-centre, since only the shifted distribution is matched.

    ``p`` may be a traced scalar (the GAN's ``augment_p``): then the per-image choice is always
    computed, and ``p = 1`` selects every transformed image (``U[0, 1) < 1``), the same result
    as the Python constant 1, which skips the choice."""
    if policy == "none":
        return x
    for i, name in enumerate(policy.split(",")):
        k = jax.random.fold_in(key, i)
        y = {"translation": translate, "cutout": cutout}[name](k, x)
        if not (isinstance(p, (int, float)) and p >= 1.0):
            apply = jax.random.uniform(jax.random.fold_in(k, 99), (x.shape[0], 1, 1, 1)) < p
            y = jnp.where(apply, y, x)
        x = y
    return x
