#!/usr/bin/env bash
# dtbench-ckpt under mpirun: save/commit/load on 1-4 ranks and several layouts, resharding loads
# (4->2, 4->3, 2->4, uneven/empty 1-D splits, another TP/PP/FSDP split), strict key modes, and the
# failures the suite exists to catch: overlapping pieces, a failing writer, SIGKILL mid-write, a
# flipped byte, a truncated file, ENOSPC, overwriting, an uncommitted checkpoint.
source "$(dirname "$0")/../lib.sh"
CK=$BIN/dtbench-ckpt
Q=(-q --compute-ms 1 --steps-per-save 2 --repeat 2)
Q1=(-q --compute-ms 1 --steps-per-save 2 --repeat 1)

col() { csvq "$1" --where check="$3" --print "$2"; }  # column $2 of check $3's rows
fail_check_names() {  # FAIL row of check $2 naming rank $3 in failing_ranks or culprit
  csvq "$1" --where check="$2" status=FAIL failing_ranks@="$3" || csvq "$1" --where check="$2" status=FAIL culprit@="$3"
}
only_fails() {  # every FAIL row is one of the listed checks
  local f=$1; shift
  local pat; pat=$(printf '%s|' "$@"); pat=${pat%|}
  no_rows "$f" status=FAIL "check!~^($pat)$"
}

# 1. Save + async saves + load, 1-4 ranks, several layouts; the temp checkpoint dir is removed.
for np in 1 2 3 4; do
  out=$TMP_ROOT/np$np
  run_mpi $np $TMP_ROOT/np$np.log "$CK" "${Q[@]}" --out "$out"
  expect "ckpt np=$np default layout: all checks pass, temp dir removed" "exit 0, only PASS, no ckpt-* left" \
    eval '[ $RC = 0 ] && all_pass $out && [ -z "$(ls -d $out/ckpt-tmp-* 2>/dev/null)" ] &&
          [ "$(col $(checks_csv $out) status save.commit | sort -u)" = PASS ] && [ "$(col $(checks_csv $out) status save.commit | wc -l)" = 3 ]'
