#!/usr/bin/env bash
# kernels/cuda/emu/rdt.sh [BUILD_DIR]: the model-level CUDA tests without a GPU.
#
# Links the rdt program and the model's CUDA test programs
# (test_model_predict_cuda, test_model_train_step_cuda) against the CUDA
# backend's real sources compiled for the host with the emulated CUDA runtime
# and cuBLASLt beside this file (as run.sh does for the ops test), then runs
# the two tests with RDT_BIN pointing at the emulated rdt.  What it checks and
# does not: see run.sh (indexing, barriers, host code, the model's use of the
# backend; not the GPU's arithmetic order, its memory model or speed).  The
# emulation refuses CUDA-graph capture, so the predict test's graph group is
# left out (RDT_TEST_ONLY).  NCCL is not emulated (a stub that refuses).
# BUILD_DIR (default build-gpu) must be configured with nvcc present.  Logs:
# BUILD_DIR/cuda-emu-rdt/*.txt.  Environment passes through (RDT_CUDA_SKINNY=1 ...).
set -euo pipefail
source "$(dirname "$0")/common.sh"
emu_setup "${1:-$(dirname "$0")/../../../build-gpu}"
WORK="$BUILD/cuda-emu-rdt"
cmake --build "$BUILD" --target rdt test_model_predict_cuda test_model_train_step_cuda -j2 >/dev/null
emu_compile
objs=("${EMU_OBJS[@]}")
# NCCL refuses, so a build with NCCL links (rdt train never reaches it in a world of one).
cat >"$WORK/nccl_stub.cpp" <<'EOF'
#include <stddef.h>
extern "C" {
#include "core/error.h"
#include "kernels/cuda/comm_nccl.h"
int rdt_nccl_new_id(char *) { return rdt_fail("nccl: not available in the CUDA emulation"); }
rdt_nccl *rdt_nccl_open(k_backend *, const char *, int, int, double) { rdt_fail("nccl: not emulated"); return NULL; }
int rdt_nccl_rank(const rdt_nccl *) { return 0; }
int rdt_nccl_size(const rdt_nccl *) { return 1; }
void rdt_nccl_set_bucket(rdt_nccl *, size_t) {}
int rdt_nccl_allreduce_start(rdt_nccl *, float *, size_t, int) { return -1; }
int rdt_nccl_allgather_start(rdt_nccl *, float *, size_t, size_t) { return -1; }
int rdt_nccl_wait(rdt_nccl *) { return -1; }
int rdt_nccl_allreduce(rdt_nccl *, float *, size_t, int) { return -1; }
void rdt_nccl_close(rdt_nccl *) {}
}
EOF
"${EMU_CXX[@]}" -c "$WORK/nccl_stub.cpp" -o "$WORK/nccl_stub.o"
objs+=("$WORK/nccl_stub.o")
L=(-Wl,--start-group "$BUILD"/train/librdt_train.a "$BUILD"/model/librdt_model.a "$BUILD"/kernels/librdt_kernels.a
  "$BUILD"/core/librdt_core.a -Wl,--end-group "${EMU_LIBS[@]}")
g++ -o "$WORK/rdt" "$BUILD/cli/CMakeFiles/rdt.dir/main.c.o" "${objs[@]}" "${L[@]}"
g++ -o "$WORK/test_predict" "$BUILD/tests/model/CMakeFiles/test_model_predict_cuda.dir/predict_test.c.o" "${objs[@]}" "${L[@]}"
g++ -o "$WORK/test_train_step" "$BUILD/tests/model/CMakeFiles/test_model_train_step_cuda.dir/train_step_cuda_test.c.o" \
  "${objs[@]}" "${L[@]}"
export RDT_BIN="$WORK/rdt" RDT_SOURCE_DIR="$ROOT" OPENBLAS_NUM_THREADS=1
status=0
for t in predict train_step; do
  echo "running $WORK/test_$t (log: $WORK/$t.txt)" >&2
  RDT_TEST_ONLY=${RDT_TEST_ONLY:-t_cuda,t_train} timeout 3600 "$WORK/test_$t" >"$WORK/$t.txt" 2>&1 || status=1
  grep -E '^(ok|FAIL)|check\(s\) failed|relative error|worst' "$WORK/$t.txt" || true
done
exit $status
