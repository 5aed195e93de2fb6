#!/usr/bin/env bash
# Burn-in (--duration): every suite repeats its validated workload in windows until the time is up;
# a fault injected in one window is counted in that window alone, per node and size; SIGTERM stops
# it with the rows so far on disk; bad durations exit 2 with nothing written.
source "$(dirname "$0")/../lib.sh"
windows_csv() { ls "$1"/*-windows.csv 2>/dev/null | head -1; }
max_window() { csvq "$1" --print window | sort -n | tail -1; }

# 20 s of dtbench-coll, a flipped element received on rank 1 in window 3 only (all_gather).
out=$TMP_ROOT/coll
run_mpi 3 $TMP_ROOT/coll.log "$BIN/dtbench-coll" -b 4K -e 256K -f 8 -n 3 -w 1 -q --out "$out" --duration 20s \
  --inject-fault flip,rank=1,op=all_gather,window=3
expect "burn-in coll 20s: several windows, the fault counted in window 3 only" \
  "exit 1, > 4 windows, FAIL rows only in window 3 naming rank 1, per-node summary, a complete report" \
  eval 'w=$(windows_csv $out) && [ $RC = 1 ] && [ "$(max_window $w)" -gt 4 ] &&
        [ "$(csvq $w --count --where status=FAIL)" -ge 2 ] && no_rows $w status=FAIL window!=3 &&
        no_rows $w status=FAIL failing_ranks!=1 && csvq $w --where window=3 status=FAIL failing_nodes!= &&
        grep -Eq "^burn-in: [0-9]+ windows in (19|2[0-9])\.?[0-9]*s; errors per node and size: node [^:]+: [0-9]+ \([0-9]+B: 2," $LOG &&
        grep -q "^# end_of_run=complete" $w && grep -q "^# end_of_run=complete" $(checks_csv $out)'

# Every suite's workload runs again and again (a second window must not trip over the first's
# files, buffers or checkpoints). Small workloads and 8 s, so that even a sanitizer build (a
# window of 2-5 s) runs a second window.
source "$(dirname "$0")/../faults/suites.sh"
for suite in coll ddp fsdp ep ckpt p2p; do
  exe=$BIN/dtbench-$suite
  [ -x "$exe" ] || { echo "SKIP burn-in $suite: not built"; continue; }
  out=$TMP_ROOT/rep-$suite
  read -r -a Q <<<"$(quick_args "$suite")"
  run_mpi 4 $TMP_ROOT/rep-$suite.log "$exe" "${Q[@]}" --out "$out" --duration 8s
  expect "burn-in $suite 8s: at least 2 clean windows" "exit 0, windows 0..>=1 in the windows CSV, all PASS" \
    eval '[ $RC = 0 ] && all_pass $out && w=$(windows_csv $out) && [ "$(max_window $w)" -ge 1 ] && no_rows $w status=FAIL'
done

# SIGTERM to every rank (what Slurm's time limit and scancel do) mid burn-in: exit 143, every row
# written so far intact.
out=$TMP_ROOT/term
timeout -k 5 60 "${MPIRUN[@]}" -np 2 "$BIN/dtbench-coll" -b 4K -e 64K -f 4 -n 3 -w 1 -q --out "$out" --duration 5m \
  >$TMP_ROOT/term.log 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  w=$(windows_csv $out)
  [ -n "$w" ] && [ "$(grep -vc '^#' "$w")" -gt 20 ] && break
  sleep 0.1
done
mp=$(pgrep -P $pid -x mpirun)
pids=$([ -n "$mp" ] && pgrep -P "$mp" -d ' ')
[ -n "$pids" ] && kill -TERM $pids
wait $pid
RC=$? LOG=$TMP_ROOT/term.log
expect "burn-in stopped by SIGTERM" "exit 143, the windows CSV's rows intact (csvq reads it), no end-of-run line" \
  eval '[ $RC = 143 ] && w=$(windows_csv $out) && [ "$(csvq $w --count --where status=PASS)" -gt 20 ] &&
        ! grep -q "^# end_of_run" $w'

# Bad input: one line naming the flag, exit 2, nothing written.
expect_bad_input burn-in 2 "$BIN/dtbench-coll" "--duration 0|--duration" "--duration 5x|--duration" "--duration -3s|--duration" \
  "--inject-fault flip,window=2|needs --duration" "--inject-fault flip,window=-1 --duration 2s|window must be >= 0"
if [ -x "$BIN/dtbench-ckpt" ]; then
  run_mpi 2 $TMP_ROOT/ckptdir.log "$BIN/dtbench-ckpt" --duration 2s --ckpt-dir $TMP_ROOT/ck --out $TMP_ROOT/ckout
  expect "burn-in ckpt into a fixed --ckpt-dir without --overwrite is refused" "exit 2, names --ckpt-dir, nothing written" \
    eval '[ $RC = 2 ] && grep -q -- "--duration with --ckpt-dir" $LOG && [ ! -e $TMP_ROOT/ckout ] && [ ! -e $TMP_ROOT/ck ]'
fi
# A window that never comes (the burn-in ended first) corrupted nothing: exit 2, not a PASS.
out=$TMP_ROOT/late
run_mpi 2 $TMP_ROOT/late.log "$BIN/dtbench-coll" -b 4K -e 4K -n 2 -w 1 -q --out "$out" --duration 1s \
  --inject-fault flip,window=100000
expect "burn-in fault in a window that never ran is refused" "exit 2, 'nothing was corrupted', no reports left" \
  eval '[ $RC = 2 ] && grep -q "no check on rank any matched, nothing was corrupted" $LOG && [ -z "$(checks_csv $out)" ]'
