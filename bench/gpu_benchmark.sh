#!/usr/bin/env bash
# Time-to-accuracy and the GAN remedies on a lent GPU, generation included, in one device call
# (issue 15): `velocitygan study benchmark` with the shipped cpu-2h recipe, every run a
# concurrent process sharing the GPU. Each line of RUNS is "FAMILY VARIANT MODEL SEED": the
# variant "base" is cpu-2h as shipped, any other is cpu-2h plus the settings VARIANTS gives it,
# in a study folder of its own that reuses the family's data. Then the best VelocityGAN of each
# family is packaged as bundled weights. Run from the repository root:
#   OUT=/tmp/gpu bash bench/gpu_benchmark.sh
#   BUDGET=0.2 TRAIN=20 TEST=4 SET="--set batch_size=4" OUT=/tmp/gpu bash bench/gpu_benchmark.sh
#   (a dry run on CPU)
# Needs python3 with PyTorch, numpy, click, tqdm, matplotlib (no deepwave: the default torch
# physics runs). $OUT receives results.tar.gz (tables, figures, logs, run metrics) and the
# packaged weights with their cards.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${THREADS:-1}  # 12 runs on 16 cores
OUT=${OUT:-/tmp/vgan-gpu}
WORK=${WORK:-/tmp/vgan-gpu-work}
BUDGET=${BUDGET:-6}
TRAIN=${TRAIN:-5000}
TEST=${TEST:-500}
SET=${SET:-}
RUNS=${RUNS:-"flatvel-a base velocitygan 0
flatvel-a base velocitygan 1
flatvel-a base inversionnet 0
flatvel-a base inversionnet 1
curvefault-a base velocitygan 0
curvefault-a base inversionnet 0
flatvel-a adv0.1 velocitygan 0
flatvel-a adv0.1 velocitygan 1
flatvel-a warmup velocitygan 0
flatvel-a warmup velocitygan 1
flatvel-a critic-lr1e-4 velocitygan 0
flatvel-a instance-norm velocitygan 0"}
declare -A VARIANTS=(
  [base]=""
  [adv0.1]="--set adv_weight=0.1"
  [warmup]="--set adv_start_steps=${WARMUP:-1000}"
  [critic-lr1e-4]="--set critic_lr=1e-4"
  [instance-norm]="--set critic_norm=instance"
)
mkdir -p "$OUT" "$WORK/logs"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$WORK/logs/gpu.txt" 2>&1
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, \
torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" >>"$WORK/logs/gpu.txt"
cat "$WORK/logs/gpu.txt"

study() {  # study FAMILY VARIANT: its folder; a variant links the family's data and test set
  local dir="$WORK/$1"
  if [ "$2" != base ]; then
    dir="$WORK/$1-$2"
    mkdir -p "$dir"
    ln -sfn "$WORK/$1/data" "$dir/data"
    ln -sfn "$WORK/$1/test" "$dir/test"
  fi
  echo "$dir"
}
bench() {  # bench FAMILY VARIANT MODELS SEEDS: one study process
  python3 -m velocitygan study benchmark --family "$1" --budget-min "$BUDGET" --config cpu-2h \
    --train-samples "$TRAIN" --test-samples "$TEST" --models "$3" --seeds "$4" \
    --out "$(study "$1" "$2")" $SET ${VARIANTS[$2]}
}
launch() {  # launch FILTER: start the runs of RUNS whose variant is (or is not) base
  while read -r family variant model seed; do
    if { [ "$1" = base ] && [ "$variant" = base ]; } || \
       { [ "$1" = other ] && [ "$variant" != base ]; }; then
      bench "$family" "$variant" "$model" "$seed" \
        >"$WORK/logs/$family-$variant-$model-seed$seed.log" 2>&1 &
      sleep 1  # the first process of a study generates its data; the others wait for it
    fi
  done <<<"$RUNS"
}
echo "start $(date -u +%T)"
launch base
# variants reuse their family's data: start them once every base study has generated it
ready="data not ready after 300 s; starting the variants anyway"
for _ in $(seq 150); do
  if [ "$(grep -l '^benchmark: ' "$WORK"/logs/*-base-*.log 2>/dev/null | wc -l)" -ge \
       "$(grep -c ' base ' <<<"$RUNS")" ]; then ready="data ready"; break; fi
  sleep 2
done
echo "$ready $(date -u +%T)"
launch other
wait
echo "runs done $(date -u +%T)"
if [ -n "${CUDA_TESTS-1}" ]; then  # the CUDA tests, beside the gathering (not the timed runs)
  timeout 240 python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_physics.py \
    tests/test_generate.py tests/test_metrics.py tests/test_train_cuda.py \
    >"$WORK/logs/cuda-tests.log" 2>&1 &
fi
mkdir -p "$WORK/results"
STUDIES=$(cut -d' ' -f1,2 <<<"$RUNS" | sort -u | tr ' ' ':')
for dir in $STUDIES; do
  family=${dir%%:*} variant=${dir#*:}
  models=$(awk -v f="$family" -v v="$variant" '$1 == f && $2 == v {print $3}' <<<"$RUNS" \
    | sort -u | paste -sd,)
  seeds=$(awk -v f="$family" -v v="$variant" '$1 == f && $2 == v {print $4}' <<<"$RUNS" \
    | sort -u | paste -sd,)
  # every run is finished: this only gathers the study's table (a model x seed pair that was
  # not run would be trained now, so RUNS lists full grids per study)
  bench "$family" "$variant" "$models" "$seeds" >"$WORK/logs/$family-$variant.log" 2>&1 &
done
wait  # the gathering and the CUDA tests
for dir in $STUDIES; do
  name=$(basename "$(study "${dir%%:*}" "${dir#*:}")")
  cat "$WORK/$name/benchmark.md"
  for f in benchmark.md benchmark.csv benchmark.png; do cp "$WORK/$name/$f" \
    "$WORK/results/$name-$f"; done
  for run in "$WORK/$name"/runs/*; do cp "$run/metrics.csv" \
    "$WORK/results/$name-$(basename "$run")-metrics.csv"; done
done
for family in $(cut -d' ' -f1 <<<"$RUNS" | sort -u); do
  # the best VelocityGAN of the family, shipped settings only (base)
  best=$(python3 -c "import csv, sys; rows = [r for r in csv.DictReader(open(sys.argv[1]))
    if r['model'] == 'velocitygan']; print(min(rows, key=lambda r: float(r['mae']))['seed'])" \
    "$WORK/$family/benchmark.csv")
  python3 bench/package_pretrained.py "$WORK/$family" --run "velocitygan-seed$best" \
    --name "$family" --remake "velocitygan study benchmark --family $family --budget-min \
$BUDGET --config cpu-2h --models velocitygan --seeds $best --out DIR  (on one NVIDIA H200, \
sharing it with $(($(wc -l <<<"$RUNS") - 1)) other runs)" --into "$OUT"
done
cp "$WORK"/logs/* "$WORK/results/"
tar -czf "$OUT/results.tar.gz" -C "$WORK" results
tail -n 4 "$WORK/logs/cuda-tests.log" 2>/dev/null
echo "done $(date -u +%T), ${SECONDS}s"
