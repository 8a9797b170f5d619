#!/usr/bin/env bash
# The main job end to end on a fresh machine: set-up, real Fashion-MNIST, a short DCGAN training, export with
# verified variants, sampling through the torch-free runtime, a latency table and the image-quality scores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STEPS=${STEPS:-300}
RUN=${RUN:-runs/fm}
MODELS=${MODELS:-models/fm}
rm -rf "$RUN" "$MODELS"
edgegan train --arch dcgan --dataset fashion-mnist --max-steps "$STEPS" --out "$RUN"
edgegan export "$RUN" --out "$MODELS" --fp16 --int8 --ort-format --triton
edgegan sample "$MODELS/generator.onnx" -n 64 --seed 0 -o "$MODELS/grid.png" --npy "$MODELS/samples.npy"
edgegan bench "$MODELS/generator.onnx" "$MODELS/generator.int8.onnx" --batch-sizes 1,64 --threads 1,2 --torch "$RUN" \
    --json "$MODELS/bench.json" --plot "$MODELS/bench.png"
EVALUATOR="${XDG_CACHE_HOME:-$HOME/.cache}/edgegan/evaluators/fashion-mnist.onnx"
[ -f "$EVALUATOR" ] || edgegan evaluator train --dataset fashion-mnist      # once per machine, ~2 min of CPU
edgegan eval "$MODELS/generator.onnx" --dataset fashion-mnist -n 5000 --json "$MODELS/quality.json"
echo "done: run in $RUN, models in $MODELS"
