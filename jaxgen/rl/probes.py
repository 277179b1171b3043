"""Probe environments: tiny gymnax-style environments with a known answer, for debugging
value learners (each isolates one part of the agent). Observations are float32 ``[1]``.

* ``Probe-OneAction``: one action, reward +1, episode ends. Q = 1 (tests the value
  regression alone).
* ``Probe-TwoActions``: two actions, reward -1 for action 0 and +1 for action 1, episode
  ends. Q = (-1, +1) (tests that the loss is taken on the action played).
* ``Probe-Discount``: one action, two steps: obs 0 (reward 0) then obs 1 (reward +1, the
  end). Q(0) = gamma, Q(1) = 1 (tests bootstrapping and the terminal mask).
* ``Probe-TimeLimit``: one action, reward +1 every step, never terminates; cut off by the
  time limit (``max_steps_in_episode``, default 5). The observation does not show time,
  so the right value is the infinite-horizon one, Q = 1 / (1 - gamma): a learner that
  bootstraps through truncation learns it, one that treats truncation as a terminal state
  learns less (tests terminated vs truncated).
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class EnvState(environment.EnvState):
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 5


class _Probe(environment.Environment[EnvState, EnvParams]):
    n_actions = 1
    probe_name = "Probe"

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def name(self) -> str:
        return self.probe_name

    @property
    def num_actions(self) -> int:
        return self.n_actions

    def action_space(self, params=None):
        return spaces.Discrete(self.n_actions)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)

    def reset_env(self, key, params):
        state = EnvState(time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.zeros((1,), jnp.float32)

    def is_terminated(self, state, params):
        return jnp.array(False)

    def _out(self, state, reward, terminated):
        return self.get_obs(state), state, jnp.asarray(reward, jnp.float32), jnp.asarray(terminated), {}


class OneAction(_Probe):
    probe_name = "Probe-OneAction"

    def step_env(self, key, state, action, params):
        return self._out(EnvState(time=state.time + 1), 1.0, True)


class TwoActions(_Probe):
    n_actions = 2
    probe_name = "Probe-TwoActions"

    def step_env(self, key, state, action, params):
        return self._out(EnvState(time=state.time + 1), jnp.where(action == 1, 1.0, -1.0), True)


class Discount(_Probe):
    probe_name = "Probe-Discount"

    def get_obs(self, state, params=None, key=None):
        return jnp.reshape(jnp.minimum(state.time, 1), (1,)).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        new = EnvState(time=state.time + 1)
        end = state.time >= 1
        return self._out(new, jnp.where(end, 1.0, 0.0), end)


class TimeLimit(_Probe):
    probe_name = "Probe-TimeLimit"

    def step_env(self, key, state, action, params):
        return self._out(EnvState(time=state.time + 1), 1.0, False)
