#!/usr/bin/env bash
# scripts/test.sh: install what is needed, build, and run the whole test suite.
# Tests that need LIBERO data look at RDT_LIBERO_ROOT / RDT_ROBOSUITE_ASSETS,
# else at ../shared/libero beside this checkout (the development copy).
set -euo pipefail
# Relative data paths count from where the script was started (it changes
# directory, and ctest runs each test in its own).
for v in RDT_LIBERO_ROOT RDT_ROBOSUITE_ASSETS; do
  if [ -n "${!v:-}" ] && [ -d "${!v}" ]; then export "$v=$(cd "${!v}" && pwd)"; fi
done
cd "$(dirname "$0")/.."
scripts/setup.sh build
if [ -z "${RDT_LIBERO_ROOT:-}" ] && [ -d ../shared/libero/libero ]; then
  export RDT_LIBERO_ROOT=$(cd ../shared/libero/libero && pwd)
  export RDT_ROBOSUITE_ASSETS=$(cd ../shared/libero/robosuite/models/assets && pwd)
fi
if [ -z "${RDT_LIBERO_ROOT:-}" ]; then
  echo "test: LIBERO data not found: the simulator tests will be skipped." >&2
  echo "      Set RDT_LIBERO_ROOT=<LIBERO package folder holding assets/ bddl_files/ init_files/>" >&2
  echo "      and RDT_ROBOSUITE_ASSETS=<robosuite/models/assets>." >&2
fi
cd build
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" "$@"
