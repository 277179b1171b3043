"""PNG plots written between chunks: image grids, learning curves, 2-D scatters."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, title: str = "", ax=None) -> Path:
    """Title (on ``ax``, else the figure), tight layout, write PNG, close."""
    if title:
        (ax.set_title if ax is not None else fig.suptitle)(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return Path(path)


def image_grid(images: np.ndarray, ncol: int) -> np.ndarray:
    """Tile ``images`` [N, H, W, C] (values in [0, 1]) into one [rows*H, ncol*W, C] array (1-px gaps)."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    rows = -(-n // ncol)
    grid = np.ones((rows * (h + 1) - 1, ncol * (w + 1) - 1, c), np.float32)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = images[i]
    return grid


def save_grid(path: Path, images: np.ndarray, ncol: int, title: str = "", row_labels: Sequence[str] | None = None) -> Path:
    """Write an image grid as PNG (grey for one channel)."""
    plt = _plt()
    grid = image_grid(np.clip(images, 0, 1), ncol)
    h_in = max(2.0, grid.shape[0] / grid.shape[1] * 8)
    fig, ax = plt.subplots(figsize=(8, h_in))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        h = images.shape[1] + 1
        ax.set_yticks([i * h + h / 2 for i in range(len(row_labels))], row_labels, fontsize=7)
    else:
        ax.set_yticks([])
    return _save(fig, path, title, ax)


def save_curves(path: Path, history: list, keys: Sequence[str], title: str = "", x: str = "step") -> Path:
    """Plot ``keys`` of the logged rows against ``x`` (one panel per key)."""
    plt = _plt()
    keys = [k for k in keys if any(k in r for r in history)]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3), squeeze=False)
    for ax, k in zip(axes[0], keys):
        rows = [r for r in history if k in r]
        ax.plot([r[x] for r in rows], [np.mean(r[k]) for r in rows], marker=".")
        ax.set_xlabel(x)
        ax.set_title(k)
        ax.grid(alpha=0.3)
    return _save(fig, path, title)


def save_scatter(path: Path, xy: np.ndarray, labels: np.ndarray, title: str = "") -> Path:
    """2-D scatter of ``xy`` [N, 2] coloured by integer ``labels`` [N] (with a colour bar)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="label")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    return _save(fig, path, title, ax)
