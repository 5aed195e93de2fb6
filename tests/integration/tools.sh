#!/usr/bin/env bash
# dtbench-compare, dtbench-accept and dtbench-report on CSVs of real runs: run-to-run noise is not
# flagged, a planted regression is; accept passes a clean run and fails a planted slow or failing row;
# malformed reports and thresholds name file and line (exit 2); a report from real runs of every suite
# (coll ddp fsdp ep ckpt) has each section's plot and series in its HTML and renders in headless
# Chromium with data drawn inside every plot frame of the PNG (KEEP_REPORT=DIR keeps report.html/png).
# dtbench-baseline builds thresholds from good runs that pass a normal run and fail a slow one; the
# GPU templates match the default sweep.
source "$(dirname "$0")/../lib.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
COLL=$BIN/dtbench-coll CMP=$BIN/dtbench-compare ACC=$BIN/dtbench-accept REP=$BIN/dtbench-report
T=$TMP_ROOT
TH=$REPO/tools/thresholds-host.csv

# Three interleaved repeats per side, 2 ranks (no oversubscription on 2 cores): the band of medians
# across repeats is what lets compare tell run-to-run noise from a regression.
for i in 1 2 3; do
  for side in A B; do
    run_mpi 2 $T/$side$i.log "$COLL" --backend host -b 4K -e 1M -f 4 -n 10 -w 2 -q --out $T/$side/r$i
  done
done
expect "tools: six coll runs for the comparisons" "exit 0 each" eval 'all_pass $T/A/r1 && all_pass $T/B/r3'

RC=0; LOG=$T/cmp-noise.log
"$CMP" $T/A $T/B >$LOG 2>&1; RC=$?
expect "compare: run-to-run noise (same binary, 3 repeats each) is not flagged" "exit 0, OK line" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-compare: OK" $LOG && grep -q "^matched 45 rows" $LOG'

# Planted regression: every all_gather row of the candidate 100x slower (times x100, bandwidths /100).
ALL_TIMES=("time_med_us*=100" "time_min_us*=100" "time_max_us*=100" "time_p10_us*=100" "time_p90_us*=100"
  "time_p99_us*=100")
