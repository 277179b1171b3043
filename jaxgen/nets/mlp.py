"""Multi-layer perceptron."""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
    """Dense layers with ``activation`` between them (none after the last).

    ``x [..., D_in] -> [..., features[-1]]``.
    """

    features: Sequence[int]
    activation: Callable = nn.relu
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, f in enumerate(self.features):
            x = nn.Dense(f, kernel_init=self.kernel_init)(x)
            if i < len(self.features) - 1:
                x = self.activation(x)
        return x
