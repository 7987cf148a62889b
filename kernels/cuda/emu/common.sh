# kernels/cuda/emu/common.sh: sourced by run.sh and rdt.sh.
#
# emu_setup [BUILD_DIR] sets HERE, ROOT and BUILD (default build-cuda), checks
# that BUILD is configured with CUDA, and compiles for the host, into $WORK
# (set it first): the CUDA backend's sources (every kernels/cuda/*.cu but the
# NCCL module) with their launches rewritten as calls, and the emulated
# runtime.  Sets EMU_OBJS (those objects) and EMU_LIBS (OpenBLAS, libyaml,
# threads, libm) for the link.
emu_setup() {
  HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  ROOT=$(cd "$HERE/../../.." && pwd)
  BUILD=$(cd "${1:-$ROOT/build-cuda}" && pwd)
  grep -q '#define RDT_HAVE_CUDA 1' "$BUILD/rdt_build.h" || { echo "$BUILD: not configured with CUDA" >&2; exit 2; }
}

emu_compile() {
  mkdir -p "$WORK/src/kernels/cuda"
  EMU_CXX=(g++ -std=c++17 -O2 -g -w -I"$HERE" -I"$WORK/src" -I"$ROOT" -I"$BUILD")
  python3 "$HERE/launches.py" "$ROOT/kernels/cuda/kcuda.cuh" "$WORK/src/kernels/cuda/kcuda.cuh"
  EMU_OBJS=()
  local f name
  for f in "$ROOT"/kernels/cuda/*.cu; do
    name=$(basename "$f" .cu)
    [ "$name" = comm_nccl ] && continue   # NCCL is not emulated
    python3 "$HERE/launches.py" "$f" "$WORK/src/$name.cpp"
    "${EMU_CXX[@]}" -c "$WORK/src/$name.cpp" -o "$WORK/$name.o"
    EMU_OBJS+=("$WORK/$name.o")
  done
  "${EMU_CXX[@]}" -c "$HERE/emu.cpp" -o "$WORK/emu.o"
  EMU_OBJS+=("$WORK/emu.o")
  read -ra EMU_LIBS <<<"$(pkg-config --libs openblas 2>/dev/null || pkg-config --libs blas) $(pkg-config --libs yaml-0.1) -lpthread -lm"
}
