#!/bin/bash
# moefusion over a dataset as a Slurm job array: task k of the array fuses shard k of N (a stable split by file
# name: disjoint shards that together cover every pair). Submit with
#   sbatch --array=0-7 deploy/slurm-array.sh /shared/data /shared/fused
# and resubmit the same command after failures or time-outs: --skip-existing redoes only unfinished pairs.
#SBATCH --job-name=moefusion
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=02:00:00
#SBATCH --output=moefusion-%A_%a.log
set -euo pipefail
data=${1:?usage: sbatch --array=0-(N-1) slurm-array.sh DATA_DIR OUT_DIR}
out=${2:?usage: sbatch --array=0-(N-1) slurm-array.sh DATA_DIR OUT_DIR}
# The unpacked bundle (tar -xJf moefusion-*-linux-x64.tar.xz on the shared file system).
moefusion=${MOEFUSION:-/shared/moefusion-0.1.0-linux-x64/moefusion}
count=${SLURM_ARRAY_TASK_COUNT:-$((SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1))}
exec "$moefusion" fuse --ir "$data/ir" --vi "$data/vi" --out "$out" \
  --shard "$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))/$count" --skip-existing --quiet
