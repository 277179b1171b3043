"""Demonstrations: expert trajectories for imitation learning (BC, GAIL), their files and
their device form.

:class:`Demonstrations` holds ``E`` trajectories of ``S`` transitions in all, as host numpy
arrays: ``obs [S, *obs_shape]`` (the observation acted on), ``next_obs [S, *obs_shape]``
(the one the action led to), ``action`` (``[S]`` int32 for a discrete action space, ``[S,
D]`` float32 for a box -- the action the environment received, i.e. clipped to the box),
``reward [S]``, ``lengths [E]`` (the episode boundaries: trajectory ``i`` is transitions
``boundaries[i]:boundaries[i + 1]``) and ``terminal [E]`` (the trajectory ended at a
terminal state rather than a time limit, as the source says; the ``imitation`` library marks
every trajectory terminal, time limits included, and that is kept as read).

Files (never pickles: ``np.load(..., allow_pickle=False)``):

* the ``imitation`` library's layout (``../shared/data/expert_rollouts/``): ``obs`` with one
  more row per trajectory than ``acts`` (the final observation), ``acts``, ``rews``,
  ``indices [E-1]`` (``np.split(acts, indices)`` gives the trajectories) and ``terminal [E]``;
* jaxgen's own (:func:`save`): ``obs``, ``next_obs``, ``action``, ``reward``, ``lengths``,
  ``terminal``, ``env`` and ``expert_return`` (the mean return of the policy that recorded it).

An environment's default file (:func:`shared_file`, used when a config's ``demos`` is empty) is
the shared one (CartPole-v1, Pendulum-v1) or one kept in the repository (:data:`REPO_FILES`:
Reacher-misc, recorded with ``jaxgen expert Reacher-misc --preset reacher --trajectories 32``).

:func:`load` reads either (one sentence naming the file and what was expected for a missing,
unreadable, empty or inconsistent file); :func:`check_env` refuses demonstrations whose
observation shape or action space is not the environment's; :func:`subsample` keeps ``k``
trajectories chosen reproducibly by a seed (the ``k`` of one seed are the first ``k`` of a
fixed permutation, so 1 of them are among the 4, the 4 among the 16). :func:`device_arrays`
is what BC and GAIL put on the device: the trajectories in that permuted order, with the end
of each, so that "the first ``k`` trajectories" is a traced prefix (``ends[k - 1]``
transitions): one compile trains every ``k`` (pad/mask, :func:`prefix_size`).
:func:`record` plays a policy for ``E`` complete episodes into a :class:`Demonstrations`.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core.errors import ConfigError, DataError
from jaxgen.rl import envs

#: Where the shared expert files live, relative to the project root (the README of that folder).
SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "expert_rollouts"
#: The shared expert file of an environment, by name.
SHARED_FILES = {"CartPole-v1": "cartpole.npz", "Pendulum-v1": "pendulum.npz"}
#: The repository's root (expert files recorded with ``jaxgen expert`` are kept under it).
REPO_DIR = Path(__file__).resolve().parents[2]
#: Expert files kept in the repository, relative to its root, by environment name (recorded
#: with ``jaxgen expert ENV --preset ...``; the ``.json`` beside each says how).
REPO_FILES = {"Reacher-misc": "benchmarks/notes/imitation/Reacher-misc/expert.npz"}
IMITATION_KEYS = ("obs", "acts", "indices", "terminal")
JAXGEN_KEYS = ("obs", "next_obs", "action", "reward", "lengths", "terminal")


class Demonstrations(NamedTuple):
    """``E`` trajectories, ``S`` transitions (see the module docstring for the fields)."""

    obs: np.ndarray  # [S, *obs_shape] float32
    next_obs: np.ndarray  # [S, *obs_shape] float32
    action: np.ndarray  # [S] int32 or [S, D] float32
    reward: np.ndarray  # [S] float32
    lengths: np.ndarray  # [E] int64, each >= 1
    terminal: np.ndarray  # [E] bool
    env: str = ""
    expert_return: float | None = None  # as stored beside the file (None: unknown)

    @property
    def num_trajectories(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def num_transitions(self) -> int:
        return int(self.obs.shape[0])

    @property
    def boundaries(self) -> np.ndarray:
        """``[E + 1]``: trajectory ``i`` is transitions ``boundaries[i]:boundaries[i + 1]``."""
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    @property
    def returns(self) -> np.ndarray:
        """Undiscounted return of each trajectory ``[E]`` (float64)."""
        return np.add.reduceat(self.reward.astype(np.float64), self.boundaries[:-1]) if self.num_trajectories else np.zeros(0)

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    def trajectory(self, i: int) -> dict:
        """Trajectory ``i`` as a dict of arrays (``obs``, ``next_obs``, ``action``, ``reward``)."""
        b = self.boundaries
        sl = slice(int(b[i]), int(b[i + 1]))
        return {"obs": self.obs[sl], "next_obs": self.next_obs[sl], "action": self.action[sl], "reward": self.reward[sl]}

    def select(self, indices) -> "Demonstrations":
        """The trajectories ``indices`` (in that order)."""
        b = self.boundaries
        rows = np.concatenate([np.arange(b[i], b[i + 1]) for i in indices]) if len(indices) else np.zeros(0, np.int64)
        return self._replace(obs=self.obs[rows], next_obs=self.next_obs[rows], action=self.action[rows],
                             reward=self.reward[rows], lengths=self.lengths[np.asarray(indices, np.int64)],
                             terminal=self.terminal[np.asarray(indices, np.int64)])


# --------------------------------------------------------------------------- files

def expert_envs() -> tuple[str, ...]:
    """The environments with a default expert file: the shared ones, then the repository's."""
    return (*SHARED_FILES, *REPO_FILES)


