#!/usr/bin/env bash
# CI hook: `make test` built with AddressSanitizer + UndefinedBehaviorSanitizer, in a build directory
# of its own (the normal build and bin/ stay untouched), then a scan of the sanitizer logs. Passes only
# when make test passes AND no sanitizer wrote a report (a report in a run whose exit code a test
# expected, e.g. 1 or 2, would otherwise go unnoticed). Usage: bash scripts/ci_sanitize.sh
# Env: SAN_BUILD (build/san), SAN_SKIP (integration scripts left to the plain make test, see below),
# plus anything make test takes (TEST_FILTER=...).
#
# What runs under the sanitizers: the unit tests and every suite's own integration script (they
# inject faults into each suite and run the tools over its CSVs). Left to the plain make test, to keep
# CI well inside its time limit: the host-only build (the same sources without CUDA), and the scripts
# that re-run those binaries under other launchers or fault layers (fabric, faults, multinode, slurm,
# pmpi_selftest, csvq) and the benchmark programs' smoke test (bench); the parsers they feed bad
# input to are fuzzed with leaks on (make fuzz).
#
# ASAN_OPTIONS, and why:
#   detect_leaks=0        OpenMPI, PMIx, hwloc and UCX keep allocations until exit by design (and
#                         MPI_Abort/SIGKILL paths never free); LeakSanitizer would flag every run.
#                         Leaks in dtbench's own parsers are covered by the fuzz targets (leaks on).
#   protect_shadow_gap=0  the CUDA runtime maps memory inside ASan's shadow gap; without it the CUDA
#                         build cannot even ask for a device (cudaGetDeviceCount fails).
#   log_path              reports go to files that this script scans after the run.
#   exitcode=86           a report never masquerades as dtbench's own exit codes (1 = check failed).
# UCX_MEM_MALLOC_HOOKS=no / UCX_MEM_MMAP_HOOK_MODE=none: UCX's allocator hooks patch malloc/mmap
# under ASan's interceptors; turning them off keeps ASan in charge (UCX then cannot cache
# registrations, which only costs speed).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${SAN_BUILD:-build/san}
LOGS=$B/sanitizer-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
LOGS=$(cd "$LOGS" && pwd)
export ASAN_OPTIONS="detect_leaks=0:protect_shadow_gap=0:exitcode=86:log_path=$LOGS/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$LOGS/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export UCX_MEM_MALLOC_HOOKS=no UCX_MEM_MMAP_HOOK_MODE=none
SAN_SKIP=${SAN_SKIP-fabric faults multinode slurm pmpi_selftest csvq bench}
make test SANITIZE=address,undefined BUILD="$B" BIN="$B/bin" HOST_ONLY=0 TEST_SKIP="$SAN_SKIP"
rc=$?
reports=$(grep -l -E "ERROR: AddressSanitizer|runtime error:" "$LOGS"/* 2>/dev/null)
if [ -n "$reports" ]; then
  echo "sanitizer reports ($(echo "$reports" | wc -l) processes):"
  for f in $reports; do
    echo "== $f"
    grep -m1 -E "ERROR: AddressSanitizer|runtime error:" "$f"
    grep -m4 -E "^ +#[0-9]+ .* (src|suites|tools|kernels)/" "$f"
  done
  rc=1
fi
[ $rc = 0 ] && echo "ci_sanitize: PASS (make test under address,undefined; no sanitizer reports)" ||
  echo "ci_sanitize: FAIL"
exit $rc
