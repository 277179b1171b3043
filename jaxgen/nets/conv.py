"""Convolutional building blocks, including the fast stride-2 transposed convolution.

Stride-2 up-convolutions come in three computations of one function (same parameters,
``kernel [k, k, C_in, C_out]`` in flax's ``ConvTranspose`` layout), chosen by ``method``:

* ``"matmul"`` (:func:`col2im_conv_transpose`): one GEMM ``[B*H*W, C_in] @ [C_in, k*k*C_out]``
  to per-tap columns, then their overlap-add into the four output phases and depth-to-space
  (PyTorch's col2im formulation). Its gradients are two GEMMs of the same size plus slicing,
  so XLA:CPU never meets the slow transposed-convolution weight gradient. Fastest on CPU:
  ``benchmarks/notes/profile.md``.
* ``"subpixel"``: the per-phase products below (the previous CPU default).
* ``"xla"``: ``lax.conv_transpose`` (cuDNN on GPU).
* ``"auto"`` (default): ``"matmul"`` on the CPU backend, ``"xla"`` elsewhere.

``SubPixelConvTranspose`` computes exactly the function of
``flax.linen.ConvTranspose(features, (4, 4), (2, 2), padding="SAME")`` with the same
parameters (``kernel [4, 4, C_in, C_out]``, ``bias [C_out]``), but as one stride-1 2x2
convolution to ``4 * C_out`` channels followed by depth-to-space. On the XLA CPU backend
the weight gradient of ``ConvTranspose`` is ~15x its forward pass; this formulation's is
~2.5x (benchmarks/RESULTS.md, ``benchmarks/bench_deconv.py``). From 16 output channels each
phase is computed as its own GEMM over the gathered taps (no wasted positions or zero taps:
2.3x faster fwd+bwd for the MNIST DCGAN's 4->7 layer, 1.4x for 7->14; see
:func:`subpixel_phases`).

Derivation (per spatial dimension): ``lax.conv_transpose`` with stride 2, kernel 4 and
"SAME" padding gives ``out[2m] = x[m-1] w[0] + x[m] w[2]`` and
``out[2m+1] = x[m] w[1] + x[m+1] w[3]``. With ``x`` padded by one on each side, phase
``r`` is a 2-tap valid correlation with taps ``w[r::2]`` read at offset ``r``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


#: Output channels from which the per-phase GEMM form is used (below it, one convolution is
#: faster on CPU: a 1-channel output makes each phase a matrix-vector product).
GEMM_MIN_FEATURES = 16


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    """Stride-2, 4x4, "SAME" transposed convolution as four per-phase products + depth-to-space.

    Args:
      x: [B, H, W, C_in].
      kernel: [4, 4, C_in, C_out] (flax ``ConvTranspose`` layout, not flipped).
      bias: [C_out] or None.
    Returns:
      [B, 2H, 2W, C_out].
    """
    return depth_to_space2(subpixel_phases(x, kernel, front=0), bias)


def subpixel_phases(x: jax.Array, kernel: jax.Array, front: int = 0) -> list[jax.Array]:
    """The four output phases ``[B, H, W, C_out]`` (order ``PHASES``) of a stride-2 transposed
    convolution whose kernel is a 4x4 one with ``front`` leading zero rows and columns
    (``kernel [4 - front, 4 - front, C_in, C_out]``: 0 for 4x4 "SAME", 1 for a 3x3 kernel).

    Phase ``(ry, rx)`` at ``(i, j)`` is ``sum_(a, c) xp[i + ry + a, j + rx + c] @ k4[ry + 2a, rx + 2c]``
    over the taps ``a, c in {0, 1}`` where ``k4`` is not structurally zero (``xp``: ``x`` padded by
    one). With ``C_out >= GEMM_MIN_FEATURES`` each phase is one GEMM of the gathered taps, so
    forward and both gradients are matrix products of exactly the transposed convolution's
    FLOPs (the one-convolution form computes (H+1)(W+1) positions per phase and the zero taps
    of a padded kernel); below it, one stride-1 2x2 convolution to ``4 C_out`` channels.
    """
    b, h, w, cin = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if kernel.shape[-1] < GEMM_MIN_FEATURES:
        k4 = jnp.pad(kernel, ((front, 0), (front, 0), (0, 0), (0, 0)))
        c = kernel.shape[-1]
        k = jnp.concatenate([k4[ry::2, rx::2] for ry, rx in PHASES], axis=-1)  # [2, 2, C_in, 4 C_out]
        y = jax.lax.conv_general_dilated(xp, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return [y[:, ry:ry + h, rx:rx + w, i * c:(i + 1) * c] for i, (ry, rx) in enumerate(PHASES)]
    out = []
    for ry, rx in PHASES:
        taps = [(a, c) for a in (0, 1) for c in (0, 1) if ry + 2 * a >= front and rx + 2 * c >= front]
        patches = jnp.concatenate([xp[:, ry + a:ry + a + h, rx + c:rx + c + w] for a, c in taps], axis=-1)
        k = jnp.concatenate([kernel[ry + 2 * a - front, rx + 2 * c - front] for a, c in taps], axis=0)
        out.append(jnp.dot(patches.reshape(b * h * w, -1), k).reshape(b, h, w, -1))
    return out


def depth_to_space2(phases: list[jax.Array], bias: jax.Array | None = None) -> jax.Array:
    """Interleave four phases ``[B, H, W, C]`` (order ``PHASES``) into ``[B, 2H, 2W, C]`` (+ bias)."""
    b, h, w, c = phases[0].shape
    out = jnp.stack(phases, axis=3).reshape(b, h, w, 2, 2, c)
    out = out.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)
    return out if bias is None else out + bias


#: Computations of a stride-2 up-convolution (module docstring); "auto" picks by backend.
UPCONV_METHODS = ("auto", "matmul", "subpixel", "xla")


def resolve_method(method: str) -> str:
    """``"auto"`` -> ``"matmul"`` on the CPU backend, ``"xla"`` on GPU/TPU; others unchanged."""
    if method not in UPCONV_METHODS:
        raise ValueError(f"up-convolution method {method!r} is not accepted; choose one of: {', '.join(UPCONV_METHODS)}.")
    if method == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "xla"
    return method


def col2im_conv_transpose(x: jax.Array, kernel: jax.Array, offset: int, bias: jax.Array | None = None) -> jax.Array:
    """Stride-2 transposed convolution as one GEMM + overlap-add (col2im) + depth-to-space.

    Args:
      x: [B, H, W, C_in].
      kernel: [k, k, C_in, C_out] (flax ``ConvTranspose`` layout, not flipped).
      offset: tap ``t`` of input ``m`` lands on output ``2 m + offset - t`` (per axis): 2 for a
        4x4 "SAME" kernel, 1 for a 3x3 kernel with padding 1 (whose output is then cropped).
      bias: [C_out] or None.
    Returns:
      [B, 2H, 2W, C_out]: output ``o = 2 j + r`` is phase ``r``'s row ``j``.

    Columns ``cols[b, m, n, ty, tx] = x[b, m, n] @ kernel[ty, tx]`` ([B, H, W, k, k, C_out], one
    GEMM); phase ``(ry, rx)`` at ``(j, l)`` sums ``cols[b, j - qy, l - qx, ty, tx]`` over the taps
    with ``offset - t = 2 q + r`` (shifts ``q`` in {-1, 0, 1}).
    """
    b, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    cols = (x.reshape(-1, c) @ kernel.transpose(2, 0, 1, 3).reshape(c, kh * kw * f)).reshape(b, h, w, kh, kw, f)
    cp = jnp.pad(cols, ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)))
    acc: dict = {}
    for ty in range(kh):
        ry, qy = (offset - ty) % 2, (offset - ty) // 2
        for tx in range(kw):
            rx, qx = (offset - tx) % 2, (offset - tx) // 2
            term = cp[:, 1 - qy:1 - qy + h, 1 - qx:1 - qx + w, ty, tx]
            acc[(ry, rx)] = term if (ry, rx) not in acc else acc[(ry, rx)] + term
    return depth_to_space2([acc[p] for p in PHASES], bias)


def conv_transpose4(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None, method: str = "auto") -> jax.Array:
    """``nn.ConvTranspose(F, (4, 4), (2, 2), "SAME")`` with ``kernel [4, 4, C_in, F]``:
    ``[B, H, W, C_in] -> [B, 2H, 2W, F]``, computed by ``method`` (:data:`UPCONV_METHODS`)."""
    method = resolve_method(method)
    if method == "matmul":
        return col2im_conv_transpose(x, kernel, 2, bias)
    if method == "subpixel":
        return subpixel_conv_transpose(x, kernel, bias)
    y = jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if bias is None else y + bias


class SubPixelConvTranspose(nn.Module):
    """Drop-in for ``nn.ConvTranspose(features, (4, 4), (2, 2), "SAME")`` (same params), computed
    by ``method`` (:data:`UPCONV_METHODS`; the module keeps its name whichever is used, so
    checkpoints move between methods and backends)."""

    features: int
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    method: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        return conv_transpose4(x, kernel, bias, self.method)


#: ``upsample2x`` kinds: an up-convolution method, or flax's own ``"transpose"`` module (reference).
UPSAMPLE_KINDS = UPCONV_METHODS + ("transpose",)


def upsample2x(features: int, kind: str = "auto", use_bias: bool = True, kernel_init: Callable = nn.initializers.lecun_normal()):
    """A stride-2 4x4 up-convolution: :class:`SubPixelConvTranspose` computed by ``kind`` (one of
    :data:`UPCONV_METHODS`) or flax ``nn.ConvTranspose`` for ``"transpose"`` (reference; other
    parameter names)."""
    if kind == "transpose":
        return nn.ConvTranspose(features, (4, 4), (2, 2), padding="SAME", use_bias=use_bias, kernel_init=kernel_init)
    return SubPixelConvTranspose(features, use_bias=use_bias, kernel_init=kernel_init, method=kind)


class ConvEncoder(nn.Module):
    """Two stride-2 4x4 convolutions + a dense head. ``[B, 28, 28, 1] -> [B, out]``."""

    out: int
    channels: Sequence[int] = (32, 64)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for c in self.channels:
            x = nn.relu(nn.Conv(c, (4, 4), (2, 2), padding="SAME")(x))
        return nn.Dense(self.out)(x.reshape(x.shape[0], -1))


class ConvDecoder(nn.Module):
    """Dense to ``[7, 7, C]`` + two stride-2 4x4 up-convolutions. ``[B, L] -> [B, 28, 28, out_channels]``."""

    out_channels: int = 1
    channels: Sequence[int] = (64, 32)
    base: int = 7
    deconv: str = "auto"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        c0, c1 = self.channels
        x = nn.relu(nn.Dense(self.base * self.base * c0)(z)).reshape(z.shape[0], self.base, self.base, c0)
        x = nn.relu(upsample2x(c1, self.deconv)(x))
        return upsample2x(self.out_channels, self.deconv)(x)


def extract_patches(x: jax.Array, kh: int, kw: int) -> jax.Array:
    """All ``kh x kw`` windows of ``x [B, H, W, C]`` at stride 1 ("VALID"), gathered by
    slicing: ``[B, H-kh+1, W-kw+1, kh*kw*C]``, ordered (dy, dx, c) as a flattened HWIO kernel."""
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return jnp.concatenate([x[:, dy:dy + h, dx:dx + w, :] for dy in range(kh) for dx in range(kw)], axis=-1)


def patch_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    """Stride-1 "VALID" correlation as window extraction + one matmul.

    Args:
      x: [B, H, W, C_in].
      kernel: [kh, kw, C_in, C_out] (flax ``Conv`` layout).
      bias: [C_out] or None.
    Returns:
      [B, H-kh+1, W-kw+1, C_out], equal to ``lax.conv_general_dilated(x, kernel, (1, 1), "VALID")``.

    For small frames (MinAtar's 10x10) XLA:CPU runs this, and above all its weight
    gradient inside ``lax.scan``, far faster than its convolution kernels.
    """
    kh, kw, c_in, c_out = kernel.shape
    y = extract_patches(x, kh, kw) @ kernel.reshape(kh * kw * c_in, c_out)
    return y if bias is None else y + bias


class PatchConv(nn.Module):
    """Drop-in for ``nn.Conv(features, kernel_size, padding="VALID")`` at stride 1 (same
    parameter names and shapes), computed by :func:`patch_conv`."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return patch_conv(x.astype(kernel.dtype), kernel, bias)


# --------------------------------------------------------------------------- 1-D valid convolution (text CNNs)

def _conv1d_lax(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))


