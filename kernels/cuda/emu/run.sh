#!/usr/bin/env bash
# kernels/cuda/emu/run.sh [BUILD_DIR]: run tests/kernels/cuda_ops_test.c with
# the CUDA backend's real sources compiled for the host against the emulated
# CUDA runtime and cuBLASLt beside this file, comparing with the CPU backend.
#
# A verification tool for machines without a GPU: it checks the kernels'
# indexing, tiling, masking, barriers, the GEMM layout mapping and the host
# code, not the GPU's arithmetic, memory model or speed, nor what cuBLASLt
# really supports.  BUILD_DIR (default build-cuda) must be configured with nvcc
# present (RDT_HAVE_CUDA=1).  Slow: about 15 minutes on 2 cores.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build-cuda}" && pwd)
WORK="$BUILD/cuda-emu"
grep -q '#define RDT_HAVE_CUDA 1' "$BUILD/rdt_build.h" || { echo "$BUILD: not configured with CUDA" >&2; exit 2; }
cmake --build "$BUILD" --target rdt_kernels rdt_core -j2 >/dev/null
mkdir -p "$WORK/src/kernels/cuda"
CXX=(g++ -std=c++17 -O2 -g -w -I"$HERE" -I"$WORK/src" -I"$ROOT" -I"$BUILD")
python3 "$HERE/launches.py" "$ROOT/kernels/cuda/kcuda.cuh" "$WORK/src/kernels/cuda/kcuda.cuh"
objs=()
for f in "$ROOT"/kernels/cuda/*.cu; do
  name=$(basename "$f" .cu)
  [ "$name" = comm_nccl ] && continue   # NCCL is not emulated
  python3 "$HERE/launches.py" "$f" "$WORK/src/$name.cpp"
  "${CXX[@]}" -c "$WORK/src/$name.cpp" -o "$WORK/$name.o"
  objs+=("$WORK/$name.o")
done
"${CXX[@]}" -c "$HERE/emu.cpp" -o "$WORK/emu.o"
gcc -std=gnu11 -O2 -g -I"$ROOT" -I"$BUILD" -I"$ROOT/tests" -c "$ROOT/tests/kernels/cuda_ops_test.c" -o "$WORK/test.o"
read -ra libs <<<"$(pkg-config --libs openblas 2>/dev/null || pkg-config --libs blas) $(pkg-config --libs yaml-0.1)"
g++ -o "$WORK/cuda_ops_test_emu" "$WORK/test.o" "${objs[@]}" "$WORK/emu.o" "$BUILD/kernels/librdt_kernels.a" \
  "$BUILD/core/librdt_core.a" "${libs[@]}" -lpthread -lm
echo "running $WORK/cuda_ops_test_emu (log: $WORK/log.txt)" >&2
OPENBLAS_NUM_THREADS=1 timeout 3600 "$WORK/cuda_ops_test_emu" 2>&1 | tee "$WORK/log.txt" | grep -E '^(ok|FAIL)|failed|-- '