def shared_file(env: str) -> Path:
    """The default expert file of ``env``: the shared one (``../shared/data/expert_rollouts``)
    or the one kept in the repository (:data:`REPO_FILES`); ConfigError naming the envs that
    have one."""
    if env in REPO_FILES:
        return REPO_DIR / REPO_FILES[env]
    if env not in SHARED_FILES:
        raise ConfigError(f"env={env!r} has no shared expert demonstrations; accepted without demos=PATH: "
                          f"{', '.join(expert_envs())} (record others with `jaxgen expert ENV`).")
    return SHARED_DIR / SHARED_FILES[env]


def _fail(path, what: str):
    raise DataError(f"demonstrations file {path} {what}.")


def _read_npz(path: Path) -> dict:
    if not path.is_file():
        _fail(path, "does not exist; accepted: an .npz of expert trajectories (record one with `jaxgen expert ENV`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        _fail(path, f"is not a readable npz of plain arrays ({type(e).__name__}); accepted: the imitation "
                    f"layout ({', '.join(IMITATION_KEYS)}) or jaxgen's ({', '.join(JAXGEN_KEYS)})")


def _from_imitation(path, z: dict) -> Demonstrations:
    obs, acts = np.asarray(z["obs"]), np.asarray(z["acts"])
    idx, term = np.asarray(z["indices"]).astype(np.int64).reshape(-1), np.asarray(z["terminal"]).astype(bool).reshape(-1)
    e = idx.shape[0] + 1
    if acts.shape[0] == 0:
        _fail(path, "holds no transitions; accepted: at least one trajectory of at least one step")
    if term.shape[0] != e:
        _fail(path, f"has terminal of {term.shape[0]} entries for {e} trajectories (indices has {idx.shape[0]}); "
                    "accepted: one terminal flag per trajectory")
    ends = np.concatenate([idx, [acts.shape[0]]])
    lengths = np.diff(np.concatenate([[0], ends]))
    if np.any(lengths < 1):
        _fail(path, "has indices that are not increasing within the actions; accepted: split points of acts, "
                    "each trajectory at least one step")
    if obs.shape[0] != acts.shape[0] + e:
        _fail(path, f"has obs of {obs.shape[0]} rows for {acts.shape[0]} actions in {e} trajectories; accepted: "
                    f"one more observation per trajectory than actions ({acts.shape[0] + e} rows)")
    # obs rows of trajectory i: [ends_obs[i-1], ends_obs[i]), the last one the final observation
    o_start = np.concatenate([[0], ends + np.arange(1, e + 1)])[:-1]
    act_rows = np.concatenate([np.arange(s, s + n) for s, n in zip(o_start, lengths)])
    rews = np.asarray(z["rews"], np.float32) if "rews" in z else np.zeros(acts.shape[0], np.float32)
    if rews.shape != (acts.shape[0],):
        _fail(path, f"has rews of shape {rews.shape} for {acts.shape[0]} actions; accepted: one reward per action")
    return Demonstrations(obs[act_rows].astype(np.float32), obs[act_rows + 1].astype(np.float32), _action(path, acts),
                          rews, lengths.astype(np.int64), term)