done
while read -r np args; do
  out=$TMP_ROOT/lay-$np-${args// /}
  # shellcheck disable=SC2086
  run_mpi $np $out.log "$CK" "${Q[@]}" --out "$out" $args </dev/null
  expect "ckpt np=$np $args" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'
done <<'EOF'
4 --tp 2 --writers 2
4 --tp 2 --pp 2 --optimizer none -d bf16
4 --pp 2 --fsdp --writers 3 --io buffered
4 --tp 2 --no-fully-parallel
3 --fsdp -d fp16 --load-fsdp off
4 --tp 2 --load-tp 1 --load-pp 2 --load-fsdp on
EOF
# Fully parallel save (the default, as in Megatron): replicated params are written by all their DP
# holders, so the files are about even; without it the first holder (rank 0) writes them all.
sizes() { stat -c %s "$1"/__*_0 | sort -n | tr '\n' ' '; }  # smallest first
for fp in default --no-fully-parallel; do
  run_mpi 4 $TMP_ROOT/fp$fp.log "$CK" "${Q1[@]}" --out $TMP_ROOT/fp$fp --ckpt-dir $TMP_ROOT/fp$fp.ck --save-only \
    ${fp#default}
done
expect "ckpt fully parallel save (default) spreads replicated params over DP ranks" \
  "largest file <= 1.2x smallest; with --no-fully-parallel rank 0's is > 1.5x the others" \
  eval 'read -r -a a <<<"$(sizes $TMP_ROOT/fpdefault.ck/step_2)" &&
        read -r -a b <<<"$(sizes $TMP_ROOT/fp--no-fully-parallel.ck/step_2)" &&
        [ ${#a[@]} = 4 ] && [ $((a[3] * 10)) -le $((a[0] * 12)) ] &&
        [ "$(stat -c %s $TMP_ROOT/fp--no-fully-parallel.ck/step_2/__0_0)" = "${b[3]}" ] &&
        [ $((b[3] * 10)) -gt $((b[2] * 15)) ]'

# Metrics of item 6 are in the perf CSV.
p=$(perf_csv $TMP_ROOT/np4)
expect "ckpt perf CSV has the save/load metrics" \
  "blocking, wait for the previous save, staging, write agg/slowest, durable, sync save, inflation, load, verify" \
  eval 'for m in blocking_time wait_for_previous_save staging_bw write_bw_aggregate write_bw_slowest_rank \
                 time_to_durable_commit sync_save_time sync_write_bw_aggregate staging_bytes_per_rank \
                 step_time_inflation load_bw verify_bw blocking_over_sync_save training_stall stall_over_sync_save; do
          grep -q ",$m," $p || exit 1; done &&
        python3 -c "
import csv, sys
rows = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if not l.startswith(\"#\")) if r[\"op\"] == \"save\"]
get = lambda m: [float(r[\"value\"]) for r in rows if r[\"metric\"] == m]
stall, block, wait = get(\"training_stall\"), get(\"blocking_time\"), get(\"wait_for_previous_save\")
assert stall and stall[0] >= max(block[0], wait[0]) - 1e-6, (stall, block, wait)
" $p'

# 2. Resharding: save under -np 4 (TP2, FSDP, 2 writers, split1d with empty ranks), load elsewhere.
R=$TMP_ROOT/reshard
run_mpi 4 $TMP_ROOT/rs-save.log "$CK" "${Q[@]}" --out $TMP_ROOT/rs-save --ckpt-dir $R --save-only --tp 2 --fsdp \
  --writers 2 --split1d 5,5,0,0
expect "ckpt reshard: save np=4 TP2 FSDP split1d 5,5,0,0" "exit 0, COMMIT, latest -> step_4" \
  eval '[ $RC = 0 ] && all_pass $TMP_ROOT/rs-save && [ -f $R/step_4/COMMIT ] && [ "$(cat $R/latest)" = step_4 ] &&
        [ "$(ls $R/step_4 | grep -c "^__")" -le 8 ]'
while read -r np args; do
  out=$TMP_ROOT/rs-$np-${args// /}
  # shellcheck disable=SC2086
  run_mpi $np $out.log "$CK" -q --out "$out" --ckpt-dir $R --load-only $args </dev/null
  expect "ckpt reshard 4 -> $np: $args" "exit 0, every element verified" \
    eval '[ $RC = 0 ] && all_pass $out && [ "$(col $(checks_csv $out) n_checked load.values)" -gt 0 ]'
done <<'EOF'
2 --load-split1d 3,7
3 --load-split1d 0,4,6
3 --tp 1 --load-split1d 10,0,0 --strict raise_all
4 --load-tp 4 --load-fsdp off --load-split1d 5,0,5,0
4 --tp 1 --pp 2 --load-split1d 1,1,2,6
1 --load-split1d 10
EOF
# Empty pieces first, in the middle or last: an empty piece shares its (key, offset) id with the next
# rank's piece and must never be chosen to write it (a hole at global index 0 otherwise).
while read -r np args; do
  out=$TMP_ROOT/empty-$np-${args//[ ,]/_}  # no comma: the path lands in a CSV field
  # shellcheck disable=SC2086
  run_mpi $np $out.log "$CK" "${Q[@]}" --out "$out" $args </dev/null
  expect "ckpt empty pieces np=$np: $args" "exit 0, save.validate and every load check PASS" \
    eval '[ $RC = 0 ] && all_pass $out && [ "$(col $(checks_csv $out) n_checked load.values)" -gt 0 ]'
done <<'EOF'
3 --split1d 0,4,7
4 --split1d 0,5,5,0
3 --tp 3 --hidden 48 --split1d 4,0,7
3 --split1d 4,0,7 --optimizer none
5 --split1d 0,0,3,0,4 --load-split1d 7,0,0,0,0
EOF
R2=$TMP_ROOT/reshard2
run_mpi 2 $TMP_ROOT/rs2-save.log "$CK" "${Q[@]}" --out $TMP_ROOT/rs2-save --ckpt-dir $R2 --save-only --split1d 3,3
run_mpi 4 $TMP_ROOT/rs2-load.log "$CK" -q --out $TMP_ROOT/rs2-load --ckpt-dir $R2 --load-only --tp 2 --load-split1d 0,6,0,0
expect "ckpt reshard 2 -> 4 (DP2 -> TP2xDP2, split1d 3,3 -> 0,6,0,0)" "exit 0, all PASS" \
  eval '[ $RC = 0 ] && all_pass $TMP_ROOT/rs2-load'

# 3. Strict modes (Megatron's StrictHandling): saved with Adam, loaded without (missing keys), and
# the reverse (unexpected).
S=$TMP_ROOT/strict-adam N=$TMP_ROOT/strict-none
run_mpi 2 $TMP_ROOT/st1.log "$CK" "${Q[@]}" --out $TMP_ROOT/st1 --ckpt-dir $S --save-only
run_mpi 2 $TMP_ROOT/st2.log "$CK" "${Q[@]}" --out $TMP_ROOT/st2 --ckpt-dir $N --save-only --optimizer none
while read -r root opt mode want; do
  out=$TMP_ROOT/st-$opt-$mode
  run_mpi 2 $out.log "$CK" -q --out "$out" --ckpt-dir $root --load-only --load-optimizer $opt --strict $mode </dev/null
  case $want in
    pass) expect "ckpt strict $mode (load $opt)" "exit 0" eval '[ $RC = 0 ] && all_pass $out' ;;
    warn) expect "ckpt strict $mode (load $opt) warns" "exit 0 and a warning naming the keys" \
            eval '[ $RC = 0 ] && all_pass $out && grep -q "warning: .*keys" $LOG' ;;
    raise-missing) expect "ckpt strict $mode raises on missing keys" "exit 1, load.strict FAIL, 'Missing keys'" \
            eval '[ $RC = 1 ] && grep -q "Missing keys" $LOG && only_fails $(checks_csv $out) load.strict' ;;
    raise-unexp) expect "ckpt strict $mode raises on unexpected keys" "exit 1, load.strict FAIL on every rank" \
            eval '[ $RC = 1 ] && grep -q "Unexpected keys" $LOG && fail_check_names $(checks_csv $out) load.strict 1' ;;
    read-fail) expect "ckpt strict $mode: unexpected key fails in the loader" "exit 1, load.read FAIL" \
            eval '[ $RC = 1 ] && grep -q "is not in the checkpoint" $LOG && only_fails $(checks_csv $out) load.read load.values' ;;
  esac
done <<EOF
$S none raise_all raise-missing
$S none raise_unexpected pass
$S none log_all warn
$S none return_all pass
$N adam raise_unexpected raise-unexp
$N adam log_unexpected warn
$N adam ignore_all pass
$N adam return_unexpected pass
$N adam assume_ok_unexpected read-fail
EOF

# 4. Save-time validation: rank 3 claims a box another main replica covers.
out=$TMP_ROOT/overlap
run_mpi 4 $out.log "$CK" "${Q[@]}" --out $out --inject-fault overlap,rank=3
expect "ckpt overlapping pieces rejected (Invalid access pattern), culprit 3" "exit 1, save.validate FAIL naming 3" \
  eval '[ $RC = 1 ] && grep -q "Invalid access pattern" $LOG && fail_check_names $(checks_csv $out) save.validate 3'

# 5. A writer thread fails on rank 2 in the last save: every rank reports it, not committed,
#    "latest" stays on the previous checkpoint, which still loads.
W=$TMP_ROOT/wfail
run_mpi 4 $TMP_ROOT/wfail.log "$CK" "${Q[@]}" --out $TMP_ROOT/wfail --ckpt-dir $W --writers 2 \
  --inject-fault writer-fail,rank=2,index=2
expect "ckpt writer failure on rank 2: FAIL naming 2, reported on every rank, no commit, latest unchanged" \
  "exit 1; save.commit FAIL for step 4 naming 2; 4 ranks print it; step_4 has no COMMIT; latest=step_2; load PASS" \
  eval '[ $RC = 1 ] && c=$(checks_csv $TMP_ROOT/wfail) && fail_check_names $c save.commit 2 && only_fails $c save.commit &&
        [ "$(grep -c "checkpoint step 4 NOT committed (failed ranks: 2)" $LOG)" = 4 ] && [ ! -e $W/step_4/COMMIT ] &&
        [ "$(cat $W/latest)" = step_2 ] && [ "$(col $c status load.values)" = PASS ]'

# 5b. Background staging: rank 1's optimizer step changes the state before its staging copy of the
#     last save ran (the wait the suite exists to prove): that checkpoint holds step-6 values under
#     step 4, which the load finds in rank 1's file. Synchronous staging passes and refuses the fault.
out=$TMP_ROOT/early
run_mpi 4 $out.log "$CK" "${Q[@]}" --out $out --inject-fault early-mutate,rank=1,index=2
expect "ckpt optimizer step before the staging copy finished: load.values FAIL, culprit 1" \
  "exit 1; only load.values fails, naming 1" \
  eval '[ $RC = 1 ] && c=$(checks_csv $out) && fail_check_names $c load.values 1 && only_fails $c load.values'
# The same fault on a save that is not the last (index 1 of 3 with --repeat 2): the loader verifies
# the save the fault targets (step 2), not only the latest.
out=$TMP_ROOT/early-mid
run_mpi 4 $out.log "$CK" "${Q[@]}" --out $out --inject-fault early-mutate,rank=1,index=1
expect "ckpt early-mutate on an earlier save: that step is loaded, load.values FAIL naming 1" \
  "exit 1; load.values fails naming 1; step 2 loaded" \
  eval '[ $RC = 1 ] && c=$(checks_csv $out) && fail_check_names $c load.values 1 && csvq $c --where check=load.values "case~/step_2$" status=FAIL'
# 5c. A metadata frame corrupted inside dtbench after MPI delivered it (the fabric interposer does
#     the same beneath dtbench in fabric.sh): exchange.metadata FAILs naming the receiving rank and
#     its node, at any exchange; an exchange number past the run's last is refused.
host=$(hostname)
for spec in "corrupt-frame,rank=2,index=0|4|all_gather of the piece lists|2" \
            "corrupt-frame,rank=1,index=4|3|broadcast of the commit verdict|1" \
            "corrupt-frame,rank=0,index=2|5|gather of the index entries|0" \
            "corrupt-frame,rank=1,index=1|2|broadcast of the step directory check|1"; do
  IFS='|' read -r f np ex r <<<"$spec"
  out=$TMP_ROOT/cframe-$np
  run_mpi $np $out.log "$CK" "${Q[@]}" --out $out --ckpt-dir $out-ck --inject-fault $f
  expect "ckpt --inject-fault $f (np $np): FAIL exchange.metadata [$ex] naming rank $r ($host)" \
    "exit 1, the FAIL row and line name rank $r and its node, no other check fails" \
    eval '[ $RC = 1 ] && c=$(checks_csv $out) && fail_check_names $c exchange.metadata $r && only_fails $c exchange.metadata &&
          grep -qE "^FAIL exchange.metadata \[$ex\].*failing ranks $r \($host\)" $LOG'
done
run_mpi 3 $TMP_ROOT/cframe-past.log "$CK" "${Q[@]}" --out $TMP_ROOT/cframe-past --inject-fault corrupt-frame,rank=1,index=100000
expect "ckpt --inject-fault corrupt-frame past the last exchange: refused" "exit 2 naming --inject-fault, no results left" \
  eval '[ $RC = 2 ] && grep -q "error: --inject-fault corrupt-frame,rank=1,index=100000: nothing was corrupted" $LOG &&
        [ ! -e $TMP_ROOT/cframe-past ]'
# Faults aimed at no save, or at the synchronous save (no optimizer step follows it): refused.
for spec in early-mutate,rank=1,index=3 kill,rank=1,index=7 writer-fail,index=3 early-mutate,rank=1,index=0; do
  run_mpi 2 $TMP_ROOT/badsave.log "$CK" "${Q[@]}" --out $TMP_ROOT/badsave --inject-fault $spec
  expect "ckpt refuses --inject-fault $spec" "exit 2 naming --inject-fault, nothing written" \
    eval '[ $RC = 2 ] && grep -q "error: --inject-fault" $LOG && [ ! -e $TMP_ROOT/badsave ]'
done
out=$TMP_ROOT/syncstage
run_mpi 4 $out.log "$CK" "${Q[@]}" --out $out --staging sync
expect "ckpt --staging sync: all checks pass, layout column says staging=sync" "exit 0, only PASS" \
  eval '[ $RC = 0 ] && all_pass $out && grep -q "staging=sync" $(perf_csv $out)'
run_mpi 2 $TMP_ROOT/syncstage-bad.log "$CK" "${Q[@]}" --out $TMP_ROOT/syncstage-bad --staging sync --inject-fault early-mutate,rank=1
expect "ckpt --staging sync refuses the early-mutate fault" "exit 2, names the flag, nothing written" \
  eval '[ $RC = 2 ] && grep -q "early-mutate" $LOG && [ ! -e $TMP_ROOT/syncstage-bad ]'

# 6. SIGKILL of rank 1 halfway through its file in the third save: the previous checkpoint stays
#    loadable bit for bit, the partial one has no COMMIT and is refused.
K=$TMP_ROOT/kill CLEAN=$TMP_ROOT/clean
run_mpi 4 $TMP_ROOT/kill.log "$CK" "${Q[@]}" --out $TMP_ROOT/kill --ckpt-dir $K --save-only --inject-fault kill,rank=1,index=2
expect "ckpt SIGKILL mid-write: job dies, partial step_4 has no COMMIT, latest=step_2" "rc!=0" \
  eval '[ $RC != 0 ] && [ -d $K/step_4 ] && [ ! -e $K/step_4/COMMIT ] && [ "$(cat $K/latest)" = step_2 ] && [ -f $K/step_2/COMMIT ]'
run_mpi 4 $TMP_ROOT/clean.log "$CK" -q --compute-ms 1 --steps-per-save 2 --repeat 1 --out $TMP_ROOT/clean --ckpt-dir $CLEAN --save-only
expect "ckpt SIGKILL: previous checkpoint identical byte for byte to a clean save" "cmp of every file of step_2" \
  eval '[ $RC = 0 ] && for f in $CLEAN/step_2/*; do cmp -s $f $K/step_2/$(basename $f) || exit 1; done'
run_mpi 4 $TMP_ROOT/kill-load.log "$CK" -q --out $TMP_ROOT/kill-load --ckpt-dir $K --load-only
expect "ckpt SIGKILL: latest (previous) checkpoint loads and verifies" "exit 0, all PASS" \
  eval '[ $RC = 0 ] && all_pass $TMP_ROOT/kill-load && grep -q "step_2" $(checks_csv $TMP_ROOT/kill-load)'
run_mpi 4 $TMP_ROOT/kill-partial.log "$CK" -q --out $TMP_ROOT/kill-partial --ckpt-dir $K --load-only --load-step 4
expect "ckpt SIGKILL: the partial checkpoint is refused with a clear message" "exit 1, load.commit FAIL, 'no COMMIT marker'" \
  eval '[ $RC = 1 ] && grep -q "not a committed checkpoint (no COMMIT marker)" $LOG && only_fails $(checks_csv $TMP_ROOT/kill-partial) load.commit'

# 7. Corruption: a flipped byte in rank 2's file, a truncated file of rank 1; named with file and offset.
C=$TMP_ROOT/corrupt
run_mpi 4 $TMP_ROOT/corrupt-save.log "$CK" "${Q1[@]}" --out $TMP_ROOT/corrupt-save --ckpt-dir $C --save-only
cp -r $C $TMP_ROOT/trunc
printf '\x5a' | dd of=$C/step_2/__2_0 bs=1 seek=1001 conv=notrunc status=none
run_mpi 4 $TMP_ROOT/flip.log "$CK" -q --out $TMP_ROOT/flip --ckpt-dir $C --load-only
expect "ckpt flipped byte: checksum FAIL names __2_0 offset 1001, culprit 2" "exit 1, load.checksum/values FAIL, culprit 2" \
  eval '[ $RC = 1 ] && c=$(checks_csv $TMP_ROOT/flip) && fail_check_names $c load.checksum 2 && fail_check_names $c load.values 2 &&
        [ "$(col $c first_index load.checksum)" = 1001 ] && grep -q "checksum mismatch in .*__2_0 at byte offset 1001" $LOG &&
        only_fails $c load.checksum load.values'
T=$TMP_ROOT/trunc
truncate -s 3000 $T/step_2/__1_0
run_mpi 4 $TMP_ROOT/trunc.log "$CK" -q --out $TMP_ROOT/trunc-out --ckpt-dir $T --load-only
expect "ckpt truncated file: FAIL names __1_0 and offset 3000, culprit 1" "exit 1, load.files FAIL culprit 1" \
  eval '[ $RC = 1 ] && c=$(checks_csv $TMP_ROOT/trunc-out) && fail_check_names $c load.files 1 &&
        [ "$(col $c first_index load.files)" = 3000 ] && grep -q "__1_0 is truncated" $LOG'
# A flipped element after the read (a misplaced read) on rank 1: load.values names rank 1.
out=$TMP_ROOT/flipval
run_mpi 4 $out.log "$CK" -q --out $out --ckpt-dir $TMP_ROOT/reshard --load-only --load-split1d 5,0,5,0 \
  --inject-fault flip,rank=1,op=load.values,index=3
expect "ckpt value check catches a wrong loaded element on rank 1" "exit 1, load.values FAIL naming 1 only" \
  eval '[ $RC = 1 ] && fail_check_names $(checks_csv $out) load.values 1 && only_fails $(checks_csv $out) load.values &&
        [ "$(col $(checks_csv $out) failing_ranks load.values)" = 1 ]'

# 8. ENOSPC: a small tmpfs (or, without mount rights, a file-size limit) under a checkpoint that
#    was saved before; the new saves fail on every rank, the previous stays loadable.
E=$TMP_ROOT/enospc
mkdir -p $E
if mount -t tmpfs -o size=760k tmpfs $E 2>/dev/null; then
  LIMIT=() ERRTXT="No space left on device"
  trap 'umount $E 2>/dev/null; rm -rf "$TMP_ROOT"' EXIT
else
  LIMIT=(bash -c 'ulimit -f 64; exec "$@"' _) ERRTXT="File too large"
fi
run_mpi 4 $TMP_ROOT/enospc1.log "$CK" "${Q1[@]}" --no-sync-save --out $TMP_ROOT/enospc1 --ckpt-dir $E --save-only
run_mpi 4 $TMP_ROOT/enospc2.log "${LIMIT[@]}" "$CK" -q --no-sync-save --compute-ms 1 --steps-per-save 3 --repeat 2 --out $TMP_ROOT/enospc2 \
  --ckpt-dir $E
expect "ckpt out of space ($ERRTXT): error on every rank, nothing committed, previous checkpoint loads" \
  "exit 1, save.commit FAILs only, every rank prints the error, latest=step_2, load PASS" \
  eval '[ $RC = 1 ] && c=$(checks_csv $TMP_ROOT/enospc2) && only_fails $c save.commit &&
        for r in 0 1 2 3; do grep -q "rank $r: checkpoint step 3 NOT committed.*$ERRTXT" $LOG || exit 1; done &&
        [ "$(cat $E/latest)" = step_2 ] && [ ! -e $E/step_3/COMMIT ] && [ "$(col $c status load.values)" = PASS ]'
umount $E 2>/dev/null

# 9. An existing checkpoint directory is never overwritten without --overwrite.
O=$TMP_ROOT/over
run_mpi 2 $TMP_ROOT/over1.log "$CK" "${Q[@]}" --out $TMP_ROOT/over1 --ckpt-dir $O --save-only
sum1=$(cat $O/step_2/__0_0 | md5sum)
run_mpi 2 $TMP_ROOT/over2.log "$CK" "${Q[@]}" --out $TMP_ROOT/over2 --ckpt-dir $O --save-only
expect "ckpt refuses to overwrite an existing step directory" "exit 2, names the directory and --overwrite, unchanged" \
  eval '[ $RC = 2 ] && grep -q "step_0 already exists; refusing to overwrite it (pass --overwrite)" $LOG &&
        [ "$(cat $O/step_2/__0_0 | md5sum)" = "$sum1" ] && [ ! -e $TMP_ROOT/over2 ]'
run_mpi 2 $TMP_ROOT/over3.log "$CK" "${Q[@]}" --out $TMP_ROOT/over3 --ckpt-dir $O --overwrite
expect "ckpt --overwrite replaces it" "exit 0, all PASS, no build directory left" \
  eval '[ $RC = 0 ] && all_pass $TMP_ROOT/over3 && [ -z "$(ls -A $O | grep overwrite)" ]'
# An overwrite is built beside the old step and swapped in at commit: a crash while rewriting the
# step that `latest` names leaves that step committed and loadable, and the next overwrite works.
run_mpi 4 $TMP_ROOT/ow1.log "$CK" "${Q[@]}" --out $TMP_ROOT/ow1 --ckpt-dir $O/w --save-only
sum4=$(cat $O/w/step_4/__0_0 | md5sum)
run_mpi 4 $TMP_ROOT/ow2.log "$CK" "${Q[@]}" --out $TMP_ROOT/ow2 --ckpt-dir $O/w --save-only --overwrite \
  --inject-fault kill,rank=1,index=2
expect "ckpt --overwrite of step_4, SIGKILL mid-write: the old step_4 stays committed and untouched" \
  "killed, step_4 with COMMIT and its old bytes, latest names a committed step" \
  eval '[ $RC != 0 ] && [ -f $O/w/step_4/COMMIT ] && [ "$(cat $O/w/step_4/__0_0 | md5sum)" = "$sum4" ] &&
        [ -f "$O/w/$(cat $O/w/latest)/COMMIT" ]'
run_mpi 4 $TMP_ROOT/ow3.log "$CK" -q --out $TMP_ROOT/ow3 --ckpt-dir $O/w --load-only --load-step 4
expect "ckpt load of the step whose overwrite was killed" "exit 0, every check PASS" \
  eval '[ $RC = 0 ] && all_pass $TMP_ROOT/ow3'
run_mpi 4 $TMP_ROOT/ow4.log "$CK" "${Q[@]}" --out $TMP_ROOT/ow4 --ckpt-dir $O/w --overwrite
expect "ckpt --overwrite after a killed overwrite" "exit 0, all PASS, latest -> step_4, no build directory left" \
  eval '[ $RC = 0 ] && all_pass $TMP_ROOT/ow4 && [ "$(cat $O/w/latest)" = step_4 ] &&
        [ -z "$(ls -A $O/w | grep overwrite)" ]'

# 10. Bad input: one line naming the flag, exit 2.
bad=(
  "--tp 3|--tp"
  "--load-tp 3|--load-tp"
  "--optimizer sgd|--optimizer"
  "--io mmap|--io"
  "--staging later|--staging"
  "--writers 0|--writers"
  "--strict maybe|--strict"
  "--split1d 1,2|--split1d"
  "--load-only|--load-only"
  "--load-fsdp yes|--load-fsdp"
)
for case in "${bad[@]}"; do
  args=${case%%|*} flag=${case##*|}
  # shellcheck disable=SC2086
  run_mpi 4 $TMP_ROOT/bad.log "$CK" $args --out $TMP_ROOT/bad
  expect "ckpt bad input '$args'" "exit 2, one line naming $flag, nothing written" \
    eval '[ $RC = 2 ] && grep -q -- "error: .*$flag" $LOG && [ ! -e $TMP_ROOT/bad ]'
done
