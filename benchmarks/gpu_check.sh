#!/usr/bin/env bash
# One-shot GPU check: everything the CUDA code path needs verified and measured, in one go, on a
# machine that has PyTorch and a GPU but nothing of this project installed (the source tree runs
# through PYTHONPATH=src; nothing is installed, nothing is downloaded).
#
#   benchmarks/gpu_check.sh [OUT_DIR] [--budget SECONDS] [--work DIR] [--with-compile] [--dry-run]
#
# Steps, correctness first, each bounded by what is left of the budget (default 470 s, under 8
# minutes in all):
#   1. pool_probe.py                     the PyTorch build, and whether its channels-last
#                                        avg_pool2d backward is broken (a behaviour probe)
#   2. pytest -m gpu on test_gradients   every model's training-step gradients on CUDA
#      and test_pooling                  (channels_last, float32, TF32 off) against float64 on
#                                        the CPU; every pooling configuration, raw and as the
#                                        models compute it
#   3. bench_gpu.py --pools-only         inception_v2 at 299, bf16 + channels_last: every pool
#                                        formulation side by side, forward + backward
#   4. bench_gpu.py                      training images/s without data and with the loaders
#                                        (uint8 crops, the on-device transform from raw and from
#                                        JPEG bytes), TFLOP/s and share of the bf16 peak, eval
#                                        images/s: inception_v2 at 299 and googlenet_bn at 224,
#                                        batch 128, the default and the fused optimizer
#   5. make-sample + prepare             the built-in synthetic sample (160 images)
#   6. train at 299, --device-augment    inception_v2, 1 epoch, the CUDA defaults
#   7. pytest -m 'gpu and not slow'      the other GPU tests (bf16, fp16, resume, checkpointing,
#                                        fine-tuning, evaluation, export on CUDA)
#   8. bench_memory.py                   peak GPU memory with and without grad checkpointing
# --with-compile adds, before step 7, the compiled candidates (minutes of inductor compiles):
# bench_gpu.py with torch.compile (default mode and max-autotune-no-cudagraphs) and a training
# run with --compile.
# OUT_DIR (default gpu-check-out) receives gpu_check.log (everything printed), gpu_check.json
# (every step's command, exit status and seconds, the probe, the test counts, the benchmark
# figures) and the step outputs; the sample, prepared data and training runs go to --work
# (default OUT_DIR/work). --dry-run prints the commands without running anything. Exit status:
# 0 when every step passed, 1 otherwise.
set -u -o pipefail

OUT=gpu-check-out
WORK=
BUDGET=470
DRY=0
COMPILE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --with-compile) COMPILE=1 ;;
    --budget) shift; BUDGET=${1:?--budget needs a number of seconds} ;;
    --budget=*) BUDGET=${1#--budget=} ;;
    --work) shift; WORK=${1:?--work needs a folder} ;;
    --work=*) WORK=${1#--work=} ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) OUT=$1 ;;
  esac
  shift
done
case "$BUDGET" in ''|*[!0-9]*) echo "error: --budget must be a whole number of seconds, got $BUDGET" >&2; exit 2 ;; esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
WORK=${WORK:-$OUT/work}
STEPS="$OUT/steps.tsv"
LOG="$OUT/gpu_check.log"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

