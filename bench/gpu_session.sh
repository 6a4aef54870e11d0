#!/usr/bin/env bash
# Everything this project measures on a lent GPU machine, in one run (the device tool lends
# ~15 minutes per session). Run from the repository root:
#   OUT=/tmp/gpu bash bench/gpu_session.sh        # logs and tables land in $OUT
#   STEPS="pytest physics" OUT=/tmp/gpu bash bench/gpu_session.sh   # only some steps
# Needs: python3 with CUDA PyTorch, numpy, click, tqdm, matplotlib (no deepwave: the torch
# physics backend runs). A checkpoint for the inversion comparison: $CKPT (default
# demo/run/best.pt; the step is skipped when it is missing). Each step has its own time limit
# and a failed step does not stop the others. On an H100 (bench/results/gpu_h100.md) the steps took:
# generate 84 s, compare 312 s, train 85 s, pytest 95 s, physics 37 s. Not yet run on a GPU:
# "host", and "train" in its current form (a plain-loop baseline, one process per setting).
# The default STEPS (pytest, generate, host, physics: at most 380 s) fit one 600 s device
# call; add train, compare by name.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/vgan-gpu}
CKPT=${CKPT:-demo/run/best.pt}
SCRATCH=${SCRATCH:-/tmp/vgan-gpu-scratch}
STEPS=${STEPS:-pytest generate host physics}
mkdir -p "$OUT" "$SCRATCH"

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $OUT/NAME.log
  local name=$1 limit=$2
  shift 2
  case " $STEPS " in *" $name "*) ;; *) echo "== $name skipped (not in STEPS)"; return ;; esac
  echo "== $name (limit ${limit}s) start $(date -u +%T)"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "== $name rc=$? end $(date -u +%T)"
  tail -n 12 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
  | tee "$OUT/gpu.txt"
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, \
torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).total_memory // 2**20, 'MiB')" \
  | tee -a "$OUT/gpu.txt"

# 0. CUDA tests (physics, generation, metrics, training with bf16/channels_last/compile)
step pytest 120 python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_physics.py \
  tests/test_generate.py tests/test_metrics.py tests/test_train_cuda.py
# 1. generation end to end (maps -> compiled torch recipe -> .npy shards)
step generate 110 python3 bench/bench_generate.py --device cuda --backend torch \
  --batch 1024 --samples 8192 --out "$OUT/generate_cuda.md"
# 1b. the host side alone (maps, writes, syncs; the operator a timed wait): its ceiling here
step host 90 python3 bench/bench_host_pipeline.py --samples 4096 --out "$OUT/host_pipeline.md"
# 2. network vs FWI vs hybrid on 20 held-out samples (torch backend, autograd on the GPU)
if [ -f "$CKPT" ]; then
  step compare 330 python3 bench/compare_inversion.py --checkpoint "$CKPT" --device cuda \
    --backend torch --samples 20 --iterations 30 --out "$OUT/inversion_compare_cuda.md"
fi
# 3. training throughput, plain loop vs eager fp32 vs fast vs fast + torch.compile, and
#    equal-step accuracy
step train 240 python3 bench/bench_train.py --device cuda --quick --compile --models velocitygan \
  --data "$SCRATCH/bench_train/data" --out "$OUT/train_cuda.md"
# 5. the raw operator, steady state (compiled)
step physics 60 python3 bench/bench_physics.py --device cuda --backend torch \
  --batch 1024 --compile default --repeats 2
echo "== done $(date -u +%T)"
