"""PyTorch (CPU) reference of jaxgen's two VAEs, for ``bench_vae.py`` (not part of the package).

The same models, optimiser, loss and data handling as ``jaxgen.generative.autoencoder`` with
``AEConfig(model="vae", arch="mlp" | "conv", latent=16, batch_size=128)``:

* MLP: encoder Linear(784, 512) ReLU Linear(512, 2L) -> (mu, log sigma^2);
  decoder Linear(L, 512) ReLU Linear(512, 784) -> logits.
* Conv: encoder Conv2d(1, 32, 4, s2, p1) ReLU Conv2d(32, 64, 4, s2, p1) ReLU
  flatten(64*7*7) Linear(-> 2L); decoder Linear(L, 64*7*7) ReLU reshape(64, 7, 7)
  ConvTranspose2d(64, 32, 4, s2, p1) ReLU ConvTranspose2d(32, 1, 4, s2, p1) -> logits.
  Shapes 28 -> 14 -> 7 and back, as flax's ``Conv(.., (4, 4), (2, 2), "SAME")`` (which pads
  1 on each side here) and ``ConvTranspose(.., (4, 4), (2, 2), "SAME")`` (which is
  ``ConvTranspose2d(k=4, s=2, p=1)`` with the kernel flipped in both spatial dimensions).
* Loss: per image, the sum over pixels of Bernoulli cross-entropy with logits plus
  KL(q(z|x) || N(0, I)); mean over the batch. One z = mu + sigma * eps per image.
* Adam(lr 1e-3, betas 0.9 / 0.999, eps 1e-8) -- optax's defaults too.
* Data: uint8 -> / 255 -> threshold binarisation (x > 0.5); each epoch a fresh permutation
  of the training set cut into minibatches of 128, the remainder dropped.
* Initialisation as flax's: weights lecun-normal (truncated normal, variance 1/fan_in, fan_in
  counted as flax counts it), biases zero -- so that the two start from the same distribution.

The random streams (init, data order, eps) are PyTorch's own: runs agree with jaxgen's in
distribution, not bit for bit. :func:`load_flax_params` copies a jaxgen parameter tree into
the PyTorch model, so the two forward passes can be checked to compute the same function.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

THREADS = 2
IMAGE = 28 * 28
# Standard deviation of a standard normal truncated to [-2, 2] (flax's truncated_normal).
_TRUNC_STD = 0.87962566103423978


def set_threads(n: int = THREADS) -> int:
    """Intra-op threads for PyTorch (the benchmark machines have 2 cores). Returns the count."""
    torch.set_num_threads(n)
    return torch.get_num_threads()


# --------------------------------------------------------------------------- models


class MLPVAE(nn.Module):
    def __init__(self, latent: int = 16, hidden: int = 512):
        super().__init__()
        self.latent = latent
        self.enc1, self.enc2 = nn.Linear(IMAGE, hidden), nn.Linear(hidden, 2 * latent)
        self.dec1, self.dec2 = nn.Linear(latent, hidden), nn.Linear(hidden, IMAGE)

    def encode(self, x):  # x: [B, 1, 28, 28] -> mu, log_var [B, L]
        h = self.enc2(F.relu(self.enc1(x.reshape(x.shape[0], IMAGE))))
        return h.chunk(2, dim=1)

    def decode(self, z):  # z: [B, L] -> logits [B, 1, 28, 28]
        return self.dec2(F.relu(self.dec1(z))).reshape(z.shape[0], 1, 28, 28)


class ConvVAE(nn.Module):
    def __init__(self, latent: int = 16, channels=(32, 64)):
        super().__init__()
        c0, c1 = channels
        self.latent, self.c1 = latent, c1
        self.conv1 = nn.Conv2d(1, c0, 4, stride=2, padding=1)  # 28 -> 14
        self.conv2 = nn.Conv2d(c0, c1, 4, stride=2, padding=1)  # 14 -> 7
        self.enc = nn.Linear(7 * 7 * c1, 2 * latent)
        self.dec = nn.Linear(latent, 7 * 7 * c1)
        self.deconv1 = nn.ConvTranspose2d(c1, c0, 4, stride=2, padding=1)  # 7 -> 14
        self.deconv2 = nn.ConvTranspose2d(c0, 1, 4, stride=2, padding=1)  # 14 -> 28

    def encode(self, x):  # [B, 1, 28, 28] -> mu, log_var [B, L]
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.enc(h.flatten(1)).chunk(2, dim=1)

    def decode(self, z):  # [B, L] -> logits [B, 1, 28, 28]
        h = F.relu(self.dec(z)).reshape(z.shape[0], self.c1, 7, 7)
        return self.deconv2(F.relu(self.deconv1(h)))


ARCHS = {"mlp": MLPVAE, "conv": ConvVAE}


def _flax_fan_in(module: nn.Module) -> int:
    w = module.weight
    if isinstance(module, nn.Linear):
        return w.shape[1]
    if isinstance(module, nn.ConvTranspose2d):  # torch [C_in, C_out, kh, kw]; flax [kh, kw, C_in, C_out]
        return w.shape[0] * w.shape[2] * w.shape[3]
    return w.shape[1] * w.shape[2] * w.shape[3]  # Conv2d [C_out, C_in, kh, kw]


@torch.no_grad()
def init_like_flax(model: nn.Module) -> nn.Module:
    """lecun_normal weights (truncated at 2 std, as flax), zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            std = math.sqrt(1.0 / _flax_fan_in(m)) / _TRUNC_STD
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(m.bias)
    return model


