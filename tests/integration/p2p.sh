#!/usr/bin/env bash
# dtbench-p2p under mpirun: every schedule covers each link it should and passes on 2-5 ranks; a
# slow rank is named (and only it); a corrupted or misrouted message fails its check naming the
# receiver and the sender, whether dtbench or MPI beneath it corrupts it; bad input exits 2.
source "$(dirname "$0")/../lib.sh"
P2P=$BIN/dtbench-p2p
QUICK=(-b 8 -e 64K -f 16 -n 3 -w 1 -q)
links_csv() { ls "$1"/*-links.csv 2>/dev/null | head -1; }

# The links each schedule must cover, per size: pairs uni n(n-1), bi n(n-1); ring uni n (2 ranks:
# 2), bi 2n (2 ranks: 2); one_to_all 2(n-1) both ways.
for np in 2 3 4 5; do
  out=$TMP_ROOT/np$np
  run_mpi $np $TMP_ROOT/np$np.log "$P2P" "${QUICK[@]}" --patterns pairs,ring,one_to_all --out "$out"
  ring_bi=$((np == 2 ? 2 : 2 * np))
  expect "p2p np=$np every schedule passes and covers its links" \
    "exit 0, only PASS rows, link counts pairs $((np * (np - 1))), ring $np/$ring_bi, one_to_all $((2 * (np - 1)))" \
    eval '[ $RC = 0 ] && all_pass $out && l=$(links_csv $out) &&
          [ "$(csvq $l --count --where pattern=pairs direction=uni bytes=32768)" = $((np * (np - 1))) ] &&
          [ "$(csvq $l --count --where pattern=pairs direction=bi bytes=32768)" = $((np * (np - 1))) ] &&
          [ "$(csvq $l --count --where pattern=ring direction=uni bytes=32768)" = $np ] &&
          [ "$(csvq $l --count --where pattern=ring direction=bi bytes=32768)" = $ring_bi ] &&
          [ "$(csvq $l --count --where pattern=one_to_all direction=uni bytes=32768)" = $((2 * (np - 1))) ] &&
          no_rows $l n_wrong!=0 && no_rows $l "GBps<=0" &&
          csvq $(perf_csv $out) --where op=p2p_pairs metric=rounds "value=$(( np % 2 ? 2 * np : 2 * (np - 1) ))"'
done

# Every ordered pair appears exactly once among the uni pairs links (no pair measured twice or never).
out=$TMP_ROOT/np5
expect "p2p np=5 pairs uni: each ordered pair once" "20 distinct src->dst" \
  eval '[ "$(csvq $(links_csv $out) --where pattern=pairs direction=uni bytes=32768 --print src_rank,dst_rank | sort -u | wc -l)" = 20 ]'

# bf16 payloads, and the node level refused on one node (bad input: exit 2, nothing written).
out=$TMP_ROOT/bf16
run_mpi 3 $TMP_ROOT/bf16.log "$P2P" "${QUICK[@]}" -d bf16 --out "$out"
expect "p2p np=3 bf16 passes" "exit 0 and only PASS rows" eval '[ $RC = 0 ] && all_pass $out'

# A slow rank (--test-slow-rank 2:8) is the only one named, in the verdict lines and, with
# --fail-slow, in FAIL rows of the bandwidth checks.
out=$TMP_ROOT/slow
expect_within_tries 3 "p2p slow rank 2 named, no other" "exit 1; 'slow rank 2' lines, FAIL rows naming rank 2 only" \
  'rm -rf $out; run_mpi 4 $TMP_ROOT/slow.log "$P2P" -b 1M -e 1M -n 8 -w 1 --patterns pairs --out "$out" --test-slow-rank 2:8 --fail-slow' \
  '[ $RC = 1 ] && grep -q "p2p_pairs.uni 1048576B: slow rank 2 (node " $LOG &&
   ! grep -E "slow rank [013] |slow link" $LOG && f=$(checks_csv $out) &&
   csvq $f --where check=p2p_pairs.uni.bandwidth status=FAIL failing_ranks=2 culprit=2 &&
   no_rows $f status=FAIL failing_ranks!=2 && no_rows $f check~^p2p_pairs.uni$ status=FAIL'
out=$TMP_ROOT/fast
run_mpi 4 $TMP_ROOT/fast.log "$P2P" -b 1M -e 1M -n 8 -w 1 --patterns pairs --out "$out"
expect "p2p without a slow rank names none" "exit 0, a 'no slow rank or link' line or at most noise without --fail-slow" \
  eval '[ $RC = 0 ] && all_pass $out && grep -q "p2p_pairs.uni 1048576B: " $LOG'

# Faults inside dtbench: a flipped element received on rank 1; a misrouted payload sent by rank 3.
out=$TMP_ROOT/flip
run_mpi 4 $TMP_ROOT/flip.log "$P2P" -b 4K -e 4K -n 2 -w 0 -q --patterns pairs --direction uni --out "$out" \
  --inject-fault flip,rank=1,index=9
expect "p2p flip on rank 1 is caught" "exit 1, FAIL naming rank 1 as receiver, a sender as culprit, links n_wrong" \
  eval '[ $RC = 1 ] && f=$(checks_csv $out) && csvq $f --where check=p2p_pairs.uni status=FAIL failing_ranks=1 first_index=9 &&
        csvq $(links_csv $out) --where dst_rank=1 "n_wrong>=1" && no_rows $(links_csv $out) dst_rank!=1 n_wrong!=0'
out=$TMP_ROOT/misroute
run_mpi 4 $TMP_ROOT/misroute.log "$P2P" -b 4K -e 4K -n 2 -w 0 -q --out "$out" --inject-fault misroute,rank=3
expect "p2p misrouted payload from rank 3 is caught" "exit 1, every FAIL row's culprit is 3, rank 3 not among the receivers" \
  eval '[ $RC = 1 ] && f=$(checks_csv $out) && [ "$(fail_rows $f)" = 4 ] && no_rows $f status=FAIL culprit!=3 &&
        no_rows $f status=FAIL failing_ranks@=3 && grep -q "culprit 3 (" $LOG'

# Faults beneath dtbench: MPI itself delivers wrong data (the PMPI interposer, op=send: what
# MPI_Irecv delivers). Call 25 on rank 3 is its first validated receive (warmup 5 + 20 timed).
if [ -n "${PMPI_FAULT_SO:-}" ] && [ -f "$PMPI_FAULT_SO" ]; then
  # A sanitizer build wants its runtime first in the preload list, before the interposer.
  preload=$PMPI_FAULT_SO
  asan=$(ldd "$P2P" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
  [ -n "$asan" ] && preload=$asan:$PMPI_FAULT_SO
  for mode in bitflip,op=send,rank=3,call=25 rotate,op=send,rank=2 truncate,op=send,rank=0 stale,op=send,rank=1; do
    rank=${mode#*rank=}; rank=${rank%%,*}
    out=$TMP_ROOT/pmpi-${mode%%,*}
    run_mpi 4 $TMP_ROOT/pmpi-${mode%%,*}.log -x LD_PRELOAD="$preload" -x DTBENCH_PMPI_FAULT="$mode" \
      "$P2P" -b 4K -e 4K -q --patterns pairs --direction uni --out "$out"
    expect "p2p MPI delivers wrong data ($mode)" "exit 1, FAIL naming receiver rank $rank, a sender as culprit" \
      eval '[ $RC = 1 ] && f=$(checks_csv $out) && csvq $f --where status=FAIL failing_ranks=$rank culprit!=$rank culprit!= &&
            no_rows $f status=FAIL failing_ranks!=$rank'
  done
else
  fail "p2p PMPI faults" "PMPI_FAULT_SO not built (make $PMPI_FAULT_SO)"
fi

# Bad input: one line naming the flag, exit 2, nothing written.
expect_bad_input p2p 3 "$P2P" "-b 1M -e 1K|--min-bytes" "--patterns pairs,star|--patterns" "--direction sideways|--direction" \
  "--level node|--level node" "--patterns one_to_all --reference 9|--reference 9" "--slow-factor 2|--slow-factor" \
  "--inject-fault drop|--inject-fault"
run_mpi 1 $TMP_ROOT/one.log "$P2P" --out $TMP_ROOT/one
expect "p2p on one rank is refused" "exit 2, 'at least 2 ranks', nothing written" \
  eval '[ $RC = 2 ] && grep -q "at least 2 ranks" $LOG && [ ! -e $TMP_ROOT/one ]'

# The report: a heat map per schedule, the wrong link framed; per-rank bars name the straggler.
REPORT=$BIN/dtbench-report
if [ -x "$REPORT" ]; then
  h=$TMP_ROOT/rep.html
  expect_within_tries 3 "report: p2p heat maps (one per schedule), the wrong link framed, the straggler's bar" \
    "page written, 3 heat maps, a framed cell, 'straggler rank 2 (' in a per-rank plot title" \
    'rm -rf $TMP_ROOT/rep $TMP_ROOT/rep-coll $h; mkdir -p $TMP_ROOT/rep && cp $TMP_ROOT/slow/* $TMP_ROOT/flip/* $TMP_ROOT/rep/ &&
     run_mpi 4 $TMP_ROOT/rep-coll.log "$BIN/dtbench-coll" --ops all_reduce -b 256K -e 256K -n 8 -w 1 -q \
       --out $TMP_ROOT/rep-coll --test-slow-rank 2:8 && cp $TMP_ROOT/rep-coll/* $TMP_ROOT/rep/;
     timeout 60 "$REPORT" $TMP_ROOT/rep -o $h >$TMP_ROOT/report.log 2>&1; RC=$? LOG=$TMP_ROOT/report.log' \
    '[ -s $h ] && [ "$(grep -c "data-kind=\"heatmap\"" $h)" = 3 ] && grep -q "stroke=\"#000\" stroke-width=\"2\"" $h &&
     grep -q "data-kind=\"ranks\"" $h && grep -q "<title>[^<]*all_reduce[^<]*straggler rank 2 (" $h &&
     grep -q "3 p2p heat maps" $LOG'
fi

# dtbench-isolate on planted result folders (one node: this host): PASS on complete reports;
# a report cut short (no end-of-run line) is MISSING, never PASS; bad input exits 2, writes nothing.
ISO=$BIN/dtbench-isolate
if [ -x "$ISO" ]; then
  host=$(grep -m1 '^# hosts=' "$(checks_csv $TMP_ROOT/np4)" | cut -d= -f2)
  J=$TMP_ROOT/iso
  mkdir -p $J/intra/$host $J/pairs $J/world
  cp $TMP_ROOT/np4/* $J/intra/$host/ && cp $TMP_ROOT/np3/* $J/world/ && echo "one node: no node pairs" >$J/pairs/not-run.txt
  timeout 30 "$ISO" $J --nodes "$host" --drain $J/drain.txt >$TMP_ROOT/iso.log 2>&1
  RC=$? LOG=$TMP_ROOT/iso.log
  expect "isolate on planted folders: complete reports PASS" "exit 0, 'node $host: PASS', empty drain list, the pairs step noted" \
    eval '[ $RC = 0 ] && grep -q "^node $host: PASS$" $LOG && [ -e $J/drain.txt ] && [ ! -s $J/drain.txt ] &&
          grep -q "node pairs not run: one node" $LOG'
  sed -i '/^# end_of_run=/d' $J/intra/$host/*-checks.csv
  timeout 30 "$ISO" $J --nodes "$host" --drain $J/drain.txt >$TMP_ROOT/iso2.log 2>&1
  RC=$? LOG=$TMP_ROOT/iso2.log
  expect "isolate: a report cut short is MISSING, not PASS" "exit 1, 'node $host: MISSING (... INCOMPLETE', drain list names it" \
    eval '[ $RC = 1 ] && grep -q "^node $host: MISSING (MISSING: intra-node run: .*INCOMPLETE" $LOG && [ "$(cat $J/drain.txt)" = "$host" ]'
  before=$(md5sum <$J/drain.txt)
  for args in "$TMP_ROOT/nonexistent --nodes $host|nonexistent" "$J|--nodes" "$J --nodes $host --baseline $TMP_ROOT/np4/nothing.csv|--baseline" \
              "$J --nodes $host --slow-factor 3|--slow-factor" "$J --nodes-file $TMP_ROOT/none.txt|--nodes-file"; do
    # shellcheck disable=SC2086
    timeout 30 "$ISO" ${args%%|*} --drain $J/drain.txt >$TMP_ROOT/iso-bad.log 2>&1
    RC=$? LOG=$TMP_ROOT/iso-bad.log
    expect "isolate bad input '${args%%|*}'" "exit 2, a line naming ${args#*|}, the drain list untouched" \
      eval '[ $RC = 2 ] && grep -q -- "${args#*|}" $LOG && [ "$(md5sum <$J/drain.txt)" = "$before" ]'
  done
fi
