#!/usr/bin/env bash
# The SparK training step on a real GPU beside PyTorch, and where its time goes: the one
# prepared script for a GPU machine reached remotely (docs/benchmarks.md, "Training step on a real GPU").
# Prepare here first, in the project root:
#   bash ../shared/gpu/prepare.sh && node tools/device-bundle.mjs
#   git clone https://github.com/keyu-tian/SparK .spark   # the PyTorch baseline runs the official code
#   git -C .spark checkout a63e386f8e5186bc07ad7fce86e06b08f48a61ea
# then run on the device, carrying .gpu, .devbench.tar.xz and .spark, with a 540 s limit:
#   bash tools/device-bench.sh
#
# PART picks what runs (default step):
#   step    a) the step comparison: `bench train` (f32; ConvNeXt-T in f16 too) against
#              tools/torch-step-bench.py in fp32 (TF32 off) and PyTorch's default (TF32 on) for
#              ResNet-50 @224 B32 and B64, ResNet-18 @224 B64, ConvNeXt-T @224 B32;
#           b) `bench train --profile` for ResNet-50 @224 B32;
#           c) `info --features` (with and without allow_unsafe_apis) and nvidia-smi's facts;
#           d) `bench kernels`.
#   demo    demo-model pre-training: not prepared here (prints so and exits 2).
#   fmnist  Fashion-MNIST pre-training: not prepared here (prints so and exits 2).
#
# Each run is its own process (Dawn in Node once crashed after ~20 s of work on an H100; one
# crash must not lose the other figures) under its own `timeout`, and no run starts once the
# part's budget (BUDGET_S, default 500 s) is spent: a run that would not fit is cut to what is
# left or skipped, and says so. Logs and JSON go to $OUT (or ./device-out); summary.txt at the
# end puts webspark and PyTorch side by side (tools/device-bench-summary.mjs).
#
# DEVICE_BENCH_SMOKE=1 is a dry run of this script on a CPU: every webspark run at the software
# adapter's defaults (ResNet-18's depth at a quarter width, 64 px, batch 2) with --quick,
# PyTorch on the CPU at 64 px batch 2 where python3 has torch and .spark exists (else skipped),
# no .gpu activation, and the CLI from the bundle when one is built (else npx webspark).
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
part=${PART:-step}
smoke=${DEVICE_BENCH_SMOKE:-}
budget=${BUDGET_S:-500}
start=$SECONDS

case "$part" in
  step) ;;
  demo | fmnist)
    # Hook for the later parts: add them here as their own functions.
    echo "PART=$part: not prepared" | tee "$out/part-$part.txt"
    exit 2
    ;;
  *) echo "PART=$part: unknown (step, demo or fmnist)" >&2; exit 2 ;;
esac

if [ -z "$smoke" ]; then
  source .gpu/activate.sh
elif [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f .cache/lavapipe/lvp_icd.json ]; then
  # The bundle cannot find the project's lavapipe by its own path: name it (faster than SwiftShader).
  export VK_ICD_FILENAMES=$PWD/.cache/lavapipe/lvp_icd.json
fi
# The CLI as an array, not a function: `timeout` runs commands, not shell functions.
if [ -f .devbench.tar.xz ] || [ -d .devbench ]; then
  [ -d .devbench ] || tar xJf .devbench.tar.xz
  export WEBSPARK_SHADERS=$PWD/shaders
  ws=(node .devbench/webspark.mjs)
else
  ws=(npx webspark)
fi

# run NAME LIMIT COMMAND...: COMMAND under `timeout`, its output in $out/NAME.log (exit status last).
run() {
  local name=$1 limit=$2; shift 2
  local left=$((budget - (SECONDS - start)))
  if [ "$left" -lt 20 ]; then
    echo "=== $name: skipped, ${left}s of the ${budget}s budget left" | tee "$out/$name.log"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s, $((SECONDS - start))s into the part)"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "exit $?" >> "$out/$name.log"
  tail -n 8 "$out/$name.log"
}

# PyTorch runs where python3 has torch and the official checkout is here.
spark=${SPARK:-.spark}
torch_ok=1
if ! python3 -c 'import torch' 2>/dev/null; then
  torch_ok=0; echo "python3 has no torch: PyTorch runs skipped" | tee "$out/torch-skipped.txt"
elif [ ! -f "$spark/pretrain/spark.py" ]; then
  torch_ok=0; echo "no SparK checkout at $spark: PyTorch runs skipped" | tee "$out/torch-skipped.txt"
fi

# step NAME MODEL SIZE BATCH: webspark in f32 (and f16 with F16=1), then PyTorch fp32 and TF32.
step() {
  local name=$1 model=$2 size=$3 batch=$4
  local shape=(--model "$model" --input-size "$size" --batch "$batch") tshape=(--model "$model" --input-size "$size" --batch "$batch")
  if [ -n "$smoke" ]; then shape=(--quick); tshape=(--model resnet18 --input-size 64 --batch 2 --steps 2 --device cpu); fi
  run "train-$name-f32" 120 "${ws[@]}" bench train "${shape[@]}" --precision f32 --json "$out/train-$name-f32.json"
  if [ "${F16:-0}" = 1 ]; then
    run "train-$name-f16" 120 "${ws[@]}" bench train "${shape[@]}" --precision f16 --json "$out/train-$name-f16.json"
  fi
  if [ "$torch_ok" = 1 ]; then
    run "torch-$name-fp32" 75 python3 tools/torch-step-bench.py --spark "$spark" "${tshape[@]}" --steps 10 --json "$out/torch-$name-fp32.json"
    run "torch-$name-tf32" 75 python3 tools/torch-step-bench.py --spark "$spark" "${tshape[@]}" --steps 10 --tf32 --json "$out/torch-$name-tf32.json"
  fi
}

# a) the step comparison, most wanted first
step resnet50-224-b32 resnet50 224 32
F16=1 step convnext_tiny-224-b32 convnext_tiny 224 32
step resnet50-224-b64 resnet50 224 64
step resnet18-224-b64 resnet18 224 64

# b) where the step's time goes
if [ -n "$smoke" ]; then pshape=(--quick); else pshape=(--model resnet50 --input-size 224 --batch 32); fi
run profile-resnet50-224-b32 150 "${ws[@]}" bench train "${pshape[@]}" --precision f32 --profile --json "$out/profile-resnet50-224-b32.json"

# c) what the adapter offers, and the card
echo "=== features"
timeout 30 "${ws[@]}" info --features --json > "$out/features.json" 2> "$out/features.log"; echo "exit $?" >> "$out/features.log"
run info 30 "${ws[@]}" info
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,pcie.link.gen.max,pcie.link.width.max \
  --format=csv > "$out/nvidia-smi.csv" 2>&1 || echo "nvidia-smi not available" >> "$out/nvidia-smi.csv"
nvidia-smi -q > "$out/nvidia-smi-q.txt" 2>&1 || true

# d) the kernels suite (conv passes and dense GEMMs up to 2048^3 on hardware)
run kernels 120 "${ws[@]}" bench kernels ${smoke:+--quick} --json "$out/kernels.json"

node tools/device-bench-summary.mjs "$out" | tee "$out/summary.txt"
echo "part $part done in $((SECONDS - start))s; files in $out"
