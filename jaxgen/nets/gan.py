"""GAN networks: MLP and DCGAN generators / discriminators, spectral normalisation.

Shapes (``B`` = batch, ``Z`` = noise size, images in [-1, 1], NHWC):

* generators: ``(z [B, Z], y int[B] | None, train) -> images [B, H, W, C]`` (tanh output);
* discriminators: ``(x [B, H, W, C], y int[B] | None, train, update_sn) -> scores [B]`` (raw
  logits / critic values); with ``q_codes > 0`` (InfoGAN) ``(scores [B], code logits [B, q_codes])``,
  the code logits from a small Q head on the same last features.

DCGAN (Radford et al. 2016): the generator projects z to a 4x4 tensor, then stride-2
up-convolutions with batch norm + ReLU and a tanh output; the discriminator is strided 4x4
convolutions with leaky ReLU (0.2), no norm after the first. ``image_size=64``:
z -> 4x4x8w -> 8x8x4w -> 16x16x2w -> 32x32xw -> 64x64xC (w = ``width``; w = 128 gives the
paper's 4x4x1024). ``image_size=28`` (MNIST) has one block fewer: z -> 4x4x4w -> 7x7x2w
(3x3 stride-2 up-convolution, "padding 1") -> 14x14xw -> 28x28xC; its discriminator mirrors
it (28 -> 14 -> 7 -> 4). Every weight is initialised N(0, 0.02), batch-norm scales
N(1, 0.02) (the paper's init).

The 4x4 stride-2 up-convolutions are :class:`jaxgen.nets.conv.SubPixelConvTranspose`; the
3x3 one (4 -> 7) is :class:`UpConv3` (:func:`upconv3`, tested equal to
``flax.linen.ConvTranspose(f, (3, 3), (2, 2), padding=((1, 1), (1, 1)))``). Both compute by
``deconv`` (:data:`jaxgen.nets.conv.UPCONV_METHODS`: ``"auto"`` is the GEMM + col2im form on
CPU, XLA's / cuDNN's transposed convolution on GPU), with the same parameters.

Conditional variants (``num_classes > 0``): the generator concatenates a learned label
embedding to z (or, ``onehot=True``, the one-hot label: InfoGAN's code, whose N(0, 0.02)
embedding would start ~50x below z and be ignored for hundreds of steps); the discriminator either projects (Miyato & Koyama 2018:
``score = psi(h) + <embed(y), h>`` on the last features ``h``) or concatenates the one-hot
label (to the flattened input for the MLP, as constant planes for the DCGAN).

The MLP GAN uses flax's default LeCun-normal init: N(0, 0.02) is the DCGAN's init (with batch
norm); without batch norm it shrinks the signal layer by layer (measured: a 2-hidden-layer MLP
GAN with it stays at chance for ~150 steps).

Spectral normalisation (Miyato et al. 2018): :class:`SNDense` / :class:`SNConv` divide the
kernel (reshaped to ``[fan_in, out]``) by its largest singular value, estimated by power
iteration whose vector ``u [out]`` lives in the ``"spectral"`` variable collection (so in
the train state); ``update_sn=True`` runs ``n_power`` iterations and stores the new ``u``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.nets.conv import col2im_conv_transpose, depth_to_space2, resolve_method, subpixel_phases, upsample2x

INIT = nn.initializers.normal(0.02)
MLP_INIT = nn.initializers.lecun_normal()
SPECTRAL = "spectral"
NORMS = ("batch", "layer", "none")
COND_D = ("projection", "concat")


def bn_scale_init(key, shape, dtype=jnp.float32):
    """Batch-norm scale ~ N(1, 0.02) (DCGAN)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


# --------------------------------------------------------------------------- spectral norm

def _l2n(x, eps=1e-12):
    return x / (jnp.linalg.norm(x) + eps)


