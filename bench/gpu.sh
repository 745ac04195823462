#!/usr/bin/env bash
# bench/gpu.sh OUT_DIR: everything this project measures on a GPU server, in one command and at most ~8 minutes:
#   1. the GPU and its driver (nvidia-smi, when present)            → OUT_DIR/gpu.csv, nvidia-smi.txt
#   2. the WebGPU adapter, its limits and features                  → OUT_DIR/info.json
#   3. moefusion selftest: kernels and the whole network            → OUT_DIR/selftest.json
#   4. end to end, engine against PyTorch on CUDA (TF32 off)        → OUT_DIR/e2e-*.json, e2e-*.png
#   5. the engine's kernels                                         → OUT_DIR/kernels-engine-*.json, *.png
#   and OUT_DIR/summary.json (each step's status and time), OUT_DIR/logs/*.log.
# Needs no Node: it runs the self-contained bundle (`npm run bundle:gpu`, unpacked inside the repository checkout),
# found as $MOEFUSION, else the bundle this script belongs to, else moefusion-*-linux-x64*/moefusion in the checkout
# (or its dist/), else `node bin/moefusion.mjs` when Node is there. PyTorch: $PYTHON (default python3) with torch.
#
# Vulkan on hosts without it set up: when the loader (libvulkan.so.1) is not installed and a .gl/ folder of Debian
# packages lies in the checkout (or next to it), they are unpacked (dpkg -x) into OUT_DIR/.vulkan and put on
# LD_LIBRARY_PATH; when no NVIDIA driver manifest is in the loader's usual folders but the container toolkit's
# /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json exists, VK_DRIVER_FILES points at it.
#
# Quick run (CPU machines, tests): GPU_BENCH_QUICK=1 bench/gpu.sh OUT_DIR uses tiny sizes. Sizes can also be set
# one by one: GPU_BENCH_SIZES, GPU_BENCH_TRAIN, GPU_BENCH_RUNS, GPU_BENCH_WARMUP, GPU_BENCH_KERNEL_SIZE,
# GPU_BENCH_KERNEL_RUNS; GPU_BENCH_BUDGET (seconds, default 470) bounds the whole run.
# Exit status: 0 when every step succeeded (the self-test included), 1 otherwise.
set -uo pipefail

