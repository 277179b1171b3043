"""The one algorithm registry: an entry per algorithm, and everything else is built from it.

An :class:`Algorithm` names its config class, its pure module (``init``, ``make_trainer``, ...),
its family's host side (a :class:`jaxgen.core.fit.Family`: options, hooks, final plots, eval,
sample / render / inspect) and its presets. ``jaxgen train|sweep|eval|sample|render|inspect``
(:mod:`jaxgen.cli`) are generated from these entries in one loop, and a run directory is
mapped back to its algorithm by the config type stored in its ``config.json``
(:func:`for_run`) -- nothing dispatches on type names elsewhere.

Adding an algorithm = a module + one :func:`register` call (here, or in user code before
``jaxgen.cli.main`` runs). References may be objects or ``"package.module:attr"`` strings
(imported when first used, so importing the registry stays cheap and cycle-free).
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Mapping

from jaxgen.core.errors import ConfigError

COMMANDS = ("train", "sweep", "eval", "sample", "render", "inspect")


def _resolve(ref):
    """An object, or the object a ``"module"`` / ``"module:attr"`` string names."""
    if not isinstance(ref, str):
        return ref
    mod, _, attr = ref.partition(":")
    obj = importlib.import_module(mod)
    return getattr(obj, attr) if attr else obj


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """One registry entry.

    Attributes:
      name: the CLI name (``jaxgen train NAME``).
      module: the pure module (``init(key, config, hparams)``, ``make_trainer(config, ...)``,
        optionally ``validate(config)``), or its import path.
      config: the config class, or ``"module:Class"``.
      family: the host side (a :class:`~jaxgen.core.fit.Family` instance), or ``"module:attr"``.
      help: one line for ``jaxgen train --help``.
      presets: ``{name: config}`` (or ``"module:attr"``); ``--preset NAME`` starts from one.
      default_preset: the preset used when none is named (None: the config's defaults).
      fixed: config fields this entry fixes (e.g. ``{"model": "vae"}`` of the VAE entry).
      example: an example command line (shown in ``--help``).
      bench: ``{suite: [config overrides, ...]}`` that ``jaxgen bench --suite SUITE`` times
        (:mod:`jaxgen.bench`; ``quick``: one small config per family, ``full``: RESULTS.md's).
    """

    name: str
    module: Any
    config: Any
    family: Any
    help: str
    presets: Any = None
    default_preset: str | None = None
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    example: str = ""
    bench: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def mod(self):
        return _resolve(self.module)

    @property
    def config_cls(self) -> type:
        return _resolve(self.config)

    @property
    def fam(self):
        return _resolve(self.family)

    @property
    def preset_map(self) -> dict:
        return dict(_resolve(self.presets) or {})

    @property
    def commands(self) -> tuple:
        return ("train", "sweep", "eval") + tuple(self.fam.commands)

    def preset(self, name: str | None = None):
        """The base config: preset ``name`` (default: ``default_preset``), else the defaults."""
        name = name or self.default_preset
        if name is None:
            return self.config_cls()
        presets = self.preset_map
        if name not in presets:
            raise ConfigError(f"--preset={name!r} is not a preset of {self.name}; accepted: {', '.join(presets)}.")
        return presets[name]

    def validate(self, config):
        fn = getattr(self.mod, "validate", None)
        return fn(config) if fn is not None else config

    def matches(self, blob: Mapping) -> bool:
        """Whether a stored ``config.json`` blob is a run of this entry."""
        if blob.get("type") != self.config_cls.__name__:
            return False
        stored = blob.get("config", {})
        return all(stored.get(k, v) == v for k, v in self.fixed.items())

    def eval_names(self) -> str:
        return ", ".join(a.name for a in REGISTRY.values())


REGISTRY: dict[str, Algorithm] = {}


def register(algo: Algorithm, replace: bool = False) -> Algorithm:
    """Add ``algo``; a second entry of the same name is refused unless ``replace``."""
    if algo.name in REGISTRY and not replace:
        raise ValueError(f"an algorithm named {algo.name!r} is registered already")
    REGISTRY[algo.name] = algo
    return algo


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def get(name: str) -> Algorithm:
    if name not in REGISTRY:
        raise ConfigError(f"unknown algorithm {name!r}; accepted: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def names(command: str = "train") -> list[str]:
    """Names of the registered algorithms that offer ``command``."""
    return [n for n, a in REGISTRY.items() if command in a.commands]


def for_run(run_dir: str | Path, command: str = "eval") -> Algorithm:
    """The algorithm of the run in ``run_dir`` (from its config.json), which must offer ``command``."""
    from jaxgen.core.checkpoint import read_config

    blob = read_config(Path(run_dir))
    for algo in REGISTRY.values():
        if algo.matches(blob):
            if command not in algo.commands:
                raise ConfigError(f"{run_dir} holds a {algo.name} run; jaxgen {command} takes runs of: "
                                  f"{', '.join(names(command))}.")
            return algo
    raise ConfigError(f"{run_dir} holds a {blob.get('type')} run, which no registered algorithm writes; "
                      f"jaxgen {command} takes runs of: {', '.join(names(command))}.")


# --------------------------------------------------------------------------- the entries

_AE = "jaxgen.generative.autoencoder"
for _name, _what in (("vae", "variational autoencoder"), ("ae", "autoencoder (under- or over-complete)"),
                     ("dae", "denoising autoencoder")):
    register(Algorithm(_name, _AE, f"{_AE}:AEConfig", "jaxgen.generative.ae_fit:FAMILY", f"{_what} on MNIST",
                       fixed={"model": _name}, example=f"jaxgen train {_name} --arch conv --latent 16 --epochs 20",
                       bench={"quick": [{"arch": "mlp", "latent": 16, "epochs": 1, "_first_steps": 10}] if _name == "vae" else [],
                              "full": [{"arch": "mlp", "latent": 16, "epochs": 5}]
                              + ([{"arch": "conv", "latent": 16, "epochs": 1}] if _name == "vae" else []),
                              "gpu": [{"arch": "conv", "latent": 16, "epochs": 10}] if _name == "vae" else []}))

register(Algorithm("gan", "jaxgen.generative.gan", "jaxgen.generative.gan:GANConfig", "jaxgen.generative.gan_fit:FAMILY",
                   "GANs on MNIST or 64x64 RGB images (MLP/DCGAN, BCE/WGAN/WGAN-GP/hinge, SN, conditional, InfoGAN)",
                   example="jaxgen train gan --arch dcgan --loss wgan-gp --sn --epochs 20",
                   bench={"quick": [{"arch": "mlp", "epochs": 1, "_first_steps": 10}],
                          "full": [{"arch": "mlp", "epochs": 5}, {"arch": "dcgan", "epochs": 1}],
                          "gpu": [{"arch": "dcgan", "epochs": 5}, {"arch": "dcgan", "batch_size": 128, "epochs": 5}]}))

register(Algorithm("tabular", "jaxgen.rl.tabular", "jaxgen.rl.tabular:QLearningConfig", "jaxgen.rl.tabular_fit:FAMILY",
                   "tabular Q-learning, value or policy iteration (line world, FrozenLake)",
                   example="jaxgen train tabular --method value-iteration --env LineWorld",
                   bench={"quick": [{"total_steps": 20_000}], "full": [{"total_steps": 100_000}]}))

register(Algorithm("dqn", "jaxgen.rl.dqn", "jaxgen.rl.dqn:DQNConfig", "jaxgen.rl.fit:DQN_FAMILY",
                   "DQN on a discrete gymnax environment", presets="jaxgen.rl.dqn_fit:PRESETS",
                   default_preset="cartpole", example="jaxgen train dqn --env CartPole-v1 --threshold 475",
                   bench={"quick": [{"total_steps": 10_000, "learning_starts": 2_000}], "full": [{}],
                          "gpu": [{"total_steps": 100_000, "_seeds": (1, 64)}]}))

register(Algorithm("ppo", "jaxgen.rl.ppo", "jaxgen.rl.ppo:PPOConfig", "jaxgen.rl.fit:PG_FAMILY",
                   "PPO (clipped) on a discrete or continuous gymnax environment", presets="jaxgen.rl.ppo:PRESETS",
                   default_preset="cartpole", example="jaxgen train ppo --env CartPole-v1 --threshold 475",
                   bench={"quick": [{"total_steps": 50_000}], "full": [{}],
                          "gpu": [{"_seeds": (1, 64)}, {"_preset": "minatar", "_repeats": 1},
                                  {"_seeds": (2048,), "_repeats": 1}]}))

register(Algorithm("reinforce", "jaxgen.rl.reinforce", "jaxgen.rl.reinforce:ReinforceConfig",
                   "jaxgen.rl.fit:REINFORCE_FAMILY", "REINFORCE with Monte Carlo returns",
                   example="jaxgen train reinforce --env CartPole-v1 --threshold 475",
                   bench={"quick": [{"num_updates": 20}], "full": [{}]}))

# td3 before ddpg: a run with twin critics maps back to the td3 entry, any other DDPGConfig to ddpg.
register(Algorithm("td3", "jaxgen.rl.ddpg", "jaxgen.rl.ddpg:DDPGConfig", "jaxgen.rl.fit:DDPG_FAMILY",
                   "TD3 (twin critics, target smoothing, delayed actor) on a continuous gymnax environment",
                   presets="jaxgen.rl.ddpg:PRESETS", default_preset="td3", fixed={"twin": True},
                   example="jaxgen train td3 --env Pendulum-v1 --threshold -200",
                   bench={"full": [{}]}))

register(Algorithm("ddpg", "jaxgen.rl.ddpg", "jaxgen.rl.ddpg:DDPGConfig", "jaxgen.rl.fit:DDPG_FAMILY",
                   "DDPG on a continuous gymnax environment", presets="jaxgen.rl.ddpg:PRESETS",
                   default_preset="pendulum", example="jaxgen train ddpg --env Pendulum-v1 --threshold -200",
                   bench={"quick": [{"total_steps": 3_000}], "full": [{}]}))

register(Algorithm("maddpg", "jaxgen.rl.maddpg", "jaxgen.rl.maddpg:MADDPGConfig", "jaxgen.rl.maddpg_fit:FAMILY",
                   "MADDPG (or --independent DDPG) on jaxmarl's particle tasks simple_spread / simple_adversary",
                   presets="jaxgen.rl.maddpg:PRESETS", default_preset="openai",
                   example="jaxgen train maddpg --env simple_spread --preset study",
                   bench={"quick": [{"num_envs": 25, "total_steps": 5_000, "learning_starts": 1_000}],
                          "full": [{"num_envs": 25, "total_steps": 100_000}]}))

register(Algorithm("bc", "jaxgen.rl.bc", "jaxgen.rl.bc:BCConfig", "jaxgen.rl.imitation_fit:BC_FAMILY",
                   "behavioural cloning from expert demonstrations (discrete: cross-entropy; continuous: NLL or MSE)",
                   presets="jaxgen.rl.bc:PRESETS", default_preset="cartpole",
                   example="jaxgen train bc --env CartPole-v1 --num-trajectories 4",
                   bench={"quick": [{"epochs": 5}], "full": [{}]}))

register(Algorithm("gail", "jaxgen.rl.gail", "jaxgen.rl.gail:GAILConfig", "jaxgen.rl.imitation_fit:GAIL_FAMILY",
                   "GAIL: PPO on a discriminator's reward, from expert demonstrations", presets="jaxgen.rl.gail:PRESETS",
                   default_preset="cartpole", example="jaxgen train gail --num-trajectories 4 --threshold 450",
                   bench={"quick": [{"ppo.total_steps": 50_000}], "full": [{}]}))

register(Algorithm("seqgan", "jaxgen.generative.seqgan", "jaxgen.generative.seqgan:SeqGANConfig",
                   "jaxgen.generative.seqgan_fit:FAMILY",
                   "SeqGAN: LSTM generator by policy gradient with Monte Carlo rollouts against a text CNN "
                   "(synthetic oracle or COCO captions; --mle-only: the MLE baseline)",
                   example="jaxgen train seqgan --task oracle --rounds 50",
                   bench={"quick": [{"mle_only": True, "pretrain_g_epochs": 1, "rounds": 1, "_first_steps": 40}],
                          "full": [{"pretrain_g_epochs": 2, "pretrain_d_updates": 100, "rounds": 2, "adv_d_updates": 20,
                                    "n_rollouts": 4}]}))

register(Algorithm("leakgan", "jaxgen.generative.leakgan", "jaxgen.generative.leakgan:LeakGANConfig",
                   "jaxgen.generative.leakgan_fit:FAMILY",
                   "LeakGAN: Manager-Worker LSTM generator reading the text CNN's leaked features, Monte Carlo "
                   "rollouts every c tokens (oracle length 20 / 40 or COCO captions)",
                   example="jaxgen train leakgan --task oracle --seq-len 40 --rounds 50",
                   bench={"quick": [{"_first_steps": 3, "pretrain_d_updates": 1, "pretrain_epochs": 1, "rounds": 0, "d_widths": (1, 2),
                                     "d_filters": (16, 16), "d_emb_dim": 16}]}))


def algorithm_of(config) -> Algorithm:
    """The entry whose config class is ``type(config)`` (the first, for shared classes)."""
    for algo in REGISTRY.values():
        if isinstance(config, algo.config_cls) and all(getattr(config, k, v) == v for k, v in algo.fixed.items()):
            return algo
    raise ConfigError(f"a {type(config).__name__} is not the config of any registered algorithm; "
                      f"registered: {', '.join(REGISTRY)}.")


__all__ = ["Algorithm", "REGISTRY", "register", "unregister", "get", "names", "for_run", "algorithm_of"]
