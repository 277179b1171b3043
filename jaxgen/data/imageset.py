"""A labelled image set held in host memory, its held-out split, and its device copy.

An :class:`ImageSet` is what every image loader of :mod:`jaxgen.data`
returns: ``images`` uint8 ``[N, H, W, C]``, ``labels`` int32 ``[N]``, and a
``source`` string saying where the arrays came from. Pixels stay uint8 on the
host and on the device (MNIST: 47 MB); models scale them where they use them.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxgen.core.errors import ConfigError


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """Images and labels in host memory.

    Attributes:
      images: uint8 ``[N, H, W, C]`` (MNIST: ``[N, 28, 28, 1]``), values 0..255.
      labels: int32 ``[N]``.
      source: where the arrays came from, e.g. ``"tfds:mnist/train"``.
    """

    images: np.ndarray
    labels: np.ndarray
    source: str

    def __post_init__(self):
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ConfigError(
                f"ImageSet images have dtype {images.dtype} and shape {images.shape}, "
                "expected uint8 [N, H, W, C]."
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ConfigError(
                f"ImageSet labels have shape {labels.shape}, expected [{images.shape[0]}] "
                "(one label per image)."
            )
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels.astype(np.int32, copy=False))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageSet(images=uint8{list(self.images.shape)}, "
            f"labels=int32[{len(self)}], source={self.source!r})"
        )


def train_val_split(
    images: np.ndarray,
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
    *,
    source: str = "arrays",
) -> tuple[ImageSet, ImageSet]:
    """Deterministic held-out split of ``images [N, ...]`` / ``labels [N]``.

    ``round(val_fraction * N)`` examples, chosen by a permutation drawn from
    ``numpy.random.default_rng(seed)``, go to the validation set; both parts
    keep the original order of their examples. The same ``(N, val_fraction,
    seed)`` always gives the same split.

    Args:
      images: uint8 ``[N, H, W, C]`` (``[N, H, W]`` gets a channel axis).
      labels: integer ``[N]``.
      val_fraction: in (0, 1); both parts must end up non-empty.
      seed: the seed of the permutation.
      source: the description carried into the two ImageSets (suffixed
        ``[train]`` / ``[val]``).

    Returns:
      ``(train, val)`` ImageSets.

    Raises:
      ConfigError: ``val_fraction`` outside (0, 1) or leaving a part empty,
        or images and labels of different lengths.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    n = images.shape[0]
    if labels.shape[:1] != (n,):
        raise ConfigError(
            f"train_val_split got {n} images but labels of shape {labels.shape}, "
            "expected one label per image."
        )
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction={val_fraction!r} is not accepted; choose a value in (0, 1).")
    n_val = int(round(float(val_fraction) * n))
    if n_val < 1 or n_val > n - 1:
        raise ConfigError(
            f"val_fraction={val_fraction!r} of {n} examples gives {n_val} validation examples; "
            f"choose a fraction that leaves between 1 and {n - 1}."
        )
    permutation = np.random.default_rng(seed).permutation(n)
    val_index = np.sort(permutation[:n_val])
    train_index = np.sort(permutation[n_val:])
    return (
        ImageSet(images[train_index], labels[train_index], f"{source}[train]"),
        ImageSet(images[val_index], labels[val_index], f"{source}[val]"),
    )


def to_device_dataset(imageset: ImageSet, device: jax.Device | None = None) -> dict[str, jax.Array]:
    """Copy an ImageSet to the device: ``{"images": uint8 [N, H, W, C], "labels": int32 [N]}``.

    Images stay uint8 (a quarter of float32's memory); shuffling and batching
    then happen on the device, e.g. ``jax.random.permutation`` + gather
    inside a ``lax.scan``.
    """
    images = jax.device_put(np.asarray(imageset.images, dtype=np.uint8), device)
    labels = jax.device_put(np.asarray(imageset.labels, dtype=np.int32), device)
    return {"images": images, "labels": labels}
