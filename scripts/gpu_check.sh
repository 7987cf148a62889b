#!/usr/bin/env bash
# scripts/gpu_check.sh: the one prepared run for a lent GPU machine.
#
# Builds rdt for sm_90 (H100/H200) or takes the programs packed here, runs the
# CUDA test programs (the ctest label "cuda": every CUDA op against the CPU op,
# rdt predict --device cuda against cpu, the NCCL path), then the GPU
# benchmarks, and prints a short table last.  Logs go to $OUT (the device
# tool's folder; out/gpu-check when unset); table.txt is the final table.
# Each step has its own time limit, and the whole run a budget (below).
#
#   scripts/gpu_check.sh --fetch-deps   here, once, with network: downloads the
#                                       .deb packages the build needs that the GPU
#                                       image may lack (libyaml, OpenBLAS, pkgconf)
#                                       into .gpudeps/ (git-ignored locally)
#   scripts/gpu_check.sh --pack         here: builds for sm_90 in build-gpu/ (MuJoCo,
#                                       FFmpeg, MPI, HDF5 off) and copies rdt and the
#                                       CUDA test programs into .gpurun/ (git-ignored),
#                                       so the device spends no time compiling
#   scripts/gpu_check.sh                there: device run with carry [".gpudeps"] (it
#                                       builds from source) or [".gpudeps", ".gpurun"]
#                                       (it runs the packed programs)
#
# Environment: RDT_GPU_CHECK_SANITIZE=1 also runs the ops test under
# compute-sanitizer (memcheck; slow, Firecracker machines only);
# The benchmarks run with and without the speed switches (RDT_CUDA_GRAPH=0
# turns graph replay off; RDT_CUDA_SKINNY=1 with 1, 2 and 4 target blocks per
# SM, and RDT_CUDA_ATTN_SPLIT_BLOCKS 4, 8 and 16, are the opt-in switches
# still to be timed, as are RDT_CUDA_GELU_EPILOGUE=1 (Linear + GELU as one
# cuBLASLt product) and the long-key attention switches RDT_CUDA_ATTN_DQ_SPLIT,
# RDT_CUDA_ATTN_WARPS=5 and RDT_CUDA_ATTN_PREFETCH=1; RDT_CUDA_ATTN_TC=0 puts SigLIP's attention back on the
# CUDA cores: see docs/CUDA.md);
# RDT_GPU_CHECK_PROFILE=1 adds per-op profiles of the RDT-1B policy and
# training step (RDT_KERNEL_PROFILE=1); RDT_GPU_CHECK_BENCH=0 skips the
# benchmarks; RDT_GPU_CHECK_BUDGET=S bounds the whole run (default 450 s).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DEBS=(libyaml-0-2 libyaml-dev libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0 libpkgconf3 pkgconf-bin)
TEST_PROGRAMS=(tests/kernels/test_kernels_cuda_ops tests/kernels/test_kernels_cuda_nccl tests/model/test_model_predict_cuda
  tests/model/test_model_train_step_cuda)
exclude_here() { # PATH: keep PATH out of git status in this checkout
  local exclude
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qx "$1" "$exclude" 2>/dev/null || echo "$1" >>"$exclude"
}

# ---------------------------------------------------------------- --fetch-deps (run here)
if [ "${1:-}" = "--fetch-deps" ]; then
  set -e
  mkdir -p .gpudeps
  exclude_here /.gpudeps/
  (cd .gpudeps && apt-get download "${DEBS[@]}")
  du -sh .gpudeps
  exit 0
fi

