#!/usr/bin/env bash
# Issue 14's "no slower": the engine before the structure work (169db8c) and after it (main), taking turns,
# each round a fresh process: end to end (640x480 inference, 4x128x128 training step) and the kernel table.
set -uo pipefail
O=/root/runs/before-after
for r in 1 2 3; do
  for side in before after; do
    d=$O/e2e-$side-$r; mkdir -p $d
    if [ $side = before ]; then (cd /work/wt-before && npx tsx bench/run.ts --sizes 640x480 --train 4x128x128 --runs 1 --warmup 1 --no-torch --out $d) > $d/log 2>&1
    else (cd /work/main && node bin/moefusion.mjs bench --sizes 640x480 --train 4x128x128 --runs 1 --warmup 1 --no-torch --out $d) > $d/log 2>&1; fi
    echo "e2e $side $r exit $?"
  done
done
for r in 1 2; do
  for side in before after; do
    d=$O/kernels-$side-$r; mkdir -p $d
    if [ $side = before ]; then (cd /work/wt-before && npx tsx bench/kernels.ts --no-peers --size 160x120 --runs 5 --out $d) > $d/log 2>&1
    else (cd /work/main && node bin/moefusion.mjs bench --kernels --kernel-size 160x120 --out $d) > $d/log 2>&1; fi
    echo "kernels $side $r exit $?"
  done
done