def _action(path, a: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        if a.ndim != 1:
            _fail(path, f"has integer actions of shape {a.shape}; accepted: one integer per step, shape [S]")
        return a.astype(np.int32)
    if not np.issubdtype(a.dtype, np.floating):
        _fail(path, f"has actions of dtype {a.dtype}; accepted: integers (discrete) or floats (continuous)")
    if a.ndim == 1:
        a = a[:, None]
    return a.reshape(a.shape[0], -1).astype(np.float32)


def _from_jaxgen(path, z: dict) -> Demonstrations:
    obs, nxt, lengths = np.asarray(z["obs"]), np.asarray(z["next_obs"]), np.asarray(z["lengths"]).astype(np.int64)
    s = obs.shape[0]
    if s == 0 or lengths.size == 0:
        _fail(path, "holds no transitions; accepted: at least one trajectory of at least one step")
    if nxt.shape != obs.shape:
        _fail(path, f"has next_obs of shape {nxt.shape} and obs of {obs.shape}; accepted: the same shape")
    if lengths.sum() != s or np.any(lengths < 1):
        _fail(path, f"has lengths summing to {int(lengths.sum())} for {s} transitions; accepted: positive lengths "
                    "that sum to the number of transitions")
    for k in ("action", "reward"):
        if z[k].shape[0] != s:
            _fail(path, f"has {k} of {z[k].shape[0]} rows for {s} transitions; accepted: one per transition")
    term = np.asarray(z["terminal"]).astype(bool).reshape(-1)
    if term.shape[0] != lengths.shape[0]:
        _fail(path, f"has terminal of {term.shape[0]} entries for {lengths.shape[0]} trajectories; accepted: one per trajectory")
    env = str(z["env"]) if "env" in z else ""
    ret = float(z["expert_return"]) if "expert_return" in z else None
    return Demonstrations(obs.astype(np.float32), nxt.astype(np.float32), _action(path, np.asarray(z["action"])),
                          np.asarray(z["reward"], np.float32), lengths, term, env, ret)


def load(path: str | Path, env: str | None = None) -> Demonstrations:
    """The demonstrations in ``path`` (either layout of the module docstring); with ``env``,
    checked against it (:func:`check_env`). DataError (one sentence) for a missing,
    unreadable, empty or inconsistent file."""
    path = Path(path)
    z = _read_npz(path)
    if all(k in z for k in JAXGEN_KEYS):
        d = _from_jaxgen(path, z)
    elif all(k in z for k in IMITATION_KEYS):
        d = _from_imitation(path, z)
    elif not z:
        _fail(path, "holds no arrays; accepted: the imitation layout (obs, acts, indices, terminal) or jaxgen's")
    else:
        _fail(path, f"holds the arrays {', '.join(sorted(z))}; accepted: the imitation layout "
                    f"({', '.join(IMITATION_KEYS)}, rews) or jaxgen's ({', '.join(JAXGEN_KEYS)})")
    if env is not None:
        d = check_env(d, env, path)
    return d


def save(path: str | Path, demos: Demonstrations) -> Path:
    """Write ``demos`` in jaxgen's layout (plain arrays, ``np.savez``; no pickle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if demos.expert_return is None else {"expert_return": np.float64(demos.expert_return)}
    with open(path, "wb") as f:
        np.savez(f, obs=demos.obs, next_obs=demos.next_obs, action=demos.action, reward=demos.reward,
                 lengths=demos.lengths, terminal=demos.terminal, env=np.str_(demos.env), **extra)
    return path


def check_env(demos: Demonstrations, env: str, where="the demonstrations") -> Demonstrations:
    """``demos`` (with ``env`` set) if its observations and actions fit environment ``env``;
    else DataError naming the mismatch (observation shape, discrete vs continuous, the
    number of action numbers, a discrete action out of range)."""
    spec = envs.spec(env)
    name = f"demonstrations file {where}" if isinstance(where, Path) else str(where)
    if tuple(demos.obs.shape[1:]) != tuple(spec.obs_shape):
        raise DataError(f"{name} has observations of shape {tuple(demos.obs.shape[1:])} but {env} observes "
                        f"{tuple(spec.obs_shape)}; accepted: demonstrations recorded on {env}.")
    if spec.discrete:
        if demos.action.ndim != 1 or not np.issubdtype(demos.action.dtype, np.integer):
            raise DataError(f"{name} has continuous actions of {demos.action.shape[1:] or (1,)} numbers but {env} "
                            f"takes one of {spec.action_dim} discrete actions; accepted: integer actions [S].")
        lo, hi = int(demos.action.min()), int(demos.action.max())
        if lo < 0 or hi >= spec.action_dim:
            raise DataError(f"{name} has discrete actions in [{lo}, {hi}] but {env} has {spec.action_dim} actions; "
                            f"accepted: integers in [0, {spec.action_dim - 1}].")
    else:
        got = demos.action.shape[1] if demos.action.ndim == 2 and np.issubdtype(demos.action.dtype, np.floating) else None
        if got != spec.action_dim:
            what = "integer actions" if got is None else f"actions of {got} numbers"
            raise DataError(f"{name} has {what} but {env} takes {spec.action_dim} action number(s) per step; "
                            f"accepted: float actions [S, {spec.action_dim}].")
    if demos.env and demos.env != env:
        raise DataError(f"{name} was recorded on {demos.env} but is used on {env}; accepted: demonstrations of {env}.")
    return demos._replace(env=env)


def resolve(path: str, env: str) -> Path:
    """``path``, or the shared expert file of ``env`` when ``path`` is empty."""
    return Path(path) if path else shared_file(env)


# --------------------------------------------------------------------------- subsets and device form

def order(num_trajectories: int, seed: int) -> np.ndarray:
    """The fixed order of the trajectories for ``seed`` (a permutation ``[E]``): the ``k`` of
    :func:`subsample` are its first ``k``."""
    return np.random.default_rng(seed).permutation(num_trajectories)


def subsample(demos: Demonstrations, k: int | None, seed: int = 0) -> Demonstrations:
    """``k`` trajectories chosen by ``seed`` (None or 0: all, in that order); ConfigError for
    ``k`` above the number held."""
    e = demos.num_trajectories
    if k is not None and k != 0 and not (isinstance(k, (int, np.integer)) and 1 <= k <= e):
        raise ConfigError(f"num_trajectories={k!r} is out of range; accepted: a whole number in [1, {e}] "
                          f"(the trajectories this file holds), or 0 for all.")
    return demos.select(order(e, seed)[: (k or e)])


def device_arrays(demos: Demonstrations, seed: int = 0) -> dict:
    """What BC / GAIL keep on the device: every trajectory, in :func:`order` ``(seed)``:
    ``obs [S, *obs_shape]``, ``action [S]`` / ``[S, D]``, ``next_obs``, and ``ends [E]`` int32
    (the number of transitions in the first ``i + 1`` trajectories)."""
    d = subsample(demos, None, seed)
    return {"obs": jnp.asarray(d.obs), "action": jnp.asarray(d.action), "next_obs": jnp.asarray(d.next_obs),
            "ends": jnp.asarray(np.cumsum(d.lengths), jnp.int32)}


def prefix_size(ends: jax.Array, k) -> jax.Array:
    """Transitions in the first ``k`` trajectories (``k`` traced, clipped to ``[1, E]``):
    int32 ``[]``."""
    k = jnp.clip(jnp.round(jnp.asarray(k)).astype(jnp.int32), 1, ends.shape[0])
    return ends[k - 1]


def sample_prefix(key: jax.Array, n_valid: jax.Array, batch: int) -> jax.Array:
    """``batch`` indices drawn uniformly (with replacement) from ``[0, n_valid)``: int32 ``[batch]``."""
    u = jax.random.uniform(key, (batch,))
    return jnp.minimum((u * n_valid).astype(jnp.int32), n_valid - 1)


# --------------------------------------------------------------------------- recording

def record(env: str, policy: Callable, key: jax.Array, num_trajectories: int, max_steps: int | None = None,
           expert_return: float | None = None) -> Demonstrations:
    """Play ``policy(key, obs [E, ...]) -> env action [E, ...]`` for one complete episode in
    each of ``num_trajectories`` environments (at most ``max_steps``, default the env's limit)
    and return them as :class:`Demonstrations` (a trajectory cut by ``max_steps`` before its
    end is kept, marked not terminal). One compiled loop; the cut into trajectories is on the host."""
    spec = envs.spec(env)
    limit = int(max_steps or spec.max_steps or 1000)
    venv = spec.vec(num_trajectories)

    @jax.jit
    def play(key):
        k_reset, k_run = jax.random.split(key)
        obs, st = venv.reset(k_reset)

        def step(c, k):
            obs, st = c
            k_a, k_s = jax.random.split(k)
            a = policy(k_a, obs)
            st, out = venv.step(k_s, st, a)
            return (out.obs, st), (obs, a, out.reward, out.final_obs, out.terminated, out.done)

        _, xs = jax.lax.scan(step, (obs, st), jax.random.split(k_run, limit))
        return xs

    obs, act, rew, nxt, term, done = (np.asarray(x) for x in jax.device_get(play(key)))
    cols = {"obs": [], "next_obs": [], "action": [], "reward": []}
    lengths, terminal = [], []
    for i in range(num_trajectories):
        ends = np.flatnonzero(done[:, i])
        n = int(ends[0]) + 1 if ends.size else limit
        for k, x in (("obs", obs), ("next_obs", nxt), ("action", act), ("reward", rew)):
            cols[k].append(x[:n, i])
        lengths.append(n)
        terminal.append(bool(term[n - 1, i]))
    action = np.concatenate(cols["action"])
    action = action.astype(np.int32) if spec.discrete else action.reshape(action.shape[0], -1).astype(np.float32)
    d = Demonstrations(np.concatenate(cols["obs"]).astype(np.float32), np.concatenate(cols["next_obs"]).astype(np.float32),
                       action, np.concatenate(cols["reward"]).astype(np.float32), np.asarray(lengths, np.int64),
                       np.asarray(terminal, bool), env)
    return d._replace(expert_return=d.mean_return if expert_return is None else expert_return)
