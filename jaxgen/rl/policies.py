"""Policy heads, the policy-network config and the actor-critic network of the
policy-gradient agents (REINFORCE, PPO; later BC, GAIL and SeqGAN).

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

:class:`PolicyNetConfig` is the one description of a policy network (torso, widths,
activation, Gaussian log-std); every agent that has a policy holds it as its nested
``policy`` config (``--policy.hidden``), and :func:`actor_critic` is the one constructor, so
two configs that hold equal ``PolicyNetConfig`` s build the same network on the same
environment (BC's parameters load into PPO's network by construction). :func:`build` is
what a policy-gradient agent's own ``build(config)`` returns: the environment's spec, that
network and the agent's optimiser (:class:`Built`).

:class:`ActorCritic` computes the policy output and the value in one call (separate
actor and critic MLPs, tanh, orthogonal initialisation with gains sqrt(2) / 0.01 / 1 --
the usual PPO choice) or, for MinAtar frames, a conv torso per head; ``method="value"``
evaluates the critic alone.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen.core import config as C
from jaxgen.core.distributions import categorical_from_uniform, categorical_sample, diag_gaussian_log_prob
from jaxgen.nets.conv import PatchConv
from jaxgen.nets.init import orthogonal
from jaxgen.rl import envs
from jaxgen.rl.envs import EnvSpec

LOG_STD_MODES = ("fixed", "param", "state")
NETWORKS = ("auto", "mlp", "minatar")
ACTIVATIONS = ("tanh", "relu")
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
    # jaxgen's orthogonal: jax's numbers, but safe to vmap over runs on CPU (jaxgen/nets/init.py)
    return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros)


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


# --- the one policy-network config and constructor ---------------------------------------------

@dataclasses.dataclass(frozen=True)
class PolicyNetConfig:
    """The policy network of an agent (nested as its ``policy`` config); defaults: the usual
    PPO network, separate tanh 64x64 actor and critic, learned state-independent log-std."""

    network: str = C.static("auto", "auto, mlp or minatar (conv torso); auto picks the conv torso for image observations", NETWORKS)
    hidden: tuple = C.static((64, 64), "hidden layer sizes of the actor and of the critic", accepts=C.sizes(1, whole=True))
    activation: str = C.static("tanh", "activation of the hidden layers: tanh or relu", ACTIVATIONS)
    log_std: str = C.static("param", "Gaussian log-std: fixed, param (learned, state-independent) or state (learned head)", LOG_STD_MODES)
    log_std_init: float = C.static(0.0, "initial log-std of a Gaussian policy", accepts=C.number())


def validate_net(net: PolicyNetConfig, prefix: str = "policy") -> PolicyNetConfig:
    """ConfigError (one sentence, naming ``prefix.field``) for an out-of-range network config
    checked on its own (an agent's ``validate`` checks its nested ``policy`` with its own
    fields, :func:`jaxgen.core.config.check_fields`)."""
    C.check_fields(net, prefix + ".")
    return net


@functools.lru_cache(maxsize=None)
def actor_critic(net: PolicyNetConfig, spec: EnvSpec) -> ActorCritic:
    """The network ``net`` describes on environment ``spec`` (cached: one module per pair):
    its action head fits the action space, ``network="auto"`` picks the conv torso for image
    (``[H, W, C]``) observations."""
    conv = net.network == "minatar" or (net.network == "auto" and len(spec.obs_shape) == 3)
    return ActorCritic(spec.action_dim, spec.discrete, tuple(net.hidden), net.activation, conv, net.log_std,
                       net.log_std_init)


class Built(NamedTuple):
    """What a policy-gradient config builds: its environment's spec, its actor-critic network
    (:func:`actor_critic`) and its optimiser."""

    spec: EnvSpec
    net: ActorCritic
    tx: optax.GradientTransformation


def build(env: str, net: PolicyNetConfig, tx: optax.GradientTransformation) -> Built:
    """:class:`Built` of environment ``env`` (:func:`jaxgen.rl.envs.spec`), network ``net`` and optimiser ``tx``."""
    spec = envs.spec(env)
    return Built(spec, actor_critic(net, spec), tx)
