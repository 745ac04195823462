#!/usr/bin/env bash
# Reproduces RESULTS.md: fuses TNO-42 and VIFB-21 with the shipped weights (both output ranges) and with the
# training-free baselines, scores them next to the peers' outputs in ../shared/data/*/fused with the project's own
# `eval` (tang for TNO, vifb for VIFB), and draws the picture grids.
# Usage: scripts/reproduce-results.sh [WEIGHTS] [SHARED_DATA]   (about 25 minutes on 2 CPU cores through lavapipe)
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:-weights/moefusion.safetensors}
data=${2:-../shared/data}
out=results
mkdir -p "$out"
cli() { node bin/moefusion.mjs "$@"; }

fuse_all() { # NAME, then fuse options
  local name=$1; shift
  cli fuse --ir "$data/tno/ir" --vi "$data/tno/vi" --out "$out/tno/$name" "$@"
  cli fuse --ir "$data/vifb/ir" --vi "$data/vifb/vi" --out "$out/vifb/$name" --color "$@"
}
fuse_all MoE-Fusion --weights "$weights" --range stretch
fuse_all MoE-Fusion-clamp --weights "$weights" --range clamp
fuse_all multiscale --method multiscale --range stretch
fuse_all multiscale-clamp --method multiscale --range clamp
fuse_all max --method max --range clamp

rows() { # SET, ARRAY: the peers, then ours and the baselines
  local -n list=$2
  list=()
  for d in "$data/$1"/fused/*/; do list+=(--fused "$(basename "$d")=$d"); done
  list+=(--fused "MoE-Fusion (ours, stretch)=$out/$1/MoE-Fusion" --fused "MoE-Fusion (ours, clamp)=$out/$1/MoE-Fusion-clamp")
  list+=(--fused "multi-scale, no training (stretch)=$out/$1/multiscale" --fused "multi-scale, no training (clamp)=$out/$1/multiscale-clamp")
  list+=(--fused "max(ir, vis), no training=$out/$1/max")
}
rows tno tno
rows vifb vifb
cli eval --protocol tang --ir "$data/tno/ir" --vi "$data/tno/vi" "${tno[@]}" --json "$out/tno-tang.json" --markdown "$out/tno-tang.md"
cli eval --protocol vifb --ir "$data/vifb/ir" --vi "$data/vifb/vi" "${vifb[@]}" --json "$out/vifb-vifb.json" --markdown "$out/vifb-vifb.md"
npx tsx scripts/picture-grid.ts "$data" "$out"
