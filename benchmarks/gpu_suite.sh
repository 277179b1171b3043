#!/usr/bin/env bash
# The accelerator suite (issue 21): run on a machine with a GPU, from the repository root.
#
#   bash benchmarks/gpu_suite.sh [OUT_DIR]          # default OUT_DIR: benchmarks/results/gpu
#   JAXGEN_GPU_SUITE_TINY=1 bash benchmarks/gpu_suite.sh /tmp/x   # a smoke run on any machine
#
# Sections, each its own process under its own time limit (a section that fails or runs out of
# time is reported and the next one runs; what a section finished is already in its files):
# 0. the machine (nvidia-smi, versions, devices) and a smoke import; the suite stops here if
#    jaxgen does not import.
# 1. `jaxgen bench --suite gpu --algos ppo`: PPO CartPole 1 / 64 / 2048 seeds (PureJaxRL: 2048
#    agents in ~98 s on an A100), PPO Breakout-MinAtar 1e7 steps (rejax: 10.5 s single agent on
#    an A100).
# 2. `jaxgen bench --suite gpu --algos dqn,vae,gan`: DQN CartPole 1 vs 64 seeds (vmap_eff, goal
#    >= 0.8), conv VAE and DCGAN samples/s.
# 3. Where torch with CUDA is importable: conv VAE and DCGAN steps/s, jaxgen vs PyTorch CUDA in
#    one process (benchmarks/bench_vae.py, benchmarks/bench_gan.py; JAX takes 40 % of the GPU's
#    memory there, so both fit).
# Sized for under 8 minutes on one GPU (most of it compiling). Put the tables in
# benchmarks/RESULTS.md with the date, the device and the command. Time limits (seconds):
# JAXGEN_GPU_SUITE_LIMITS="ppo rest vae gan", default "230 120 60 60".
set -uo pipefail
OUT="${1:-benchmarks/results/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
read -r T_PPO T_REST T_VAE T_GAN <<< "${JAXGEN_GPU_SUITE_LIMITS:-230 120 60 60}"
export PYTHONUNBUFFERED=1

section() {  # section NAME LIMIT_S LOGFILE COMMAND...: runs COMMAND, its output teed to LOGFILE
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$SECONDS
  echo "== $name (limit ${limit}s) $(date -u +%H:%M:%S)"
  timeout -k 10 "$limit" "$@" > >(tee "$log") 2>&1
  local rc=$?
  [ "$rc" = 124 ] && echo "== $name ran out of its ${limit}s" || echo "== $name exit $rc"
  echo "== $name took $((SECONDS - t0))s"
  return 0
}

{
  nvidia-smi -L 2>&1 || echo "no nvidia-smi"
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu --format=csv 2>&1 || true
  echo "cores: $(nproc)"
  "$PY" - <<'PY'
import importlib.metadata as md, platform
import jax
print("python", platform.python_version(), "| backend", jax.default_backend(), "|", jax.devices())
for name in ("jax", "jaxlib", "flax", "optax", "chex", "gymnax", "orbax-checkpoint", "numpy", "torch"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} (not installed)")
import jaxgen, jaxgen.bench  # noqa: F401  (the smoke import)
print("jaxgen imports")
PY
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
if ! grep -qx "jaxgen imports" "$OUT/env.txt"; then
  echo "jaxgen does not import here (see $OUT/env.txt): the suite stops"
  exit 1
fi

if [ "${JAXGEN_GPU_SUITE_TINY:-0}" = "1" ]; then
  # smoke run: small configs at 1 and 2 seeds, one repeat (checks the plumbing, not speed)
  BENCH=(-m jaxgen.cli bench --suite quick --seeds 1,2 --repeats 1 --markdown)
  PPO_ALGOS=ppo REST_ALGOS=vae VAE_ARGS=(--steps-conv 5 --repeats 1) GAN_ARGS=(--steps 3 --repeats 1)
else
  BENCH=(-m jaxgen.cli bench --suite gpu --markdown)
  PPO_ALGOS=ppo REST_ALGOS=dqn,vae,gan VAE_ARGS=(--steps-conv 200 --repeats 3) GAN_ARGS=(--steps 100 --repeats 3)
fi
section "bench $PPO_ALGOS" "$T_PPO" "$OUT/bench_ppo.md" "$PY" "${BENCH[@]}" --algos "$PPO_ALGOS" --json "$OUT/bench_ppo.json"
section "bench $REST_ALGOS" "$T_REST" "$OUT/bench_rest.md" "$PY" "${BENCH[@]}" --algos "$REST_ALGOS" --json "$OUT/bench_rest.json"

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  export XLA_PYTHON_CLIENT_MEM_FRACTION=0.4
  section "conv VAE vs PyTorch CUDA" "$T_VAE" "$OUT/vae_vs_torch_cuda.md" "$PY" benchmarks/bench_vae.py --arch conv \
    --skip-check --modes loop --deconv auto --torch-device cuda "${VAE_ARGS[@]}"
  section "DCGAN vs PyTorch CUDA" "$T_GAN" "$OUT/gan_vs_torch_cuda.md" "$PY" benchmarks/bench_gan.py --archs dcgan \
    --deconv auto --torch-device cuda --markdown "${GAN_ARGS[@]}"
else
  echo "PyTorch with CUDA is not importable here: the PyTorch CUDA rows are skipped"
fi
