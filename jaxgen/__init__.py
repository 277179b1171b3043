"""jaxgen: fast JAX/Flax generative models and deep RL."""

__version__ = "0.1.0"

# jaxgen no longer turns off XLA:CPU's concurrency-optimised scheduler. It once did
# (`--xla_cpu_enable_concurrency_optimized_scheduler=false`) because vmapped programs of jax
# 0.10.2 hung; the cause found since is a batched LAPACK QR (the vmapped orthogonal init)
# blocking XLA's pool threads, fixed by jaxgen.nets.init.orthogonal (its QRs unbatched). With
# the fix the hangs' reproducers return under the default scheduler, and the flag cost 9-22 %
# of the RL loops' run time (benchmarks/results/scheduler_ab_2026-12-03.txt). A user may still
# set the flag in XLA_FLAGS themselves.
