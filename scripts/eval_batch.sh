#!/usr/bin/env bash
# scripts/eval_batch.sh: evaluate many checkpoints x LIBERO-90 tasks on all
# GPUs (or N CPU processes), resumably, then merge everything into one
# checkpoint x task table of success rates (CSV and Markdown).
#
#   scripts/eval_batch.sh --checkpoints 'checkpoints/run1/checkpoint-*' --output evals/run1 \
#       [--tasks 0,5,KITCHEN_SCENE3_turn_on_the_stove | --num_tasks 90] [--cpu_workers N] [--rdt PATH] \
#       -- --config configs/base.yaml --vision_encoder DIR --precomp_lang_embed DIR --workers 8 ...
#
# Work unit = (checkpoint, task): one `rdt eval --resume` process writing
# OUTPUT/runs/<checkpoint label>/<task>/results.json (videos, when
# --record_video is passed through, under OUTPUT/videos/<checkpoint label>/).
# Units are claimed dynamically by one process per device: every GPU listed in
# CUDA_VISIBLE_DEVICES (each process sees only its own, and gets --device
# cuda), or --cpu_workers processes on the CPU (--device cpu, the cores split
# between them).  Rerunning the same command continues where a killed run
# stopped: finished units load nothing and exit at once, unfinished ones run
# only their missing episodes.  At the end `rdt eval --merge` writes
# OUTPUT/summary.csv and OUTPUT/summary.md.  Flags after `--` go to every
# rdt eval (they come last, so they override the script's --device/--threads).
# Exit status 1 if any unit failed (its log is in OUTPUT/logs/).
set -euo pipefail

usage() {
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

here=$(cd "$(dirname "$0")" && pwd)
rdt=${RDT_BIN:-$here/../build/rdt}
patterns=()
tasks=""
num_tasks=90
cpu_workers=""
output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --checkpoints) patterns+=("$2"); shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --num_tasks) num_tasks=$2; shift 2 ;;
    --cpu_workers) cpu_workers=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --rdt) rdt=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) echo "eval_batch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
passthrough=("$@")
[ -n "$output" ] || { echo "eval_batch.sh: --output DIR is required" >&2; exit 2; }
[ ${#patterns[@]} -gt 0 ] || { echo "eval_batch.sh: --checkpoints GLOB|LIST is required" >&2; exit 2; }
[ -x "$rdt" ] || { echo "eval_batch.sh: no rdt program at $rdt (build it, or pass --rdt PATH)" >&2; exit 2; }

# ---------------------------------------------------------------- checkpoints
# Each --checkpoints value is a comma-separated list of paths or globs.
checkpoints=()
shopt -s nullglob
for p in "${patterns[@]}"; do
  IFS=',' read -r -a items <<< "$p"
  for item in "${items[@]}"; do
    matches=($item)
    [ ${#matches[@]} -gt 0 ] || { echo "eval_batch.sh: no checkpoint matches '$item'" >&2; exit 2; }
    for m in "${matches[@]}"; do
      dup=0
      for c in "${checkpoints[@]+"${checkpoints[@]}"}"; do [ "$c" = "${m%/}" ] && dup=1; done
      [ $dup = 1 ] || checkpoints+=("${m%/}")
    done
  done
done
shopt -u nullglob

# A file-system-safe label of a checkpoint path.
label() { printf '%s' "$1" | sed 's#^\./##; s#[^A-Za-z0-9._-]#_#g'; }

# ---------------------------------------------------------------- tasks
task_list=()
if [ -n "$tasks" ]; then
  IFS=',' read -r -a task_list <<< "$tasks"
else
  for ((i = 0; i < num_tasks; i++)); do task_list+=("$(printf '%02d' "$i")"); done
fi

# ---------------------------------------------------------------- devices
devices=()
if [ -z "$cpu_workers" ] && [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
  IFS=',' read -r -a devices <<< "$CUDA_VISIBLE_DEVICES"
  device_flags=(--device cuda)
else
  n=${cpu_workers:-1}
  cores=$(nproc 2> /dev/null || echo 1)
  threads=$(( cores / n > 0 ? cores / n : 1 ))
  for ((i = 0; i < n; i++)); do devices+=("cpu$i"); done
  device_flags=(--device cpu --threads "$threads")
fi

mkdir -p "$output/runs" "$output/logs"
claims="$output/.claims"
rm -rf "$claims"
mkdir -p "$claims"

units=()
for c in "${checkpoints[@]}"; do
  for t in "${task_list[@]}"; do units+=("$c|$t"); done
done
echo "eval_batch.sh: ${#checkpoints[@]} checkpoint(s) x ${#task_list[@]} task(s) = ${#units[@]} unit(s) on ${#devices[@]} device(s): ${devices[*]}"

# One device: claim units (mkdir is atomic) and run them until none is left.
run_device() {
  local dev=$1 failed=0
  for u in "${units[@]}"; do
    local ckpt=${u%|*} task=${u##*|}
    local lab t_lab
    lab=$(label "$ckpt")
    t_lab=$(label "$task")
    mkdir "$claims/${lab}__${t_lab}" 2> /dev/null || continue
    local out="$output/runs/$lab/$t_lab" log="$output/logs/${lab}__${t_lab}.log"
    mkdir -p "$out"
    echo "[$dev] $ckpt task $task"
    local env_prefix=()
    [[ $dev == cpu* ]] || env_prefix=(env CUDA_VISIBLE_DEVICES="$dev")
    if ! "${env_prefix[@]+"${env_prefix[@]}"}" "$rdt" eval --pretrained "$ckpt" --tasks "$task" --output "$out" \
         --resume --video_output_dir "$output/videos/$lab" "${device_flags[@]}" \
         "${passthrough[@]+"${passthrough[@]}"}" > "$log" 2>&1; then
      echo "[$dev] FAILED: $ckpt task $task (see $log)" >&2
      failed=1
    fi
  done
  return $failed
}

pids=()
for d in "${devices[@]}"; do
  run_device "$d" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
rm -rf "$claims"

# ---------------------------------------------------------------- merge
files=()
for c in "${checkpoints[@]}"; do
  for t in "${task_list[@]}"; do
    f="$output/runs/$(label "$c")/$(label "$t")/results.json"
    [ -f "$f" ] && files+=("$f")
  done
done
if [ ${#files[@]} -eq 0 ]; then
  echo "eval_batch.sh: no results to merge" >&2
  exit 1
fi
"$rdt" eval --merge --output "$output/summary" "${files[@]}"
echo "eval_batch.sh: $output/summary.csv and $output/summary.md (${#files[@]} results files)"
exit $status
