#!/usr/bin/env bash
# The training-recipe ablation of RESULTS.md: each variant fine-tunes the previously shipped weights (1000 steps
# towards max(ir, vis), see RESULTS.md) for the same 100 steps on the same data and split, and is scored on the
# validation split after its last step (whole frames downscaled to 320×240, `tang` metrics, clamped and stretched
# output), beside the training-free baselines on the same frames (the `baselines` line of each log).
# Resumable: a finished variant is skipped, an interrupted one resumes from its checkpoint.
# Usage: scripts/ablation.sh [RUNS_DIR] [SHARED_DATA]   (about 15 minutes per variant on 2 quiet cores)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/ablation}
data=${2:-../shared/data}
# The weights shipped before this ablation, from the commit that shipped them.
init=$runs/init-1000-max.safetensors
mkdir -p "$runs"
[ -f "$init" ] || git show 3ac5020:weights/moefusion.safetensors > "$init"
common=(--init "$init" --steps 100 --batch 4 --lr 5e-4 --schedule cosine --warmup 20 --attention saliency --flip
  --val-fraction 0.1 --val-size 320x240 --seed 0 --checkpoint-every 50)
run() {
  name=$1; shift
  out=$runs/$name
  if [ -f "$out/weights.safetensors" ]; then echo "$name: done already"; return; fi
  resume=(); [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
  echo "=== $name: $*"
  node bin/moefusion.mjs train --data "$data/roadscene" "$data/llvip/train" "$data/msrs" --out "$out" "${common[@]}" "$@" "${resume[@]}"
}
# The sharper target on square crops, then on crops at the gates' aspect and scale, then with edges as strong as the
# sharper target's. Each run's log starts with the --init weights' own validation (step 0): the control.
run E3-gain1.25-96 --target multiscale --detail-gain 1.25 --crop 96
run E5-gain1.25-128x96-scale3 --target multiscale --detail-gain 1.25 --crop 128x96 --crop-scale 1,3
run E6-gain1.25-grad1.25-128x96-scale3 --target multiscale --detail-gain 1.25 --grad-gain 1.25 --crop 128x96 --crop-scale 1,3
