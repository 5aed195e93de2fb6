#!/usr/bin/env bash
# dtbench-ep under mpirun: every check passes on 1, 2, 4 and 8 ranks and on layouts where the expert
# group differs from the dense group; each injected fault (expert grads over the dense group, a
# missing pre-scale, a token sent to the wrong expert, a flipped element, bf16 accumulation where the
# fp32-accumulating RS was asked, partial DistOpt without its inter all-reduce) gives FAIL rows naming
# the culprit and exit 1; partial DistOpt (N = 2) passes at 8 ranks; bad input exits 2 naming the flag; the perf CSV has the comparisons.
source "$(dirname "$0")/../lib.sh"
EP=$BIN/dtbench-ep
QUICK=(-n 2 -w 1 -q --backend host)

fail_checks() { csvq "$1" --where status=FAIL --print check | sort -u; }
pass_row() { csvq "$1" --where check="$2" status=PASS; }
# Every FAIL row of check $2 (whose case matches $4, if given) has culprit $3 among its culprits.
culprit_is() {
  local rows=(--where status=FAIL check="$2" case~"${4:-}") total
  total=$(csvq "$1" --count "${rows[@]}") && [ "$total" -gt 0 ] &&
    [ "$(csvq "$1" --count "${rows[@]}" culprit@="$3")" = "$total" ]
}

for np in 1 2 4 8; do
  out=$TMP_ROOT/np$np
  run_mpi $np $TMP_ROOT/np$np.log "$EP" "${QUICK[@]}" --out "$out"
  expect "ep np=$np default layout, all checks pass" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'
done

# Layouts: (TP, ETP) = (2, 1) and (1, 2) as in Megatron's group test, PP with the embedding group,
# CP folded into expert DP, uneven experts with zipf routing, bf16, small buckets.
layouts=(
  "8|--tp 2 --etp 1 --ep 1|tp2-etp1"
  "8|--tp 1 --etp 2 --ep 1|tp1-etp2"
  "8|--tp 2 --etp 1 --ep 2 --pp 2|tp2-ep2-pp2"
  "8|--cp 2 --ep 4 --experts 6 --routing zipf:1.2|cp2-ep4-zipf"
  "4|-d bf16 --bucket-size 3000|bf16-buckets"
  "4|--bucket-size 4K|buckets-suffix"
  "3|--ep 3 --experts 4|np3-uneven"
)
for l in "${layouts[@]}"; do
  IFS='|' read -r np args name <<<"$l"
  out=$TMP_ROOT/$name
  # shellcheck disable=SC2086
  run_mpi $np $TMP_ROOT/$name.log "$EP" "${QUICK[@]}" $args --out "$out"
  expect "ep np=$np $name all checks pass" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'
done
for name in tp2-etp1 tp1-etp2; do
  f=$(checks_csv $TMP_ROOT/$name)
  expect "ep $name: 2^rank proves the expert group differs from the dense group" \
    "PASS rows group_identity.expert and group_identity.expert_differs" \
    eval 'pass_row $f group_identity.expert && pass_row $f group_identity.expert_differs'
done

# As Megatron's test_grad_reduce_for_replicated_embedder.py: PP = 4, 2 VPP chunks: the
# conditional-embedder weight ends at 124. A flipped element on rank 3 shows the expected value in
# the FAIL row.
out=$TMP_ROOT/cond124
run_mpi 8 $TMP_ROOT/cond124.log "$EP" "${QUICK[@]}" --pp 4 --vpp 2 --out "$out" \
  --inject-fault flip,rank=3,op=finalize.cond_embedder,index=1
expect "ep cond embedder PP=4 VPP=2 expects 124, flip on rank 3 caught" "exit 1, FAIL rows expected 124 naming rank 3" \
  eval '[ $RC = 1 ] && f=$(checks_csv $out) && [ "$(fail_checks $f)" = finalize.cond_embedder ] &&
        csvq $f --where status=FAIL expected=124 failing_ranks=3'