# ---------------------------------------------------------------- --pack (run here)
if [ "${1:-}" = "--pack" ]; then
  set -e
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DRDT_MUJOCO=OFF -DRDT_FFMPEG=OFF -DRDT_MPI=OFF -DCMAKE_DISABLE_FIND_PACKAGE_HDF5=ON >/dev/null
  cmake --build build-gpu -j"$(nproc)" --target rdt "${TEST_PROGRAMS[@]##*/}"
  rm -rf .gpurun && mkdir -p .gpurun
  exclude_here /.gpurun/
  for f in rdt "${TEST_PROGRAMS[@]}"; do cp "build-gpu/$f" .gpurun/; done
  strip .gpurun/*
  # One archive: each program holds the same CUDA kernels (13 MB each, 63 MB
  # in all, over the device tool's 64 MB with .gpudeps); xz takes it to ~3 MB.
  (cd .gpurun && tar -cf - rdt test_* | xz -9 -T0 >programs.tar.xz && rm -f rdt test_*)
  git rev-parse --short HEAD >.gpurun/commit
  du -sh .gpurun
  exit 0
fi

OUT=${OUT:-$ROOT/out/gpu-check}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
ROWS=()

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# row NAME STATUS SECONDS NOTE: one line of the final table
row() { ROWS+=("$(printf '%-22s %-10s %7s  %s' "$1" "$2" "$3" "$4")"); }

# step NAME LIMIT LOG CMD...: run CMD with a time limit, output appended to LOG; sets RC
# The whole run keeps within RDT_GPU_CHECK_BUDGET seconds (default 450): each
# step's limit is cut to what is left, and a step with under 10 s left is not run.
BUDGET=${RDT_GPU_CHECK_BUDGET:-450}
START_S=$(date +%s)
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local t0 status left=$((BUDGET - ($(date +%s) - START_S)))
  if [ "$left" -lt 10 ]; then
    echo "==== $name: not run, the budget of ${BUDGET}s is spent" >>"$log"
    RC=124 STEP_STATUS="no time" STEP_SECONDS=0
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  t0=$(now_ms)
  echo "==== $name: $*" >>"$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  RC=$?
  local dt
  dt=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
  case $RC in
    0) status=ok ;;
    124 | 137) status=TIMEOUT ;;
    *) status="FAIL($RC)" ;;
  esac
  STEP_STATUS=$status
  STEP_SECONDS=$dt
}

# ---------------------------------------------------------------- the machine
{
  date -u '+%Y-%m-%d %H:%M:%S UTC'
  nvidia-smi 2>&1
  nvcc --version 2>&1 | tail -2
  cmake --version 2>&1 | head -1
  nproc
} >"$OUT/machine.txt"
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)

# ---------------------------------------------------------------- dependencies
# The packed programs need the runtime libraries of the carried .deb files;
# a build from source also needs their headers and .pc files.
PREBUILT=0
GPURUN=.gpurun
if [ -f .gpurun/programs.tar.xz ]; then   # the packed programs, unpacked outside the carried tree
  GPURUN=/tmp/rdt-gpurun
  rm -rf "$GPURUN" && mkdir -p "$GPURUN"
  tar -C "$GPURUN" -xJf .gpurun/programs.tar.xz 2>/dev/null ||
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpurun/programs.tar.xz "$GPURUN"
  cp .gpurun/commit "$GPURUN/" 2>/dev/null
fi
[ -x "$GPURUN/rdt" ] && PREBUILT=1
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DRDT_MUJOCO=OFF -DRDT_FFMPEG=OFF)
command -v ninja >/dev/null && CMAKE_ARGS+=(-G Ninja)
have_pc() { command -v pkg-config >/dev/null && pkg-config --exists "$@"; }
if [ $PREBUILT = 1 ] || ! have_pc yaml-0.1 || ! { have_pc openblas || have_pc blas; }; then
  if ls .gpudeps/*.deb >/dev/null 2>&1; then
    DEPS=/tmp/rdt-gpudeps
    rm -rf "$DEPS" && mkdir -p "$DEPS"
    for f in .gpudeps/*.deb; do dpkg -x "$f" "$DEPS"; done
    LIBS="$DEPS/usr/lib/x86_64-linux-gnu"
    export LD_LIBRARY_PATH="$LIBS:$LIBS/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # Only the unpacked .pc files, with their /usr paths moved under $DEPS.
    export PKG_CONFIG_LIBDIR="$LIBS/pkgconfig:$LIBS/openblas-pthread/pkgconfig"
    export PKG_CONFIG_SYSROOT_DIR="$DEPS"
    PKGCONF=$(command -v pkg-config || echo "$DEPS/usr/bin/pkgconf")
    CMAKE_ARGS+=(-DPKG_CONFIG_EXECUTABLE="$PKGCONF" -DRDT_MPI=OFF)
    echo "dependencies: unpacked .gpudeps into $DEPS" >>"$SUMMARY"
  else
    echo "dependencies: libyaml or OpenBLAS missing and no .gpudeps/ carried (run scripts/gpu_check.sh --fetch-deps here first)" >>"$SUMMARY"
  fi
fi
# CUDA libraries: the toolkit's, then those of the Python wheels (nvidia-*).
WHEELS=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]) + "/nvidia")' 2>/dev/null)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib "$WHEELS"/*/lib "$WHEELS"/cu13/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
# NCCL headers for a build from source: the toolkit's, else the wheel's.
if [ $PREBUILT = 0 ] && ! ls /usr/local/cuda/include/nccl.h /usr/include/nccl.h >/dev/null 2>&1; then
  NCCL_DIR="$WHEELS/nccl"
  if [ -f "$NCCL_DIR/include/nccl.h" ]; then
    for NCCL_LIB in "$NCCL_DIR"/lib/libnccl.so*; do break; done
    CMAKE_ARGS+=(-DNCCL_INCLUDE_DIR="$NCCL_DIR/include" -DNCCL_LIBRARY="$NCCL_LIB")
    echo "nccl: $NCCL_LIB" >>"$SUMMARY"
  fi
