#!/usr/bin/env bash
# dtbench-ddp under mpirun (host backend, tiny model): every check passes on 1, 2, 3, 4 and 8 ranks
# and in every grad-sync mode; each injected fault (flipped element, missing pre-scale, bucket over
# the wrong group, early dispatch, collective under no_sync, dropped ownership piece) gives FAIL rows
# naming the culprit and exit 1; bad input exits 2; the sweep names a best bucket size.
source "$(dirname "$0")/../lib.sh"
DDP=$BIN/dtbench-ddp
QUICK=(-n 2 -w 1 -q --backend host --backward-ms 0.5)
FAST=(-n 1 -w 0 -q --backend host --backward-ms 0)

# Checks CSV rows: a FAIL of check $2 (naming rank $3 in failing_ranks / culprit), a PASS of check $2.
fail_check() { csvq "$1" --where status=FAIL check="$2"; }
fail_check_rank() { csvq "$1" --where status=FAIL check="$2" failing_ranks@="$3"; }
fail_check_culprit() { csvq "$1" --where status=FAIL check="$2" culprit@="$3"; }
has_check() { csvq "$1" --where check="$2" status=PASS; }

for np in 1 2 3 4 8; do
  for mode in allreduce distopt; do
    args=(); [ $mode = distopt ] && args=(--distributed-optimizer --microbatches 2)
    out=$TMP_ROOT/np$np-$mode
    run_mpi $np $out.log "$DDP" "${QUICK[@]}" "${args[@]}" --out "$out"
    expect "ddp np=$np $mode all checks pass" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'
  done
done
f=$(checks_csv $TMP_ROOT/np4-distopt)
expect "ddp distopt runs every check" "grad own/other shards, param all-gather, identity, cover, order, no_sync" \
  eval 'for c in grad.distopt.own_shard grad.distopt.other_shards param.all_gather group_identity ownership.cover.local \
          ownership.cover.total dispatch_order no_sync; do has_check $f $c || exit 1; done'

