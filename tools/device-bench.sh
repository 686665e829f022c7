#!/usr/bin/env bash
# The issue-7 figures on a lent GPU machine, in one call. Prepare here first:
#   bash ../shared/gpu/prepare.sh && node tools/device-bundle.mjs
#   git clone https://github.com/keyu-tian/SparK .spark   # the PyTorch baseline runs the official code
#   git -C .spark checkout a63e386f8e5186bc07ad7fce86e06b08f48a61ea
# then run on the device (carry .gpu, .devbench.tar.xz and .spark), e.g. with a 540 s limit:
#   bash tools/device-bench.sh
# Each suite runs in its own process (Dawn in Node once crashed after ~20 s of work on an
# H100; one crash must not lose the other figures) under its own time limit; JSON and logs go
# to $OUT (or ./device-out). Order: cheapest and most wanted first.
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
source .gpu/activate.sh
[ -d .devbench ] || tar xJf .devbench.tar.xz
export WEBSPARK_SHADERS=$PWD/shaders
ws() { node .devbench/webspark.mjs "$@"; }
run() { # name limit command...
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1; echo "exit $?" >> "$out/$name.log"
  tail -n 25 "$out/$name.log"
}
run kernels 120 ws bench kernels --json "$out/kernels.json"
run train-resnet50 150 ws bench train --model resnet50 --input-size 224 --batch 32 --json "$out/train.json"
run torch-resnet50 90 python3 tools/torch-step-bench.py --spark "${SPARK:-.spark}" --model resnet50 --input-size 224 --batch 32 --json "$out/torch.json"
run encoder 120 ws bench encoder --json "$out/encoder.json"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$out/gpu.txt" 2>&1 || true