# Fault: expert grads reduced over the dense dp_cp group (EP 2 at 4 ranks: expt_dp {0,2},{1,3}).
# The 2^rank sum decodes to the members really used; the culprit is a rank that should not be there.
out=$TMP_ROOT/wrong-group
run_mpi 4 $TMP_ROOT/wrong-group.log "$EP" "${QUICK[@]}" --experts 4 --out "$out" --inject-fault wrong-group
expect "ep fault wrong-group is caught" "exit 1; group_identity.expert and expert grad_sync FAIL; dense untouched" \
  eval '[ $RC = 1 ] && f=$(checks_csv $out) && fail_checks $f | grep -qx group_identity.expert &&
        fail_checks $f | grep -qx grad_sync.expert && ! fail_checks $f | grep -q "\.dense$" &&
        culprit_is $f group_identity.expert 1 && culprit_is $f group_identity.expert 0'

# The same fault with the default 5 experts (3/2 over EP 2): the expert buffers differ in size across
# the dense group; the fault must stay memory-safe and matched (was MPI_ERR_TRUNCATE / heap overflow).
out=$TMP_ROOT/wrong-group-uneven
run_mpi 4 $TMP_ROOT/wrong-group-uneven.log "$EP" "${QUICK[@]}" --out "$out" --inject-fault wrong-group
expect "ep fault wrong-group with uneven experts is caught" "exit 1; group_identity.expert FAIL" \
  eval '[ $RC = 1 ] && f=$(checks_csv $out) && fail_checks $f | grep -qx group_identity.expert'
# A layout where expert DP is the dense DP group cannot reveal it: refused (exit 2), never a PASS.
out=$TMP_ROOT/wrong-group-same
run_mpi 8 $TMP_ROOT/wrong-group-same.log "$EP" "${QUICK[@]}" --tp 2 --etp 1 --ep 2 --pp 2 --out "$out" \
  --inject-fault wrong-group
expect "ep fault wrong-group refused where expert DP == dense DP" "exit 2 naming --inject-fault, nothing written" \
  eval '[ $RC = 2 ] && grep -q "error: --inject-fault wrong-group: in this layout" $LOG && [ ! -e $out ]'

# Fault: rank 2 skips its pre-scale: every rank of its groups fails; with the closed-form pattern
# the culprit column says 2 (the all-ones B3 fill cannot tell ranks apart).
out=$TMP_ROOT/missing-scale
run_mpi 4 $TMP_ROOT/missing-scale.log "$EP" "${QUICK[@]}" --scaling default --optimizer allreduce --out "$out" \
  --inject-fault missing-scale,rank=2
f=$(checks_csv $out)
expect "ep fault missing-scale on rank 2 names rank 2" "exit 1, grad_sync FAIL rows with culprit 2" \
  eval '[ $RC = 1 ] && fail_checks $f | grep -qx grad_sync.dense && culprit_is $f grad_sync.dense 2 pattern &&
        culprit_is $f grad_sync.expert 2 pattern'
expect "ep fault missing-scale also breaks num_tokens scaling" "finalize.num_tokens_scale FAIL on rank 2" \
  eval 'fail_checks $f | grep -q finalize.num_tokens_scale && fail_names_rank $f 2'

# Fault: rank 2 sends one token to the next EP rank's expert: the expert side names rank 2.
out=$TMP_ROOT/wrong-expert
run_mpi 4 $TMP_ROOT/wrong-expert.log "$EP" "${QUICK[@]}" --ep 4 --experts 4 --out "$out" \
  --inject-fault wrong-expert,rank=2,index=0
expect "ep fault wrong-expert on rank 2 is caught at the expert" "exit 1, only dispatch.received FAIL, culprit 2" \
  eval '[ $RC = 1 ] && f=$(checks_csv $out) && [ "$(fail_checks $f)" = dispatch.received ] &&
        culprit_is $f dispatch.received 2 && grep -q "routed to expert" $LOG'

# Fault: flipped elements, each named by the rank that holds them.
for c in "grad_sync.expert|1|3" "group_identity.dense|2|0" "finalize.tp_avg|3|7" "finalize.embedding|0|2" \
         "combine.slots|3|100" "dispatch.received|1|9" "fp32_accum_rs.bf16_identical|1|5"; do
  IFS='|' read -r check rank index <<<"$c"
  out=$TMP_ROOT/flip-$check
  run_mpi 4 $TMP_ROOT/flip-$check.log "$EP" "${QUICK[@]}" --out "$out" --inject-fault flip,rank=$rank,op=$check,index=$index
  expect "ep flip in $check on rank $rank is caught" "exit 1, FAIL rows of $check naming rank $rank only" \
    eval '[ $RC = 1 ] && f=$(checks_csv $out) && [ "$(fail_checks $f)" = $check ] && fail_names_rank $f $rank &&
          no_rows $f status=FAIL failing_ranks!=$rank'