def power_iteration(w: jax.Array, u: jax.Array, n_iter: int) -> tuple[jax.Array, jax.Array]:
    """Largest singular value of ``w [m, n]`` by ``n_iter`` power steps from ``u [n]``.

    Returns (sigma = v^T w u, new u), both without gradient through u and v (Miyato et al.).
    """
    w_sg = jax.lax.stop_gradient(w)
    v = _l2n(w_sg @ u)
    for _ in range(n_iter):
        u = _l2n(w_sg.T @ v)
        v = _l2n(w_sg @ u)
    u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
    return v @ w @ u, u


def _spectral_normalize(module: nn.Module, kernel: jax.Array, update: bool, n_power: int) -> jax.Array:
    w = kernel.reshape(-1, kernel.shape[-1])
    u = module.variable(SPECTRAL, "u", lambda: _l2n(jax.random.normal(module.make_rng("params"), (w.shape[1],))))
    sigma, u_new = power_iteration(w, u.value, n_power if update else 0)
    if update and not module.is_initializing():
        u.value = u_new
    return kernel / sigma


class SNDense(nn.Module):
    """Dense layer with a spectrally normalised kernel. ``[..., D] -> [..., features]``."""

    features: int
    use_bias: bool = True
    n_power: int = 1
    kernel_init: Callable = INIT

    @nn.compact
    def __call__(self, x, update_sn: bool = False):
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        y = x @ _spectral_normalize(self, kernel, update_sn, self.n_power)
        return y + self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else y


