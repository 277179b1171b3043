"""jaxgen: fast JAX/Flax generative models and deep RL."""
__version__ = "0.1.0"
