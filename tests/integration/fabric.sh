#!/usr/bin/env bash
# Faults beneath dtbench: the PMPI interposer (tests/faults/pmpi_fault.c, LD_PRELOAD) makes MPI
# deliver wrong data on rank 1 the way a bad link or library would. dtbench-coll must FAIL every
# collective the corruption reaches, naming rank 1 and its node, with exit 1 (one run per (mode,
# dtype): every collective, in and out of place); dtbench-ddp, -fsdp and -ep must FAIL naming rank 1
# (one run per mode); dtbench-ckpt must FAIL on its metadata exchanges and its DDP all-reduce. World
# sizes 2..8 are spread over the matrix.
# Env: PMPI_FAULT_SO (built by make test), FABRIC_MODES, FABRIC_TYPES.
source "$(dirname "$0")/../lib.sh"
CSV=(python3 "$(dirname "$0")/../faults/csvcheck.py")
SO=${PMPI_FAULT_SO:-build/libdtbench_pmpi_fault.so}
[ -f "$SO" ] || { fail "fabric interposer" "$SO not built (make test builds it)"; exit 0; }
SO=$(cd "$(dirname "$SO")" && pwd)/$(basename "$SO")
# An ASan build must accept a preloaded library ahead of its runtime.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
read -r -a MODES <<<"${FABRIC_MODES:-rotate offset wrong-shard swap-blocks dup-block stale bitflip negzero truncate}"
read -r -a TYPES <<<"${FABRIC_TYPES:-fp32 bf16 fp16}"
host=$(hostname)

# The dtbench-coll collectives a mode reaches (the interposer's table in pmpi_fault.c).
reached() {
  case $1 in
    wrong-shard) echo reduce_scatter ;;
    swap-blocks | dup-block) echo all_reduce all_gather all_to_all broadcast ;;
    *) echo all_reduce reduce_scatter all_gather all_to_all broadcast ;;
  esac
}

i=0
for mode in "${MODES[@]}"; do
  for dt in "${TYPES[@]}"; do
    np=$((2 + i % 7)) i=$((i + 1))
    name="fabric $mode coll np=$np $dt"
    out=$TMP_ROOT/$mode-$dt
    run_mpi "$np" "$TMP_ROOT/$mode-$dt.log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="$mode,rank=1" \
      "$BIN/dtbench-coll" --backend host -b 4K -e 16K -f 4 -n 2 -w 1 -d "$dt" -q --out "$out"
    f=$(checks_csv "$out") why=""
    [ "$RC" = 1 ] || why="exit $RC, expected 1"
    grep -q "^pmpi_fault: rank 1 corrupted" "$LOG" || why="$why; the interposer never fired"
    [ -n "$f" ] || why="$why; no checks CSV"
    for op in $(reached "$mode"); do
      [ -n "$f" ] && "${CSV[@]}" failprefix "$f" "$op." 1 || why="$why; no FAIL row of $op naming rank 1"
    done
    grep -q "^FAIL .*failing ranks \([0-9]* ([^)]*);\)*1 ($host)" "$LOG" || why="$why; no FAIL line naming rank 1 on $host"
    if [ -z "$why" ]; then pass "$name: exit 1, rank 1 ($host) named for $(reached "$mode" | wc -w) collectives"
    else fail "$name" "${why#; } (log: $(grep -m 3 -E '^(FAIL|pmpi|dtbench)' "$LOG" | tr '\n' '|' | head -c 400))"; fi
  done
done

