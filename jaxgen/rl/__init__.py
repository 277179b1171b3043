"""Reinforcement learning.

* Shared pieces: ``envs`` (gymnax ``make``, the one environment description ``EnvSpec``,
  ``env_action``, the vector env, episode statistics, evaluation episodes), ``probes``
  (jaxgen's own small environments: the probes and the line world), ``buffers`` (the replay
  buffer), ``returns`` (discounted returns, GAE), ``exploration`` (epsilon schedule,
  epsilon-greedy), ``policies`` (policy heads, ``PolicyNetConfig``, ``actor_critic``).
  The loss math (policy-gradient surrogates, value losses, TD targets, masked statistics)
  lives in :mod:`jaxgen.losses`, importable by any family.
* Agents, one module each: ``tabular`` (Q-learning, value / policy iteration), ``dqn``,
  ``reinforce``, ``ppo``.
* Host side: ``dqn_fit`` and ``pg_fit`` (training runs, evaluation, rendering), ``study``
  (seeds x hyperparameters in one compile), ``evaluation`` (evaluation between chunks).
"""

__all__ = ["envs", "probes", "buffers", "returns", "exploration", "policies", "tabular", "dqn", "reinforce", "ppo",
           "dqn_fit", "pg_fit", "study", "evaluation"]
