"""PyTorch reference of the benchmarked GANs (same architectures as jaxgen.nets.gan), CPU.

One training step = one discriminator update (BCE, real -> 1, fake -> 0) + one generator
update (non-saturating), Adam(2e-4, 0.5, 0.999), as in :func:`jaxgen.generative.gan.train_step`
with ``loss="bce"``, ``n_critic=1``. The real minibatch is gathered from a preloaded uint8
tensor by random indices and scaled to [-1, 1], like the JAX step.

Run on its own: ``python benchmarks/torch_gan.py --arch dcgan --batch 64``.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn
import torch.nn.functional as F


def _init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class MLPG(nn.Module):
    def __init__(self, z=100, hidden=(256, 512, 1024)):
        super().__init__()
        layers, d = [], z
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2)]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


class MLPD(nn.Module):
    def __init__(self, hidden=(1024, 512, 256)):
        super().__init__()
        layers, d = [], 784
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2)]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x):
        return self.net(x.flatten(1)).squeeze(1)


class DCG(nn.Module):
    """z -> 4x4x4w -> 7x7x2w (3x3 s2 p1) -> 14x14xw -> 28x28x1 (4x4 s2 p1), BN + ReLU, tanh."""

    def __init__(self, z=100, w=64):
        super().__init__()
        self.w = w
        self.fc = nn.Linear(z, 4 * 4 * 4 * w, bias=False)
        self.bn0 = nn.BatchNorm2d(4 * w, momentum=0.1)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
            nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        x = self.fc(z).view(-1, 4 * self.w, 4, 4)
        return self.net(F.relu(self.bn0(x)))


class DCD(nn.Module):
    """28 -> 14 -> 7 -> 4 strided 4x4 convs (leaky ReLU 0.2, BN after the first), dense score.
    (The 7 -> 4 layer uses padding 2: same output size and cost as JAX's "SAME" (1, 2).)"""

    def __init__(self, w=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 2, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True))
        self.fc = nn.Linear(4 * 4 * 4 * w, 1)

    def forward(self, x):
        return self.fc(self.net(x).flatten(1)).squeeze(1)


def make(arch: str, batch: int, images_uint8, seed: int = 0, device: str = "cpu"):
    """A ``step()`` closure doing one D + one G update on ``device`` (CPU by default)."""
    torch.manual_seed(seed)
    g, d = (MLPG(), MLPD()) if arch == "mlp" else (DCG(), DCD())
    g.apply(_init)
    d.apply(_init)
    g, d = g.to(device), d.to(device)
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    data = torch.as_tensor(images_uint8).permute(0, 3, 1, 2).contiguous().to(device)  # [N, 1, 28, 28] uint8
    n = data.shape[0]

    def step():
        idx = torch.randint(0, n, (batch,), device=device)
        real = data[idx].float() / 127.5 - 1.0
        z = torch.randn(batch, 100, device=device)
        fake = g(z)
        od.zero_grad(set_to_none=True)
        s_real, s_fake = d(real), d(fake.detach())
        loss_d = F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
        loss_d.backward()
        od.step()
        og.zero_grad(set_to_none=True)
        loss_g = F.softplus(-d(fake)).mean()
        loss_g.backward()
        og.step()
        return loss_d.item() + loss_g.item() * 0  # .item(): wait for the step, as the JAX timing blocks

    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="dcgan", choices=("mlp", "dcgan"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    import numpy as np

    step = make(a.arch, a.batch, np.random.default_rng(0).integers(0, 256, (1000, 28, 28, 1), dtype=np.uint8))
    step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    print(f"torch {a.arch} batch {a.batch}: {a.steps / (time.perf_counter() - t):.2f} steps/s ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
