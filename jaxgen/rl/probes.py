"""jaxgen's own environments: tiny gymnax-style environments with a known answer, registered
in :mod:`jaxgen.rl.envs` beside gymnax's (``envs.make(name)``).

The probes debug value learners (each isolates one part of the agent); their observations
are float32 ``[1]``.

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
* ``Probe-Continuous``: a continuous action, two steps, reward ``-(a - target)^2`` with a
  target per observation (:class:`Continuous`; tests DDPG / TD3's actor).

The line world (``LineWorld``, the course's tabular example): cells 0..9, start in 0; action
0 = R (one cell right), 1 = JR (jump two cells right). The reward is that of the cell
entered: +1 for cells 0-2, 4, 5, 7, 8, -10 for the holes 3 and 6, +10 for the goal 9;
holes and goal end the episode, and a jump past cell 9 ends it with -10. The observation is
the cell (int32). With gamma = 0.9 the fixed point is Q = 10 for every safe move
(1 + 0.9 * 10 = 10) and -10 for every move into a hole or off the end; :data:`LINE_WORLD_Q`
is that table (terminal cells' rows 0). :mod:`jaxgen.rl.tabular` solves it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
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


class Continuous(_Probe):
    """``Probe-Continuous``: a continuous action ``a`` in ``[-1, 1]``, two steps (obs 0, then obs 1,
    the end); reward ``-(a - t)^2`` with ``t = -0.5`` at obs 0 and ``+0.5`` at obs 1. The best
    deterministic policy is ``mu(0) = -0.5``, ``mu(1) = 0.5`` (return 0): tests a deterministic
    actor following its critic's action gradient (DDPG, TD3)."""

    probe_name = "Probe-Continuous"

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def get_obs(self, state, params=None, key=None):
        return jnp.reshape(jnp.minimum(state.time, 1), (1,)).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        t = jnp.where(state.time >= 1, 0.5, -0.5)
        return self._out(EnvState(time=state.time + 1), -(jnp.reshape(action, ()) - t) ** 2, state.time >= 1)


# ----------------------------------------------------------------------------- line world

N_CELLS = 10
GOAL = 9
HOLES = (3, 6)
CELL_REWARD = np.array([1, 1, 1, -10, 1, 1, -10, 1, 1, 10], np.float32)
OFF_END_REWARD = -10.0
ACTIONS = ("R", "JR")


@struct.dataclass
class LineState(environment.EnvState):
    cell: jax.Array
    time: int


@struct.dataclass
class LineParams(environment.EnvParams):
    max_steps_in_episode: int = 100


class LineWorld(environment.Environment[LineState, LineParams]):
    """The course's line world (see the module docstring). Observation: the cell (int32)."""

    @property
    def default_params(self) -> LineParams:
        return LineParams()

    @property
    def name(self) -> str:
        return "LineWorld"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Discrete(N_CELLS)

    def reset_env(self, key, params):
        state = LineState(cell=jnp.zeros((), jnp.int32), time=0)
        return state.cell, state

    def get_obs(self, state, params=None, key=None):
        return state.cell

    def step_env(self, key, state, action, params):
        target = state.cell + 1 + jnp.asarray(action, jnp.int32)
        off = target > GOAL
        cell = jnp.minimum(target, GOAL).astype(jnp.int32)
        reward = jnp.where(off, OFF_END_REWARD, jnp.asarray(CELL_REWARD)[cell])
        terminated = off | (cell == GOAL) | (cell == HOLES[0]) | (cell == HOLES[1])
        new = LineState(cell=cell, time=state.time + 1)
        return new.cell, new, reward.astype(jnp.float32), terminated, {}

    def is_terminated(self, state, params):
        c = state.cell
        return (c == GOAL) | (c == HOLES[0]) | (c == HOLES[1])


def _line_world_q() -> np.ndarray:
    q = np.zeros((N_CELLS, 2), np.float32)
    for s in range(N_CELLS):
        if s in (*HOLES, GOAL):
            continue
        for a in range(2):
            t = s + 1 + a
            q[s, a] = -10.0 if (t > GOAL or t in HOLES) else 10.0
    return q


LINE_WORLD_Q = _line_world_q()  # converged Q at gamma = 0.9 (rows: cells, columns: R, JR)
