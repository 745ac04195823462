#!/usr/bin/env bash
# Cold-shader-cache start-up: the fuse that `npm run demo` runs, with Mesa's shader cache off, in each of the given
# checkouts in turn (A, B, A, B, …), ROUNDS rounds (default 3); prints the wall time of each run. Compare checkouts,
# e.g. the code before a change in a git worktree against this one:
#
#   git worktree add --detach /tmp/before d2240cb && ln -s "$PWD/node_modules" /tmp/before/node_modules
#   bench/cold-demo.sh /tmp/before .
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/cold-demo.sh CHECKOUT [CHECKOUT …]" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "${ROUNDS:-3}"); do
  for dir in "$@"; do
    start=$(date +%s%N)
    (cd "$dir" && MESA_SHADER_CACHE_DISABLE=true node bin/moefusion.mjs fuse --ir samples/ir/00537D.png \
      --vi samples/vi/00537D.png --out "$out/fused.png" --color --compare "$out/compare.png" >/dev/null)
    end=$(date +%s%N)
    awk -v r="$round" -v d="$dir" -v ns=$((end - start)) 'BEGIN { printf "round %d  %-40s %6.1f s\n", r, d, ns / 1e9 }'
  done
done