def make_model(arch: str, latent: int = 16, seed: int = 0) -> nn.Module:
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r} is not accepted; choose one of: {', '.join(ARCHS)}.")
    torch.manual_seed(seed)
    return init_like_flax(ARCHS[arch](latent))


# --------------------------------------------------------------------------- loss and data


def neg_elbo_terms(model: nn.Module, x: torch.Tensor, eps: torch.Tensor):
    """Per-image (reconstruction nats, KL nats) of binarised ``x`` [B, 1, 28, 28], z = mu + sigma * eps."""
    mu, log_var = model.encode(x)
    z = mu + torch.exp(0.5 * log_var) * eps
    logits = model.decode(z)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3))
    kl = 0.5 * torch.sum(torch.exp(log_var) + mu * mu - 1.0 - log_var, dim=1)
    return rec, kl


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 28, 28, 1] (jaxgen layout) -> uint8 tensor [N, 1, 28, 28]."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"images of shape {images.shape} are not accepted; expected uint8 [N, 28, 28, 1].")
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def binarize(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1] -> 1[x > 0.5] as float32."""
    return ((batch_u8.to(torch.float32) / 255.0) > 0.5).to(torch.float32)


# --------------------------------------------------------------------------- training


class Trainer:
    """Adam on the -ELBO with epoch-shuffled minibatches; :meth:`run` continues the schedule."""

    def __init__(self, arch: str, images: np.ndarray, *, seed: int = 0, latent: int = 16,
                 batch_size: int = 128, lr: float = 1e-3, betas=(0.9, 0.999), device: str = "cpu"):
        self.device = torch.device(device)
        self.model = make_model(arch, latent, seed).to(self.device)
        self.data = to_nchw(images).to(self.device)
        self.n, self.batch_size, self.latent = self.data.shape[0], batch_size, latent
        if not 1 <= batch_size <= self.n:
            raise ValueError(f"batch_size={batch_size} is out of range; accepted: 1 to the training-set size ({self.n}).")
        self.steps_per_epoch = self.n // batch_size
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=betas, eps=1e-8)
        self.gen = torch.Generator(device=self.device).manual_seed(seed + 1)  # data order and eps
        self.step = 0
        self._perm = None

    def _batch(self) -> torch.Tensor:
        i = self.step % self.steps_per_epoch
        if i == 0 or self._perm is None:
            self._perm = torch.randperm(self.n, generator=self.gen, device=self.device)
        idx = self._perm[i * self.batch_size:(i + 1) * self.batch_size]
        return binarize(self.data[idx])

    def run(self, steps: int) -> float:
        """``steps`` Adam steps; returns the mean loss over them (one host sync, at the end)."""
        self.model.train()
        total = torch.zeros((), device=self.device)
        for _ in range(steps):
            x = self._batch()
            eps = torch.randn(x.shape[0], self.latent, generator=self.gen, device=self.device)
            rec, kl = neg_elbo_terms(self.model, x, eps)
            loss = (rec + kl).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.detach()
            self.step += 1
        return float(total) / max(steps, 1)


def train(arch: str, images: np.ndarray, *, epochs: int | None = None, steps: int | None = None,
          seed: int = 0, latent: int = 16) -> tuple[nn.Module, dict]:
    """Train a VAE on ``images`` (uint8 [N, 28, 28, 1]) for ``epochs`` passes or ``steps`` steps.

    Returns (model, {"steps", "train_s", "steps_per_s", "final_loss"}).
    """
    tr = Trainer(arch, images, seed=seed, latent=latent)
    if steps is None:
        if epochs is None:
            raise ValueError("train() needs epochs or steps.")
        steps = epochs * tr.steps_per_epoch
    t = time.perf_counter()
    loss = tr.run(steps)
    dt = time.perf_counter() - t
    return tr.model, {"steps": steps, "train_s": dt, "steps_per_s": steps / dt, "final_loss": loss}


@torch.no_grad()
def evaluate(model: nn.Module, images: np.ndarray, *, seed: int = 1234, batch_size: int = 250) -> dict:
    """Mean test -ELBO (nats/image; one z per image) and its terms on threshold-binarised ``images``."""
    model.eval()
    data = to_nchw(images)
    gen = torch.Generator().manual_seed(seed)
    rec_sum = kl_sum = 0.0
    for i in range(0, data.shape[0], batch_size):
        x = binarize(data[i:i + batch_size])
        eps = torch.randn(x.shape[0], model.latent, generator=gen)
        rec, kl = neg_elbo_terms(model, x, eps)
        rec_sum += float(rec.double().sum())
        kl_sum += float(kl.double().sum())
    n = data.shape[0]
    return {"neg_elbo": (rec_sum + kl_sum) / n, "recon": rec_sum / n, "kl": kl_sum / n}


# --------------------------------------------------------------------------- parity with jaxgen


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))


@torch.no_grad()
def load_flax_params(model: nn.Module, params: dict) -> nn.Module:
    """Copy a jaxgen VAE parameter tree (nested dict of arrays, as ``AEState.params``) into ``model``.

    Layouts: Dense kernel [in, out] -> weight [out, in]; Conv kernel HWIO -> OIHW;
    ConvTranspose kernel [kh, kw, in, out] -> [in, out, kh, kw] flipped in kh and kw;
    the dense layers next to the 7x7x64 feature map reorder (h, w, c) <-> (c, h, w).
    Works for both ``deconv="subpixel"`` and ``"transpose"`` (same parameters).
    """
    enc, dec = params["encoder"], params["decoder"]

    def dense(layer, p):
        layer.weight.copy_(_t(p["kernel"]).T)
        layer.bias.copy_(_t(p["bias"]))

    if isinstance(model, MLPVAE):
        dense(model.enc1, enc["Dense_0"]), dense(model.enc2, enc["Dense_1"])
        dense(model.dec1, dec["Dense_0"]), dense(model.dec2, dec["Dense_1"])
        return model
    c1 = model.c1
    for layer, p in ((model.conv1, enc["Conv_0"]), (model.conv2, enc["Conv_1"])):
        layer.weight.copy_(_t(p["kernel"]).permute(3, 2, 0, 1))
        layer.bias.copy_(_t(p["bias"]))
    k = _t(enc["Dense_0"]["kernel"])  # [(h, w, c), 2L]
    model.enc.weight.copy_(k.reshape(7, 7, c1, -1).permute(2, 0, 1, 3).reshape(7 * 7 * c1, -1).T)
    model.enc.bias.copy_(_t(enc["Dense_0"]["bias"]))
    k = _t(dec["Dense_0"]["kernel"])  # [L, (h, w, c)]
    model.dec.weight.copy_(k.reshape(-1, 7, 7, c1).permute(0, 3, 1, 2).reshape(k.shape[0], -1).T)
    model.dec.bias.copy_(_t(dec["Dense_0"]["bias"]).reshape(7, 7, c1).permute(2, 0, 1).reshape(-1))
    ups = sorted(name for name in dec if name != "Dense_0")  # ConvTranspose_0/1 or SubPixelConvTranspose_0/1
    for layer, name in zip((model.deconv1, model.deconv2), ups):
        layer.weight.copy_(_t(dec[name]["kernel"]).flip(0, 1).permute(2, 3, 0, 1))
        layer.bias.copy_(_t(dec[name]["bias"]))
    return model
