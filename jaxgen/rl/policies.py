"""Policy heads and actor-critic networks for the policy-gradient agents (REINFORCE, PPO;
later GAIL and SeqGAN).

* Categorical (discrete actions): ``logits [..., A]``; log-prob via ``log_softmax``.
* Diagonal Gaussian (continuous actions): ``mean [..., D]`` and ``log_std`` that is
  ``"fixed"`` (a constant, not learned), ``"param"`` (learned, state-independent: one
  parameter vector ``[D]``) or ``"state"`` (learned, state-dependent: a second head of
  the actor). The log-density is :func:`jaxgen.core.distributions.diag_gaussian_log_prob`
  (the one implementation of that math), with ``log_var = 2 log_std``.

No distribution library: plain functions, dispatched on a static ``discrete`` flag, so
the compiled loop holds only the few ops it needs.
Sampling is split into drawing the noise (:func:`draw_noise`: uniforms for a categorical,
standard normals for a Gaussian) and applying it (:func:`sample_from_noise`: inverse CDF /
``mean + std * eps``), so a rollout draws all its steps' noise in one PRNG call.

:func:`adam_tx` / :func:`init_opt_state`: the optimiser of PPO and REINFORCE (clip by global
norm, then Adam; learning rate and clip norm traced).

:class:`ActorCritic` computes the policy output and the value in one call (separate
actor and critic MLPs, tanh, orthogonal initialisation with gains sqrt(2) / 0.01 / 1 --
the usual PPO choice) or, for MinAtar frames, a conv torso per head; ``method="value"``
evaluates the critic alone.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen.core.distributions import diag_gaussian_log_prob
from jaxgen.nets.conv import PatchConv

LOG_STD_MODES = ("fixed", "param", "state")
_HALF_LOG_2PIE = 0.5 * (math.log(2.0 * math.pi) + 1.0)


# --- categorical -------------------------------------------------------------------------

def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """``log pi(a)`` for ``logits [..., A]`` and integer ``action [...]`` -> ``[...]``."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """``-sum_a pi(a) log pi(a)`` for ``logits [..., A]`` -> ``[...]``."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def categorical_from_uniform(u: jax.Array, logits: jax.Array) -> jax.Array:
    """int32 ``[...]`` drawn from ``softmax(logits [..., A])`` by inverting the CDF at
    ``u [...]`` ~ U[0, 1): the number of cumulative probabilities below ``u`` (one uniform per
    draw instead of the A of the Gumbel-max trick)."""
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    a = jnp.sum((cdf < u[..., None]).astype(jnp.int32), axis=-1)
    return jnp.minimum(a, logits.shape[-1] - 1)  # u above a rounded-down total


def categorical_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """int32 ``[...]`` drawn from ``softmax(logits [..., A])``."""
    return categorical_from_uniform(jax.random.uniform(key, logits.shape[:-1], logits.dtype), logits)


# --- diagonal Gaussian ----------------------------------------------------------------------

def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """``log N(a; mean, diag(exp(2 log_std)))`` summed over the last axis: ``[..., D] -> [...]``
    (``log_std`` broadcasts, e.g. ``[D]``)."""
    log_std = jnp.broadcast_to(log_std, mean.shape)
    return diag_gaussian_log_prob(action, mean, 2.0 * log_std)


def gaussian_entropy(log_std: jax.Array, shape: tuple | None = None) -> jax.Array:
    """``sum_d (log_std_d + (1 + log 2 pi) / 2)``; ``log_std [..., D] -> [...]`` (broadcast to
    ``shape`` first when given, e.g. the batch's mean shape)."""
    if shape is not None:
        log_std = jnp.broadcast_to(log_std, shape)
    return jnp.sum(log_std + _HALF_LOG_2PIE, axis=-1)


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)


# --- one interface over both ------------------------------------------------------------------

class PolicyOut(NamedTuple):
    """What the actor emits: ``logits [B, A]`` (discrete; ``log_std`` None) or
    ``mean [B, D]`` and ``log_std [D]`` or ``[B, D]`` (continuous)."""

    loc: jax.Array
    log_std: jax.Array | None = None


def log_prob(out: PolicyOut, action: jax.Array, discrete: bool) -> jax.Array:
    return categorical_log_prob(out.loc, action) if discrete else gaussian_log_prob(out.loc, out.log_std, action)


def entropy(out: PolicyOut, discrete: bool) -> jax.Array:
    return categorical_entropy(out.loc) if discrete else gaussian_entropy(out.log_std, out.loc.shape)


def sample(key: jax.Array, out: PolicyOut, discrete: bool) -> jax.Array:
    return categorical_sample(key, out.loc) if discrete else gaussian_sample(key, out.loc, out.log_std)


def mode(out: PolicyOut, discrete: bool) -> jax.Array:
    """The most likely action (greedy / the mean)."""
    return jnp.argmax(out.loc, axis=-1).astype(jnp.int32) if discrete else out.loc


def draw_noise(key: jax.Array, shape: tuple, action_dim: int, discrete: bool) -> jax.Array:
    """The randomness of ``shape`` (e.g. ``[T, N]``) policy draws in one call, for
    :func:`sample_from_noise`: uniforms ``shape`` (categorical) or standard normals
    ``shape + [D]`` (Gaussian). Drawing a whole rollout's noise up front costs one PRNG call
    instead of one per step (on XLA:CPU each threefry call is a small loop)."""
    if discrete:
        return jax.random.uniform(key, shape, jnp.float32)
    return jax.random.normal(key, tuple(shape) + (action_dim,), jnp.float32)