done

# Megatron's reduce-scatter with fp32 accumulation on the expert grads over expt_dp (fp32_accum.h,
# shared with dtbench-fsdp): at 8 ranks expt_dp has W = 4, so a plain bf16 RS must differ; at 4
# ranks W = 2 and it must be identical element for element.
f=$(checks_csv $TMP_ROOT/np8)
expect "ep np=8 (expt_dp W=4) fp32-accum RS rows" "exact, in_place, bf16_differs, prescale, bad_scratch_refused PASS" \
  eval 'for c in exact in_place bf16_differs prescale bad_scratch_refused; do pass_row $f fp32_accum_rs.$c || exit 1; done'
f=$(checks_csv $TMP_ROOT/np2)
expect "ep np=2 (expt_dp W=1): no in_place row (the own shard is the whole buffer), rows in bf16" \
  "no fp32_accum_rs.in_place row, exact row dtype bf16" \
  eval 'no_rows $f check=fp32_accum_rs.in_place && csvq $f --where check=fp32_accum_rs.exact dtype=bf16 status=PASS'
f=$(checks_csv $TMP_ROOT/np4)
expect "ep np=4 (expt_dp W=2) plain bf16 RS identical" "PASS row fp32_accum_rs.bf16_identical, no bf16_differs row" \
  eval 'pass_row $f fp32_accum_rs.bf16_identical && ! grep -q fp32_accum_rs.bf16_differs $f'
# Faults: bf16 accumulation where fp32 was asked (rank 2 sums its shard in bf16, ring order); rank 5
# writes its shard at the next rank's offset; the "plain" bf16 RS widened to fp32 (every rank); a
# bad scratch accepted (every rank).
fp32_fault() {  # name np check culprit args...
  local name=$1 np=$2 check=$3 who=$4; shift 4
  out=$TMP_ROOT/$name
  run_mpi $np $TMP_ROOT/$name.log "$EP" "${QUICK[@]}" --out "$out" "$@"
  expect "ep fault $name is caught" "exit 1, $check FAIL naming rank $who" \
    eval '[ $RC = 1 ] && f=$(checks_csv $out) && fail_checks $f | grep -qx $check && fail_names_rank $f $who &&
          { [ "$who" != "$CULPRIT" ] || culprit_is $f $check $who; }'
}
CULPRIT=2 fp32_fault bf16-accum 8 fp32_accum_rs.exact 2 --inject-fault bf16-accum,rank=2
f=$(checks_csv $TMP_ROOT/bf16-accum)
expect "ep fault bf16-accum fails only on rank 2" "no FAIL row names another rank, grad sync untouched" \
  eval 'no_rows $f status=FAIL failing_ranks!=2 &&
        ! fail_checks $f | grep -q grad_sync'
CULPRIT=5 fp32_fault rs-wrong-offset 8 fp32_accum_rs.in_place 5 --inject-fault rs-wrong-offset,rank=5
CULPRIT= fp32_fault fp32-in-bf16-rs 8 fp32_accum_rs.bf16_differs 0 --inject-fault fp32-in-bf16-rs
CULPRIT= fp32_fault accept-bad-scratch 4 fp32_accum_rs.bad_scratch_refused 1 --inject-fault accept-bad-scratch
# missing pre-scale on rank 2 before the fp32-accum RS: expt_dp {0,2,4,6} at 8 ranks names rank 2.
CULPRIT=2 fp32_fault prescale-missing 8 fp32_accum_rs.prescale 2 --scaling default --optimizer allreduce \
  --inject-fault missing-scale,rank=2

# Partial distributed optimizer, N = 2 at 8 ranks: RS over intra (dense 4, expert 2 ranks), AR over
# inter (2); and with TP 2 the expert intra group is a single rank (no RS, only the inter AR).
for l in "8|--dist-opt-instances 2|n2" "8|--dist-opt-instances 2 --tp 2 --optimizer distopt|n2-tp2"; do
  IFS='|' read -r np args name <<<"$l"
  out=$TMP_ROOT/$name
  # shellcheck disable=SC2086
  run_mpi $np $TMP_ROOT/$name.log "$EP" "${QUICK[@]}" $args --out "$out"
  f=$(checks_csv $out)
  expect "ep np=$np partial DistOpt $name all checks pass" "exit 0, only PASS, intra/inter groups and 2^rank over both levels" \
    eval '[ $RC = 0 ] && all_pass $out && pass_row $f groups.partial_distopt && pass_row $f group_identity.distopt.dense &&
          pass_row $f group_identity.distopt.expert && csvq $f --where check=groups.members case=inter_expert_dp'