if [ $# -ne 1 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
mkdir -p "$1/logs" || exit 1
OUT=$(cd "$1" && pwd -P)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
started=$SECONDS
log() { printf '[gpu.sh %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

# ---- where things are ----------------------------------------------------------------------------------------------
# This script sits in bench/ of the repository checkout, or of an unpacked bundle (which may lie inside the checkout).
base=$(cd "$here/.." && pwd -P)
repo=""
for d in "$base" "$(dirname "$base")" "$(dirname "$(dirname "$base")")"; do
  if [ -f "$d/fixtures/moe-fusion-small.safetensors" ] && [ -f "$d/bench/reference/bench.py" ] && [ ! -x "$d/moefusion" ]; then repo=$d; break; fi
done

MOEFUSION_CMD=()
if [ -n "${MOEFUSION:-}" ]; then
  MOEFUSION_CMD=("$MOEFUSION")
elif [ -x "$base/moefusion" ] && [ -x "$base/runtime/node" ]; then
  MOEFUSION_CMD=("$base/moefusion")
else
  newest=""
  for m in "${repo:-$base}"/moefusion-*-linux-x64*/moefusion "${repo:-$base}"/dist/moefusion-*-linux-x64*/moefusion; do
    if [ -x "$m" ] && { [ -z "$newest" ] || [ "$m" -nt "$newest" ]; }; then newest=$m; fi
  done
  if [ -n "$newest" ]; then
    MOEFUSION_CMD=("$newest")
  elif command -v node >/dev/null && [ -f "${repo:-$base}/bin/moefusion.mjs" ]; then
    MOEFUSION_CMD=(node "${repo:-$base}/bin/moefusion.mjs")
  else
    log "no moefusion found: unpack the bundle (npm run bundle:gpu) inside the checkout, or set MOEFUSION=/path/to/moefusion"
    exit 1
  fi
fi
log "moefusion: ${MOEFUSION_CMD[*]}"

# The parity fixture: the bundle's own (full bundle), else the checkout's.
FIXTURE=""
for f in "$(dirname "${MOEFUSION_CMD[-1]}")/fixtures/moe-fusion-small.safetensors" "${repo:+$repo/fixtures/moe-fusion-small.safetensors}"; do
  if [ -n "$f" ] && [ -f "$f" ]; then FIXTURE=$f; break; fi
done

# ---- sizes ---------------------------------------------------------------------------------------------------------
if [ "${GPU_BENCH_QUICK:-0}" = 1 ]; then
  d_sizes=64x48 d_train=2x32x32 d_runs=1 d_warmup=0 d_ksize=32x24 d_kruns=1
else
  d_sizes=640x480,1280x1024 d_train=4x128x128,4x480x640 d_runs=3 d_warmup=1 d_ksize=640x480 d_kruns=7
fi
SIZES=${GPU_BENCH_SIZES:-$d_sizes}
TRAIN=${GPU_BENCH_TRAIN-$d_train}
RUNS=${GPU_BENCH_RUNS:-$d_runs}
WARMUP=${GPU_BENCH_WARMUP:-$d_warmup}
KSIZE=${GPU_BENCH_KERNEL_SIZE:-$d_ksize}
KRUNS=${GPU_BENCH_KERNEL_RUNS:-$d_kruns}
DEADLINE=$((started + ${GPU_BENCH_BUDGET:-470}))
PYTHON=${PYTHON:-python3}

# ---- Vulkan loader and NVIDIA's driver manifest --------------------------------------------------------------------
vulkan_note="system loader"
has_loader() {
  local d p
  # The linker cache's entries for the loader (which may be stale: the file itself must be there).
  for p in $({ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | sed -n 's/^[[:space:]]*libvulkan\.so\.1 .*=> //p'); do
    [ -e "$p" ] && return 0
  done
  for d in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do [ -e "$d/libvulkan.so.1" ] && return 0; done
  return 1
}
if ! has_loader; then
  debs=()
  for d in "${repo:-$base}/.gl" "$(dirname "${repo:-$base}")/.gl"; do
    if [ -d "$d" ]; then for f in "$d"/*.deb; do [ -f "$f" ] && debs+=("$f"); done; fi
  done
  if [ ${#debs[@]} -gt 0 ]; then
    root="$OUT/.vulkan"
    mkdir -p "$root"
    for f in "${debs[@]}"; do
      if command -v dpkg >/dev/null; then
        dpkg -x "$f" "$root" || log "could not unpack $f"
      else # without dpkg: the package's data member, by ar and tar
        member=$(ar t "$f" | grep '^data\.tar' | head -1)
        { ar p "$f" "$member" >"$root/$member" && tar -xf "$root/$member" -C "$root" && rm -f "$root/$member"; } || log "could not unpack $f"
      fi
    done
    for d in "$root/usr/lib/x86_64-linux-gnu" "$root/lib/x86_64-linux-gnu" "$root/usr/lib64" "$root/usr/lib"; do
      [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    vulkan_note="loader unpacked from ${#debs[@]} package(s) in .gl/"
    log "no Vulkan loader installed: unpacked ${debs[*]##*/} into $root (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"
  else
    vulkan_note="no loader found (no .gl/ packages to unpack)"
    log "no Vulkan loader installed and no .gl/*.deb to unpack: moefusion will say what to install"
  fi
fi
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$NVIDIA_ICD" ] &&
  ! ls /etc/vulkan/icd.d/*nvidia*.json /usr/share/vulkan/icd.d/*nvidia*.json /usr/local/share/vulkan/icd.d/*nvidia*.json >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$NVIDIA_ICD
  vulkan_note="$vulkan_note; VK_DRIVER_FILES=$NVIDIA_ICD"
  log "NVIDIA's Vulkan manifest is only at $NVIDIA_ICD: VK_DRIVER_FILES set to it"
fi

# ---- steps ---------------------------------------------------------------------------------------------------------
steps_json=()
failed=0
# step NAME CAP_SECONDS STDOUT_FILE|- COMMAND…: runs with a time limit (capped by what is left of the budget), logs
# stderr (and stdout unless it goes to a file) to logs/NAME.log, and records the status.
step() {
  local name=$1 cap=$2 stdout=$3
  shift 3
  local left=$((DEADLINE - SECONDS)) limit status t0=$SECONDS rc
  limit=$((cap < left ? cap : left))
  if [ "$limit" -le 5 ]; then
    status=skipped
    log "$name: skipped (time budget spent)"
  else
    log "$name (at most ${limit}s) …"
    if [ "$stdout" = - ]; then
      timeout -k 10 "$limit" "$@" >"$OUT/logs/$name.log" 2>&1
    else
      timeout -k 10 "$limit" "$@" >"$stdout" 2>"$OUT/logs/$name.log"
    fi
    rc=$?
    if [ $rc = 0 ]; then status=ok; elif [ $rc = 124 ] || [ $rc = 137 ]; then status=timeout; else status="failed (exit $rc)"; fi
    log "$name: $status in $((SECONDS - t0))s"
    [ $rc = 0 ] || tail -n 3 "$OUT/logs/$name.log" | sed 's/^/    /' >&2
  fi
  [ "$status" = ok ] || failed=1
  steps_json+=("{\"name\": \"$name\", \"status\": \"$status\", \"seconds\": $((SECONDS - t0))}")
}

if command -v nvidia-smi >/dev/null; then
  step gpu 30 "$OUT/gpu.csv" nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,pci.bus_id --format=csv
  nvidia-smi -q >"$OUT/nvidia-smi.txt" 2>&1 || true
else
  echo "nvidia-smi not found" >"$OUT/gpu.csv"
  log "gpu: nvidia-smi not found (no NVIDIA driver utilities on this host)"
fi
step info 60 "$OUT/info.json" "${MOEFUSION_CMD[@]}" info --json
step selftest 150 "$OUT/selftest.json" "${MOEFUSION_CMD[@]}" selftest --json ${FIXTURE:+--fixture "$FIXTURE"}

torch_args=(--python "$PYTHON")
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  log "e2e: $PYTHON cannot import torch: the engine runs alone"
  torch_args=(--no-torch)
fi
step e2e 240 - "${MOEFUSION_CMD[@]}" bench --sizes "$SIZES" --train "$TRAIN" --runs "$RUNS" --warmup "$WARMUP" "${torch_args[@]}" --out "$OUT"
step kernels 150 - "${MOEFUSION_CMD[@]}" bench --kernels --kernel-size "$KSIZE" --runs "$KRUNS" --out "$OUT"

# ---- summary -------------------------------------------------------------------------------------------------------
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
{
  printf '{\n  "date": %s,\n  "host": %s,\n  "moefusion": %s,\n  "fixture": %s,\n  "vulkan": %s,\n' \
    "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$(uname -n)")" "$(json_str "${MOEFUSION_CMD[*]}")" "$(json_str "$FIXTURE")" "$(json_str "$vulkan_note")"
  printf '  "sizes": {"inference": %s, "train": %s, "runs": %s, "warmup": %s, "kernelSize": %s, "kernelRuns": %s},\n' \
    "$(json_str "$SIZES")" "$(json_str "$TRAIN")" "$RUNS" "$WARMUP" "$(json_str "$KSIZE")" "$KRUNS"
  printf '  "seconds": %s,\n  "ok": %s,\n  "steps": [\n    ' "$((SECONDS - started))" "$([ $failed = 0 ] && echo true || echo false)"
  (IFS=$'\n'; printf '%s' "${steps_json[*]}" | sed ':a;N;$!ba;s/\n/,\n    /g')
  printf '\n  ]\n}\n'
} >"$OUT/summary.json"
log "done in $((SECONDS - started))s: $([ $failed = 0 ] && echo 'every step succeeded' || echo 'some step failed (see summary.json and logs/)') → $OUT"
exit $failed