fi
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >>"$OUT/machine.txt"

# ---------------------------------------------------------------- build (or the packed programs)
if [ $PREBUILT = 1 ]; then
  BIN=$GPURUN
  RDT=$BIN/rdt
  missing=$(ldd "$RDT" "$BIN"/test_* 2>&1 | grep -c 'not found')
  ldd "$RDT" >>"$OUT/machine.txt" 2>&1
  if [ "$missing" = 0 ]; then row packed ok - "programs of commit $(cat $BIN/commit 2>/dev/null)"; else row packed FAIL - "$missing libraries not found (machine.txt)"; fi
else
  BUILD=build-gpu
  step build 300 "$OUT/build.log" cmake -S . -B "$BUILD" "${CMAKE_ARGS[@]}"
  if [ "$RC" = 0 ]; then
    targets=(rdt)
    for t in "${TEST_PROGRAMS[@]}"; do targets+=("${t##*/}"); done
    step build 300 "$OUT/build.log" cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}" -- -k
  fi
  row build "$STEP_STATUS" "$STEP_SECONDS" "$(grep -o 'rdt: cuda=.*' "$OUT/build.log" | head -1)"
  BIN=/tmp/rdt-gpu-bin
  mkdir -p "$BIN"
  for f in rdt "${TEST_PROGRAMS[@]}"; do [ -x "$BUILD/$f" ] && cp "$BUILD/$f" "$BIN/"; done
  RDT=$BIN/rdt
fi