BENCH="$PY $REPO/benchmarks/bench_gpu.py"
TRAIN="$PY -m inception_v2 train --model inception_v2 --data $WORK/prepared --epochs 1 --batch-size 64 --workers 8 --no-progress"
# name | minimum seconds worth starting it with | command
STEP_LIST=(
  "probe|10|$PY $REPO/benchmarks/pool_probe.py --json $OUT/probe.json"
  "gradient-tests|40|$PY -m pytest -m gpu -q -p no:cacheprovider --junitxml=$OUT/pytest-gradients.xml $REPO/tests/train/test_gradients.py $REPO/tests/models/test_pooling.py"
  "bench-pools|40|$BENCH --models inception_v2 --configs bf16-cl --pools-only --pool-rounds 3 --pool-steps 10 --warmup 5 --json $OUT/bench_pools.json"
  "bench-gpu|90|$BENCH --models inception_v2 googlenet_bn --configs bf16-cl bf16-cl-fused --loaders uint8 device device-jpeg --steps 20 --warmup 8 --workers 8 --json $OUT/bench_gpu.json"
  "sample|20|$PY -m inception_v2 make-sample $WORK/sample --images 160 && $PY -m inception_v2 prepare --voc-root $WORK/sample --out $WORK/prepared --val-fraction 0.1 --workers 8"
  "train-299|30|$TRAIN --out $WORK/runs/train-299 --device-augment"
)
if [ "$COMPILE" = 1 ]; then
  STEP_LIST+=(
    "bench-compile|150|$BENCH --models inception_v2 --configs bf16-cl-compile bf16-cl-compile-mant --loaders device --steps 20 --warmup 8 --workers 8 --json $OUT/bench_compile.json"
    "train-299-compile|90|$TRAIN --out $WORK/runs/train-299-compile --device-augment --compile"
  )
fi
STEP_LIST+=(
  "gpu-tests|60|$PY -m pytest -m 'gpu and not slow' -q -p no:cacheprovider --junitxml=$OUT/pytest-gpu.xml --ignore=$REPO/tests/train/test_gradients.py --ignore=$REPO/tests/models/test_pooling.py $REPO/tests"
  "bench-memory|25|$PY $REPO/benchmarks/bench_memory.py --device cuda --models inception_v2 googlenet_bn"
)
if [ "$DRY" = 1 ]; then
  echo "# gpu_check.sh: budget ${BUDGET}s, output in $OUT$([ $COMPILE = 1 ] && echo ', with the compiled candidates'); the commands it would run:"
  for entry in "${STEP_LIST[@]}"; do
    IFS='|' read -r name min cmd <<<"$entry"
    echo "[$name] (needs >= ${min}s) $cmd"
  done
  echo "[summary] $PY $REPO/benchmarks/gpu_check_summary.py $OUT $WORK"
  exit 0
fi

mkdir -p "$OUT" "$WORK" || { echo "error: cannot create $OUT" >&2; exit 2; }
: >"$STEPS"
: >"$LOG"
START=$(date +%s)
{
  echo "# gpu_check.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), budget ${BUDGET}s"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
  $PY -c "import torch, torchvision, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" 2>&1
} | tee -a "$LOG"

status=0
for entry in "${STEP_LIST[@]}"; do
  IFS='|' read -r name min cmd <<<"$entry"
  left=$((BUDGET - ($(date +%s) - START)))
  if [ "$left" -lt "$min" ]; then
    echo "[$name] skipped: ${left}s of the budget left, needs ${min}s" | tee -a "$LOG"
    printf '%s\t%s\t%s\t%s\n' "$name" "skipped" 0 "$cmd" >>"$STEPS"
    status=1
    continue
  fi
  echo "[$name] $cmd  (at most ${left}s)" | tee -a "$LOG"
  t0=$(date +%s)
  timeout --kill-after=10 "$left" bash -c "$cmd" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  dt=$(($(date +%s) - t0))
  echo "[$name] exit $rc after ${dt}s" | tee -a "$LOG"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$dt" "$cmd" >>"$STEPS"
  [ "$rc" = 0 ] || status=1
done

$PY "$REPO/benchmarks/gpu_check_summary.py" "$OUT" "$WORK" 2>&1 | tee -a "$LOG"
echo "gpu_check.sh: $([ $status = 0 ] && echo 'every step passed' || echo 'some steps failed or were skipped') in $(($(date +%s) - START))s; see $LOG and $OUT/gpu_check.json" | tee -a "$LOG"
exit $status
