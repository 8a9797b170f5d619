#!/usr/bin/env bash
# The main job end to end on a fresh machine: set-up, real Fashion-MNIST, a short DCGAN training, export with
# verified variants, sampling through the torch-free runtime, and a latency table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STEPS=${STEPS:-300}
RUN=${RUN:-runs/fm}
MODELS=${MODELS:-models/fm}
rm -rf "$RUN" "$MODELS"
edgegan train --arch dcgan --dataset fashion-mnist --max-steps "$STEPS" --out "$RUN"
if edgegan export --help >/dev/null 2>&1; then
  edgegan export "$RUN" --out "$MODELS" --fp16 --int8 --ort-format --triton
fi
if edgegan sample --help >/dev/null 2>&1; then
  edgegan sample "$MODELS/generator.onnx" -n 64 --seed 0 -o "$MODELS/grid.png" --npy "$MODELS/samples.npy"
fi
if edgegan bench --help >/dev/null 2>&1; then
  edgegan bench "$MODELS/generator.onnx" --batch 1,64 --threads 1,2 --torch "$RUN" --json "$MODELS/bench.json"
fi
echo "done: run in $RUN, models in $MODELS"