# ---------------------------------------------------------------- tests
# The test programs run directly (not through ctest), with the environment ctest gives them.
export RDT_SOURCE_DIR=$ROOT RDT_BIN=$ROOT/$RDT RDT_TEST_TMP=/tmp/rdt-gpu-tests
[ "${RDT:0:1}" = / ] && RDT_BIN=$RDT
mkdir -p "$RDT_TEST_TMP"
run_test() { # NAME LIMIT PROGRAM
  local name=$1 limit=$2 prog=$BIN/$3
  if [ ! -x "$prog" ]; then row "$name" absent - "$3 not built"; return; fi
  local part=$OUT/test.part
  : >"$part"
  step "$name" "$limit" "$part" "$prog"
  cat "$part" >>"$OUT/tests.log"
  [ "$RC" = 77 ] && STEP_STATUS="SKIPPED"
  row "$name" "$STEP_STATUS" "$STEP_SECONDS" "$(grep -c '^ok ' "$part") groups ok, $(grep -c '^FAIL ' "$part") failed; $(grep -E 'check\(s\) failed' "$part")"
  rm -f "$part"
  if [ "$RC" != 0 ] && [ "$RC" != 77 ] && [ "$3" = test_kernels_cuda_ops ]; then
    # Again with a device sync after every launch, so a faulting kernel is named.
    step "ops (RDT_CUDA_SYNC=1)" 200 "$OUT/tests_sync.log" env RDT_CUDA_SYNC=1 "$prog"
    row "ops, synced" "$STEP_STATUS" "$STEP_SECONDS" "see tests_sync.log"
  fi
}
: >"$OUT/tests.log"
if [ -x "$RDT" ]; then
  run_test "cuda ops vs cpu" 180 test_kernels_cuda_ops
  # the attention groups again with the opt-in attention switches on
  RDT_TEST_ONLY=t_attention,t_attention_paths RDT_CUDA_ATTN_DQ_SPLIT=8 RDT_CUDA_ATTN_WARPS=5 RDT_CUDA_ATTN_PREFETCH=1 \
    run_test "ops attention, switches" 90 test_kernels_cuda_ops
  run_test "predict cuda vs cpu" 120 test_model_predict_cuda
  RDT_CUDA_SKINNY=1 run_test "predict, skinny GEMMs" 120 test_model_predict_cuda
  run_test "train step cuda vs cpu" 120 test_model_train_step_cuda
  run_test "nccl" 90 test_kernels_cuda_nccl
  if [ "${RDT_GPU_CHECK_SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    step memcheck 300 "$OUT/tests.log" compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/test_kernels_cuda_ops"
    row memcheck "$STEP_STATUS" "$STEP_SECONDS" "$(grep -E 'ERROR SUMMARY' "$OUT/tests.log" | tail -1)"
  fi
  # The worst error of each dtype, from the ops test's per-comparison lines.
  awk '/ err [0-9.e+-]+ \(bound/ { for (i = 1; i <= NF; i++) if ($i == "err") { e = $(i + 1); b = $(i + 3); sub(/\)/, "", b); d = $(i - 1); r = e / b; if (r > worst[d]) { worst[d] = r; what[d] = $0 } } }
       END { for (d in worst) printf "worst %s: %.2f of its bound: %s\n", d, worst[d], what[d] }' "$OUT/tests.log" >>"$SUMMARY"
  grep -E 'relative error' "$OUT/tests.log" | grep -E 'cuda (fp32|bf16)|bf16 vs fp32' | sort -t' ' -k1,1 >"$OUT/predict_errors.txt" 2>/dev/null

  # ------------------------------------------------------------ benchmarks
  bench_run() { # NAME LIMIT ARGS...: output to bench.log, and to bench.json when it succeeded
    local name=$1 limit=$2 part="$OUT/bench.part"
    shift 2
    : >"$part"
    step "$name" "$limit" "$part" "$RDT" bench "$@"
    cat "$part" >>"$OUT/bench.log"
    local note="see bench.log"
    [ "$RC" = 0 ] && note=$(grep -oE '"(mfu|mfu_of_gemm_ceiling|median_ms|step_time_s|samples_per_s|achieved_tflops|device_bytes_in_use)": *[0-9.e+-]+' "$part" | head -6 | tr -d '"' | tr '\n' ' ')
    row "$name" "$STEP_STATUS" "$STEP_SECONDS" "$note"
    [ "$RC" = 0 ] && { echo "# $name"; grep -v '^====' "$part"; } >>"$OUT/bench.json"
    rm -f "$part"
  }
  : >"$OUT/bench.log"
  if [ "${RDT_GPU_CHECK_PROFILE:-0}" = 1 ]; then
    # Per-op device times (RDT_KERNEL_PROFILE=1; the table is on stderr).
    profile() { # NAME FILE LIMIT ARGS...
      local name=$1 file=$OUT/$2 limit=$3
      shift 3
      step "$name" "$limit" "$file" env RDT_KERNEL_PROFILE=1 "$RDT" bench "$@"
      row "$name" "$STEP_STATUS" "$STEP_SECONDS" "$(grep -o 'device [0-9.]* ms, host issuing [0-9.]* ms' "$file" | head -1)"
    }
    profile "profile policy 1b b1" profile_policy.txt 60 policy --config configs/base.yaml --device cuda --batch 1 --repeat 2 --warmup 1
    profile "profile train 1b b8" profile_train.txt 90 train --config configs/base.yaml --device cuda --batch 8 --steps 2 --warmup 1
    profile "profile encoders" profile_encoders.txt 60 encoders --device cuda --siglip_layers 27 --images 6 --t5_layers 1 --batch 1 --tokens 32
  fi
  [ "${RDT_GPU_CHECK_BENCH:-1}" = 1 ] || BENCH_SKIP=1
  bench() { [ -z "${BENCH_SKIP:-}" ] && bench_run "$@"; }
  # The default configuration first, then each opt-in switch against it (the
  # A/B comparisons the next decisions need), then the rest.
  P1B=(policy --config configs/base.yaml --device cuda --batch 1 --repeat 10 --warmup 2)
  T1B=(train --config configs/base.yaml --device cuda --batch 8 --steps 5 --warmup 2)
  ENC=(encoders --device cuda --siglip_layers 27 --images 6 --t5_layers 1 --batch 1 --tokens 32)
  bench "bench policy 1b b1" 90 "${P1B[@]}"
  bench "bench train 1b b8" 150 "${T1B[@]}"
  for blocks in 1 2 4; do
    RDT_CUDA_SKINNY=1 RDT_CUDA_SKINNY_BLOCKS=$blocks bench "policy b1 skinny $blocks" 60 "${P1B[@]}"
  done
  for blocks in 4 8 16; do
    RDT_CUDA_ATTN_SPLIT_BLOCKS=$blocks bench "policy b1 attnsplit $blocks" 60 "${P1B[@]}"
  done
  # The long-key attention switches (docs/CUDA.md): the RDT-1B image
  # cross-attention's own forward and backward times (rdt bench kernels, batch
  # 8 and 1) with each switch and all three, then the policy and a training
  # step (RDT_CUDA_ATTN_DQ_SPLIT only changes the backward: training only).
  kbench() { # NAME BATCH: the note is the image cross-attention's forward and backward ms
    [ -n "${BENCH_SKIP:-}" ] && return
    local name=$1 part="$OUT/bench.part" note="see bench.log"
    : >"$part"
    step "$name" 60 "$part" "$RDT" bench kernels --backend cuda --model rdt-1b --batch "$2" --min_time 0.1
    cat "$part" >>"$OUT/bench.log"
    [ "$RC" = 0 ] && note="image attention $(tr -d ' \n' <"$part" | grep -oE '"name":"crossimage"[^}]*' |
      grep -oE '(forward|backward)_ms":[0-9.e+-]+' | tr -d '"' | tr '\n' ' ')"
    row "$name" "$STEP_STATUS" "$STEP_SECONDS" "$note"
    [ "$RC" = 0 ] && { echo "# $name"; grep -v '^====' "$part"; } >>"$OUT/bench.json"
    rm -f "$part"
  }
  for bb in 8 1; do
    kbench "kernels b$bb" $bb
    RDT_CUDA_ATTN_DQ_SPLIT=8 kbench "kernels b$bb attn-dqsplit 8" $bb
    RDT_CUDA_ATTN_DQ_SPLIT=16 kbench "kernels b$bb attn-dqsplit 16" $bb
    RDT_CUDA_ATTN_WARPS=5 kbench "kernels b$bb attn-warps 5" $bb
    RDT_CUDA_ATTN_PREFETCH=1 kbench "kernels b$bb attn-prefetch" $bb
    RDT_CUDA_ATTN_DQ_SPLIT=8 RDT_CUDA_ATTN_WARPS=5 RDT_CUDA_ATTN_PREFETCH=1 kbench "kernels b$bb attn-all" $bb
  done
  RDT_CUDA_ATTN_DQ_SPLIT=8 RDT_CUDA_ATTN_WARPS=5 RDT_CUDA_ATTN_PREFETCH=1 bench "train 1b b8 attn-all" 90 "${T1B[@]}"
  RDT_CUDA_ATTN_WARPS=5 RDT_CUDA_ATTN_PREFETCH=1 bench "policy b1 attn-all" 60 "${P1B[@]}"
  RDT_CUDA_ATTN_DQ_SPLIT=8 bench "train 1b b8 attn-dqsplit 8" 90 "${T1B[@]}"
  RDT_CUDA_ATTN_WARPS=5 bench "train 1b b8 attn-warps 5" 90 "${T1B[@]}"
  RDT_CUDA_ATTN_PREFETCH=1 bench "train 1b b8 attn-prefetch" 90 "${T1B[@]}"
  RDT_CUDA_ATTN_WARPS=5 bench "policy b1 attn-warps 5" 60 "${P1B[@]}"
  RDT_CUDA_ATTN_PREFETCH=1 bench "policy b1 attn-prefetch" 60 "${P1B[@]}"
  RDT_CUDA_GELU_EPILOGUE=1 bench "policy b1 gelu-epilogue" 60 "${P1B[@]}"
  RDT_CUDA_GELU_EPILOGUE=1 bench "train 1b b8 gelu-epilogue" 90 "${T1B[@]}"
  # SigLIP's head dim 72 on the tensor cores (default since 2026-11-28) against the CUDA cores
  bench "bench encoders" 90 "${ENC[@]}"
  RDT_CUDA_ATTN_TC=0 bench "bench encoders attn-cc" 90 "${ENC[@]}"
  # the image tokens uploaded from host memory every step (the bench's way before 2026-11-28)
  bench "train 1b b8 host tokens" 90 "${T1B[@]}" --host_tokens
  bench "bench train 1b b8 ckpt" 120 train --config configs/base.yaml --device cuda --batch 8 --steps 3 --warmup 1 --gradient_checkpointing
  # one rank's memory under ZeRO-1 over 2 and 4 GPUs (the 24 GB question; the all-gather is not made)
  for zw in 2 4; do
    bench "train 1b b8 ckpt zero1/$zw" 90 train --config configs/base.yaml --device cuda --batch 8 --steps 2 --warmup 1 --gradient_checkpointing --zero_world $zw
  done
  RDT_CUDA_GRAPH=0 bench "bench policy 1b b1 nograph" 60 "${P1B[@]}"
  bench "bench kernels" 90 kernels --backend cuda
  bench "bench policy 1b b16" 60 policy --config configs/base.yaml --device cuda --batch 16
  bench "bench policy 170m b1" 60 policy --config configs/rdt-170m.yaml --device cuda --batch 1 --repeat 10 --warmup 2
fi

# ---------------------------------------------------------------- table
TABLE=$OUT/table.txt
{
  echo
  echo "rdt gpu_check on ${GPU:-unknown GPU} ($(date -u '+%Y-%m-%d'), commit $(cat "$GPURUN/commit" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  printf '%-22s %-10s %7s  %s\n' step status seconds note
  for r in "${ROWS[@]}"; do echo "$r"; done
  cat "$SUMMARY"
} >"$TABLE"
cat "$TABLE"
