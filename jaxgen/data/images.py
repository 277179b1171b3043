"""Colour image sets for the 64x64 GAN path: CelebA (TFDS) and a small real set from scikit-image.

* :func:`load_celeba` reads the TFDS catalogue's ``celeb_a`` (prepared as array_record) and
  returns the faces centre-cropped to 108x108 and resized to 64x64 (the usual DCGAN
  preparation). CelebA needs a manual step; when it is missing a
  :class:`~jaxgen.core.errors.DataError` says how to prepare it (see :data:`CELEBA_HOWTO`).
* :func:`load_skimage_crops` builds a small *real* colour set offline: square crops at several
  scales of the RGB photographs that scikit-image ships (astronaut, chelsea, coffee, ...),
  resized to ``size`` x ``size``. Its label is the index of the source photograph. It is a test
  set for the 64x64 RGB code path, not a substitute for faces.

Both return an :class:`~jaxgen.data.imageset.ImageSet` (uint8 ``[N, S, S, 3]``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jaxgen.core.errors import DataError
from jaxgen.data.imageset import ImageSet

#: RGB photographs shipped inside scikit-image's package data (no download).
SKIMAGE_RGB = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
               "motorcycle_left.png", "retina.jpg", "rocket.jpg")

CELEBA_HOWTO = (
    "CelebA must be prepared once as array_record: download img_align_celeba.zip, "
    "list_eval_partition.txt, list_attr_celeba.txt and list_landmarks_align_celeba.txt from the "
    "CelebA site into <data_dir>/downloads/manual/, then run "
    "`python -c \"import tensorflow_datasets as tfds; tfds.builder('celeb_a', data_dir='<data_dir>', "
    "file_format='array_record').download_and_prepare()\"` (needs TensorFlow for the preparation only)"
)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC if img.shape[0] < size else Image.BOX))


def load_skimage_crops(size: int = 64, scales=(0.125, 0.2, 0.3), stride_frac: float = 0.5,
                       max_per_image: int = 400) -> ImageSet:
    """Square crops of scikit-image's RGB sample photographs, resized to ``size``.

    For each photograph and each scale ``s``, crops of side ``s * min(H, W)`` are taken on a
    grid with stride ``stride_frac`` of the side (up to ``max_per_image`` per photograph,
    evenly subsampled). Deterministic. About 2,000 images at the defaults.
    """
    try:
        import skimage
    except ImportError:
        raise DataError("the 64x64 colour test set needs scikit-image, which is not installed; "
                        "run `pip install scikit-image`.") from None
    from PIL import Image

    root = Path(skimage.__file__).resolve().parent / "data"
    out, labels = [], []
    for label, name in enumerate(SKIMAGE_RGB):
        path = root / name
        if not path.is_file():
            raise DataError(f"scikit-image's sample photograph {path} is missing; reinstall scikit-image.")
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w, _ = img.shape
        crops = []
        for s in scales:
            side = max(size // 2, int(s * min(h, w)))
            step = max(1, int(side * stride_frac))
            for y in range(0, h - side + 1, step):
                for x in range(0, w - side + 1, step):
                    crops.append(img[y:y + side, x:x + side])
        if len(crops) > max_per_image:
            crops = [crops[i] for i in np.linspace(0, len(crops) - 1, max_per_image).astype(int)]
        out += [_resize(c, size) for c in crops]
        labels += [label] * len(crops)
    return ImageSet(np.stack(out).astype(np.uint8), np.asarray(labels, np.int32),
                    f"skimage-crops:{size}x{size}:{len(SKIMAGE_RGB)} photographs")


def load_celeba(split: str = "train", data_dir: str | os.PathLike | None = None, size: int = 64,
                limit: int | None = None, crop: int = 108) -> ImageSet:
    """CelebA faces from TFDS ``celeb_a``: centre crop ``crop`` x ``crop``, resized to ``size``.

    Raises DataError naming the preparation steps when the data set is not prepared.
    """
    import tensorflow_datasets as tfds

    from jaxgen.data.mnist import resolve_data_dir

    data_dir = resolve_data_dir(data_dir)
    missing = DataError(f"CelebA (TFDS 'celeb_a') is not prepared in {data_dir}. " + CELEBA_HOWTO.replace("<data_dir>", data_dir) + ".")
    if not (Path(data_dir) / "celeb_a").is_dir():
        raise missing
    builder = tfds.builder("celeb_a", data_dir=data_dir)
    if not builder.is_prepared():
        raise missing
    if str(builder.info.file_format.value) != "array_record":
        raise DataError(f"CelebA in {builder.data_dir} is prepared as {builder.info.file_format.value}, which "
                        "tfds.data_source cannot read; " + CELEBA_HOWTO.replace("<data_dir>", data_dir) + ".")
    source = builder.as_data_source(split=split)
    n = len(source) if limit is None else min(limit, len(source))
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = np.asarray(source[i]["image"])
        h, w, _ = img.shape
        t, l = (h - crop) // 2, (w - crop) // 2
        images[i] = _resize(img[t:t + crop, l:l + crop], size)
    return ImageSet(images, np.zeros((n,), np.int32), f"tfds:celeb_a/{split}")
