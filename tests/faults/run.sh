#!/usr/bin/env bash
# Fault matrix: every fault case against every suite that is built, printing one table row per
# (case, suite) with what was expected and what was observed, plus PASS/FAIL/SKIP lines for
# tests/run_all.sh. Cases:
#   kill      one rank SIGKILLed inside a collective: every rank gone within --timeout + 10 s,
#             non-zero exit, the survivors' message names the collective, rows so far intact
#   slow      one rank's collectives 10x slower (ddp 50x): every check still PASS, the perf CSV's times
#             grow (>= 1.5x)
#   flip      corrupted data for every check the suite reports: FAIL row for that check naming the
#             rank (failing_ranks or culprit), exit 1
#   unwritable --out on a read-only file system and under /proc: exit 2 naming --out, nothing written
#   full-disk results on a full (tiny tmpfs) file system: exit 5 naming the file and ENOSPC, the
#             (ckpt also: checkpoints on a full tmpfs: ENOSPC on every rank, previous stays latest;)
#             rows already written complete (no half row) and identical to a clean run's
#   sigterm   SIGTERM to every rank mid-run (what Slurm sends at the time limit): exit 143, a message
#             naming the collective, rows so far intact and complete
#   malformed model CSV (suites that read one), thresholds and perf CSVs (dtbench-accept/-compare/
#             -report): exit 2, one message naming the file (and line), no crash, nothing written
# Env: BIN (bin), FAULT_NP (4), FAULT_SUITES (all known), FAULT_CASES (all), FAULT_FLIP (combined|each).
source "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/suites.sh"
CSV=(python3 "$HERE/csvcheck.py")
NP=${FAULT_NP:-4}
TMO=5
read -r -a SUITES <<<"${FAULT_SUITES:-${ALL_SUITES[*]}}"
CASES=" ${FAULT_CASES:-kill slow flip unwritable full-disk sigterm malformed} "
MOUNTS=()
cleanup() {
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$TMP_ROOT"
}
trap cleanup EXIT
trap "exit 143" TERM INT

TABLE=()
# verdict CASE SUITE OK EXPECTED OBSERVED: one table row and one PASS/FAIL line.
verdict() {
  local c=$1 s=$2 ok=$3 exp=$4 obs=$5 v
  if [ "$ok" = 0 ]; then v=PASS; pass "fault $c $s: $obs"; else v=FAIL; fail "fault $c $s" "expected $exp; observed $obs"; fi
  TABLE+=("$c|$s|$exp|$obs|$v")
}
skip() { echo "SKIP fault $1 $2: $3"; TABLE+=("$1|$2|-|$3|SKIP"); }
has() { [[ "$CASES" == *" $1 "* ]]; }
rows_of() { "${CSV[@]}" rows "$1" 2>/dev/null || echo 0; }
# ranks_alive DIR: processes still running whose command line names this run's unique --out dir.
ranks_alive() { pgrep -f -- "--out $1( |$)" | wc -l; }
tiny_mount() {  # tiny_mount DIR OPTS: a tmpfs for this script only; fails when mount is not allowed
  mkdir -p "$1" && mount -t tmpfs -o "$2" dtbench-faults "$1" 2>/dev/null && MOUNTS+=("$1")
}

