#!/usr/bin/env bash
# make run: a quick run of every built suite on the host backend, CSVs under results/.
# NP (default 4) ranks, oversubscribed so it works on a laptop or a 2-core CI machine.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin} NP=${NP:-4} OUT=${OUT:-results}
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
declare -A ARGS=([coll]="-b 8 -e 1M -f 4 -n 5 -w 2")
status=0
summary=()
for suite in coll ddp fsdp ep ckpt p2p; do
  exe=$BIN/dtbench-$suite
  [ -x "$exe" ] || continue
  echo "== dtbench-$suite ($NP ranks, host backend)"
  # shellcheck disable=SC2086
  mpirun --oversubscribe --bind-to none -np "$NP" "$exe" --backend host --out "$OUT" ${ARGS[$suite]:-}
  rc=$?
  summary+=("dtbench-$suite: $([ $rc = 0 ] && echo PASS || echo "FAIL (exit $rc)")")
  [ $rc = 0 ] || status=1
done
echo
printf '%s\n' "${summary[@]}"
echo "CSV reports: $OUT/"
exit $status
