#!/usr/bin/env bash
# Reproduces RESULTS.md: fuses TNO-42 and VIFB-21 with the shipped weights, scores them next to the peers' outputs
# in ../shared/data/*/fused with the project's own `eval` (tang for TNO, vifb for VIFB), and draws a picture grid.
# Usage: scripts/reproduce-results.sh [WEIGHTS] [SHARED_DATA]
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:-weights/moefusion.safetensors}
data=${2:-../shared/data}
out=results
mkdir -p "$out"
cli() { node bin/moefusion.mjs "$@"; }

cli fuse --weights "$weights" --ir "$data/tno/ir" --vi "$data/tno/vi" --out "$out/tno/MoE-Fusion"
cli fuse --weights "$weights" --ir "$data/vifb/ir" --vi "$data/vifb/vi" --out "$out/vifb/MoE-Fusion" --color

tno_methods=(); for d in "$data"/tno/fused/*/; do tno_methods+=(--fused "$(basename "$d")=$d"); done
vifb_methods=(); for d in "$data"/vifb/fused/*/; do vifb_methods+=(--fused "$(basename "$d")=$d"); done
cli eval --protocol tang --ir "$data/tno/ir" --vi "$data/tno/vi" "${tno_methods[@]}" --fused "MoE-Fusion (ours)=$out/tno/MoE-Fusion" \
  --json "$out/tno-tang.json" --markdown "$out/tno-tang.md"
cli eval --protocol vifb --ir "$data/vifb/ir" --vi "$data/vifb/vi" "${vifb_methods[@]}" --fused "MoE-Fusion (ours)=$out/vifb/MoE-Fusion" \
  --json "$out/vifb-vifb.json" --markdown "$out/vifb-vifb.md"
npx tsx scripts/picture-grid.ts "$data" "$out"
