#!/usr/bin/env bash
# Self test of the PMPI fault interposer (pmpi_fault.c) on its own test program
# (pmpi_fault_selftest.c), not on dtbench: every mode on every op (op=any at each world size, then
# each op alone), the rank= / call= / bytes= filters, and malformed specs. Each run also checks that
# the "dtbench-control*" communicators stay exact. Prints PASS / FAIL lines.
# Env: PMPI_FAULT_SO (the library to test; built into a temp dir when unset), PMPI_NPS ("2 3 4 5").
source "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
W=$TMP_ROOT
read -r -a NPS <<<"${PMPI_NPS:-2 3 4 5}"
MODES=(rotate offset wrong-shard swap-blocks dup-block stale bitflip negzero truncate)
OPS=(allreduce reduce_scatter allgather alltoall alltoallv allgatherv bcast send gatherv)
unset DTBENCH_PMPI_FAULT  # local ranks inherit mpirun's environment

SO=${PMPI_FAULT_SO:-$W/libdtbench_pmpi_fault.so}
if [ -z "${PMPI_FAULT_SO:-}" ] &&
   ! mpicc -std=c11 -shared -fPIC -O1 -g -Wall -Wextra -o "$SO" "$HERE/pmpi_fault.c" -pthread >"$W/build.log" 2>&1; then
  fail "pmpi build" "$(tr '\n' '|' <"$W/build.log" | head -c 600)"; exit 1
fi
if ! mpicc -std=c11 -O1 -g -Wall -Wextra -o "$W/selftest" "$HERE/pmpi_fault_selftest.c" -pthread >"$W/build.log" 2>&1; then
  fail "pmpi selftest build" "$(tr '\n' '|' <"$W/build.log" | head -c 600)"; exit 1
fi

# applies MODE OP: whether the interposer acts on OP in MODE.
applies() {
  case $1 in
    wrong-shard) [ "$2" = reduce_scatter ] ;;
    swap-blocks | dup-block) [ "$2" != reduce_scatter ] ;;
  esac
}

# check NP SPEC EXPECT [WANT_CORRUPT [RANK]]: runs the self test with DTBENCH_PMPI_FAULT=SPEC (none
# when empty). EXPECT: quiet (no fault configured), fires (corrupts; WANT_CORRUPT calls exactly,
# and only on world rank RANK, when given) or never (the mode does not apply: data untouched and
# "never applied" on every rank).
check() {
  local np=$1 spec=$2 expect=$3 want=${4:-} only=${5:-} name why="" n corrupt lines
  name="pmpi ${spec:-none} np$np"
  local log=$W/run.log
  if [ -n "$spec" ]; then
    run_mpi "$np" "$log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="$spec" "$W/selftest"
  else
    run_mpi "$np" "$log" -x LD_PRELOAD="$SO" "$W/selftest"
  fi
  corrupt=$(grep -oP '^selftest: OK .*corrupt=\K[0-9]+' "$log")
  lines=$(grep -c '^pmpi_fault: rank [0-9]* corrupted ' "$log")
  if [ "$RC" != 0 ] || [ -z "$corrupt" ]; then
    why="self test failed (rc=$RC): $(grep -m 3 '^selftest' "$log" | tr '\n' '|')"
  else
    case $expect in
      quiet)
        [ "$corrupt" = 0 ] || why="corrupt=$corrupt with no fault"
        grep -q '^pmpi_fault' "$log" && why="interposer printed: $(grep -m 1 '^pmpi_fault' "$log")" ;;
      never)
        [ "$corrupt" = 0 ] && [ "$lines" = 0 ] || why="corrupted where the mode does not apply"
        n=$(grep -c 'never applied$' "$log")
        [ "$n" = "$np" ] || why="$n of $np ranks said 'never applied'" ;;
      fires)
        [ "$corrupt" -gt 0 ] || why="no call was predicted to change (test matrix bug)"
        [ "$lines" -gt 0 ] || why="no 'corrupted' line on stderr"
        [ -n "$want" ] && [ "$corrupt" != "$want" ] && why="corrupt=$corrupt, expected $want"
        n=$(grep -oP '^pmpi_fault: rank \K[0-9]+(?= corrupted )' "$log" | sort | uniq -c | awk '$1 > 3' | wc -l)
        [ "$n" = 0 ] || why="$n ranks printed more than 3 'corrupted' lines"
        if [ -n "$only" ]; then
          grep -P '^pmpi_fault: rank (?!'"$only"' )\d+ ' "$log" | grep -q . &&
            why="a rank other than $only reported: $(grep -m 1 -P '^pmpi_fault: rank (?!'"$only"' )' "$log")"
        elif grep -q 'never applied$' "$log"; then
          why="$(grep -m 1 'never applied$' "$log")"
        fi ;;
    esac
  fi
  if [ -z "$why" ]; then pass "$name (corrupt=$corrupt)"; else fail "$name" "$why"; fi
}

for np in "${NPS[@]}"; do
  check "$np" "" quiet
  for m in "${MODES[@]}"; do check "$np" "$m" fires; done
done

for m in "${MODES[@]}"; do
  for op in "${OPS[@]}"; do
    if applies "$m" "$op"; then check 3 "$m,op=$op" fires; else check 3 "$m,op=$op" never; fi
  done
done

# Filters. The self test fails when the interposer corrupts another call or rank than predicted;
# the expected counts pin how many calls differ (summed over ranks).
check 4 "rotate,rank=2" fires "" 2
check 4 "bitflip,op=allgather,call=7" fires 4
check 4 "stale,op=alltoall,rank=1,call=9" fires 1 1
check 4 "truncate,op=send,rank=0,call=2" fires 1 0
check 4 "wrong-shard,rank=3,call=4" fires 1 3
check 5 "negzero,op=allreduce,call=0" fires 5
check 3 "rotate,bytes=6" fires             # not a whole element
check 3 "offset,op=alltoallv,bytes=12" fires
check 3 "bitflip,op=bcast,bytes=1000" fires

# Malformed specs: exit 2 with one message naming the spec, before any communication.
for spec in bogus "rotate,op=nope" "rotate,rank=x" "rotate,rank=9" "rotate,call=-2" "rotate,frobnicate=1" \
            "negzero,bytes=4" "rotate,bytes=0" "rotate,,op=allreduce" "op=allreduce" "rotate,op=bcast,op=send"; do
  run_mpi 2 "$W/bad.log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="$spec" "$W/selftest"
  if [ "$RC" = 2 ] && grep -qF "pmpi_fault: bad DTBENCH_PMPI_FAULT \"$spec\": " "$W/bad.log" &&
     ! grep -q '^selftest: OK' "$W/bad.log"; then
    pass "pmpi bad spec '$spec'"
  else
    fail "pmpi bad spec '$spec'" "rc=$RC: $(head -c 300 "$W/bad.log" | tr '\n' '|')"
  fi
done
