#!/usr/bin/env bash
# The accelerator suite (issue 21): run on a machine with a GPU, from the repository root.
#
#   bash benchmarks/gpu_suite.sh [OUT_DIR]          # default OUT_DIR: benchmarks/results/gpu
#   JAXGEN_GPU_SUITE_TINY=1 bash benchmarks/gpu_suite.sh /tmp/x   # a smoke run on any machine
#
# 1. `jaxgen bench --suite gpu`: PPO CartPole 1 / 64 / 2048 seeds (PureJaxRL: 2048 agents in
#    ~98 s on an A100), PPO Breakout-MinAtar 1e7 steps (rejax: 10.5 s single agent on an A100),
#    DQN CartPole 1 vs 64 seeds (vmap_eff, goal >= 0.8), conv VAE and DCGAN samples/s.
# 2. Where torch with CUDA is importable: conv VAE and DCGAN steps/s, jaxgen vs PyTorch CUDA,
#    with benchmarks/bench_vae.py and benchmarks/bench_gan.py.
# Sized for under 8 minutes on one GPU (most of it compiling). Put the tables in
# benchmarks/RESULTS.md with the date, the device and the command.
set -euo pipefail
OUT="${1:-benchmarks/results/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
if [ "${JAXGEN_GPU_SUITE_TINY:-0}" = "1" ]; then
  # smoke run: two small configs, 1 and 2 seeds, one repeat (checks the plumbing, not speed)
  "$PY" -m jaxgen.cli bench --suite quick --algos ppo,vae --seeds 1,2 --repeats 1 --markdown --json "$OUT/bench.json" \
    | tee "$OUT/bench.md"
else
  "$PY" -m jaxgen.cli bench --suite gpu --markdown --json "$OUT/bench.json" | tee "$OUT/bench.md"
fi
"$PY" - <<'PY' > "$OUT/torch_cuda.txt" 2>&1 || true
import torch
print("cuda" if torch.cuda.is_available() else "no-cuda")
PY
if grep -qx cuda "$OUT/torch_cuda.txt"; then
  "$PY" benchmarks/bench_vae.py --arch conv --skip-check --modes loop --deconv auto --torch-device cuda --repeats 3 \
    | tee "$OUT/vae_vs_torch_cuda.md"
  "$PY" benchmarks/bench_gan.py --archs dcgan --deconv auto --torch-device cuda --steps 20 --repeats 3 --markdown \
    | tee "$OUT/gan_vs_torch_cuda.md"
else
  echo "PyTorch with CUDA is not importable here: the PyTorch CUDA rows are skipped ($(cat "$OUT/torch_cuda.txt" | tail -1))"
fi