done
# Fault: the inter-group all-reduce left out (every rank): the own shard holds only its instance's
# sum; the 2^rank decode names the missing members (rank 0 misses rank 4, rank 4 misses rank 0).
out=$TMP_ROOT/skip-inter-ar
run_mpi 8 $TMP_ROOT/skip-inter-ar.log "$EP" "${QUICK[@]}" --dist-opt-instances 2 --out "$out" --inject-fault skip-inter-ar
expect "ep fault skip-inter-ar (N=2) is caught" "exit 1, group_identity.distopt.* and distopt grad_sync FAIL, culprits 4 and 0" \
  eval '[ $RC = 1 ] && f=$(checks_csv $out) && fail_checks $f | grep -qx group_identity.distopt.dense &&
        fail_checks $f | grep -qx group_identity.distopt.expert && fail_checks $f | grep -qx grad_sync.dense &&
        culprit_is $f group_identity.distopt.dense 4 && culprit_is $f group_identity.distopt.dense 0 &&
        ! fail_checks $f | grep -qx group_identity.dense'

# Perf CSV: two-level sync next to one flat all-reduce, all-to-all-v next to all-to-all, load imbalance.
f=$(perf_csv $TMP_ROOT/np4)
expect "ep perf CSV comparisons measured in the same run" "rows for both sides and the ratios" \
  eval 'body=$(grep -v "^#" $f) &&
        csvq $f --where op=two_level_sync iters!= && csvq $f --where op=all_reduce busbw_GBps!= &&
        echo "$body" | grep -q time_over_flat_all_reduce &&
        csvq $f --where op=all_to_allv busbw_GBps!= && csvq $f --where op=all_to_all busbw_GBps!= &&
        echo "$body" | grep -q load_imbalance_max_over_mean && echo "$body" | grep -q peak_bytes_per_rank_max'

# Bad input: one line naming the flag, exit 2, nothing written.
bad=(
  "4|--ep 3|--ep"
  "4|--experts 0|--experts"
  "4|--top-k 5 --experts 4|--top-k"
  "4|--routing zipf:x|--routing"
  "4|--scaling sum|--scaling"
  "4|--optimizer zero|--optimizer"
  "4|--tp 2 --hidden 63|--hidden"
  "4|--token-hidden 4|--token-hidden"
  "4|--vpp 0|--vpp"
  "4|--dist-opt-instances 3|--dist-opt-instances"
  "4|--dist-opt-instances 0|--dist-opt-instances"
  "4|--dist-opt-instances 2 --optimizer allreduce|--dist-opt-instances"
  "2|--inject-fault flip,rank=x|--inject-fault"
  "4|--tp 0|--tp"
  "4|--pp 0|--pp"
  "4|--cp -1|--cp"
  "4|--inject-fault bf16-accum,rank=1|--inject-fault"
  "4|--inject-fault fp32-in-bf16-rs|--inject-fault"
  "4|--inject-fault skip-inter-ar|--inject-fault"
  "4|--inject-fault accept-bad-scratch,rank=1|--inject-fault"
  "2|--bucket-size 0|--bucket-size"
  "2|--bucket-size 12Q|--bucket-size"
)
for case in "${bad[@]}"; do
  IFS='|' read -r np args flag <<<"$case"
  out=$TMP_ROOT/bad
  # shellcheck disable=SC2086
  run_mpi $np $TMP_ROOT/bad.log "$EP" $args --out "$out"
  expect "ep bad input '$args'" "exit 2, one error line naming $flag, nothing written" \
    eval '[ $RC = 2 ] && [ "$(grep -c "error:" $LOG)" = 1 ] && grep "error:" $LOG | grep -q -- "$flag" && [ ! -e $out ]'
done

run_mpi 1 $TMP_ROOT/help.log "$EP" --help
expect "ep --help has examples" "exit 0 and an Examples section" eval '[ $RC = 0 ] && grep -q "Examples:" $LOG'