class SNConv(nn.Module):
    """Convolution (NHWC, "SAME") with a spectrally normalised kernel ``[kh, kw, C_in, C_out]``."""

    features: int
    kernel_size: tuple = (4, 4)
    strides: tuple = (2, 2)
    use_bias: bool = True
    n_power: int = 1

    @nn.compact
    def __call__(self, x, update_sn: bool = False):
        kernel = self.param("kernel", INIT, (*self.kernel_size, x.shape[-1], self.features))
        k = _spectral_normalize(self, kernel, update_sn, self.n_power)
        y = jax.lax.conv_general_dilated(x, k, self.strides, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else y


def spectral_report(params: dict, spectral: dict) -> dict:
    """For every spectrally normalised layer: (estimated sigma from the stored u, true largest
    singular value of the *normalised* kernel). Host-side (numpy SVD); for tests and notes."""
    out = {}

    def walk(p, s, path):
        if "u" in s and not isinstance(s["u"], dict):
            w = np.asarray(p["kernel"], np.float64).reshape(-1, p["kernel"].shape[-1])
            u = np.asarray(s["u"], np.float64)
            v = w @ u
            v /= np.linalg.norm(v)
            sigma = float(v @ w @ u)
            out["/".join(path)] = (sigma, float(np.linalg.svd(w / sigma, compute_uv=False)[0]))
            return
        for k in s:
            walk(p[k], s[k], path + [k])

    walk(params, spectral, [])
    return out


# --------------------------------------------------------------------------- building blocks

def upconv3_crop(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    """Stride-2 3x3 transposed convolution with padding 1: ``[B, H, W, C] -> [B, 2H-1, 2W-1, F]``.

    Equal to ``nn.ConvTranspose(F, (3, 3), (2, 2), padding=((1, 1), (1, 1)))`` with
    ``kernel [3, 3, C, F]``: the kernel zero-padded to 4x4 at the front of each spatial axis
    gives the same phases in the sub-pixel form (its zero taps skipped), whose last row and
    column are dropped.
    """
    return depth_to_space2(subpixel_phases(x, kernel, front=1), bias)[:, :-1, :-1]


def upconv3(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None, method: str = "auto") -> jax.Array:
    """The function of :func:`upconv3_crop` (``[B, H, W, C] -> [B, 2H-1, 2W-1, F]``, ``kernel
    [3, 3, C, F]``) computed by ``method``: ``"matmul"`` (GEMM + col2im, taps landing on
    ``2 m + 1 - t``), ``"subpixel"`` (:func:`upconv3_crop`) or ``"xla"`` (``lax.conv_transpose``)."""
    method = resolve_method(method)
    if method == "matmul":
        return col2im_conv_transpose(x, kernel, 1, bias)[:, :-1, :-1]
    if method == "subpixel":
        return upconv3_crop(x, kernel, bias)
    y = jax.lax.conv_transpose(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if bias is None else y + bias


class UpConv3(nn.Module):
    """Module form of :func:`upconv3` (params ``kernel [3, 3, C, F]``, ``bias [F]``)."""

    features: int
    use_bias: bool = True
    method: str = "auto"

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", INIT, (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        return upconv3(x, kernel, bias, self.method)


def _bn(train: bool):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=bn_scale_init)


def _with_label(z, y, num_classes, embed_dim, onehot: bool = False):
    """``z [B, Z]`` with the label's learned embedding ``[B, embed_dim]`` (or its one-hot
    ``[B, num_classes]``) appended; ``z`` itself without classes."""
    if not num_classes:
        return z
    if onehot:
        return jnp.concatenate([z, jax.nn.one_hot(y, num_classes, dtype=z.dtype)], axis=-1)
    return jnp.concatenate([z, nn.Embed(num_classes, embed_dim, embedding_init=INIT, name="label_embed")(y)], axis=-1)


class _DHead(nn.Module):
    """Final score of a discriminator from features ``h [B, F]`` (projection if conditional)."""

    num_classes: int
    cond: str
    sn: bool
    n_power: int
    kernel_init: Callable = INIT

    @nn.compact
    def __call__(self, h, y, update_sn):
        dense = (SNDense(1, n_power=self.n_power, kernel_init=self.kernel_init, name="out") if self.sn
                 else nn.Dense(1, kernel_init=self.kernel_init, name="out"))
        score = (dense(h, update_sn) if self.sn else dense(h))[:, 0]
        if self.num_classes and self.cond == "projection":
            emb = nn.Embed(self.num_classes, h.shape[-1], embedding_init=INIT, name="label_proj")(y)
            score = score + jnp.sum(emb * h, axis=-1)
        return score


def _q_head(h: jax.Array, codes: int, kernel_init: Callable = INIT) -> jax.Array:
    """InfoGAN's Q head on a discriminator's last features ``h [B, F]``: dense 128, leaky ReLU,
    logits ``[B, codes]`` of the categorical code (Chen et al. 2016, sharing D's trunk)."""
    q = nn.leaky_relu(nn.Dense(128, kernel_init=kernel_init, name="q_hidden")(h), 0.2)
    return nn.Dense(codes, kernel_init=kernel_init, name="q_out")(q)


def _d_out(h, y, head: nn.Module, q_codes: int, update_sn: bool, kernel_init: Callable = INIT):
    score = head(h, y, update_sn)
    return (score, _q_head(h, q_codes, kernel_init)) if q_codes else score


# --------------------------------------------------------------------------- MLP

class MLPGenerator(nn.Module):
    """z (+ label embedding) -> hidden (leaky ReLU 0.2) -> H*W*C (tanh) -> ``[B, H, W, C]``."""

    image_shape: tuple = (28, 28, 1)
    hidden: Sequence[int] = (256, 512, 1024)
    num_classes: int = 0
    embed_dim: int = 10
    onehot: bool = False

    @nn.compact
    def __call__(self, z, y=None, train: bool = True):
        h = _with_label(z, y, self.num_classes, self.embed_dim, self.onehot)
        for f in self.hidden:
            h = nn.leaky_relu(nn.Dense(f, kernel_init=MLP_INIT)(h), 0.2)
        x = nn.Dense(int(np.prod(self.image_shape)), kernel_init=MLP_INIT)(h)
        return jnp.tanh(x).reshape(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Flattened image (+ one-hot label if ``cond="concat"``) -> hidden (leaky ReLU 0.2) -> score ``[B]``
    (and code logits ``[B, q_codes]`` when ``q_codes > 0``)."""

    hidden: Sequence[int] = (1024, 512, 256)
    num_classes: int = 0
    cond: str = "projection"
    sn: bool = False
    n_power: int = 1
    q_codes: int = 0

    @nn.compact
    def __call__(self, x, y=None, train: bool = True, update_sn: bool = False):
        h = x.reshape(x.shape[0], -1)
        if self.num_classes and self.cond == "concat":
            h = jnp.concatenate([h, jax.nn.one_hot(y, self.num_classes, dtype=h.dtype)], axis=-1)
        for f in self.hidden:
            h = (SNDense(f, n_power=self.n_power, kernel_init=MLP_INIT)(h, update_sn) if self.sn
                 else nn.Dense(f, kernel_init=MLP_INIT)(h))
            h = nn.leaky_relu(h, 0.2)
        return _d_out(h, y, _DHead(self.num_classes, self.cond, self.sn, self.n_power, MLP_INIT), self.q_codes,
                      update_sn, MLP_INIT)


# --------------------------------------------------------------------------- DCGAN

def dcgan_channels(image_size: int, width: int) -> tuple[int, ...]:
    """Generator channels from the 4x4 projection to the last hidden block."""
    if image_size == 64:
        return (8 * width, 4 * width, 2 * width, width)
    if image_size == 28:
        return (4 * width, 2 * width, width)
    raise ValueError(f"image_size={image_size!r} is not accepted; choose one of: 28, 64.")


class DCGANGenerator(nn.Module):
    """DCGAN generator (see the module docstring). ``(z [B, Z], y) -> [B, S, S, C]``."""

    image_size: int = 28
    channels: int = 1
    width: int = 64
    num_classes: int = 0
    embed_dim: int = 10
    onehot: bool = False
    deconv: str = "auto"

    @nn.compact
    def __call__(self, z, y=None, train: bool = True):
        chans = dcgan_channels(self.image_size, self.width)
        h = _with_label(z, y, self.num_classes, self.embed_dim, self.onehot)
        x = nn.Dense(4 * 4 * chans[0], use_bias=False, kernel_init=INIT)(h).reshape(z.shape[0], 4, 4, chans[0])
        x = nn.relu(_bn(train)(x))
        for i, c in enumerate(chans[1:]):
            if self.image_size == 28 and i == 0:
                x = UpConv3(c, use_bias=False, method=self.deconv)(x)  # 4 -> 7
            else:
                x = upsample2x(c, self.deconv, use_bias=False, kernel_init=INIT)(x)
            x = nn.relu(_bn(train)(x))
        return jnp.tanh(upsample2x(self.channels, self.deconv, kernel_init=INIT)(x))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: stride-2 4x4 convolutions (leaky ReLU 0.2), ``norm`` after all but
    the first, then a dense score. ``[B, S, S, C] -> [B]`` (and code logits ``[B, q_codes]``
    when ``q_codes > 0``)."""

    image_size: int = 28
    width: int = 64
    num_classes: int = 0
    cond: str = "projection"
    norm: str = "batch"
    sn: bool = False
    n_power: int = 1
    q_codes: int = 0

    @nn.compact
    def __call__(self, x, y=None, train: bool = True, update_sn: bool = False):
        chans = tuple(reversed(dcgan_channels(self.image_size, self.width)))
        if self.num_classes and self.cond == "concat":
            planes = jnp.broadcast_to(jax.nn.one_hot(y, self.num_classes, dtype=x.dtype)[:, None, None, :],
                                      (*x.shape[:3], self.num_classes))
            x = jnp.concatenate([x, planes], axis=-1)
        for i, c in enumerate(chans):
            if self.sn:
                x = SNConv(c, n_power=self.n_power)(x, update_sn)
            else:
                x = nn.Conv(c, (4, 4), (2, 2), padding="SAME", kernel_init=INIT, use_bias=i == 0 or self.norm == "none")(x)
            if i > 0 and self.norm == "batch":
                x = _bn(train)(x)
            elif i > 0 and self.norm == "layer":
                x = nn.LayerNorm(reduction_axes=(-3, -2, -1))(x)
            x = nn.leaky_relu(x, 0.2)
        h = x.reshape(x.shape[0], -1)
        return _d_out(h, y, _DHead(self.num_classes, self.cond, self.sn, self.n_power), self.q_codes, update_sn)
