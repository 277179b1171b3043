"""Reinforcement learning: gymnax environments and wrappers (``envs``), the replay buffer
(``buffers``), value-learning math (``losses``), probe environments (``probes``), tabular
methods (``tabular``) and DQN (``dqn``, host orchestration in ``dqn_fit``)."""

__all__ = ["envs", "buffers", "losses", "probes", "tabular", "dqn", "dqn_fit"]
