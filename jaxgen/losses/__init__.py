"""Shared loss math, one implementation each, importable by any family without pulling in
gymnax or another family (rlax/optax style: small pure functions, shapes in the docstrings,
``chex`` checks on entry, hand-computed tests in ``tests/losses``).

* :mod:`jaxgen.losses.policy_gradient`: the score-function (REINFORCE) estimator, the PPO
  clipped surrogate -- used by REINFORCE, PPO, GAIL, SeqGAN, LeakGAN.
* :mod:`jaxgen.losses.value`: the (clipped) value loss, Huber, TD / double-Q targets.
* :mod:`jaxgen.losses.masked`: masked mean / standardisation over valid steps or tokens.
* :mod:`jaxgen.losses.adversarial`: GAN losses, gradient penalty, R1 -- used by the GANs,
  GAIL's discriminator and the text GANs.
"""
