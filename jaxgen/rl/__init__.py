"""Reinforcement learning.

* Shared pieces: ``envs`` (gymnax ``make``, the one environment description ``EnvSpec``,
  ``env_action``, the vector env, episode statistics, evaluation episodes), ``probes``
  (jaxgen's own small environments: the probes and the line world), ``buffers`` (the replay
  buffer), ``returns`` (discounted returns, GAE), ``exploration`` (epsilon schedule,
  epsilon-greedy), ``policies`` (policy heads, ``PolicyNetConfig``, ``actor_critic``).
  The loss math (policy-gradient surrogates, value losses, TD targets, masked statistics)
  lives in :mod:`jaxgen.losses`, importable by any family.
* Agents, one module each: ``tabular`` (Q-learning, value / policy iteration), ``dqn``,
  ``reinforce``, ``ppo``, ``ddpg`` (DDPG and TD3), ``maddpg`` (MADDPG and independent DDPG on
  ``ma_envs``: jaxmarl's particle tasks, imported lazily, and the multi-agent vector env).
* Host side: ``fit`` (one training run / study / seeds check for every deep-RL agent, on
  :mod:`jaxgen.core.fit`), ``dqn_fit`` (DQN's presets, Freeway study, Q inspection),
  ``tabular_fit``, ``render`` (episodes as pictures), ``study`` (seeds x hyperparameters in
  one compile), ``evaluation`` (evaluation between chunks).
"""

__all__ = ["envs", "probes", "buffers", "returns", "exploration", "policies", "tabular", "dqn", "reinforce", "ppo",
           "ddpg", "ma_envs", "maddpg", "maddpg_fit", "fit", "dqn_fit", "tabular_fit", "render", "study", "evaluation"]
