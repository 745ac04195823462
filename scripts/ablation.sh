#!/usr/bin/env bash
# The training-recipe ablation of RESULTS.md: each variant trains from scratch for the same 150 steps on the same
# data and split, and is scored on the validation split (tang metrics of centre crops) after its last step.
# Resumable: a finished variant is skipped, an interrupted one resumes from its checkpoint.
# Usage: scripts/ablation.sh [RUNS_DIR] [SHARED_DATA]   (about 10 minutes per variant on 2 quiet CPU cores)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/ablation}
data=${2:-../shared/data}
common=(--steps 150 --batch 4 --crop 96 --val-fraction 0.1 --seed 0 --checkpoint-every 50)
run() {
  name=$1; shift
  out=$runs/$name
  if [ -f "$out/weights.safetensors" ]; then echo "$name: done already"; return; fi
  resume=(); [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
  echo "=== $name: $*"
  node bin/moefusion.mjs train --data "$data/roadscene" "$data/llvip/train" "$data/msrs" --out "$out" "${common[@]}" "$@" "${resume[@]}"
}
mkdir -p "$runs"
run A-reference --lr 1e-4
run B-cosine --lr 1e-3 --schedule cosine --warmup 15
run C-saliency --lr 1e-3 --schedule cosine --warmup 15 --attention saliency
run D-saliency-all --lr 1e-3 --schedule cosine --warmup 15 --attention saliency --foreground all
