"""Reader for the IDX file format of the original MNIST distribution.

An IDX file is a big-endian header followed by raw values:

* bytes 0-1: zero; byte 2: the value type (``0x08`` uint8, ``0x09`` int8,
  ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64);
  byte 3: the number of dimensions. Read as one uint32 this is the *magic*
  number: 2051 (``0x00000803``) for MNIST images ``[N, 28, 28]`` and 2049
  (``0x00000801``) for MNIST labels ``[N]``.
* one uint32 per dimension (the sizes);
* ``prod(sizes)`` values of the type, big-endian, row-major.

Files may be gzip-compressed (detected from their first bytes, not their
name). Every malformed file raises :class:`~jaxgen.core.errors.DataError`
with one sentence naming the path and what was expected. Nothing here uses
pickle.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from jaxgen.core.errors import DataError

#: IDX type code -> numpy dtype (big-endian as stored on disk).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MNIST_IMAGES_MAGIC = 2051  # uint8, 3 dimensions
MNIST_LABELS_MAGIC = 2049  # uint8, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist.") from None
    except IsADirectoryError:
        raise DataError(f"IDX path {path} is a directory, expected an IDX file.") from None
    except OSError as err:
        raise DataError(f"IDX file {path} cannot be read ({err.strerror}).") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(
                f"IDX file {path} is a corrupt or truncated gzip stream ({err}); "
                "expected a complete gzip-compressed IDX file."
            ) from None
    return raw


def read_idx(path: str | os.PathLike, *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian numpy array.

    Args:
      path: the ``*-idx?-ubyte`` file, optionally gzip-compressed.
      magic: if given, the required magic number (2051 for MNIST images,
        2049 for MNIST labels).

    Returns:
      An array with the file's dimensions, e.g. ``uint8 [N, 28, 28]`` for
      MNIST images and ``uint8 [N]`` for MNIST labels.

    Raises:
      DataError: the file is missing, not IDX, has another magic number than
        ``magic``, or its data is truncated or has trailing bytes.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(
            f"IDX file {path} has only {len(raw)} bytes, expected at least a 4-byte IDX header."
        )
    (file_magic,) = struct.unpack(">I", raw[:4])
    type_code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(
            f"IDX file {path} has magic number {file_magic}, which is not an IDX header "
            "(expected two zero bytes, a type code in "
            f"{sorted(IDX_DTYPES)}, and at least one dimension; MNIST uses 2051 / 2049)."
        )
    if magic is not None and file_magic != magic:
        raise DataError(f"IDX file {path} has magic number {file_magic}, expected {magic}.")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(
            f"IDX file {path} is truncated inside its header: {len(raw)} bytes, "
            f"expected at least {header_len} for {ndim} dimension sizes."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on a bad header
    got = len(raw) - header_len
    if got < expected:
        raise DataError(
            f"IDX file {path} is truncated: shape {tuple(shape)} needs {expected} data bytes "
            f"but only {got} follow the header."
        )
    if got > expected:
        raise DataError(
            f"IDX file {path} has {got - expected} unexpected trailing bytes after the "
            f"{expected} data bytes of shape {tuple(shape)}."
        )
    array = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    # Native byte order and a writable copy (frombuffer over bytes is read-only).
    return array.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_mnist_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike):
    """Read a matching pair of MNIST IDX files.

    Returns:
      ``(images uint8 [N, 28, 28], labels uint8 [N])``.

    Raises:
      DataError: either file is bad, the images are not 28 x 28, a label is
        outside 0..9, or the two files hold different numbers of examples.
    """
    images = read_idx(images_path, magic=MNIST_IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=MNIST_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(
            f"IDX file {os.fspath(images_path)} holds images of size "
            f"{images.shape[1]}x{images.shape[2]}, expected 28x28 MNIST images."
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"IDX files {os.fspath(images_path)} and {os.fspath(labels_path)} hold "
            f"{images.shape[0]} images but {labels.shape[0]} labels, expected equal counts."
        )
    if labels.size and labels.max() > 9:
        raise DataError(
            f"IDX file {os.fspath(labels_path)} has label {int(labels.max())}, "
            "expected MNIST labels in 0..9."
        )
    return images, labels
