"""DiffAugment: translation and cutout against brute-force expectations, and gradients."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.generative import augment as A


def _shift(img, dy, dx, fill=A.BACKGROUND):
    """Reference: ``img [H, W, C]`` moved by (dy, dx) whole pixels, ``fill`` shifted in."""
    h, w, _ = img.shape
    out = np.full_like(img, fill)
    ys, yd = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    xs, xd = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    out[yd, xd] = img[ys, xs]
    return out


def test_translation_is_one_whole_pixel_shift_per_image_within_the_range():
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (16, 28, 28, 2), minval=-0.9, maxval=1.0))
    y = np.asarray(A.translate(jax.random.PRNGKey(1), jnp.asarray(x)))
    s = round(0.125 * 28)  # 4 pixels
    shifts = []
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1) if np.array_equal(y[i], _shift(x[i], dy, dx))]
        assert len(hits) == 1, f"image {i}: {hits}"
        shifts.append(hits[0])
    assert len(set(shifts)) > 4  # each image draws its own offset


def test_translation_gradient_is_one_on_kept_pixels_and_zero_on_dropped_ones():
    x = jnp.zeros((3, 8, 8, 1))
    key = jax.random.PRNGKey(3)
    g = np.asarray(jax.grad(lambda v: jnp.sum(A.translate(key, v)))(x))
    kept = np.asarray(A.translate(key, x + 1.0)) != A.BACKGROUND  # output pixels that came from the input
    assert set(np.unique(g)) <= {0.0, 1.0}
    np.testing.assert_array_equal(g.sum(axis=(1, 2, 3)), kept.sum(axis=(1, 2, 3)))


def test_cutout_blanks_one_13_pixel_square_or_its_clipped_part():
    x = jnp.ones((32, 28, 28, 1))
    y = np.asarray(A.cutout(jax.random.PRNGKey(0), x))
    assert set(np.unique(y)) <= {1.0, A.BACKGROUND}
    for img in y[..., 0]:
        rows, cols = np.nonzero(img == A.BACKGROUND)
        assert rows.size > 0
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert rows.size == h * w and h <= 13 and w <= 13  # one axis-aligned rectangle
    full = [img for img in y[..., 0] if (img == A.BACKGROUND).sum() == 169]
    assert full  # the unclipped square is 13 x 13


def test_none_is_the_identity_and_policies_compose():
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1))
    assert A.augment("none", jax.random.PRNGKey(0), x) is x
    both = A.augment("translation,cutout", jax.random.PRNGKey(5), x)
    by_hand = A.cutout(jax.random.fold_in(jax.random.PRNGKey(5), 1), A.translate(jax.random.fold_in(jax.random.PRNGKey(5), 0), x))
    np.testing.assert_array_equal(both, by_hand)


def test_probability_applies_each_transformation_to_about_that_share_of_images():
    x = jnp.zeros((400, 8, 8, 1))
    y = np.asarray(A.augment("cutout", jax.random.PRNGKey(2), x, p=0.25))
    touched = (y == A.BACKGROUND).any(axis=(1, 2, 3)).mean()
    assert 0.18 < touched < 0.32  # binomial(400, 0.25): sd 0.022
    np.testing.assert_array_equal(A.augment("cutout", jax.random.PRNGKey(2), x, p=1.0) == A.BACKGROUND,
                                  A.cutout(jax.random.fold_in(jax.random.PRNGKey(2), 0), x) == A.BACKGROUND)
