#!/usr/bin/env bash
# dtbench-fsdp under mpirun: every check passes on 1-5 ranks (5: ranks owning only padding), for
# both layouts, bf16 with each grad wire type, and HSDP; every injected fault is caught, names its
# rank (failing_ranks or culprit) and exits 1; bad input exits 2 naming the flag; the perf CSV has
# the unit busbw rows, the dtbench-coll peers and their ratio, and the overlap efficiency.
source "$(dirname "$0")/../lib.sh"
FSDP=$BIN/dtbench-fsdp
QUICK=(--backend host -n 1 -w 0 -q --compute-us 20)

# A model whose layer 0 is the D=5 test vector of Megatron-FSDP's test_dbuffer.py (GlobalLayout.build)
# and whose root (3 elements) leaves ranks 3, 4 of a 5-rank shard group with padding only.
CSV=$TMP_ROOT/d3.csv
cat >"$CSV" <<'EOF'
name,shape,dtype,expert,shared_embedding,layer
emb,3,fp32,0,0,-1
a,2x6,fp32,0,0,0
b,4x4,fp32,0,0,0
c,4x4,fp32,0,0,0
d,1x2,fp32,0,0,0
e,1x6,fp32,0,0,0
f,2x6,fp32,0,0,1
g,5x4,fp32,0,0,1
EOF

for np in 1 2 3 4 5; do
  out=$TMP_ROOT/np$np
  run_mpi $np $TMP_ROOT/np$np.log "$FSDP" "${QUICK[@]}" --out "$out"
  expect "fsdp np=$np all strategies x avg/prescale/premul pass" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'
done

