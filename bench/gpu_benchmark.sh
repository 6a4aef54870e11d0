#!/usr/bin/env bash
# Time-to-accuracy on a lent GPU, generation included, in one device call (issue 15):
# `velocitygan study benchmark` with the shipped cpu-2h recipe on FlatVel-A-like data
# (VelocityGAN and InversionNet, seeds 0 and 1) and CurveFault-A-like data (seed 0), all six
# runs as concurrent processes sharing the GPU, then the best VelocityGAN of each family
# packaged as bundled weights. Run from the repository root:
#   OUT=/tmp/gpu bash bench/gpu_benchmark.sh
#   BUDGET=0.2 TRAIN=20 TEST=4 SET="--set batch_size=4" OUT=/tmp/gpu bash bench/gpu_benchmark.sh
#   (a dry run on CPU)
# Needs python3 with PyTorch, numpy, click, tqdm, matplotlib (no deepwave: the default torch
# physics runs). $OUT receives results.tar.gz (tables, figures, logs, run metrics) and the
# packaged weights with their cards.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${THREADS:-2}  # 6 runs on 16 cores
OUT=${OUT:-/tmp/vgan-gpu}
WORK=${WORK:-/tmp/vgan-gpu-work}
BUDGET=${BUDGET:-4}
TRAIN=${TRAIN:-5000}
TEST=${TEST:-500}
SET=${SET:-}
mkdir -p "$OUT" "$WORK/logs"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$WORK/logs/gpu.txt" 2>&1
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, \
torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" >>"$WORK/logs/gpu.txt"
cat "$WORK/logs/gpu.txt"

bench() {  # bench FAMILY MODELS SEEDS: one study process
  python3 -m velocitygan study benchmark --family "$1" --budget-min "$BUDGET" --config cpu-2h \
    --train-samples "$TRAIN" --test-samples "$TEST" --models "$2" --seeds "$3" \
    --out "$WORK/$1" $SET
}
echo "start $(date -u +%T)"
for run in "flatvel-a velocitygan 0" "flatvel-a velocitygan 1" "flatvel-a inversionnet 0" \
           "flatvel-a inversionnet 1" "curvefault-a velocitygan 0" "curvefault-a inversionnet 0"; do
  set -- $run
  bench "$1" "$2" "$3" >"$WORK/logs/$1-$2-seed$3.log" 2>&1 &
  sleep 2  # the first process of a study generates its data; the others wait for it
done
wait
echo "runs done $(date -u +%T)"
bench flatvel-a velocitygan,inversionnet 0,1 >"$WORK/logs/flatvel-a.log" 2>&1
bench curvefault-a velocitygan,inversionnet 0 >"$WORK/logs/curvefault-a.log" 2>&1
tail -n 3 "$WORK"/logs/*.log
for family in flatvel-a curvefault-a; do
  cat "$WORK/$family/benchmark.md"
  best=$(python3 -c "import csv, sys; rows = [r for r in csv.DictReader(open(sys.argv[1]))
    if r['model'] == 'velocitygan']; print(min(rows, key=lambda r: float(r['mae']))['seed'])" \
    "$WORK/$family/benchmark.csv")
  python3 bench/package_pretrained.py "$WORK/$family" --run "velocitygan-seed$best" \
    --name "$family" --remake "velocitygan study benchmark --family $family --budget-min \
$BUDGET --config cpu-2h --models velocitygan --seeds $best --out DIR  (on one NVIDIA H200, \
sharing it with five other runs)" --into "$OUT"
done
mkdir -p "$WORK/results"
cp "$WORK"/logs/* "$WORK/results/"
for family in flatvel-a curvefault-a; do
  for f in benchmark.md benchmark.csv benchmark.png; do cp "$WORK/$family/$f" \
    "$WORK/results/$family-$f"; done
  for run in "$WORK/$family"/runs/*; do cp "$run/metrics.csv" \
    "$WORK/results/$family-$(basename "$run")-metrics.csv"; done
done
tar -czf "$OUT/results.tar.gz" -C "$WORK" results
echo "results packed $(date -u +%T), ${SECONDS}s"
if [ "$SECONDS" -lt "${PYTEST_IF_UNDER_S:-420}" ]; then  # the CUDA tests, if time is left
  timeout 120 python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_physics.py \
    tests/test_generate.py tests/test_metrics.py tests/test_train_cuda.py 2>&1 | tail -n 15
fi
echo "done $(date -u +%T)"