cp -r $T/B $T/Bslow
for f in $T/Bslow/*/*-perf.csv; do
  csvq "$f" --where op=all_gather --set "${ALL_TIMES[@]}" "algbw_GBps/=100" "busbw_GBps/=100"
done
LOG=$T/cmp-slow.log
"$CMP" --csv $T/cmp.csv $T/A $T/Bslow >$LOG 2>&1; RC=$?
expect "compare: a planted 100x all_gather slowdown is flagged, nothing else" "exit 1, REGRESSION rows all all_gather" \
  eval '[ $RC = 1 ] && grep -q "^dtbench-compare: REGRESSION" $LOG &&
        [ "$(grep -c " REGRESSION$" $LOG)" -ge 1 ] && ! grep " REGRESSION$" $LOG | grep -qv "^all_gather" &&
        csvq $T/cmp.csv --where op=all_gather verdict=REGRESSION'
# Run labels are directory names and may hold commas: the --csv fields are quoted where needed.
cp -r $T/A "$T/run,a" && cp -r $T/Bslow "$T/run,b"
"$CMP" --csv $T/cmp-comma.csv "$T/run,a" "$T/run,b" >$LOG 2>&1; RC=$?
expect "compare: --csv with run labels holding commas stays one field each" "exit 1, baseline 'run,a', candidate 'run,b'" \
  eval '[ $RC = 1 ] && csvq $T/cmp-comma.csv --where baseline=run,a candidate=run,b op=all_gather verdict=REGRESSION'
# An existing --csv is never overwritten unless --force.
cp $T/cmp.csv $T/cmp.keep
LOG=$T/cmp-exists.log
"$CMP" --csv $T/cmp.csv $T/A $T/A >$LOG 2>&1; RC=$?
expect "compare: an existing --csv is refused" "exit 2 naming --csv, file unchanged" \
  eval '[ $RC = 2 ] && grep -q "\-\-csv .*file exists" $LOG && cmp -s $T/cmp.csv $T/cmp.keep'
"$CMP" --force --csv $T/cmp.csv $T/A $T/A >$LOG 2>&1; RC=$?
expect "compare: --force overwrites --csv" "exit 0, new contents" eval '[ $RC = 0 ] && ! cmp -s $T/cmp.csv $T/cmp.keep'
LOG=$T/cmp-fast.log
"$CMP" $T/Bslow $T/A >$LOG 2>&1; RC=$?
expect "compare: the reverse direction is an improvement, not a regression" "exit 0, faster rows" \
  eval '[ $RC = 0 ] && grep -q " faster$" $LOG'
LOG=$T/cmp-one.log
"$CMP" $T/A >$LOG 2>&1; RC=$?
expect "compare: one run is bad input" "exit 2" eval '[ $RC = 2 ]'

# One outlier iteration neither hides nor fakes a regression. Single files: the baseline's all_reduce
# rows get one stalled iteration (max x400, p99 x100); the candidate's are 3x slower in every
# iteration: flagged (a min..max rule would call it noise). A candidate 2% slower everywhere at the
# default 5% threshold is not flagged, nor is a candidate whose only change is one stalled iteration.
times_x() {  # FILE OP FACTOR: every time column of OP's rows times FACTOR (bandwidths divided)
  csvq "$1" --where op=$2 --set "time_med_us*=$3" "time_min_us*=$3" "time_max_us*=$3" "time_p10_us*=$3" \
    "time_p90_us*=$3" "time_p99_us*=$3" "algbw_GBps/=$3" "busbw_GBps/=$3"
}
# The planted cases start from one real report whose iteration spread is rebuilt from each row's median
# (p10 = 0.97 x median ... max = 1.1 x), so that they do not depend on this machine's noise.
base1=$(perf_csv $T/A/r1)
mkdir -p $T/one/base $T/one/x3 $T/one/x102 $T/one/stall
cp "$base1" $T/one/base/
csvq $T/one/base/*-perf.csv --where time_med_us!= --set "time_min_us=@time_med_us*0.95" \
  "time_p10_us=@time_med_us*0.97" "time_p90_us=@time_med_us*1.04" "time_p99_us=@time_med_us*1.08" \
  "time_max_us=@time_med_us*1.1"
for d in x3 x102 stall; do cp $T/one/base/*-perf.csv $T/one/$d/; done
csvq $T/one/base/*-perf.csv --where op=all_reduce --set "time_max_us*=400" "time_p99_us*=100"
times_x $T/one/x3/*-perf.csv all_reduce 3
for op in all_reduce reduce_scatter all_gather all_to_all broadcast; do times_x $T/one/x102/*-perf.csv $op 1.02; done
csvq $T/one/stall/*-perf.csv --where op=all_reduce --set "time_max_us*=400" "time_p99_us*=100"
LOG=$T/cmp-outlier.log
"$CMP" --csv $T/cmp-outlier.csv $T/one/base $T/one/x3 >$LOG 2>&1; RC=$?
n_ar=$(csvq $T/cmp-outlier.csv --where op=all_reduce --count)
expect "compare: a 3x slowdown behind a baseline's outlier iteration is flagged" \
  "exit 1, every all_reduce row REGRESSION ($n_ar rows), no other op flagged" \
  eval '[ $RC = 1 ] && [ "$n_ar" -ge 10 ] &&
        [ "$(csvq $T/cmp-outlier.csv --where op=all_reduce verdict=REGRESSION --count)" = "$n_ar" ] &&
        ! grep " REGRESSION$" $LOG | grep -qv "^all_reduce"'
LOG=$T/cmp-2pct.log
"$CMP" $T/one/base $T/one/x102 >$LOG 2>&1; RC=$?
expect "compare: 2% slower everywhere at a 5% threshold is not flagged" "exit 0, OK, no REGRESSION row" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-compare: OK" $LOG && ! grep -q " REGRESSION$" $LOG'
LOG=$T/cmp-stall.log
"$CMP" $T/one/base $T/one/stall >$LOG 2>&1; RC=$?
expect "compare: a candidate differing only by one stalled iteration is not flagged" "exit 0, OK" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-compare: OK" $LOG'
# Labels head the columns; the verdict line has one prefix.
LOG=$T/cmp-labels.log
"$CMP" --labels good,slow3x $T/one/base $T/one/x3 >$LOG 2>&1; RC=$?
expect "compare: --labels name the runs in the tables, no doubled prefix" "header with good and slow3x, no 'A time_us'" \
  eval '[ $RC = 1 ] && grep -q "^op .* good .* slow3x " $LOG && grep -q "^### slow3x (candidate) vs good (baseline)" $LOG &&
        ! grep -q "A time_us" $LOG && ! grep -q "dtbench-compare: dtbench-compare" $LOG'
"$CMP" --labels onlyone $T/one/base $T/one/x3 >$LOG 2>&1; RC=$?
expect "compare: --labels with the wrong count is bad input" "exit 2 naming --labels" \
  eval '[ $RC = 2 ] && grep -q "\-\-labels: 1 labels for 2 runs" $LOG'
# A real slow rank: rank 1 takes 3x as long in every collective (--test-slow-rank 1:3) against
# a normal run of the same sizes.
run_mpi 2 $T/slowrank.log "$COLL" --backend host -b 4K -e 1M -f 4 -n 10 -w 2 -q --out $T/slowrank --test-slow-rank 1:3
LOG=$T/cmp-slowrank.log
"$CMP" $T/A/r1 $T/slowrank >$LOG 2>&1; RC=$?
expect "compare: a run with --test-slow-rank 1:3 against a normal baseline is flagged" "exit 1, REGRESSION rows" \
  eval '[ $RC = 1 ] && grep -q "^dtbench-compare: REGRESSION" $LOG && [ "$(grep -c " REGRESSION$" $LOG)" -ge 5 ]'

# Accept: the clean run passes; a planted slow row and a planted FAIL row fail, naming file:line and node.
LOG=$T/acc-ok.log
"$ACC" -t "$TH" $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: a clean run passes the host thresholds" "exit 0, PASS verdict, node line" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-accept: PASS" $LOG && grep -q "^node .*: PASS" $LOG && ! grep -q "^FAIL" $LOG'
mkdir -p $T/slow $T/failrow
cp $T/A/r1/*.csv $T/slow/ && cp $T/A/r1/*.csv $T/failrow/
p=$(perf_csv $T/slow)
line=$(csvq "$p" --where op=reduce_scatter --print @line | tail -1)
csvq "$p" --where @line=$line --set busbw_GBps=0.00000001
LOG=$T/acc-slow.log
"$ACC" -t "$TH" $T/slow >$LOG 2>&1; RC=$?
expect "accept: a planted slow reduce_scatter row fails, naming file:line" "exit 1, FAIL rule + $(basename $p):$line" \
  eval '[ $RC = 1 ] && grep -q "^FAIL .*reduce_scatter" $LOG && grep -q "$(basename $p):$line reduce_scatter" $LOG &&
        grep -q "^dtbench-accept: FAIL" $LOG'
c=$(checks_csv $T/failrow)
line=$(csvq "$c" --where check=all_gather.out_of_place --print @line | head -1)
csvq "$c" --where @line=$line --set status=FAIL n_wrong=1 failing_ranks=1 first_rank=1
LOG=$T/acc-fail.log
"$ACC" -t "$TH" $T/failrow >$LOG 2>&1; RC=$?
expect "accept: a planted FAIL check row fails the node, naming file:line and rank" "exit 1, ranks 1" \
  eval '[ $RC = 1 ] && grep -q "$(basename $c):$line all_gather.out_of_place.*ranks 1" $LOG && grep -q "^node .*: FAIL" $LOG'
printf 'suite,op,min_busbw_GBps\nnosuchsuite,*,1\n' >$T/missing.csv
"$ACC" -t $T/missing.csv $T/A/r1 >$T/acc-miss.log 2>&1; RC=$?; LOG=$T/acc-miss.log
expect "accept: a rule that matches nothing fails (suite not run)" "exit 1, no matching rows" \
  eval '[ $RC = 1 ] && grep -q "no matching rows" $LOG'
"$ACC" --allow-missing -t $T/missing.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept --allow-missing: the same rule is SKIP" "exit 0, SKIP" eval '[ $RC = 0 ] && grep -q "^SKIP" $LOG'
printf 'suite,op,node,min_busbw_GBps\ncoll,all_reduce,othernode*,1000000\ncoll,all_reduce,%s,0.000001\n' "$(hostname)" >$T/pernode.csv
"$ACC" -t $T/pernode.csv --allow-missing $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: per-node rules apply only to their node" "exit 0: the impossible rule for othernode* is SKIP" \
  eval '[ $RC = 0 ] && grep -q "^SKIP .*othernode" $LOG && grep -q "^PASS .*node=" $LOG'

# Blame across nodes: ranks 0-1 on node n1, 2-3 on n2 (SLURMD_NODENAME, as under Slurm). A flipped
# element on rank 2 fails its check rows and the perf rows' validation counts; both blame n2 only.
A2=(--backend host -b 1K -e 256K -f 4 -n 2 -w 1 -q --out $T/twonode --inject-fault flip,rank=2,op=all_reduce,index=3)
run_mpi 2 $T/twonode.log -x SLURMD_NODENAME=n1 "$COLL" "${A2[@]}" : -np 2 -x SLURMD_NODENAME=n2 "$COLL" "${A2[@]}"
LOG=$T/acc-twonode.log
"$ACC" -t "$TH" $T/twonode >$LOG 2>&1; RC=$?
expect "accept: a fault on rank 2 (node n2) blames n2 only, for its check rows and perf validation rows" \
  "exit 1, node n2: FAIL, node n1: PASS, validation rows name n2" \
  eval '[ $RC = 1 ] && grep -q "^node n2: FAIL" $LOG && grep -q "^node n1: PASS" $LOG &&
        grep -q "validation rounds failed \[node n2\]" $LOG && ! grep -q "\[node n1" $LOG &&
        grep -q "^# rank_map=n1:0-1;n2:2-3$" $(perf_csv $T/twonode)'

# The same verdict, machine-readable: JSON per node (verdict, failing rules, rows with value and
# limit), JUnit XML (a testcase per rule and node), and the nodes to drain; existing files are kept.
"$ACC" -q -t "$TH" --json $T/v.json --junit $T/v.xml --drain-list $T/drain.txt $T/twonode >$LOG 2>&1; RC=$?
cat >$T/verdict_check.py <<'EOF'
import json, sys, xml.etree.ElementTree as ET
j = json.load(open(sys.argv[1]))
nodes = {n["node"]: n for n in j["nodes"]}
assert j["verdict"] == "FAIL" and set(nodes) == {"n1", "n2"}, j["verdict"]
assert nodes["n1"]["verdict"] == "PASS" and not nodes["n1"]["failing_rules"], nodes["n1"]
rows = [r for rule in nodes["n2"]["failing_rules"] for r in rule["rows"]]
assert nodes["n2"]["verdict"] == "FAIL" and rows, nodes["n2"]
assert all({"file", "line", "value", "limit", "quantity"} <= set(r) for r in rows), rows[0]
assert any(r["quantity"] == "wrong_elements" and r["value"] >= 1 and r["limit"] == 0 for r in rows), rows
suite = ET.parse(sys.argv[2]).getroot().find("testsuite")
cases = list(suite)
failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
assert int(suite.get("tests")) == len(cases) and int(suite.get("failures")) == len(failed) > 0, suite.attrib
assert {c for c, _ in failed} == {"n2"}, failed
assert len(cases) == 2 * (len(j["rules"]) + 1), len(cases)  # every rule and "reports complete", per node
assert all(r["verdict"] in ("PASS", "FAIL", "SKIP") and r["matched"] > 0 for r in j["rules"]), j["rules"]
EOF
expect "accept --json/--junit/--drain-list: the verdict per node, parsed back" \
  "exit 1, JSON and JUnit fail n2 only with file/line/value/limit, drain list = n2" \
  eval '[ $RC = 1 ] && python3 $T/verdict_check.py $T/v.json $T/v.xml && [ "$(cat $T/drain.txt)" = n2 ]'
cp $T/v.json $T/v.keep
"$ACC" -q -t "$TH" --json $T/v.json $T/twonode >$LOG 2>&1; RC=$?
expect "accept: an existing --json file is refused" "exit 2 naming --json, file unchanged" \
  eval '[ $RC = 2 ] && grep -q -- "--json .*file exists" $LOG && cmp -s $T/v.json $T/v.keep'
"$ACC" -q -t "$TH" --drain-list $T/drain-ok.txt $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept --drain-list on a passing run: an empty list" "exit 0, empty file" \
  eval '[ $RC = 0 ] && [ -e $T/drain-ok.txt ] && [ ! -s $T/drain-ok.txt ]'

# Fleet baselines: dtbench-baseline builds thresholds from three runs of a known-good node (A/r1..3);
# they pass a fourth normal run (B/r1) and fail the run with a 3x slower rank. A relative rule
# (max_slowdown against the baseline's medians) gives the same verdicts.
BL=$BIN/dtbench-baseline LOG=$T/baseline.log
"$BL" -o $T/fleet.csv --fraction 0.5 $T/A/r1 $T/A/r2 $T/A/r3 >$LOG 2>&1; RC=$?
expect "baseline: three good runs give one rule per shape (45 rows = 25 shapes), with the medians" \
  "exit 0, 25 rules + checks rule, floors below the medians" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-baseline: 25 rules from 3 runs" $LOG &&
        [ "$(csvq $T/fleet.csv --count --where baseline_time_us!=)" = 25 ] &&
        csvq $T/fleet.csv --where suite=* checks=pass &&
        python3 -c "import csv,sys
rows=[r for r in csv.DictReader(l for l in open(sys.argv[1]) if not l.startswith(\"#\")) if r[\"baseline_busbw_GBps\"]]
sys.exit(not all(0 <= float(r[\"min_busbw_GBps\"]) <= 0.50001*float(r[\"baseline_busbw_GBps\"]) for r in rows))" $T/fleet.csv'
# This VM stalls now and then for tens of ms (a 4 KiB all-reduce's median once read 10 ms): a
# normal run is any of the three B runs, the first that passes.
accept_normal() {  # ACCEPT_ARGS...: RC=0 when one of B/r1..r3 passes
  local r
  for r in 1 2 3; do "$ACC" "$@" $T/B/r$r >$LOG 2>&1; RC=$?; [ $RC = 0 ] && return; done
}
accept_normal -t $T/fleet.csv
expect "accept -t BASELINE: a fourth normal run passes the fleet baseline" "exit 0, 26 rules pass" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-accept: PASS (26 rules: 26 pass" $LOG'
"$ACC" -t $T/fleet.csv $T/slowrank >$LOG 2>&1; RC=$?
expect "accept -t BASELINE: the --test-slow-rank 1:3 run fails it" "exit 1, >= 10 failing busbw rows, node named" \
  eval '[ $RC = 1 ] && grep -q "^node .*: FAIL" $LOG && [ "$(grep -c "busbw .* GB/s < " $LOG)" -ge 10 ]'
printf 'suite,op,max_slowdown\ncoll,*,2\n' >$T/relative.csv
accept_normal -t $T/relative.csv --baseline $T/fleet.csv
expect "accept --baseline: max_slowdown 2 passes a normal run" "exit 0, 45 rows held against the baseline" \
  eval '[ $RC = 0 ] && grep -q "^PASS  rule relative.csv:2 coll \* time<=2x baseline: 45 rows" $LOG'
"$ACC" -t $T/relative.csv --baseline $T/fleet.csv $T/slowrank >$LOG 2>&1; RC=$?
expect "accept --baseline: max_slowdown 2 fails the 3x slow-rank run" "exit 1, rows 'Nx baseline'" \
  eval '[ $RC = 1 ] && grep -q "us > 2x baseline .* us \[node " $LOG'
"$ACC" -t $T/relative.csv $T/B/r1 >$LOG 2>&1; RC=$?
expect "accept: a max_slowdown rule without --baseline is bad input" "exit 2 naming the rule line and --baseline" \
  eval '[ $RC = 2 ] && grep -q "relative.csv:2: max_slowdown needs --baseline" $LOG'
printf 'suite,op,max_slowdown\ncoll,*,0.5\n' >$T/relative-bad.csv
"$ACC" -t $T/relative-bad.csv --baseline $T/fleet.csv $T/B/r1 >$LOG 2>&1; RC=$?
expect "accept: max_slowdown below 1 is bad input" "exit 2, file:line" \
  eval '[ $RC = 2 ] && grep -q "relative-bad.csv:2: column .max_slowdown.: .0.5. must be >= 1" $LOG'
cp $T/fleet.csv $T/fleet.keep
"$BL" -o $T/fleet.csv $T/A/r1 $T/A/r2 $T/A/r3 >$LOG 2>&1; RC=$?
expect "baseline: an existing --output is refused" "exit 2, file unchanged" \
  eval '[ $RC = 2 ] && grep -q -- "--output .*file exists" $LOG && cmp -s $T/fleet.csv $T/fleet.keep'
"$BL" -o $T/fleet2.csv $T/A/r1 $T/A/r2 >$LOG 2>&1; RC=$?
expect "baseline: fewer runs than --min-runs is bad input" "exit 2, nothing written" \
  eval '[ $RC = 2 ] && grep -q "need at least 3 runs" $LOG && [ ! -e $T/fleet2.csv ]'
"$BL" -o $T/fleet2.csv $T/A/r1 $T/A/r2 $T/failrow >$LOG 2>&1; RC=$?
expect "baseline: a run with a failing check is not a known-good run" "exit 2 naming the file:line, nothing written" \
  eval '[ $RC = 2 ] && grep -q "checks.csv:[0-9]*: check .* FAILED: not a known-good run" $LOG && [ ! -e $T/fleet2.csv ]'

# The GPU templates match the default sweep (-b 8 -e 256M -f 2, five collectives, in and out of
# place): a run of that sweep at 8 (16) ranks, planted from a real report's rows with every size of
# the sweep and GPU-like numbers, passes its template with every rule matched; the same run 10x
# slower at 256M fails it.
plant_sweep() {  # SRC_DIR RANKS BUSBW TIME_US OUT_DIR [SLOW_256M]
  mkdir -p "$5" && cp "$1"/*-checks.csv "$5"/
  python3 - "$(perf_csv "$1")" "$2" "$3" "$4" "$5/planted-perf.csv" "${6:-1}" <<'PY'
import csv, sys
src, ranks, busbw, time_us, out, slow = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], float(sys.argv[6])
lines = open(src).read().splitlines()
meta = [l for l in lines if l.startswith("#") and not l.startswith("# end_of_run")]
rows = list(csv.DictReader(l for l in lines if not l.startswith("#")))
seen, planted = set(), []
for r in rows:
    key = (r["op"], r["in_place"])
    if key in seen: continue
    seen.add(key)
    for e in range(3, 29):  # 8 B .. 256 MiB, factor 2
        n = dict(r, ranks=ranks, bytes=str(2 ** e), case=f"{2 ** e}B")
        f = slow if 2 ** e == 256 << 20 else 1
        for c in ("time_med_us", "time_min_us", "time_max_us", "time_p10_us", "time_p90_us", "time_p99_us"):
            n[c] = str(time_us * f)
        n["algbw_GBps"] = n["busbw_GBps"] = str(busbw / f)
        planted.append(n)
with open(out, "w", newline="") as fh:
    fh.write("\n".join(meta) + "\n")
    w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader(); w.writerows(planted)
    fh.write(f"# end_of_run=complete rows={len(planted)} verdict=PASS\n")
PY
}
for shape in "1node-8gpu 8 300 50" "2node-8gpu 16 30 200"; do
  set -- $shape
  plant_sweep $T/A/r1 $2 $3 $4 $T/sweep-$1
  "$ACC" -t $REPO/tools/thresholds-gpu-$1.csv $T/sweep-$1 >$LOG 2>&1; RC=$?
  expect "accept: thresholds-gpu-$1.csv matches the default sweep at $2 ranks (every rule has rows)" "exit 0, no 'no matching rows'" \
    eval '[ $RC = 0 ] && ! grep -q "no matching rows" $LOG && ! grep -q "^SKIP" $LOG'
  plant_sweep $T/A/r1 $2 $3 $4 $T/sweep-$1-slow 10
  "$ACC" -t $REPO/tools/thresholds-gpu-$1.csv $T/sweep-$1-slow >$LOG 2>&1; RC=$?
  expect "accept: thresholds-gpu-$1.csv fails the same sweep 10x slower at 256M" "exit 1, 256MiB rows fail" \
    eval '[ $RC = 1 ] && grep -q "256MiB.*busbw .* GB/s < " $LOG'
done

# --tidy: one CSV of every check and perf row with the metadata as columns, loaded by Debian's
# python3-pandas with no options; failing_ranks is text in every row, checks join perf rows.
"$REP" -o $T/tidy.html --tidy $T/tidy.csv $T/twonode $T/A/r1 >$LOG 2>&1; RC=$?
cat >$T/tidy_check.py <<'EOF'
import sys, pandas as pd
df = pd.read_csv(sys.argv[1])
rows = sum(sum(1 for l in open(f) if l.strip() and not l.startswith("#")) - 1 for f in sys.argv[2:])
assert len(df) == rows, (len(df), rows)
assert set(df.kind) == {"check", "perf"} and {"job", "nodes", "nccl", "mpi", "run_id", "complete"} <= set(df.columns)
assert df.failing_ranks.dtype == object and (df.complete == "yes").all(), df.dtypes
fails = df[(df.kind == "check") & (df.status == "FAIL")]
assert len(fails) and (fails.failing_ranks == "[2]").all() and set(fails.nodes) == {"n1;n2"}, fails.failing_ranks
joined = fails.merge(df[df.kind == "perf"], on=["run_id", "op", "bytes"], suffixes=("", "_perf"))
assert len(joined) >= len(fails) and (joined.validation_failures_perf >= 1).all(), len(joined)
EOF
expect "report --tidy: one tidy CSV that pandas.read_csv loads with no options" \
  "exit 0, every row, metadata columns, failing_ranks text, checks join perf on (run_id, op, bytes)" \
  eval '[ $RC = 0 ] && /usr/bin/python3 $T/tidy_check.py $T/tidy.csv $T/twonode/*-perf.csv $T/twonode/*-checks.csv $T/A/r1/*-perf.csv $T/A/r1/*-checks.csv'
expect "report: failing ranks listed with their nodes; the verdict banner says FAIL" \
  "'2 (n2)' in the failed-check table, banner FAIL with the failed checks" \
  eval 'grep -q "<td>2 (n2)</td>" $T/tidy.html && grep -q "<p id=\"verdict\" class=\"fail\".*Verdict: FAIL .* checks: [1-9][0-9]* of" $T/tidy.html'
"$REP" -o $T/banner-ok.html --accept-result $T/acc-ok.log $T/A/r1 >$LOG 2>&1; RC=$?
expect "report --accept-result: a clean run that passed acceptance has a PASS banner naming it" \
  "exit 0, banner PASS, 'acceptance: dtbench-accept: PASS'" \
  eval '[ $RC = 0 ] && grep -q "<p id=\"verdict\" class=\"pass\".*Verdict: PASS.*acceptance: dtbench-accept: PASS" $T/banner-ok.html'
printf 'node %s: PASS\n' "$(hostname)" >$T/acc-noverdict.log  # accept cut short after its node lines
"$REP" -o $T/banner-cut.html --accept-result $T/acc-noverdict.log $T/A/r1 >$LOG 2>&1; RC=$?
expect "report --accept-result: an acceptance that reached no verdict line is no PASS" "exit 0, banner FAIL" \
  eval '[ $RC = 0 ] && grep -q "<p id=\"verdict\" class=\"fail\"" $T/banner-cut.html'
"$REP" -o $T/banner-acc.html --accept-result $T/acc-fail.log $T/A/r1 >$LOG 2>&1; RC=$?
expect "report --accept-result: a failed acceptance makes the banner FAIL" "exit 0, banner FAIL, acceptance FAIL" \
  eval '[ $RC = 0 ] && grep -q "<p id=\"verdict\" class=\"fail\".*acceptance: dtbench-accept: FAIL" $T/banner-acc.html'
"$REP" -o $T/tidy2.html --tidy $T/tidy.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "report: an existing --tidy file is refused" "exit 2 naming --tidy, no HTML" \
  eval '[ $RC = 2 ] && grep -q -- "--tidy .*file exists" $LOG && [ ! -e $T/tidy2.html ]'

# One run per verdict. A report without its end-of-run line (its run was cut short) is INCOMPLETE:
# accept fails its node, compare gives no OK, the report marks it; rows appended after the line make
# the file INCOMPLETE too.
mkdir -p $T/cut $T/extra
cp $T/A/r1/*.csv $T/cut/ && cp $T/A/r1/*.csv $T/extra/
p=$(perf_csv $T/cut)
sed -i '$d' "$p"  # the end-of-run line is the file's last line
LOG=$T/acc-cut.log
"$ACC" -t "$TH" $T/cut >$LOG 2>&1; RC=$?
expect "accept: a report without its end-of-run line is INCOMPLETE, never a PASS" \
  "exit 1, INCOMPLETE naming the file, node FAIL" \
  eval '[ $RC = 1 ] && grep -q "^INCOMPLETE  $p: no end-of-run line" $LOG && grep -q "^node .*: FAIL" $LOG &&
        grep -q "^dtbench-accept: FAIL .*1 INCOMPLETE" $LOG'
"$CMP" $T/A/r1 $T/cut >$LOG 2>&1; RC=$?
expect "compare: an INCOMPLETE candidate gets no OK" "exit 1, INCOMPLETE verdict" \
  eval '[ $RC = 1 ] && grep -q "^dtbench-compare: INCOMPLETE" $LOG && ! grep -q "^dtbench-compare: OK" $LOG'
"$REP" -o $T/cut.html $T/cut >$LOG 2>&1; RC=$?
expect "report: an INCOMPLETE run is marked" "exit 0, INCOMPLETE cell and banner" \
  eval '[ $RC = 0 ] && grep -q "class=\"fail incomplete\"" $T/cut.html && grep -q "id=\"incomplete\"" $T/cut.html'
p=$(perf_csv $T/extra)
grep -v '^#' "$p" | tail -n 1 >>"$p"  # one more data row after the end-of-run line
"$ACC" -t "$TH" $T/extra >$LOG 2>&1; RC=$?
expect "accept: a row after the end-of-run line makes the report INCOMPLETE" "exit 1, INCOMPLETE: counts N rows" \
  eval '[ $RC = 1 ] && grep -q "^INCOMPLETE  $p: its end-of-run line .* counts [0-9]* rows, the file holds" $LOG'

# A folder holding the reports of two Slurm jobs (job ids restarted) is refused, naming both, unless
# --job picks one.
mkdir -p $T/mixed
cp $T/A/r1/*.csv $T/mixed/
for f in $T/A/r2/*.csv; do sed 's/^# slurm_job_id=.*/# slurm_job_id=4242/' "$f" >$T/mixed/$(basename "$f"); done
LOG=$T/acc-mixed.log
"$ACC" -t "$TH" $T/mixed >$LOG 2>&1; RC=$?
expect "accept: a folder mixing two Slurm jobs is refused" "exit 2, names job 4242 and the other, --job" \
  eval '[ $RC = 2 ] && grep -q "reports of 2 Slurm jobs: .*4242 (2 files)" $LOG && grep -q -- "--job ID" $LOG'