modes=(
  "4|--average-in-collective"
  "4|--distributed-optimizer --dist-opt-instances 2"
  "8|--distributed-optimizer --dist-opt-instances 4 --average-in-collective"
  "3|-d bf16 --microbatches 3"
  "4|-d bf16 --grad-reduce-in-fp32 --distributed-optimizer"
  "4|--dp-size 2 --microbatches 2"
  "8|--dp-size 2 --distributed-optimizer"
  "4|--distributed-optimizer --force-all-reduce"
  "4|--bucket-mb 0.1 -d bf16"
  "3|--no-overlap --distributed-optimizer --pad-for-high-busbw"
  "2|--model gpt-125m --layers 1 --hidden 64 --bucket-size 8K -d fp16 --distributed-optimizer"
)
for case in "${modes[@]}"; do
  np=${case%%|*} args=${case#*|}
  out=$TMP_ROOT/mode-$RANDOM
  # shellcheck disable=SC2086
  run_mpi $np $out.log "$DDP" "${QUICK[@]}" $args --out "$out"
  expect "ddp np=$np $args" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'
done

# A model from a CSV file (one dense fp32 buffer, one bf16 buffer and an expert buffer).
csv=$TMP_ROOT/model.csv
printf 'name,shape,dtype,expert\nembed,512x64,fp32,0\nw1,256x64,bf16,0\nexpert0,128x64,fp32,1\nhead,64,fp32,0\n' >$csv
out=$TMP_ROOT/csv
run_mpi 4 $out.log "$DDP" "${QUICK[@]}" --model $csv --bucket-size 4K --distributed-optimizer --out "$out"
expect "ddp --model FILE.csv with three buffers" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'

# Faults: FAIL rows naming the culprit, exit 1.
run_fault() {  # NAME NP CHECK COLUMN(rank|culprit) WHO ARGS...
  local name=$1 np=$2 check=$3 col=$4 who=$5
  shift 5
  local out=$TMP_ROOT/fault-$name
  run_mpi $np $out.log "$DDP" "${FAST[@]}" "$@" --out "$out"
  expect "ddp fault $name caught by $check ($col $who)" "exit 1, $check FAIL naming $who" \
    eval '[ $RC = 1 ] && f=$(checks_csv $out) && if [ $col = rank ]; then fail_check_rank $f $check $who; else fail_check_culprit $f $check $who; fi'
}
run_fault flip-grad 4 grad.all_reduce rank 2 --inject-fault flip,rank=2,op=grad,index=5
run_fault flip-own-shard 3 grad.distopt.own_shard rank 1 --distributed-optimizer --inject-fault flip,rank=1,op=own_shard,index=9
run_fault flip-param 4 param.all_gather culprit 0 --distributed-optimizer --inject-fault flip,rank=1,op=param,index=300
run_fault missing-prescale 4 grad.all_reduce culprit 1 --inject-fault missing-prescale,rank=1
run_fault missing-prescale-distopt 4 grad.distopt.other_shards rank 3 --distributed-optimizer --inject-fault missing-prescale,rank=3
run_fault missing-prescale-own 4 grad.distopt.own_shard culprit 3 --distributed-optimizer --inject-fault missing-prescale,rank=3
# Bucket 2 over halves {0,1},{2,3} instead of the world: rank 0 misses 2, rank 2 misses 0.
run_fault wrong-group 4 group_identity culprit 2 --inject-fault wrong-group,index=2
# DP groups {0,2},{1,3}; bucket 1 over {0,1},{2,3}: rank 0 sees rank 1 instead of 2.
run_fault wrong-group-dp2 4 group_identity culprit 1 --dp-size 2 --inject-fault wrong-group,index=1
run_fault wrong-group-partial 4 group_identity culprit 1 --distributed-optimizer --dist-opt-instances 2 \
  --inject-fault wrong-group,index=1
run_fault early-dispatch 4 dispatch_order rank 3 --inject-fault early-dispatch,rank=3,index=1
run_fault early-dispatch-distopt 3 dispatch_order rank 0 --distributed-optimizer --inject-fault early-dispatch,rank=0,index=2
run_fault ignore-no-sync 2 no_sync rank 1 --microbatches 3 --inject-fault ignore-no-sync
run_fault drop-piece 4 ownership.cover.local rank 2 --distributed-optimizer --inject-fault drop-piece,rank=2
f=$(checks_csv $TMP_ROOT/fault-early-dispatch)
expect "ddp early dispatch blames only rank 3 in dispatch_order" "failing_ranks == 3" \
  eval 'no_rows $f check=dispatch_order status=FAIL failing_ranks!=3'

# Sweep: one grad_sync row per bucket size, the best size named, the flat peer and the ratio.
out=$TMP_ROOT/sweep
run_mpi 4 $out.log "$DDP" -n 2 -w 1 -c 0 -q --backend host --backward-ms 0 --bucket-sweep 4K:64K --out "$out"
p=$(perf_csv $out)
expect "ddp --bucket-sweep reports each size and the best" "exit 0, >= 4 grad_sync rows, best_bucket_size, bucketed_over_flat" \
  eval '[ $RC = 0 ] && [ "$(csvq $p --count --where op=grad_sync)" -ge 4 ] &&
        grep -q ",best_bucket_size," $p && grep -q ",bucketed_over_flat," $p'
out=$TMP_ROOT/overlap
run_mpi 2 $out.log "$DDP" -n 2 -w 1 -c 0 -q --backend host --backward-ms 2 --out "$out"
p=$(perf_csv $out)
expect "ddp overlap metrics" "step, compute, exposed_comm and overlap_efficiency rows" \
  eval '[ $RC = 0 ] && for m in ",step," ",compute," ",exposed_comm," ",overlap_efficiency," ",peak_bytes_per_rank,"; do
          grep -q -- "$m" $p || exit 1; done'

# Bad input: one line naming the flag, exit 2, nothing written.
bad=(
  "--dp-size 3|--dp-size"
  "--dist-opt-instances 3 --distributed-optimizer|--dist-opt-instances"
  "--dist-opt-instances 2|--dist-opt-instances"
  "--bucket-size 0|--bucket-size"
  "--bucket-size 1Q|--bucket-size"
  "--bucket-size 4K --bucket-mb 1|--bucket-mb"
  "--bucket-mb -1|--bucket-mb"
  "--bucket-mb 0|--bucket-mb"
  "--bucket-mb 1e-9|--bucket-mb"
  "--bucket-sweep 8M|--bucket-sweep"
  "--bucket-sweep 8M:1M|--bucket-sweep"
  "--model nosuch|--model"
  "--model /nonexistent.csv|/nonexistent.csv"
  "--layers -1|--layers"
  "--microbatches 0|--microbatches"
  "--backward-ms -1|--backward-ms"
  "--force-all-reduce|--force-all-reduce"
  "--inject-fault bogus|--inject-fault"
  "--inject-fault early-dispatch,index=99|--inject-fault"
)
for case in "${bad[@]}"; do
  args=${case%%|*} flag=${case##*|}
  out=$TMP_ROOT/bad
  # shellcheck disable=SC2086
  run_mpi 2 $TMP_ROOT/bad.log "$DDP" --backend host $args --out "$out"
  expect "ddp bad input '$args'" "exit 2, one error line naming $flag, nothing written" \
    eval '[ $RC = 2 ] && [ "$(grep -c "error:" $LOG)" = 1 ] && grep "error:" $LOG | grep -q -- "$flag" && [ ! -e $out ]'
done
printf 'name,shape,dtype,expert\nw,4x4,fp32,0\nbroken,4xZ,fp32,0\n' >$TMP_ROOT/bad.csv
run_mpi 2 $TMP_ROOT/bad.log "$DDP" --backend host --model $TMP_ROOT/bad.csv --out $TMP_ROOT/bad
expect "ddp malformed model CSV names file:line" "exit 2, 'bad.csv:3'" eval '[ $RC = 2 ] && grep -q "bad.csv:3" $LOG'
