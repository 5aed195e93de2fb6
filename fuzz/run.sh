#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++ -fsanitize=fuzzer,address,undefined) and runs each for a
# bounded time from its seed corpus fuzz/corpus/<target>/. Targets whose parser source is not in the
# tree yet print SKIP. New corpus entries go to a scratch directory (the repo corpus is read only);
# a crash, leak, UBSan report or unexpected exception leaves its input in $FUZZ_OUT and fails the run.
# Env: FUZZ_SECONDS (20 per target), FUZZ_TARGETS (all), FUZZ_BUILD (build/fuzz), FUZZ_OUT (build/fuzz/findings),
#      CXX_FUZZ (clang++), FUZZ_JOBS (parallel compile jobs, 2).
# Reproduce a finding: build/fuzz/fuzz_<target> build/fuzz/findings/<target>/crash-...
set -u
cd "$(dirname "$0")/.."
SECONDS_PER=${FUZZ_SECONDS:-20}
B=${FUZZ_BUILD:-build/fuzz}
OUTD=${FUZZ_OUT:-$B/findings}
CXXF=${CXX_FUZZ:-clang++}
JOBS=${FUZZ_JOBS:-2}
command -v "$CXXF" >/dev/null || { echo "FAIL fuzz: $CXXF not found (make deps installs clang)"; exit 1; }

# target -> the parser sources it needs (the first one decides whether the target exists yet).
declare -A SRCS=(
  [model_csv]="src/model/model.cpp src/core/dtype.cpp"
  [perf_csv]="src/core/csv_reports.cpp src/core/rank_hosts.cpp src/core/run_files.cpp src/core/thresholds.cpp src/core/units.cpp src/core/dtype.cpp"
  [checks_csv]="src/core/csv_reports.cpp src/core/rank_hosts.cpp src/core/run_files.cpp src/core/thresholds.cpp src/core/units.cpp src/core/dtype.cpp"
  [thresholds]="src/core/csv_reports.cpp src/core/rank_hosts.cpp src/core/run_files.cpp src/core/thresholds.cpp src/core/units.cpp src/core/dtype.cpp"
  [ckpt_index]="src/ckpt/index_format.cpp src/ckpt/shapes.cpp src/ckpt/sharded_piece.cpp src/core/dtype.cpp"
  [cli_values]="src/core/cli.cpp src/core/units.cpp src/core/verify.cpp src/core/dtype.cpp"
)
ORDER=(model_csv perf_csv checks_csv thresholds ckpt_index cli_values)
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ORDER[*]}}"
FLAGS=(-std=c++17 -g -O1 -Isrc -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined)
mkdir -p "$B/obj" "$OUTD"

# Compile each needed source once (instrumented for coverage, no libFuzzer main).
declare -A NEED=()
for t in "${TARGETS[@]}"; do
  [ -n "${SRCS[$t]:-}" ] || { echo "FAIL fuzz $t: unknown target"; exit 1; }
  first=${SRCS[$t]%% *}
  [ -e "$first" ] || continue
  for s in ${SRCS[$t]}; do NEED[$s]=1; done
done
obj_of() { echo "$B/obj/$(echo "$1" | tr / _).o"; }
build_obj() {
  local s=$1 o
  o=$(obj_of "$1")
  if [ ! -e "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find src -name '*.h' -newer "$o" 2>/dev/null | head -1)" ]; then
    "$CXXF" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$s" -o "$o" 2>"$o.log" ||
      { echo "FAIL fuzz: $s does not build: $(grep -m1 error "$o.log")"; return 1; }
  fi
}
pids=()
for s in "${!NEED[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 0.2; done
  build_obj "$s" &
  pids+=($!)
done
build_ok=1
for p in "${pids[@]}"; do wait "$p" || build_ok=0; done
[ $build_ok = 1 ] || exit 1

passed=0 failed=0
for t in "${TARGETS[@]}"; do
  first=${SRCS[$t]%% *}
  if [ ! -e "$first" ]; then echo "SKIP fuzz $t: $first not in the tree yet"; continue; fi
  exe=$B/fuzz_$t
  objs=()
  for s in ${SRCS[$t]}; do objs+=("$(obj_of "$s")"); done
  if ! "$CXXF" "${FLAGS[@]}" -fsanitize=fuzzer "fuzz/fuzz_$t.cpp" "${objs[@]}" -lxxhash -o "$exe" 2>"$B/$t.build.log"; then
    echo "FAIL fuzz $t: does not build: $(grep -m1 error "$B/$t.build.log")"; failed=$((failed + 1)); continue
  fi
  scratch=$(mktemp -d)
  mkdir -p "$OUTD/$t"
  # detect_leaks stays on here (no MPI in these processes).
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$exe" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$OUTD/$t/" "$scratch" "fuzz/corpus/$t" >"$B/$t.log" 2>&1
  rc=$?
  runs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$B/$t.log" | tail -1)
  cov=$(grep -oP '^#[0-9]+\s+DONE\s+cov: \K[0-9]+' "$B/$t.log" | tail -1)
  rm -rf "$scratch"
  if [ $rc = 0 ]; then
    echo "PASS fuzz $t: ${runs:-?} inputs in ${SECONDS_PER}s, coverage ${cov:-?}, no findings"; passed=$((passed + 1))
  else
    echo "FAIL fuzz $t: finding (rc=$rc): $(grep -m1 -E 'ERROR: |runtime error|unexpected exception|deadly signal' "$B/$t.log")"
    ls "$OUTD/$t"/ 2>/dev/null | sed "s|^|    artifact: $OUTD/$t/|"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed = 0 ]
