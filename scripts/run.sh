#!/usr/bin/env bash
# scripts/run.sh: the main job on a small embedded default, end to end on a CPU.
#
#   scripts/run.sh [--out DIR] [--tasks LIST] [--demos N] [--train_steps N]
#                  [--trials N] [--max_steps N] [--videos N] [--build DIR] [--no_setup]
#
# 1. scripts/setup.sh: Debian packages and the build (BUILD/rdt, default build/);
# 2. finds the LIBERO data ($RDT_LIBERO_ROOT and $RDT_ROBOSUITE_ASSETS, else
#    ../shared/libero beside the checkout) and stops with instructions when absent;
# 3. rdt sim collect: demonstrations of the tasks from the simulator's scripted
#    experts, as LIBERO files (OUT/data);
# 4. rdt train: the small RDT of configs/demo.yaml on them (OUT/train);
# 5. rdt eval: its EMA weights on the same tasks in the simulator, LIBERO's
#    protocol, with videos (OUT/eval, OUT/videos).
# Each step is skipped when its result exists (rerun to resume; delete OUT, or
# one of its folders, to redo that part).  docs/DEMO.md explains the numbers.
set -euo pipefail
# Relative data paths count from where the script was started (it changes directory).
for v in RDT_LIBERO_ROOT RDT_ROBOSUITE_ASSETS; do
  if [ -n "${!v:-}" ] && [ -d "${!v}" ]; then export "$v=$(cd "${!v}" && pwd)"; fi
done
cd "$(dirname "$0")/.."
ROOT=$(pwd)

OUT=out/demo
TASKS=0,20,39          # close the top drawer, turn on the stove, turn off the stove
DEMOS=12               # successful demonstrations per task
TRAIN_STEPS=4000       # optimizer steps of 32 samples
TRIALS=10              # evaluation episodes per task (init states 0..TRIALS-1)
MAX_STEPS=150          # policy steps per episode (the experts need 60-110)
VIDEOS=4               # videos of the first VIDEOS trials per task (rendering every step costs)
SETUP=1
BUILD=build

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --demos) DEMOS=$2; shift 2 ;;
    --train_steps) TRAIN_STEPS=$2; shift 2 ;;
    --trials) TRIALS=$2; shift 2 ;;
    --max_steps) MAX_STEPS=$2; shift 2 ;;
    --videos) VIDEOS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --no_setup) SETUP=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

stamp() { date +%s; }
T0=$(stamp)
say() { printf '\n== %s (%ds)\n' "$*" $(( $(stamp) - T0 )); }

# ---------------------------------------------------------------- 1. build
if [ "$SETUP" = 1 ]; then
  say "setup: packages and build (scripts/setup.sh)"
  scripts/setup.sh "$BUILD"
fi
RDT=$ROOT/$BUILD/rdt
[ -x "$RDT" ] || { echo "run.sh: $RDT is missing: run scripts/setup.sh (or drop --no_setup)" >&2; exit 1; }
T_BUILT=$(stamp)

# ---------------------------------------------------------------- 2. LIBERO data
LIBERO=${RDT_LIBERO_ROOT:-$ROOT/../shared/libero/libero}
ROBOSUITE=${RDT_ROBOSUITE_ASSETS:-$LIBERO/../robosuite/models/assets}
missing=()
for d in assets bddl_files/libero_90 init_files/libero_90; do
  [ -d "$LIBERO/$d" ] || missing+=("$LIBERO/$d/")
done
[ -f "$ROBOSUITE/robots/panda/robot.xml" ] || missing+=("$ROBOSUITE/robots/panda/robot.xml")
if [ ${#missing[@]} -gt 0 ]; then
  cat >&2 <<EOF
run.sh: the LIBERO data was not found.  Looked for:
$(printf '  %s\n' "${missing[@]}")
It needs LIBERO's package folder (the one holding assets/, bddl_files/ and
init_files/: libero/libero in a LIBERO checkout) and robosuite's models/assets
folder (robosuite 1.4.0).  Either put them at
  $ROOT/../shared/libero/libero
  $ROOT/../shared/libero/robosuite/models/assets
or point to them:
  export RDT_LIBERO_ROOT=/path/to/LIBERO/libero/libero
  export RDT_ROBOSUITE_ASSETS=/path/to/robosuite/robosuite/models/assets
EOF
  exit 2
fi
export RDT_LIBERO_ROOT=$LIBERO RDT_ROBOSUITE_ASSETS=$ROBOSUITE
mkdir -p "$OUT"

# ---------------------------------------------------------------- 3. demonstrations
# One collector per task, as many at a time as there are cores; the
# demonstrations start from init states TRIALS, TRIALS + 1, ..., the
# evaluation from 0..TRIALS-1.
say "collect: $DEMOS demonstrations of tasks $TASKS (rdt sim collect)"
CORES=$(nproc 2>/dev/null || echo 2)
pids=()
for t in ${TASKS//,/ }; do
  "$RDT" sim collect --tasks "$t" --demos "$DEMOS" --init_start "$TRIALS" --out "$OUT/data" --skip_existing \
    > "$OUT/collect_$t.log" 2>&1 &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$CORES" ]; do sleep 1; done
done
for p in "${pids[@]}"; do
  wait "$p" || { echo "run.sh: collection failed; see $OUT/collect_*.log" >&2; tail -n 3 "$OUT"/collect_*.log >&2; exit 1; }
done
grep -h "wrote\|skipped" "$OUT"/collect_*.log || true
T_COLLECTED=$(stamp)

# ---------------------------------------------------------------- 4. training
say "train: configs/demo.yaml, $TRAIN_STEPS steps (rdt train)"
if [ -f "$OUT/train/ema/model.safetensors" ]; then
  echo "$OUT/train/ema/model.safetensors exists: training skipped"
else
  resume=()
  ls -d "$OUT"/train/checkpoint-* >/dev/null 2>&1 && resume=(--resume_from_checkpoint latest)
  "$RDT" train --config configs/demo.yaml --data_dir "$OUT/data" --dataset demo --output_dir "$OUT/train" \
    --max_train_steps "$TRAIN_STEPS" --train_batch_size 32 --learning_rate 1e-3 \
    --checkpointing_period 500 --checkpoints_total_limit 1 --dataloader_num_workers 1 --seed 0 "${resume[@]}"
fi
T_TRAINED=$(stamp)

# ---------------------------------------------------------------- 5. evaluation
say "eval: $TRIALS trials per task, at most $MAX_STEPS steps, $VIDEOS videos per task (rdt eval)"
"$RDT" eval --config configs/demo.yaml --pretrained "$OUT/train/ema/model.safetensors" \
  --tasks "$TASKS" --num_trials "$TRIALS" --max_steps "$MAX_STEPS" --workers "$CORES" \
  --record_video --videos_per_task "$VIDEOS" --video_output_dir "$OUT/videos" --output "$OUT/eval" --resume
T_EVALUATED=$(stamp)

cat <<EOF

== done in $(( T_EVALUATED - T0 ))s (build $(( T_BUILT - T0 ))s, collect $(( T_COLLECTED - T_BUILT ))s, train $(( T_TRAINED - T_COLLECTED ))s, eval $(( T_EVALUATED - T_TRAINED ))s)
demonstrations  $OUT/data/*_demo.hdf5
training log    $OUT/train/training.log, $OUT/train/metrics.jsonl (loss per step)
weights         $OUT/train/ema/model.safetensors
results table   $OUT/eval/results.csv (and results.json: every episode)
videos          $OUT/videos/<task>/trialNN_{success,failure}.mp4
EOF
