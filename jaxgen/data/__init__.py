"""Data sets as host arrays and on-device copies (MNIST via TFDS, offline builders, bundled samples)."""
from jaxgen.data.idx import read_idx, read_mnist_idx
from jaxgen.data.imageset import ImageSet, to_device_dataset, train_val_split
from jaxgen.data.mnist import (
    SOURCES,
    SPLITS,
    load_mnist,
    load_process_share,
    prepare_mnist,
    resolve_data_dir,
)


def __getattr__(name):
    """The TFDS builders, imported on first use (they need tensorflow-datasets; nothing else here
    does)."""
    if name in ("CatalogueMnistNoTF", "JaxgenMnist"):
        from jaxgen.data import tfds_builders

        return getattr(tfds_builders, name)
    raise AttributeError(f"module 'jaxgen.data' has no attribute {name!r}")

__all__ = [
    "CatalogueMnistNoTF",
    "ImageSet",
    "JaxgenMnist",
    "SOURCES",
    "SPLITS",
    "load_mnist",
    "load_process_share",
    "prepare_mnist",
    "read_idx",
    "read_mnist_idx",
    "resolve_data_dir",
    "to_device_dataset",
    "train_val_split",
]