def sample_from_noise(noise: jax.Array, out: PolicyOut, discrete: bool) -> tuple[jax.Array, jax.Array]:
    """``(action, log pi(action))`` from one draw of :func:`draw_noise` (``[B]`` uniforms or
    ``[B, D]`` normals): the inverse CDF for a categorical, ``mean + std * eps`` for a Gaussian."""
    if discrete:
        a = categorical_from_uniform(noise, out.loc)
        return a, categorical_log_prob(out.loc, a)
    a = out.loc + jnp.exp(out.log_std) * noise
    return a, gaussian_log_prob(out.loc, out.log_std, a)


def sample_and_log_prob(key: jax.Array, out: PolicyOut, discrete: bool) -> tuple[jax.Array, jax.Array]:
    """``(action, log pi(action))`` for a batch ``out`` (``[B, ...]``)."""
    return sample_from_noise(draw_noise(key, out.loc.shape[:-1], out.loc.shape[-1], discrete), out, discrete)


# --- networks -------------------------------------------------------------------------------

def _dense(features: int, gain: float):
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain), bias_init=nn.initializers.zeros)


class _Torso(nn.Module):
    hidden: tuple
    activation: str = "tanh"
    conv: bool = False

    @nn.compact
    def __call__(self, x):
        act = {"tanh": nn.tanh, "relu": nn.relu}[self.activation]
        x = x.astype(jnp.float32)
        if self.conv:  # the MinAtar paper's network: 16 3x3 filters, then the dense layers
            x = nn.relu(PatchConv(16, (3, 3), name="Conv_0")(x))  # = nn.Conv VALID, fast on CPU
        x = x.reshape(x.shape[0], -1)
        for h in self.hidden:
            x = act(_dense(h, math.sqrt(2.0))(x))
        return x


class ActorCritic(nn.Module):
    """``obs [B, ...] -> (PolicyOut, value [B])``; separate actor and critic torsos (two
    plain MLPs: on XLA:CPU one batched matmul over the stacked pair was slower, and a
    block-diagonal fused forward in the rollout no faster -- benchmarks/notes/policy_gradient.md)."""

    action_dim: int
    discrete: bool
    hidden: tuple = (64, 64)
    activation: str = "tanh"
    conv: bool = False
    log_std: str = "param"
    log_std_init: float = 0.0

    def setup(self):
        self.actor = _Torso(tuple(self.hidden), self.activation, self.conv)
        self.critic = _Torso(tuple(self.hidden), self.activation, self.conv)
        self.pi_head = _dense(self.action_dim, 0.01)
        self.v_head = _dense(1, 1.0)
        if not self.discrete:
            if self.log_std == "param":
                self.log_std_param = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,))
            elif self.log_std == "state":
                self.log_std_head = _dense(self.action_dim, 0.01)

    def policy(self, obs, h=None) -> PolicyOut:
        if h is None:
            h = self.actor(obs)
        loc = self.pi_head(h)
        if self.discrete:
            return PolicyOut(loc)
        if self.log_std == "param":
            return PolicyOut(loc, self.log_std_param)
        if self.log_std == "state":
            return PolicyOut(loc, self.log_std_head(h) + self.log_std_init)
        return PolicyOut(loc, jnp.full((self.action_dim,), self.log_std_init, jnp.float32))

    def value(self, obs, h=None) -> jax.Array:
        if h is None:
            h = self.critic(obs)
        return self.v_head(h)[..., 0]

    def __call__(self, obs):
        return self.policy(obs), self.value(obs)


# --- optimiser shared by the policy-gradient agents -----------------------------------------

def adam_tx(learning_rate: float, max_grad_norm: float, eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam after global-norm gradient clipping, with ``learning_rate`` and ``max_grad_norm``
    injected hyper-parameters (traced: a sweep vmaps over them, an annealed rate is set each
    iteration). The numbers given are the config's; :func:`init_opt_state` sets the run's own
    (possibly swept) values."""

    def chain(learning_rate, max_grad_norm):
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=eps))

    return optax.inject_hyperparams(chain)(learning_rate=learning_rate, max_grad_norm=max_grad_norm)


def init_opt_state(tx: optax.GradientTransformation, params, hparams: dict):
    """``tx.init(params)`` (``tx`` from :func:`adam_tx`) with the injected learning rate and
    clip norm taken from ``hparams`` as copies (distinct buffers: the runner donates the state)."""
    opt_state = tx.init(params)
    for name in ("learning_rate", "max_grad_norm"):
        opt_state.hyperparams[name] = jnp.array(hparams[name], copy=True)
    return opt_state


def action_spec(env, params) -> tuple[bool, int, tuple, np.ndarray | None, np.ndarray | None]:
    """``(discrete, action_dim, action_shape, low, high)`` of a gymnax env's action space."""
    from gymnax.environments import spaces

    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        return True, int(space.n), (), None, None
    shape = tuple(space.shape) or (1,)
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
    return False, int(np.prod(shape)), shape, low, high
