#!/bin/sh
# scripts/fuzz.sh [SECONDS]: build the libFuzzer targets with clang in build-fuzz/
# and run each for SECONDS (default 300).  Exits non-zero if any target finds a
# crash, leak, sanitizer report or timeout; the failing input is kept in
# build-fuzz/artifacts/.  Targets: fuzz_safetensors, fuzz_config, fuzz_torchzip
# (RDT_FUZZ_TARGETS="fuzz_config" runs a subset).  See docs/FUZZING.md.
set -eu
seconds=${1:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RDT_FUZZ_BUILD:-$root/build-fuzz}
targets=${RDT_FUZZ_TARGETS:-"fuzz_safetensors fuzz_config fuzz_torchzip"}

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (Debian: apt-get install clang)" >&2; exit 2; }
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRDT_FUZZ=ON -DRDT_CUDA=OFF -DRDT_MUJOCO=OFF -DRDT_FFMPEG=OFF -DRDT_MPI=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 2; }
# shellcheck disable=SC2086
cmake --build "$build" -j2 --target $targets

# Seeds: small valid inputs for each target, plus the project's YAML configs.
seeds=$build/seeds
mkdir -p "$seeds/fuzz_safetensors" "$seeds/fuzz_config" "$seeds/fuzz_torchzip" "$build/artifacts"
h='{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}'
len=$(printf '%s' "$h" | wc -c)
{ printf "$(printf '\\%03o' $((len % 256)) $((len / 256)) 0 0 0 0 0 0)"; printf '%s' "$h"; printf '0123456789ab'; } \
  >"$seeds/fuzz_safetensors/two_tensors"
cp "$root"/configs/*.yaml "$seeds/fuzz_config/"
cp "$root"/fuzz/corpus/*.pkl.zip "$seeds/fuzz_torchzip/"
libero=${RDT_LIBERO_ROOT:-$root/../shared/libero/libero}
init=$libero/init_files/libero_90/KITCHEN_SCENE1_open_the_bottom_drawer_of_the_cabinet.pruned_init
[ -f "$init" ] && cp "$init" "$seeds/fuzz_torchzip/"

status=0
for t in $targets; do
  corpus=$build/corpus/$t
  mkdir -p "$corpus"
  dict=
  [ -f "$root/fuzz/$t.dict" ] && dict="-dict=$root/fuzz/$t.dict"
  echo "== $t for ${seconds}s"
  # shellcheck disable=SC2086
  if ! "$build/fuzz/$t" "$corpus" "$seeds/$t" $dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" >"$build/$t.log" 2>&1; then
    echo "fuzz.sh: $t FAILED; see $build/$t.log and $build/artifacts/" >&2
    tail -40 "$build/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/$t.log" | sed "s/^/  $t /"
    echo "  corpus: $(ls "$corpus" | wc -l) inputs"
  fi
done
exit $status
