#!/usr/bin/env bash
# The by-steps quality runs behind trainer/recipes.py and README "Recipes", as one batch of parallel processes on
# one GPU (an H200 runs all of them in under ten minutes; on CPU use --device cpu and hours).
#
#   bash benchmarks/recipe_runs.sh WORK [DEVICE]
#
# WORK: a new or earlier folder (a rerun resumes each arm from WORK/<batch>/arms); DEVICE: cuda (default) or cpu.
# Needs the real data where `edgegan` finds it ($EDGEGAN_DATA/fashion-mnist and $EDGEGAN_DATA/mnist).
# Writes WORK/evaluators/{fashion-mnist,mnist}.onnx (trained here unless present), WORK/results/<batch>.{md,json}
# (time_to_quality.py's tables), WORK/grids/<batch>/<arm>.png (64 samples of each snapshot, seed 0) and
# WORK/<batch>.log (progress). The batches:
#   fm_dcgan      Fashion-MNIST DCGAN, the defaults vs the plain pytorch/examples loop, 4,000 and 8,000 steps
#   mnist_dcgan   MNIST DCGAN, unconditional, 3,000 steps: the defaults and the candidate changes
#   mnist_gan     MNIST MLP GAN (the seed article's model), unconditional, 3,000 steps
#   mnist_cdcgan  MNIST DCGAN, conditional, 3,000 steps
# Every batch runs 2 seeds; -n 5000 on MNIST (the README's `edgegan eval -n 5000`), 10,000 on Fashion-MNIST.
# The arms are those run on an H200 on 2026-12-04 (benchmarks/results/recipes/h200_2026-12-04/), against the recipe
# table of that day; the table has moved on since (trainer/recipes.py says what each row rests on).
set -u
WORK=${1:?usage: bash benchmarks/recipe_runs.sh WORK [cuda|cpu]}
DEVICE=${2:-cuda}
cd "$(dirname "$0")/.."
mkdir -p "$WORK/evaluators" "$WORK/results" "$WORK/grids"
export PYTHONUNBUFFERED=1

for dataset in fashion-mnist mnist; do  # both at once: a few seconds each on a GPU
  [ -f "$WORK/evaluators/$dataset.onnx" ] ||
    edgegan evaluator train --dataset "$dataset" --device "$DEVICE" -o "$WORK/evaluators/$dataset.onnx" \
      > "$WORK/evaluator_$dataset.log" 2>&1 &
done
wait
for dataset in fashion-mnist mnist; do
  [ -f "$WORK/evaluators/$dataset.onnx" ] || { echo "recipe_runs: the $dataset evaluator failed:" \
    "$(tail -1 "$WORK/evaluator_$dataset.log")" >&2; exit 1; }
done

batch() {  # NAME, then time_to_quality.py's arguments
  local name=$1; shift
  python -m benchmarks.time_to_quality --device "$DEVICE" --threads 1 --seeds 2 --out-dir "$WORK/results" \
    --name "$name" --keep "$WORK/$name" --log "$WORK/$name.log" "$@" > "$WORK/$name.out" 2>&1 ||
    echo "recipe_runs: $name failed: $(tail -1 "$WORK/$name.out")" >&2
  python - "$WORK/$name" "$WORK/grids/$name" <<'EOF'
import sys
from pathlib import Path

from edgegan.runtime.generator import Generator
from edgegan.runtime.images import save_grid

snapshots, grids = Path(sys.argv[1]) / "snapshots", Path(sys.argv[2])
grids.mkdir(parents=True, exist_ok=True)
for model in sorted(snapshots.glob("*/model/generator.onnx")):
    save_grid(Generator(model, threads=1).sample(64, seed=0), grids / f"{model.parent.parent.name}.png", nrow=8)
EOF
}

FM=(--evaluator "$WORK/evaluators/fashion-mnist.onnx")
MN=(--evaluator "$WORK/evaluators/mnist.onnx" --dataset mnist -n 5000 --steps 3000 --no-plain)
batch fm_dcgan "${FM[@]}" --dataset fashion-mnist --arch dcgan --steps 4000,8000 --jobs 4 &
batch mnist_dcgan "${MN[@]}" --arch dcgan --jobs 12 --ablate lr=1e-3 --ablate loss=hinge \
  --ablate lr=1e-3,loss=hinge --ablate lr_d=1e-3 --ablate beta1=0.0,beta2=0.9,loss=hinge &
batch mnist_gan "${MN[@]}" --arch gan --jobs 10 --ablate mode_seeking=1 --ablate lr_d=1e-3 --ablate lr=2e-4 \
  --ablate loss=lsgan &
batch mnist_cdcgan "${MN[@]}" --arch dcgan --conditional --jobs 8 --ablate loss=hinge --ablate lr=2e-4 \
  --ablate ema_decay=0.999 &
wait
echo "recipe_runs: done; tables in $WORK/results"
touch "$WORK/DONE"  # what a caller waits for (docs/gpu_machine.md: never pgrep for this script)