"$ACC" -t "$TH" --job 4242 $T/mixed >$LOG 2>&1; RC=$?
expect "accept --job 4242: only that job's reports are judged" "exit 0, PASS" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-accept: PASS" $LOG'
"$ACC" -t "$TH" --job 999 $T/mixed >$LOG 2>&1; RC=$?
expect "accept --job of no report here: bad input" "exit 2, names --job 999" eval '[ $RC = 2 ] && grep -q -- "--job 999" $LOG'
"$REP" -o $T/mixed.html $T/mixed >$LOG 2>&1; RC=$?
expect "report: a folder mixing two jobs is refused, nothing written" "exit 2, no HTML" \
  eval '[ $RC = 2 ] && [ ! -e $T/mixed.html ]'
"$CMP" $T/A $T/mixed >$LOG 2>&1; RC=$?
expect "compare: a run folder mixing two jobs is refused" "exit 2" eval '[ $RC = 2 ] && grep -q "Slurm jobs" $LOG'
"$CMP" --job 4242 $T/mixed $T/mixed >$LOG 2>&1; RC=$?
expect "compare --job: one job of a mixed folder against itself" "exit 0, OK" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-compare: OK" $LOG'

# Malformed inputs: error names file and line, exit 2.
mkdir -p $T/bad1 $T/bad2
cp $T/A/r1/*-perf.csv $T/bad1/
p=$(perf_csv $T/bad1)
line=$(( $(grep -c '^#' "$p") + 3 ))
csvq "$p" --where @line=$line --set time_med_us=abc
LOG=$T/bad1.log
"$CMP" $T/A/r1 $T/bad1 >$LOG 2>&1; RC=$?
expect "compare: a non-number in a perf CSV -> file:line, exit 2" "exit 2, '$p:$line: ... time_med_us'" \
  eval '[ $RC = 2 ] && grep -q "$p:$line: column .time_med_us.: .abc. is not a number" $LOG'
cp $T/A/r1/*-checks.csv $T/bad2/
c=$(checks_csv $T/bad2)
echo "x,coll,host,2,too,few" >>"$c"
line=$(wc -l <"$c")
LOG=$T/bad2.log
"$ACC" -t "$TH" $T/bad2 >$LOG 2>&1; RC=$?
expect "accept: a short row in a checks CSV -> file:line, exit 2" "exit 2, '$c:$line: Too few columns'" \
  eval '[ $RC = 2 ] && grep -q "$c:$line: Too few columns" $LOG'
printf '# comment\nsuite,op,min_busbw_GBps\ncoll,all_reduce,1.0\ncoll,all_gather,fast\n' >$T/badth.csv
LOG=$T/badth.log
"$ACC" -t $T/badth.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: a bad number in thresholds -> file:line, exit 2" "exit 2, 'badth.csv:4: column min_busbw_GBps'" \
  eval '[ $RC = 2 ] && grep -q "$T/badth.csv:4: column .min_busbw_GBps.: .fast. is not a number" $LOG'
printf 'suite,op,min_busbw_GBps\ncoll,all_reduce,-5\n' >$T/negth.csv
"$ACC" -t $T/negth.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: a negative min_busbw_GBps -> file:line, exit 2 (not 'no limit')" "exit 2, 'negth.csv:2: ... must be >= 0'" \
  eval '[ $RC = 2 ] && grep -q "$T/negth.csv:2: column .min_busbw_GBps.: .-5. must be >= 0" $LOG'
printf 'suite,op,min_busbw,checks\ncoll,*,1,pass\n' >$T/badcol.csv
"$ACC" -t $T/badcol.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: an unknown thresholds column -> file:line, exit 2" "exit 2, names min_busbw and the file" \
  eval '[ $RC = 2 ] && grep -q "$T/badcol.csv:1: .*Extra column \"min_busbw\"" $LOG'
printf 'suite,op,min_bytes,min_busbw_GBps\ncoll,*,12Q,1\n' >$T/badsize.csv
"$ACC" -t $T/badsize.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: a bad size in thresholds -> file:line, exit 2" "exit 2" \
  eval '[ $RC = 2 ] && grep -q "badsize.csv:2: column .min_bytes.: .12Q. is not a size" $LOG'

# Report, part 1: busbw plots of the coll runs (one per collective, a line per run), the failed check listed.
LOG=$T/rep.log
"$REP" -o $T/report1.html --title "tools test" $T/A $T/Bslow $T/failrow >$LOG 2>&1; RC=$?
expect "report: self-contained HTML with 5 busbw plots, 3 runs each, the failed check listed" "exit 0" \
  eval '[ $RC = 0 ] && [ "$(grep -c "<svg class=\"plot\" id=\"busbw-coll-[a-z_]*-fp32\" data-kind=\"busbw\"" $T/report1.html)" = 5 ] &&
        ! grep -Eq "<script|src=\"http|href=\"http" $T/report1.html && grep -q "all_gather.out_of_place" $T/report1.html &&
        [ "$(grep -c "class=\"series\"" $T/report1.html)" -ge 15 ]'

cp $T/report1.html $T/report1.keep
"$REP" -o $T/report1.html $T/A >$LOG 2>&1; RC=$?
expect "report: an existing --output is refused" "exit 2 naming --output, file unchanged" \
  eval '[ $RC = 2 ] && grep -q "\-\-output .*file exists" $LOG && cmp -s $T/report1.html $T/report1.keep'

# Report, part 2: real runs of every suite. S holds one run of each suite at 4 ranks, S2 a second
# DDP bucket sweep; A and B are the coll runs above. Every section must draw its plot.
SUITE_RUNS_OK=1
for s in "coll -b 4K -e 1M -f 4" "ddp --bucket-sweep 4K:64K" fsdp ep ckpt; do
  set -- $s; exe=$1; shift
  run_mpi 4 $T/S-$exe.log "$BIN/dtbench-$exe" --backend host -n 3 -w 1 -q --out $T/S "$@"
  [ $RC = 0 ] || { SUITE_RUNS_OK=0; echo "   dtbench-$exe exit $RC: $(tail -c 300 $LOG)"; }
done
run_mpi 4 $T/S2.log "$BIN/dtbench-ddp" --backend host -n 3 -w 1 -q --out $T/S2 --bucket-sweep 4K:64K
[ $RC = 0 ] || SUITE_RUNS_OK=0
LOG=$T/S-ckpt.log RC=$SUITE_RUNS_OK
expect "report: one run of every suite (coll ddp fsdp ep ckpt) for the full report" "each exits 0" eval '[ $SUITE_RUNS_OK = 1 ]'
ck=$(ls $T/S/ckpt-*-perf.csv | head -1)
timeline() { csvq $ck --where op=save_timeline "$@"; }
expect "ckpt: per-save timeline rows (blocking_end, write_start, write_end, durable_commit per save)" \
  "one row of each per committed save, write_start <= write_end <= durable_commit" \
  eval 'n=$(timeline metric=durable_commit --count) && [ "$n" -ge 2 ] &&
        [ "$(timeline metric=blocking_end --count)" = $n ] && [ "$(timeline metric=write_start --count)" = $n ] &&
        [ "$(timeline metric=write_end --count)" = $n ] &&
        timeline --print case,metric,value | awk -F"\t" '\''{v[$1, $2] = $3; c[$1] = 1}
          END {for (k in c) if (!(v[k, "write_start"] <= v[k, "write_end"] && v[k, "write_end"] <= v[k, "durable_commit"] + 1e-9)) exit 1}'\'''

LOG=$T/rep2.log
"$REP" -o $T/report.html --title "dtbench: every suite" $T/A $T/B $T/S $T/S2 >$LOG 2>&1; RC=$?
# What the plots must show, from the suites' own CSVs: the DDP best bucket sizes, the number of FSDP
# strategies and of checkpoint saves.
best() { csvq $1/ddp-*-perf.csv --where metric=best_bucket_size --print value |
         awk '{v=$1; u=""; while (v >= 1024 && v % 1024 == 0) {v/=1024; u=u "K"} sub(/KK/, "M", u); sub(/MK/, "G", u); print v u}'; }
n_strat=$(csvq $T/S/fsdp-*-perf.csv --count --where metric=overlap_efficiency)
n_saves=$(timeline metric=durable_commit --count)
cat >$T/expect.txt <<EOF
busbw-coll-all_reduce-fp32 series ^A 1; series ^B 1; series ^S 1
busbw-coll-reduce_scatter-fp32 series ^A 1; series ^B 1; series ^S 1
busbw-coll-all_gather-fp32 series ^A 1; series ^B 1; series ^S 1
busbw-coll-all_to_all-fp32 series ^A 1; series ^B 1; series ^S 1
busbw-coll-broadcast-fp32 series ^A 1; series ^B 1; series ^S 1
ddp-bucket-sweep-fp32 series ^S step time\$ 1; series ^S exposed comm\$ 1; series ^S2 step time\$ 1; marker ^best $(best $T/S) S\$ 1; marker ^best $(best $T/S2) S2\$ 1
fsdp-step-prefetch bar ^prefetch off\$ $n_strat; bar ^prefetch on\$ $n_strat
fsdp-overlap-efficiency bar ^overlap efficiency\$ $n_strat
fsdp-busbw-all_gather-fp32 series ^S fsdp_unshard\$ 1; series ^S plain .coll.\$ 1
fsdp-busbw-reduce_scatter-fp32 series ^S fsdp_grad_rs\$ 1; series ^S plain .coll.\$ 1
ckpt-timeline span ^blocking\$ $n_saves; span ^background write\$ $n_saves; span ^until commit\$ $n_saves; span ^durable commit\$ $n_saves
ep-all-to-all bar ^all-to-all-v .dispatch.\$ 1; bar ^all-to-all .equal bytes.\$ 1
ep-grad-sync bar ^two-level sync\$ 2; bar ^flat all-reduce\$ 2
EOF
# Checks the HTML against expect.txt (each plot's svg id, and per class and data-series pattern at
# least N elements); with PNGs, finds the plots' frames (1px #8a8a8b CSS border) in both renders and
# counts, per plot, saturated pixels left of the legend column: the data. The page without the data
# elements must have (almost) none, so the count is what the plots draw. Also counts the run colours
# (blue, red, green) over the busbw plots, legends included.
cat >$T/plots.py <<'EOF'
import re, sys, zlib, struct
def read_png(path):
    data = open(path, 'rb').read(); pos, idat = 8, b''
    while pos < len(data):
        n, typ = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
        if typ == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        elif typ == b'IDAT': idat += body
    bpp = {2: 3, 6: 4}[ctype]; raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]; line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride): line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            for i in range(stride): line[i] = (line[i] + prev[i]) & 255
        elif f == 3:
            for i in range(stride): line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        rows.append(bytes(line) if bpp == 3 else bytes(v for j, v in enumerate(line) if j % 4 < 3))
    return w, h, rows
BORDER = bytes((0x8a, 0x8a, 0x8b))
def boxes(w, h, rows):  # (x0, y0, x1, y1) of every plot frame, in page order
    out = []
    for y in range(h - 60):
        r = rows[y]; x = 0
        while True:
            i = r.find(BORDER * 100, x * 3)
            if i < 0: break
            if i % 3: x = i // 3 + 1; continue
            x0 = i // 3; x1 = x0
            while x1 + 1 < w and r[(x1 + 1) * 3:(x1 + 2) * 3] == BORDER: x1 += 1
            y1 = y
            while y1 + 1 < h and rows[y1 + 1][x0 * 3:x0 * 3 + 3] == BORDER: y1 += 1
            if y1 - y >= 60 and (y == 0 or rows[y - 1][x0 * 3 + 30:x0 * 3 + 33] != BORDER): out.append((x0, y, x1, y1))
            x = x1 + 1
    return out
def data_pixels(rows, b, legend=170):
    n = 0
    for y in range(b[1] + 1, b[3]):
        r = rows[y]
        for x in range(b[0] + 1, b[2] - legend):
            p = r[x * 3:x * 3 + 3]
            if max(p) - min(p) >= 60: n += 1
    return n
html = open(sys.argv[1]).read(); ok = True
svgs = re.findall(r'<svg class="plot" id="([^"]+)".*?</svg>', html, re.S)
blocks = dict(re.findall(r'<svg class="plot" id="([^"]+)"(.*?)</svg>', html, re.S))
kinds = {'series': r'<polyline class="series" data-series="([^"]*)"', 'bar': r'<rect class="bar" data-series="([^"]*)"',
         'span': r'<rect class="span" data-series="([^"]*)"', 'marker': r'<line class="marker" data-series="([^"]*)"'}
for line in open(sys.argv[2]):
    pid, _, rest = line.strip().partition(' ')
    if pid not in blocks: print('MISSING plot', pid); ok = False; continue
    for want in rest.split('; '):
        kind, rest2 = want.split(' ', 1); pat, n = rest2.rsplit(' ', 1)
        names = [re.sub('&amp;', '&', s) for s in re.findall(kinds[kind], blocks[pid])]
        got = sum(1 for s in names if re.search(pat, s))
        if got < int(n): print('plot %s: %d %s matching /%s/, want >= %s (have %s)' % (pid, got, kind, pat, n, names)); ok = False
print('html: %d plots, expectations %s' % (len(svgs), 'met' if ok else 'NOT met'))
if len(sys.argv) > 3:
    w, h, rows = read_png(sys.argv[3]); we, he, rows_e = read_png(sys.argv[4])
    bx, bxe = boxes(w, h, rows), boxes(we, he, rows_e)
    if len(bx) != len(svgs) or bx != bxe:
        print('png: %d plot frames in report.png, %d in the page without data, %d svg plots' % (len(bx), len(bxe), len(svgs))); ok = False
    runs = {'A (blue)': bytes((0x1f, 0x77, 0xb4)), 'B (red)': bytes((0xd6, 0x27, 0x28)), 'S (green)': bytes((0x2c, 0xa0, 0x2c))}
    colours = dict.fromkeys(runs, 0)
    for pid, b, be in zip(svgs, bx, bxe):
        d, e = data_pixels(rows, b), data_pixels(rows_e, be)
        good = d >= 150 and e <= 10
        ok &= good
        print('  %s %s: %dx%d at (%d,%d), %d data px (%d without data)' % ('ok ' if good else 'BAD', pid, b[2] - b[0], b[3] - b[1], b[0], b[1], d, e))
        if pid.startswith('busbw-'):
            for y in range(b[1], b[3]):
                r = rows[y]
                for k, c in runs.items(): colours[k] += sum(1 for x in range(b[0], b[2]) if r[x * 3:x * 3 + 3] == c)
    print('  run colours over the busbw plots: ' + ', '.join('%s=%d' % kv for kv in colours.items()))
    if min(colours.values()) < 300: ok = False
print('RESULT ' + ('OK' if ok else 'FAIL'))
EOF
python3 $T/plots.py $T/report.html $T/expect.txt >$T/plots-html.log 2>&1
cat $T/plots-html.log | sed 's/^/   /'
LOG=$T/plots-html.log
expect "report: every suite's section has its plot and series in the HTML" \
  "13 svgs besides the per-rank bars: busbw x5 (runs A B S), ddp sweep (step + exposed comm, best size of S and S2 as the suites chose), fsdp prefetch/efficiency/AG/RS, ckpt phases per save, ep bar pairs; per-rank bars for each run and suite with a ranks CSV" \
  eval '[ $RC = 0 ] && grep -q "^RESULT OK" $T/plots-html.log && [ "$(grep "<svg class=\"plot\"" $T/report.html | grep -vc "data-kind=\"ranks\"")" = 13 ] &&
        [ "$(grep -c "data-kind=\"ranks\"" $T/report.html)" -ge 1 ] &&
        ! grep -Eq "<script|src=\"http|href=\"http" $T/report.html'
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "SKIP report render: chromium is not installed (make deps installs the Debian chromium package)"
else
  # Render twice: the report, and the same page without its data elements (every line with data-series).
  sed '/data-series=/d' $T/report.html >$T/empty.html
  for page in report empty; do
    timeout -k 5 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$(mktemp -d -p $T)" \
      --hide-scrollbars --window-size=1400,5000 --screenshot=$T/$page.png "file://$T/$page.html" >$T/chrome-$page.log 2>&1
  done
  python3 $T/plots.py $T/report.html $T/expect.txt $T/report.png $T/empty.png >$T/plots-png.log 2>&1
  sed 's/^/   /' $T/plots-png.log
  LOG=$T/plots-png.log RC=0
  expect "report: headless Chromium draws every plot (data pixels in each frame, none without the data; run colours)" \
    "13 frames in page order, each >= 150 saturated px left of its legend and <= 10 without data; A/B/S colours >= 300 px" \
    eval 'grep -q "^RESULT OK" $T/plots-png.log'
  if [ -n "${KEEP_REPORT:-}" ]; then cp $T/report.html $T/report.png "$KEEP_REPORT"/ 2>/dev/null; fi
fi
