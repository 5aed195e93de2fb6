#!/usr/bin/env bash
# Runs every test: GoogleTest unit tests, then each tests/integration/*.sh. Ends with the line
# "N passed, N failed" and exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."
OBJ=${OBJ:?} BIN=${BIN:-bin}
export BIN HOST_ONLY_BIN=${HOST_ONLY_BIN:-} USE_CUDA=${USE_CUDA:-0}
passed=0 failed=0
log=$(mktemp)

echo "== unit tests ($OBJ/unit_tests)"
"$OBJ/unit_tests" --gtest_brief=1 2>&1 | tee "$log" | grep -E "^\[  (FAILED|PASSED) |FAILED TEST|Failure" | head -50
u_pass=$(grep -oP '^\[  PASSED  \] \K[0-9]+' "$log" | tail -1)
u_fail=$(grep -oP '^\[  FAILED  \] \K[0-9]+(?= test)' "$log" | tail -1)
if [ -z "$u_pass$u_fail" ]; then
  echo "FAIL unit_tests: did not run"; failed=$((failed + 1))
else
  passed=$((passed + ${u_pass:-0})); failed=$((failed + ${u_fail:-0}))
fi

for t in tests/integration/*.sh; do
  [ -n "${TEST_FILTER:-}" ] && [[ "$t" != *"$TEST_FILTER"* ]] && continue
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
