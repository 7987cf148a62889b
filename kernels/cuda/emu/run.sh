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
source "$(dirname "$0")/common.sh"
emu_setup "${1:-}"
WORK="$BUILD/cuda-emu"
cmake --build "$BUILD" --target rdt_kernels rdt_core -j2 >/dev/null
emu_compile
gcc -std=gnu11 -O2 -g -I"$ROOT" -I"$BUILD" -I"$ROOT/tests" -c "$ROOT/tests/kernels/cuda_ops_test.c" -o "$WORK/test.o"
g++ -o "$WORK/cuda_ops_test_emu" "$WORK/test.o" "${EMU_OBJS[@]}" "$BUILD/kernels/librdt_kernels.a" \
  "$BUILD/core/librdt_core.a" "${EMU_LIBS[@]}"
echo "running $WORK/cuda_ops_test_emu (log: $WORK/log.txt)" >&2
OPENBLAS_NUM_THREADS=1 timeout 3600 "$WORK/cuda_ops_test_emu" 2>&1 | tee "$WORK/log.txt" | grep -E '^(ok|FAIL)|failed|-- '