# The training-shaped suites: every mode, one dtype each (alternating), world sizes 2..8. Each must
# exit 1 with a FAIL line naming rank 1 (the rank whose MPI delivered wrong data) and its node, as a
# failing rank or as the culprit. ddp runs with the distributed optimizer (its reduce-scatter and
# param all-gather are reached too) and without it (its grad all-reduce alone).
names_rank1="^FAIL .*(failing ranks|culprit) ([0-9]+ \([^)]*\);)*1 \($host\)"
for suite in "ddp --distributed-optimizer" ddp fsdp ep; do
  read -r -a S <<<"$suite"
  for mode in "${MODES[@]}"; do
    # dtbench-ddp without the distributed optimizer issues no reduce-scatter.
    [ "$suite" = ddp ] && [ "$mode" = wrong-shard ] && continue
    dt=${TYPES[$((i % ${#TYPES[@]}))]} np=$((2 + i % 7)) i=$((i + 1))
    name="fabric $mode $suite np=$np $dt"
    run_mpi "$np" "$TMP_ROOT/${S[0]}${S[1]:-}-$mode.log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="$mode,rank=1" \
      "$BIN/dtbench-${S[0]}" "${S[@]:1}" --backend host -d "$dt" -n 2 -w 1 -q --out "$TMP_ROOT/${S[0]}${S[1]:-}-$mode"
    why=""
    [ "$RC" = 1 ] || why="exit $RC, expected 1"
    grep -q "^pmpi_fault: rank 1 corrupted" "$LOG" || why="$why; the interposer never fired"
    grep -qE "$names_rank1" "$LOG" || why="$why; no FAIL line naming rank 1 on $host"
    if [ -z "$why" ]; then pass "$name: exit 1, rank 1 ($host) named"
    else fail "$name" "${why#; } (log: $(grep -m 3 -E '^(FAIL|pmpi|dtbench)' "$LOG" | tr '\n' '|' | head -c 400))"; fi
  done
done

# A fixed case beside the rotation above (which moves every mode to another world size and dtype
# when the mode list changes): a reduce-scatter shard from the wrong rank in bf16 FSDP grads at a
# world size that is not a power of two, where the shard boundaries fall inside tensors.
run_mpi 6 "$TMP_ROOT/fsdp-wrong-shard-bf16.log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="wrong-shard,rank=1" \
  "$BIN/dtbench-fsdp" --backend host -d bf16 -n 2 -w 1 -q --out "$TMP_ROOT/fsdp-wrong-shard-bf16"
expect "fabric wrong-shard fsdp np=6 bf16 (fixed case)" "exit 1, FAIL grad.own_shard naming rank 1 ($host)" \
  eval '[ $RC = 1 ] && grep -q "^pmpi_fault: rank 1 corrupted reduce_scatter" $LOG &&
        grep -qE "^FAIL grad.own_shard .*failing ranks ([0-9]+ \([^)]*\); )*1 \($host\)" $LOG'

# dtbench-ckpt: its metadata exchanges (checked frames) and the DDP all-reduce its saves run beside.
# Every mode on every call first (whichever exchange it reaches first), then one exchange at a time,
# each named in the FAIL row. wrong-shard acts on reduce-scatters only, which ckpt does not issue.
CKQ=(--backend host -q --compute-ms 1 --steps-per-save 2 --repeat 2)
ck_run() {  # ck_run NAME NP SPEC EXPECT_REGEX [ARGS...]: exit 1 and a FAIL line naming rank 1
  local name=$1 np=$2 spec=$3 want=$4 why=""
  shift 4
  run_mpi "$np" "$TMP_ROOT/ck-$name.log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="$spec,rank=1" \
    "$BIN/dtbench-ckpt" "${CKQ[@]}" --out "$TMP_ROOT/ck-$name" "$@"
  [ "$RC" = 1 ] || why="exit $RC, expected 1"
  grep -q "^pmpi_fault: rank 1 corrupted" "$LOG" || why="$why; the interposer never fired"
  grep -qE "$names_rank1" "$LOG" || why="$why; no FAIL line naming rank 1 on $host"
  grep -qE "^FAIL $want" "$LOG" || why="$why; no FAIL line for '$want'"
  if [ -z "$why" ]; then pass "fabric $spec ckpt np=$np: exit 1, $(grep -m1 -oE "^FAIL $want" "$LOG"), rank 1 named"
  else fail "fabric $spec ckpt np=$np" "${why#; } (log: $(grep -m 3 -E '^(FAIL|pmpi|dtbench)' "$LOG" | tr '\n' '|' | head -c 400))"; fi
}
for mode in "${MODES[@]}"; do
  [ "$mode" = wrong-shard ] && continue
  np=$((2 + i % 7)) i=$((i + 1))
  ck_run "$mode" "$np" "$mode" "(exchange.metadata|train.grad_all_reduce)"
done
ck_run pieces 4 "swap-blocks,op=allgatherv,call=1" "exchange.metadata \[all_gather of the piece lists\]"
ck_run stepdir 3 "bitflip,op=bcast,call=0" "exchange.metadata \[broadcast of the step directory check\]"
ck_run verdict 5 "truncate,op=bcast,call=1" "exchange.metadata \[broadcast of the commit verdict\]"
ck_run grads 6 "rotate,op=allreduce" "train.grad_all_reduce"
# The index entries reach rank 0 only: rank= names a receiver, so rank 0 is the one corrupted here.
run_mpi 3 "$TMP_ROOT/ck-entries.log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="dup-block,op=gatherv,rank=0" \
  "$BIN/dtbench-ckpt" "${CKQ[@]}" --out "$TMP_ROOT/ck-entries" --ckpt-dir "$TMP_ROOT/ck-entries-dir"
expect "fabric dup-block,op=gatherv ckpt np=3: FAIL for the index entries, rank 0 named, no step committed" \
  "exit 1, FAIL exchange.metadata [gather of the index entries] naming rank 0, no COMMIT" \
  eval '[ $RC = 1 ] && grep -qE "^FAIL exchange.metadata \[gather of the index entries\].*failing ranks 0 \($host\)" $LOG &&
        ! ls $TMP_ROOT/ck-entries-dir/*/COMMIT 2>/dev/null | grep -q .'
# The load's exchanges: a clean save, then a load under the interposer.
run_mpi 3 "$TMP_ROOT/ck-save.log" "$BIN/dtbench-ckpt" "${CKQ[@]}" --out "$TMP_ROOT/ck-save" --ckpt-dir "$TMP_ROOT/ck-load-dir" --save-only
ck_run load 3 "offset,op=allgatherv,call=2" "exchange.metadata \[all_gather of the checkpoint index\]" \
  --ckpt-dir "$TMP_ROOT/ck-load-dir" --load-only

# Harness traffic stays exact: a clean run under the interposer with a mode that reaches nothing
# dtbench-coll sends (point-to-point) passes.
run_mpi 4 "$TMP_ROOT/clean.log" -x LD_PRELOAD="$SO" -x DTBENCH_PMPI_FAULT="bitflip,op=send" \
  "$BIN/dtbench-coll" --backend host -b 4K -e 16K -f 4 -n 2 -w 1 -q --out "$TMP_ROOT/clean"
expect "fabric interposer loaded, no data reached: PASS" "exit 0" test "$RC" = 0