for suite in "${SUITES[@]}"; do
  exe=$BIN/dtbench-$suite
  if [ ! -x "$exe" ]; then echo "SKIP fault * $suite: $exe not built"; TABLE+=("*|$suite|-|not built|SKIP"); continue; fi
  read -r -a Q <<<"$(quick_args "$suite")"
  W=$TMP_ROOT/$suite
  mkdir -p "$W"

  # Clean run: the reference for "rows already written", the check names and the times.
  base=$W/base
  run_mpi "$NP" "$W/base.log" "$exe" "${Q[@]}" --out "$base"
  base_checks=$(checks_csv "$base") base_perf=$(perf_csv "$base")
  if [ "$RC" != 0 ] || ! all_pass "$base"; then
    verdict baseline "$suite" 1 "exit 0, every check PASS" "exit $RC ($(tail -c 300 "$W/base.log" | tr '\n' '|'))"
    continue
  fi
  if ! "${CSV[@]}" ended "$base_checks" || ! "${CSV[@]}" ended "$base_perf"; then
    verdict baseline "$suite" 1 "both reports end with their end-of-run line" "$(tail -n 1 "$base_checks" | cut -c1-80)"
    continue
  fi
  n_base=$(rows_of "$base_checks")
  read -r -a L <<<"$(long_args "$suite")"
  long_checks=$base_checks
  if [ "${L[*]}" != "${Q[*]}" ] && { has full-disk || has sigterm; }; then
    run_mpi "$NP" "$W/long.log" "$exe" "${L[@]}" --out "$W/long"
    long_checks=$(checks_csv "$W/long")
    [ "$RC" = 0 ] && all_pass "$W/long" || verdict baseline-long "$suite" 1 "exit 0, every check PASS" "exit $RC"
  fi
  n_long=$(rows_of "$long_checks")

  # --- one rank SIGKILLed mid-collective --------------------------------------------------------
  if has kill; then
    k=48
    while :; do
      out=$W/kill$k
      start=$SECONDS
      run_mpi "$NP" "$W/kill$k.log" "$exe" "${Q[@]}" --timeout $TMO --out "$out" --test-kill-collective 1:$k
      took=$((SECONDS - start))
      { [ "$RC" != 0 ] || [ $k -le 1 ]; } && break
      k=$((k / 2))
    done
    op=$(grep -oP 'killed \(SIGKILL\) in \K\S+' "$LOG" | head -1)
    # Survivors name the collective they were waiting in: the dead rank's, or another one on a
    # sub-communicator the dead rank never reached (a rank of another EP/TP group, say).
    named=$(grep -cE "(terminated by SIGTERM while in [a-z_]+ |watchdog on rank [0-9]+: [a-z_]+ )" "$LOG")
    f=$(checks_csv "$out")
    intact=no
    [ -n "$f" ] && "${CSV[@]}" complete "$f" >/dev/null && "${CSV[@]}" prefix "$f" "$base_checks" >/dev/null && intact=yes
    [ $intact = yes ] || intact="no ($( { "${CSV[@]}" complete "$f"; "${CSV[@]}" prefix "$f" "$base_checks"; } 2>&1 | tr '\n' ' ' | cut -c1-200))"
    alive=$(ranks_alive "$out")
    ok=1
    [ "$RC" != 0 ] && [ $took -le $((TMO + 10)) ] && [ -n "$op" ] && [ "$named" -ge 1 ] && [ "$intact" = yes ] &&
      [ "$alive" = 0 ] && ok=0
    verdict kill "$suite" $ok "all ranks exit <= $((TMO + 10)) s, rc != 0, message names the op, rows intact" \
      "rank 1 killed in ${op:-?} (collective #$k); rc=$RC in ${took}s; $named survivor lines name it; $(rows_of "$f") rows intact=$intact; $alive left"
  fi

  # --- one rank 10x slower ----------------------------------------------------------------------
  if has slow; then
    out=$W/slow
    # dtbench-ddp times whole steps, mostly simulated compute that the hook does not slow (comm is
    # 3-8% of a step here): its collectives get 50x so that the slow rank shows well above noise.
    slow=10
    [ "$suite" = ddp ] && slow=50
    run_mpi "$NP" "$W/slow.log" "$exe" "${Q[@]}" --out "$out" --test-slow-rank 1:$slow
    t0=$("${CSV[@]}" timesum "$base_perf") t1=$("${CSV[@]}" timesum "$(perf_csv "$out")" 2>/dev/null || echo 0)
    if awk -v a="$t0" 'BEGIN{exit !(a <= 0)}'; then
      skip slow "$suite" "no timed rows in the perf CSV"
    else
      ratio=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b / a}')
      ok=1
      [ "$RC" = 0 ] && all_pass "$out" && awk -v r="$ratio" 'BEGIN{exit !(r >= 1.5)}' && ok=0
      # >= 1.5x, not the factor: suites time whole steps with simulated compute the hook does not slow.
      verdict slow "$suite" $ok "exit 0, every check PASS, perf times >= 1.5x" \
        "rc=$RC, $(fail_rows "$(checks_csv "$out")") FAIL rows, sum of time_med_us ${t0} -> ${t1} us (x$ratio)"
    fi
  fi

  # --- corrupted data for every check -----------------------------------------------------------
  if has flip && [ "${FAULT_FLIP:-combined}" = combined ]; then
    # One run per candidate rank with the flip applied to every check that rank verifies (op empty):
    # each check must then FAIL naming that rank in at least one of the runs. FAULT_FLIP=each runs
    # one job per check instead (slower, same verdicts).
    for r in 1 0; do
      run_mpi "$NP" "$W/flip-all-$r.log" "$exe" "${Q[@]}" --out "$W/flip-all-$r" --inject-fault "flip,rank=$r,index=0" </dev/null
    done
    while read -r check nchecked; do
      [ -n "$check" ] || continue
      hit=""
      for r in 1 0; do
        f=$(checks_csv "$W/flip-all-$r")
        if [ -n "$f" ] && "${CSV[@]}" failrow "$f" "$check" "$r"; then hit=$r; break; fi
      done
      if [ -n "$hit" ]; then
        verdict flip "$suite" 0 "exit 1, FAIL row for $check naming the rank" "$check: FAIL naming rank $hit"
      elif [ "$nchecked" = "$NP" ]; then
        skip flip "$suite" "$check: a condition check (one per rank); flip does not reach it, the suite's own fault kinds must"
      elif why=$(flip_exempt "$suite" "$check"); then
        skip flip "$suite" "$check: $why"
      else
        verdict flip "$suite" 1 "exit 1, FAIL row for $check naming the rank" "$check: no FAIL row naming rank 1 or 0"
      fi
    done < <("${CSV[@]}" checks "$base_checks")
  elif has flip; then
    nflip=0
    while read -r check nchecked; do
      [ -n "$check" ] || continue
      hit=""
      for r in 1 $((NP - 1)) 0; do
        out=$W/flip-$((++nflip))-$r
        run_mpi "$NP" "$W/flip.log" "$exe" "${Q[@]}" --out "$out" --inject-fault "flip,rank=$r,op=$check,index=0" </dev/null
        f=$(checks_csv "$out")
        if [ "$RC" = 1 ] && [ -n "$f" ] && "${CSV[@]}" failrow "$f" "$check" "$r"; then hit=$r; break; fi
        [ "$RC" = 0 ] || break  # the fault was seen somewhere: judge this run
      done
      if [ -n "$hit" ]; then
        verdict flip "$suite" 0 "exit 1, FAIL row for $check naming the rank" "$check: FAIL naming rank $hit, rc=1"
      elif [ "$nchecked" = "$NP" ] && { [ -z "$f" ] || no_rows "$f" check="$check" status=FAIL; }; then
        # (op= matches by substring, so a longer check name may have failed instead: still not this one)
        skip flip "$suite" "$check: a condition check (one per rank); flip does not reach it, the suite's own fault kinds must"
      else
        verdict flip "$suite" 1 "exit 1, FAIL row for $check naming the rank" "$check: rc=$RC, $(fail_rows "$f") FAIL rows"
      fi
    done < <("${CSV[@]}" checks "$base_checks")
  fi

  # --- unwritable results folder ----------------------------------------------------------------
  if has unwritable; then
    ro=$W/ro
    targets=(/proc/dtbench-faults/res)
    tiny_mount "$ro" ro,size=64k && targets+=("$ro/res")
    for t in "${targets[@]}"; do
      run_mpi "$NP" "$W/ro.log" "$exe" "${Q[@]}" --out "$t"
      ok=1
      [ "$RC" = 2 ] && [ "$(grep -c 'error:' "$LOG")" = 1 ] && grep -q "error: --out $t" "$LOG" && [ ! -e "$t" ] && ok=0
      verdict unwritable "$suite" $ok "exit 2, one line naming --out, nothing written" \
        "--out $t: rc=$RC: $(grep -m1 'error:' "$LOG" | cut -c1-90)"
    done
  fi

  # --- full disk while writing results ----------------------------------------------------------
  if has full-disk; then
    m=$W/full
    if ! tiny_mount "$m" size=8k; then
      skip full-disk "$suite" "cannot mount a tmpfs here"
    else
      run_mpi "$NP" "$W/full.log" "$exe" "${L[@]}" --checks-csv "$m/c.csv" --perf-csv "$m/p.csv"
      if [ "$RC" = 0 ]; then
        skip full-disk "$suite" "its reports stay under one 4 KiB page each; the disk never filled"
      else
        intact=yes
        for x in "$m/c.csv" "$m/p.csv"; do
          [ -e "$x" ] && ! "${CSV[@]}" complete "$x" >/dev/null && intact=no
        done
        [ -e "$m/c.csv" ] && ! "${CSV[@]}" prefix "$m/c.csv" "$long_checks" >/dev/null && intact=no
        ok=1
        [ "$RC" = 5 ] && grep -q "No space left on device" "$LOG" && [ "$intact" = yes ] && ok=0
        verdict full-disk "$suite" $ok "exit 5 naming the file and ENOSPC; rows written are complete and correct" \
          "rc=$RC, $(rows_of "$m/c.csv") check rows kept (intact=$intact): $(grep -m1 -oE '[^ ]+: write failed: [^|]+' "$LOG" | cut -c1-80)"
      fi
      umount "$m" && MOUNTS=("${MOUNTS[@]/$m/}")
    fi
    # A full disk during a checkpoint: a saved checkpoint on a small tmpfs, then saves that cannot
    # fit. Every rank reports the error, nothing is committed, the previous checkpoint stays latest.
    if [ "$suite" = ckpt ] && tiny_mount "$W/ckfull" size=760k; then
      run_mpi "$NP" "$W/ckfull1.log" "$exe" -q --no-sync-save --out "$W/ckfull-r1" --ckpt-dir "$W/ckfull" --save-only
      before=$(cat "$W/ckfull/latest" 2>/dev/null)
      run_mpi "$NP" "$W/ckfull2.log" "$exe" -q --no-sync-save --compute-ms 1 --steps-per-save 3 --repeat 2 \
        --out "$W/ckfull-r2" --ckpt-dir "$W/ckfull"
      every=yes
      for ((r = 0; r < NP; r++)); do grep -q "rank $r: checkpoint .*NOT committed.*No space left on device" "$LOG" || every=no; done
      after=$(cat "$W/ckfull/latest" 2>/dev/null)
      ok=1
      # What the failed saves wrote is gone: every step directory left holds a COMMIT.
      partial=$(for d in "$W"/ckfull/step_*; do [ -d "$d" ] && [ ! -e "$d/COMMIT" ] && basename "$d"; done | tr '\n' ' ')
      [ -n "$before" ] && [ "$RC" = 1 ] && [ $every = yes ] && [ "$after" = "$before" ] && [ -e "$W/ckfull/$before/COMMIT" ] &&
        [ -z "$partial" ] && ok=0
      verdict full-disk-ckpt "$suite" $ok "exit 1, ENOSPC on every rank, latest still $before and committed, no partial step left" \
        "rc=$RC, every rank reported=$every, latest $before -> $after, partial: ${partial:-none}"
      umount "$W/ckfull" && MOUNTS=("${MOUNTS[@]/$W\/ckfull/}")
    fi
  fi

  # --- SIGTERM mid-run, as Slurm sends it at the time limit -------------------------------------
  if has sigterm; then
    out=$W/term
    log=$W/term.log
    timeout -k 5 120 "${MPIRUN[@]}" -np "$NP" "$exe" "${L[@]}" --out "$out" --test-slow-rank 0:500 >"$log" 2>&1 &
    tpid=$!
    sent=no
    for _ in $(seq 1 400); do  # up to 40 s for the first row
      f=$(checks_csv "$out")
      if [ -n "$f" ] && [ "$(rows_of "$f")" -ge 1 ]; then
        mp=$(pgrep -P $tpid -x mpirun)
        pids=$([ -n "$mp" ] && pgrep -P "$mp" -d ' ')
        [ -n "$pids" ] && kill -TERM $pids && sent=yes
        break
      fi
      kill -0 $tpid 2>/dev/null || break
      sleep 0.1
    done
    wait $tpid
    RC=$? LOG=$log
    f=$(checks_csv "$out")
    # Distinct ranks: a rank may see the signal twice (from the test and forwarded by mpirun).
    n_msg=$(grep -oP "dtbench: rank \K[0-9]+(?=: terminated by SIGTERM (while in|outside))" "$log" | sort -u | wc -l)
    intact=no
    [ -n "$f" ] && "${CSV[@]}" complete "$f" >/dev/null && "${CSV[@]}" complete "$(perf_csv "$out")" >/dev/null &&
      "${CSV[@]}" prefix "$f" "$long_checks" >/dev/null && intact=yes
    # A run cut short has no end-of-run line, so dtbench-accept calls it INCOMPLETE: never a PASS.
    unended=no
    if [ -n "$f" ] && ! "${CSV[@]}" ended "$f" && ! "${CSV[@]}" ended "$(perf_csv "$out")"; then
      "$BIN/dtbench-accept" -q --allow-missing -t tools/thresholds-host.csv "$out" >"$W/term-accept.log" 2>&1
      [ $? = 1 ] && grep -q "^INCOMPLETE " "$W/term-accept.log" && unended=yes
    fi
    ok=1
    [ $sent = yes ] && [ "$RC" = 143 ] && [ "$n_msg" = "$NP" ] && [ $intact = yes ] && [ $unended = yes ] && ok=0
    verdict sigterm "$suite" $ok "exit 143, every rank names its collective, rows so far complete, accept INCOMPLETE" \
      "sent=$sent rc=$RC, $n_msg/$NP rank lines ($(grep -m1 -oP 'while in \K\S+ on communicator \S+' "$log")), $(rows_of "$f")/$n_long rows intact=$intact, accept INCOMPLETE=$unended"
  fi

  # --- malformed model CSV ----------------------------------------------------------------------
  if has malformed; then
    flag=$(model_flag "$exe")
    if [ -z "$flag" ]; then
      skip malformed-model "$suite" "reads no model CSV"
    else
      source "$HERE/malformed.sh"
      make_bad_model_csvs "$W/model"
      for bad in "$W"/model/*.csv; do
        name=$(basename "$bad" .csv)
        out=$W/mm-$name
        run_mpi 2 "$W/mm.log" "$exe" "${Q[@]}" "$flag" "$bad" --out "$out" </dev/null
        ok=1
        [ "$RC" = 2 ] && [ "$(grep -ac 'error' "$LOG")" = 1 ] && grep -aq "error.*$bad" "$LOG" && [ ! -e "$out" ] && ok=0
        verdict malformed-model "$suite" $ok "exit 2, one line naming the file, nothing written" \
          "$name: rc=$RC: $(grep -a -m1 'error' "$LOG" | tr -cd '[:print:]' | sed "s|$W/model/||" | cut -c1-90)"
      done
    fi
  fi
done

# --- malformed thresholds and perf CSVs for the tools -------------------------------------------
if has malformed; then
  source "$HERE/malformed.sh"
  good=$(perf_csv "$TMP_ROOT/coll/base" 2>/dev/null)
  T=$TMP_ROOT/tools
  mkdir -p "$T"
  # tool_case TOOL NAME BADFILE ARGS...: exit 2, one message naming the file, no crash, no output file.
  tool_case() {
    local tool=$1 name=$2 bad=$3
    shift 3
    local html=$T/out-$name.html
    timeout -k 5 30 "$@" >"$T/t.log" 2>&1
    RC=$? LOG=$T/t.log
    local ok=1
    [ "$RC" = 2 ] && grep -aqF "$bad" "$LOG" && [ "$(grep -ac "error" "$LOG")" -le 1 ] && [ ! -e "$html" ] && ok=0
    verdict "malformed-$name" "$tool" $ok "exit 2, a message naming the file, no crash" \
      "rc=$RC: $(grep -a -m1 -F "$bad" "$LOG" | tr -cd "[:print:]" | sed "s|$T/||g" | cut -c1-90)"
  }
  if [ -x "$BIN/dtbench-accept" ] && [ -n "$good" ]; then
    make_bad_thresholds "$T/thr"
    for bad in "$T"/thr/*.csv; do
      tool_case accept "thresholds-$(basename "$bad" .csv)" "$bad" "$BIN/dtbench-accept" -q -t "$bad" "$good"
    done
  else
    echo "SKIP fault malformed-thresholds accept: dtbench-accept not built"
  fi
  make_bad_perf_csvs "$T/perf" "$good"
  for bad in "$T"/perf/*.csv; do
    name=perf-$(basename "$bad" -perf.csv)
    if [ -x "$BIN/dtbench-compare" ] && [ -n "$good" ]; then
      tool_case compare "$name" "$bad" "$BIN/dtbench-compare" "$good" "$bad"
    fi
    if [ -x "$BIN/dtbench-accept" ] && [ -e tools/thresholds-host.csv ]; then
      tool_case accept "$name" "$bad" "$BIN/dtbench-accept" -q -t tools/thresholds-host.csv "$bad"
    fi
    if [ -x "$BIN/dtbench-report" ]; then
      tool_case report "$name" "$bad" "$BIN/dtbench-report" -o "$T/out-$name.html" "$bad"
    fi
  done
  for t in compare accept report; do [ -x "$BIN/dtbench-$t" ] || echo "SKIP fault malformed-perf $t: not built"; done
fi

echo
printf '%-36s %-8s %-64s %s\n' CASE SUITE EXPECTED "OBSERVED -> VERDICT"
for r in "${TABLE[@]}"; do
  IFS='|' read -r c s e o v <<<"$r"
  printf '%-36s %-8s %-64s %s -> %s\n' "$c" "$s" "${e:0:64}" "$o" "$v"
done