def _windows1d(x: jax.Array, w: int) -> jax.Array:
    """``[B, L, C] -> [B, L-w+1, w C]``: the ``w`` consecutive rows of every valid position (tap-major)."""
    n = x.shape[1] - w + 1
    return jnp.concatenate([x[:, i:i + n, :] for i in range(w)], axis=-1)


@jax.custom_vjp
def conv1d_valid(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The "VALID" 1-D correlation of flax's ``nn.Conv(F, (w,), padding="VALID")`` (no bias):
    ``x [B, L, C]``, ``kernel [w, C, F]`` -> ``[B, L-w+1, F]``.

    Forward: XLA's convolution. Backward: two matmuls (the weight gradient as windows^T @ g,
    the input gradient as g @ kernel^T overlap-added over the w taps). Why: inside a
    ``lax.scan``/``while`` loop -- the runner's chunks, SeqGAN's D updates within a round --
    XLA:CPU ran the convolution's weight gradient ~14x slower than outside one (SeqGAN's
    8-width D, batch 64: 47 ms vs 3.3 ms per update with this backward)."""
    return _conv1d_lax(x, kernel)


def _conv1d_fwd(x, kernel):
    return _conv1d_lax(x, kernel), (x, kernel)


def _conv1d_bwd(res, g):
    x, kernel = res
    w, c, f = kernel.shape
    n, length = g.shape[1], x.shape[1]
    dk = jnp.einsum("bnk,bnf->kf", _windows1d(x, w), g).reshape(w, c, f)
    gk = (g @ kernel.reshape(w * c, f).T).reshape(g.shape[0], n, w, c)
    dx = sum(jnp.pad(gk[:, :, i, :], ((0, 0), (i, length - n - i), (0, 0))) for i in range(w))
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


conv1d_valid.defvjp(_conv1d_fwd, _conv1d_bwd)


class Conv1D(nn.Module):
    """``nn.Conv(features, (width,), padding="VALID")``'s parameters (``kernel [width, C, F]``,
    ``bias [F]``) and function, computed by :func:`conv1d_valid`: ``[B, L, C] -> [B, L-width+1, F]``."""

    features: int
    width: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (self.width, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        return conv1d_valid(x, kernel) + bias