configs=(
  "5|--model-csv $CSV|d3 flat, empty shards"
  "5|--model-csv $CSV --layout per-param|d3 per-param"
  "3|--layout per-param --strategy optim_grads_params|per-param uneven dim 0"
  "4|--replicate 2|HSDP 2x2"
  "4|-d bf16 --grad-comm fp32-accum --microbatches 1|bf16 fp32-accum RS"
  "3|-d bf16 --grad-comm fp32|bf16 fp32 wire"
  "4|-d bf16 --grad-comm bf16 --replicate 2 --layout per-param|bf16 native HSDP per-param"
  "2|--microbatches 3 --strategy optim_grads|3 microbatches"
)
for c in "${configs[@]}"; do
  IFS='|' read -r np args name <<<"$c"
  out=$TMP_ROOT/cfg-${name// /_}
  # shellcheck disable=SC2086
  run_mpi $np $out.log "$FSDP" "${QUICK[@]}" $args --out "$out"
  expect "fsdp np=$np $name" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'
done

# The checks present: W >= 3 shows plain bf16 RS differing; the fp32-accum check is bit-exact.
f=$(checks_csv $TMP_ROOT/np4)
expect "fsdp np=4 has every check" "unshard, grad, counts, memory, prefetch, fp32-accum, bf16 differs rows" eval '
  for c in unshard.params grad.own_shard collectives.count memory.live_units memory.peak_bytes prefetch.order \
           prefetch.identical fp32_accum_rs.exact fp32_accum_rs.in_place fp32_comm_rs.exact fp32_accum_rs.bf16_differs \
           fp32_accum_rs.bad_scratch_refused; do
    csvq $f --where check=$c status=PASS || exit 1; done'

# W = 2: one add, one rounding, so a plain bf16 RS equals RNE(exact) element for element.
f=$(checks_csv $TMP_ROOT/np2)
expect "fsdp np=2 plain bf16 RS identical" "PASS row fp32_accum_rs.bf16_identical, no bf16_differs row" \
  eval 'csvq $f --where check=fp32_accum_rs.bf16_identical status=PASS && no_rows $f check=fp32_accum_rs.bf16_differs'

# fault_test NAME NP RANK CHECK ARGS...: exit 1, a FAIL row of CHECK naming RANK in failing_ranks
# or culprit, and no FAIL row of another check unless allowed (ALSO).
fault_test() {
  local name=$1 np=$2 rank=$3 check=$4
  shift 4
  local out=$TMP_ROOT/fault-$name
  run_mpi $np $out.log "$FSDP" "${QUICK[@]}" --out "$out" "$@"
  expect "fsdp fault $name caught, names rank $rank" "exit 1, FAIL $check naming $rank" eval '
    f=$(checks_csv $out) && [ $RC = 1 ] &&
    { csvq $f --where check=$check status=FAIL failing_ranks@=$rank || csvq $f --where check=$check status=FAIL culprit@=$rank; } &&
    no_rows $f status=FAIL check!=$check check!="${ALSO:-none}"'
}
Z3=(--strategy optim_grads_params)
ALSO= fault_test flip-unshard 4 2 unshard.params "${Z3[@]}" --inject-fault flip,rank=2,op=unshard
ALSO= fault_test flip-grad 4 1 grad.own_shard "${Z3[@]}" --inject-fault flip,rank=1,op=grad.own_shard
# A shard gathered from the wrong offset: every rank sees a wrong block; the culprit is its source.
ALSO= fault_test wrong-offset 4 1 unshard.params "${Z3[@]}" --inject-fault wrong-offset,rank=1
ALSO= fault_test wrong-offset-optim 5 3 unshard.params --strategy optim --model-csv "$CSV" --inject-fault wrong-offset,rank=3
# A rank that skips the 1/DP scale: every shard is off by (DP-1) h(culprit).
ALSO= fault_test missing-scale 4 2 grad.own_shard "${Z3[@]}" --grad-reduce prescale --inject-fault missing-scale,rank=2
ALSO= fault_test missing-premul 3 1 grad.own_shard --strategy optim --grad-reduce premul --inject-fault missing-scale,rank=1
ALSO= fault_test missing-scale-hsdp 4 3 grad.own_shard "${Z3[@]}" --replicate 2 --grad-reduce prescale \
  --inject-fault missing-scale,rank=3
# ZeRO-1 reducing every microbatch (no_sync ignored): the count check fails on every rank.
ALSO=grad.own_shard fault_test eager-reduce 4 0 collectives.count --strategy optim --grad-reduce avg \
  --inject-fault eager-reduce
# Prefetch bugs: computing on the in-flight next slot; issuing the next all-gather too late;
# temporaries never freed.
ALSO=unshard.params fault_test stale-slot 4 1 prefetch.identical "${Z3[@]}" --inject-fault stale-slot,rank=1
ALSO= fault_test late-prefetch 4 3 prefetch.order "${Z3[@]}" --inject-fault late-prefetch,rank=3
ALSO=memory.peak_bytes fault_test no-free 4 0 memory.live_units "${Z3[@]}" --layers 4 --inject-fault no-free,rank=0
ALSO=memory.live_units fault_test no-free-peak 4 2 memory.peak_bytes "${Z3[@]}" --layers 4 --inject-fault no-free,rank=2
# The brief's point: a check that accepts bf16 accumulation where fp32 was asked must FAIL.
for np in 3 5; do
  ALSO= fault_test bf16-accum-np$np $np 2 fp32_accum_rs.exact "${Z3[@]}" -d bf16 --grad-comm fp32-accum --microbatches 1 \
    --inject-fault bf16-accum,rank=2
done
ALSO= fault_test fp32-in-bf16-rs 4 0 fp32_accum_rs.bf16_differs "${Z3[@]}" --inject-fault fp32-in-bf16-rs
# Rank 1 writes its reduced shard at the next member's offset: its own shard keeps the input and the
# next shard is overwritten (the same check set as dtbench-ep, fp32_accum_checks.h).
ALSO=fp32_accum_rs.exact fault_test rs-wrong-offset 4 1 fp32_accum_rs.in_place "${Z3[@]}" --inject-fault rs-wrong-offset,rank=1
ALSO= fault_test accept-bad-scratch 3 1 fp32_accum_rs.bad_scratch_refused "${Z3[@]}" --inject-fault accept-bad-scratch

# Perf CSV: unit AG/RS rows for the suite and the coll peers, their ratio, step times, overlap
# efficiency, peak vs theoretical bytes.
out=$TMP_ROOT/perf
run_mpi 4 $TMP_ROOT/perf.log "$FSDP" --backend host -n 3 -w 1 -q --compute-us 50 --out "$out"
p=$(perf_csv $out)
expect "fsdp perf rows" "fsdp_unshard/coll AG and RS rows, ratios, overlap, peak bytes" eval '[ $RC = 0 ] &&
  for pat in ",all_gather,.*,fsdp_unshard," ",all_gather,.*,coll," ",reduce_scatter,.*,fsdp_grad_rs," \
             ",reduce_scatter,.*,coll," "busbw_fsdp_over_coll" "overlap_efficiency" "peak_bytes" "theoretical_min_bytes" \
             "fsdp_step"; do grep -q -- "$pat" $p || { echo "missing $pat"; exit 1; }; done'

# Bad input: one line naming the flag, exit 2, nothing written.
bad=(
  "--strategy zero3|--strategy"
  "--inject-fault eager-reduce,rank=3|--inject-fault"
  "--strategy optim_grads_params --inject-fault eager-reduce|--inject-fault"
  "--microbatches 1 --strategy optim --inject-fault eager-reduce|--inject-fault"
  "--grad-reduce avg --inject-fault missing-scale,rank=1|--inject-fault"
  "--grad-reduce mean|--grad-reduce"
  "--grad-comm fp64|--grad-comm"
  "--grad-comm fp32-accum|--grad-comm"
  "-d bf16 --grad-comm fp32-accum --grad-reduce avg|--grad-reduce"
  "--layout rows|--layout"
  "--prefetch maybe|--prefetch"
  "--replicate 3|--replicate"
  "--microbatches 0|--microbatches"
  "--model nope|--model"
  "--model-csv /nonexistent.csv|nonexistent"
  "-d bf16 --microbatches 40|-d bf16"
  "--inject-fault fp32-in-bf16-rs|--inject-fault"
  "--inject-fault bf16-accum,rank=1|--inject-fault"
  "--inject-fault accept-bad-scratch,rank=1|--inject-fault"
)
for case in "${bad[@]}"; do
  args=${case%%|*} flag=${case##*|}
  out=$TMP_ROOT/bad
  # shellcheck disable=SC2086
  run_mpi 2 $TMP_ROOT/bad.log "$FSDP" $args --out "$out"
  expect "fsdp bad input '$args'" "exit 2, error naming $flag, nothing written" \
    eval '[ $RC = 2 ] && grep -q -- "$flag" $LOG && [ ! -e $out ]'
done
