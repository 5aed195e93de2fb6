#!/usr/bin/env bash
# Runs every test: GoogleTest unit tests, then each tests/integration/*.sh. Ends with the line
# "N passed, N failed" and exits non-zero when anything failed.
# Env: TEST_FILTER=SUBSTR runs only the scripts whose path contains it; TEST_SKIP="A B" skips those
# whose path contains any of the words (the sanitizer pass in CI uses it).
set -u
cd "$(dirname "$0")/.."
OBJ=${OBJ:?} BIN=${BIN:-bin}
export BIN HOST_ONLY_BIN=${HOST_ONLY_BIN:-} USE_CUDA=${USE_CUDA:-0}
passed=0 failed=0
log=$(mktemp)

echo "== unit tests ($OBJ/unit_tests)"
"$OBJ/unit_tests" --gtest_brief=1 >"$log" 2>&1
u_rc=$?
grep -E "^\[  (FAILED|PASSED) |FAILED TEST|Failure" "$log" | head -50
# --gtest_brief prints one "[  FAILED  ] Suite.Test (N ms)" line per failed test and no failure
# count, so the failures are counted from those lines; the exit status catches a crash.
u_pass=$(grep -oP '^\[  PASSED  \] \K[0-9]+(?= test)' "$log" | tail -1)
u_fail=$(grep -cP '^\[  FAILED  \] \S+\.\S+ \(' "$log")
if [ -z "$u_pass" ] && [ "$u_fail" -eq 0 ]; then
  echo "FAIL unit_tests: did not run (exit $u_rc)"; failed=$((failed + 1))
else
  [ "$u_rc" -ne 0 ] && [ "$u_fail" -eq 0 ] && { echo "FAIL unit_tests: exit $u_rc"; u_fail=1; }
  passed=$((passed + ${u_pass:-0})); failed=$((failed + u_fail))
fi

for t in tests/integration/*.sh; do
  [ -n "${TEST_FILTER:-}" ] && [[ "$t" != *"$TEST_FILTER"* ]] && continue
  skip=0
  for s in ${TEST_SKIP:-}; do [[ "$t" == *"$s"* ]] && skip=1; done
  [ $skip = 1 ] && { echo "== $t: skipped (TEST_SKIP)"; continue; }
  echo "== $t"
  start=$SECONDS
  bash "$t" 2>&1 | tee "$log" | grep -E "^(PASS|FAIL|SKIP) "
  p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
  [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && ! grep -q '^SKIP ' "$log" && { echo "FAIL $t: ran no test"; f=1; }
  passed=$((passed + p)); failed=$((failed + f))
  echo "   ($((SECONDS - start)) s)"
done
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
