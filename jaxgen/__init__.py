"""jaxgen: fast JAX/Flax generative models and deep RL."""
import os as _os

__version__ = "0.1.0"

# XLA:CPU's concurrency-optimised scheduler made some vmapped programs of jax 0.10.2 hang (all
# threads idle on futexes): e.g. 64 seeds of the default PPO CartPole run, or the init of 3 PPO
# nets with two 256-wide layers. The cause found since: a batched LAPACK QR (the vmapped
# orthogonal init) blocks XLA's pool threads while waiting for work queued on that same pool;
# running independent thunks concurrently makes that likelier, and 2 CPU devices hit it even
# with this flag. The fix is jaxgen.nets.init.orthogonal (its QRs unbatched); the flag stays.
# Only the CPU backend reads the flag, and only if it is set before that backend starts; a
# user's own XLA_FLAGS setting of it wins (benchmarks/notes/policy_gradient.md).
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _FLAG not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=false").strip()
