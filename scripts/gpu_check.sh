#!/usr/bin/env bash
# scripts/gpu_check.sh: the one prepared run for a lent GPU machine.
#
# Builds rdt for sm_90 (H100/H200), runs the CUDA tests (ctest label "cuda":
# every CUDA op against the CPU op, the NCCL path), then the GPU benchmarks
# that exist, and prints a short table last.  Logs go to $OUT (the device
# tool's folder; out/gpu-check when unset): at most 8 files, as the tool
# brings back no more.  Each step has its own time limit; the whole run is
# meant to finish in about 8 minutes on a 16-core machine.
#
#   scripts/gpu_check.sh --fetch-deps   here, once, with network: downloads the
#                                       .deb packages the build needs that the GPU
#                                       image may lack (libyaml, OpenBLAS, pkgconf)
#                                       into .gpudeps/ (git-ignored locally)
#   scripts/gpu_check.sh                there: device run with carry [".gpudeps"]
#
# Environment: RDT_GPU_CHECK_SANITIZE=1 also runs the ops test under
# compute-sanitizer (memcheck; slow, Firecracker machines only).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DEBS=(libyaml-0-2 libyaml-dev libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libpkgconf3 pkgconf-bin)

# ---------------------------------------------------------------- --fetch-deps (run here)
if [ "${1:-}" = "--fetch-deps" ]; then
  set -e
  mkdir -p .gpudeps
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qx '/.gpudeps/' "$exclude" 2>/dev/null || echo '/.gpudeps/' >>"$exclude"
  (cd .gpudeps && apt-get download "${DEBS[@]}")
  du -sh .gpudeps
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
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local t0 status
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
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DRDT_MUJOCO=OFF -DRDT_FFMPEG=OFF)
command -v ninja >/dev/null && CMAKE_ARGS+=(-G Ninja)
have_pc() { command -v pkg-config >/dev/null && pkg-config --exists "$@"; }
if ! have_pc yaml-0.1 || ! { have_pc openblas || have_pc blas; }; then
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
# NCCL: the toolkit's, else the one inside the Python wheel nvidia-nccl.
if ! ls /usr/local/cuda/include/nccl.h /usr/include/nccl.h >/dev/null 2>&1; then
  NCCL_DIR=$(python3 -c 'import importlib.util as u; print(list(u.find_spec("nvidia.nccl").submodule_search_locations)[0])' 2>/dev/null)
  if [ -n "$NCCL_DIR" ] && [ -f "$NCCL_DIR/include/nccl.h" ]; then
    for NCCL_LIB in "$NCCL_DIR"/lib/libnccl.so*; do break; done
    CMAKE_ARGS+=(-DNCCL_INCLUDE_DIR="$NCCL_DIR/include" -DNCCL_LIBRARY="$NCCL_LIB")
    export LD_LIBRARY_PATH="$NCCL_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "nccl: $NCCL_LIB" >>"$SUMMARY"
  fi
fi

# ---------------------------------------------------------------- build
BUILD=build-gpu
step build 300 "$OUT/build.log" cmake -S . -B "$BUILD" "${CMAKE_ARGS[@]}"
if [ "$RC" = 0 ]; then
  step build 300 "$OUT/build.log" cmake --build "$BUILD" -j"$(nproc)" --target rdt test_kernels_cuda_ops
  if grep -q 'nccl=ON' "$OUT/build.log"; then
    cmake --build "$BUILD" -j"$(nproc)" --target test_kernels_cuda_nccl >>"$OUT/build.log" 2>&1
  fi
fi
row build "$STEP_STATUS" "$STEP_SECONDS" "$(grep -o 'rdt: cuda=.*' "$OUT/build.log" | head -1)"

# ---------------------------------------------------------------- tests
if [ -x "$BUILD/rdt" ]; then
  step ctest 240 "$OUT/tests.log" ctest --test-dir "$BUILD" -L cuda -V --timeout 200
  row "ctest -L cuda" "$STEP_STATUS" "$STEP_SECONDS" "$(grep -E 'tests passed|tests failed' "$OUT/tests.log" | tail -1)"
  if [ "$RC" != 0 ] && [ -x "$BUILD/tests/kernels/test_kernels_cuda_ops" ]; then
    # Again with a device sync after every launch, so a faulting kernel is named.
    step "ops (RDT_CUDA_SYNC=1)" 200 "$OUT/tests.log" env RDT_CUDA_SYNC=1 "$BUILD/tests/kernels/test_kernels_cuda_ops"
    row "ops, synced" "$STEP_STATUS" "$STEP_SECONDS" "$(grep -c 'CHECK' "$OUT/tests.log") CHECK lines in tests.log"
  fi
  if [ "${RDT_GPU_CHECK_SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    step memcheck 300 "$OUT/tests.log" compute-sanitizer --tool memcheck --error-exitcode 3 \
      "$BUILD/tests/kernels/test_kernels_cuda_ops"
    row memcheck "$STEP_STATUS" "$STEP_SECONDS" "$(grep -E 'ERROR SUMMARY' "$OUT/tests.log" | tail -1)"
  fi
  # The worst error of each dtype, from the ops test's per-comparison lines.
  awk '/ err [0-9.e+-]+ \(bound/ { for (i = 1; i <= NF; i++) if ($i == "err") { e = $(i + 1); b = $(i + 3); sub(/\)/, "", b); d = $(i - 1); r = e / b; if (r > worst[d]) { worst[d] = r; what[d] = $0 } } }
       END { for (d in worst) printf "worst %s: %.2f of its bound: %s\n", d, worst[d], what[d] }' "$OUT/tests.log" >>"$SUMMARY"

  # ------------------------------------------------------------ benchmarks
  bench() { # NAME LIMIT ARGS...: output to bench.log, and to bench.json when it succeeded
    local name=$1 limit=$2 part="$OUT/bench.part"
    shift 2
    : >"$part"
    step "$name" "$limit" "$part" "$BUILD/rdt" bench "$@"
    cat "$part" >>"$OUT/bench.log"
    if [ "$RC" != 0 ] && grep -q 'not implemented' "$part"; then
      row "$name" absent - "not implemented yet"
    else
      row "$name" "$STEP_STATUS" "$STEP_SECONDS" "JSON in bench.json"
      [ "$RC" = 0 ] && { echo "# $name"; grep -v '^====' "$part"; } >>"$OUT/bench.json"
    fi
    rm -f "$part"
  }
  : >"$OUT/bench.log"
  bench "bench kernels" 150 kernels --backend cuda
  bench "bench policy b1" 120 policy --config configs/base.yaml --device cuda --batch 1
  bench "bench policy b16" 120 policy --config configs/base.yaml --device cuda --batch 16
  bench "bench train 1b b8" 180 train --config configs/base.yaml --device cuda --train_batch_size 8
fi

# ---------------------------------------------------------------- table
{
  echo
  echo "rdt gpu_check on ${GPU:-unknown GPU} ($(date -u '+%Y-%m-%d'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  printf '%-22s %-10s %7s  %s\n' step status seconds note
  for r in "${ROWS[@]}"; do echo "$r"; done
  cat "$SUMMARY"
} | tee -a "$SUMMARY"
