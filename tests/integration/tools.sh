#!/usr/bin/env bash
# dtbench-compare, dtbench-accept and dtbench-report on CSVs of real dtbench-coll runs: run-to-run noise
# is not flagged, a planted regression is; accept passes a clean run and fails a planted slow or failing
# row; malformed reports and thresholds name file and line (exit 2); the report renders in headless
# Chromium with its plots visible in the PNG.
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

# Planted regression: every all_gather row of the candidate 20x slower (times x20, bandwidths /20).
# On a loaded 2-core machine some rows' iteration ranges span 100x, so not every row can be flagged.
cp -r $T/B $T/Bslow
for f in $T/Bslow/*/*-perf.csv; do
  awk -F, -v OFS=, '/^#/ || $1=="run_id" {print; next}
    $6=="all_gather" {$16*=20; $17*=20; $18*=20; $19/=20; $20/=20} {print}' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
done
LOG=$T/cmp-slow.log
"$CMP" --csv $T/cmp.csv $T/A $T/Bslow >$LOG 2>&1; RC=$?
expect "compare: a planted 20x all_gather slowdown is flagged, nothing else" "exit 1, REGRESSION rows all all_gather" \
  eval '[ $RC = 1 ] && grep -q "^dtbench-compare: REGRESSION" $LOG &&
        [ "$(grep -c " REGRESSION$" $LOG)" -ge 3 ] && ! grep " REGRESSION$" $LOG | grep -qv "^all_gather" &&
        grep -q ",all_gather,.*,REGRESSION$" $T/cmp.csv'
LOG=$T/cmp-fast.log
"$CMP" $T/Bslow $T/A >$LOG 2>&1; RC=$?
expect "compare: the reverse direction is an improvement, not a regression" "exit 0, faster rows" \
  eval '[ $RC = 0 ] && grep -q " faster$" $LOG'
LOG=$T/cmp-one.log
"$CMP" $T/A >$LOG 2>&1; RC=$?
expect "compare: one run is bad input" "exit 2" eval '[ $RC = 2 ]'

# Accept: the clean run passes; a planted slow row and a planted FAIL row fail, naming file:line and node.
LOG=$T/acc-ok.log
"$ACC" -t "$TH" $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: a clean run passes the host thresholds" "exit 0, PASS verdict, node line" \
  eval '[ $RC = 0 ] && grep -q "^dtbench-accept: PASS" $LOG && grep -q "^node .*: PASS" $LOG && ! grep -q "^FAIL" $LOG'
mkdir -p $T/slow $T/failrow
cp $T/A/r1/*.csv $T/slow/ && cp $T/A/r1/*.csv $T/failrow/
p=$(perf_csv $T/slow)
line=$(grep -n ',reduce_scatter,' "$p" | tail -1 | cut -d: -f1)
sed -i "${line}s/^\(\([^,]*,\)\{19\}\)[^,]*/\10.00000001/" "$p"
LOG=$T/acc-slow.log
"$ACC" -t "$TH" $T/slow >$LOG 2>&1; RC=$?
expect "accept: a planted slow reduce_scatter row fails, naming file:line" "exit 1, FAIL rule + $(basename $p):$line" \
  eval '[ $RC = 1 ] && grep -q "^FAIL .*reduce_scatter" $LOG && grep -q "$(basename $p):$line reduce_scatter" $LOG &&
        grep -q "^dtbench-accept: FAIL" $LOG'
c=$(checks_csv $T/failrow)
line=$(grep -n ',all_gather.out_of_place,' "$c" | head -1 | cut -d: -f1)
awk -F, -v OFS=, -v L=$line 'NR==L {$8="FAIL"; $10=1; $11="1"; $12=1} {print}' "$c" >"$c.tmp" && mv "$c.tmp" "$c"
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

# Malformed inputs: error names file and line, exit 2.
mkdir -p $T/bad1 $T/bad2
cp $T/A/r1/*-perf.csv $T/bad1/
p=$(perf_csv $T/bad1)
line=$(( $(grep -c '^#' "$p") + 3 ))
sed -i "${line}s/^\(\([^,]*,\)\{15\}\)[^,]*/\1abc/" "$p"
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
printf 'suite,op,min_busbw,checks\ncoll,*,1,pass\n' >$T/badcol.csv
"$ACC" -t $T/badcol.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: an unknown thresholds column -> file:line, exit 2" "exit 2, names min_busbw and the file" \
  eval '[ $RC = 2 ] && grep -q "$T/badcol.csv:1: .*Extra column \"min_busbw\"" $LOG'
printf 'suite,op,min_bytes,min_busbw_GBps\ncoll,*,12Q,1\n' >$T/badsize.csv
"$ACC" -t $T/badsize.csv $T/A/r1 >$LOG 2>&1; RC=$?
expect "accept: a bad size in thresholds -> file:line, exit 2" "exit 2" \
  eval '[ $RC = 2 ] && grep -q "badsize.csv:2: column .min_bytes.: .12Q. is not a size" $LOG'

# Report: HTML with one busbw plot per collective and one line per run; rendered by headless Chromium.
LOG=$T/rep.log
"$REP" -o $T/report.html --title "tools test" $T/A $T/Bslow $T/failrow >$LOG 2>&1; RC=$?
expect "report: self-contained HTML with 5 busbw plots, 3 runs each, the failed check listed" "exit 0" \
  eval '[ $RC = 0 ] && [ "$(grep -c "<svg class=\"plot\" data-kind=\"busbw\"" $T/report.html)" = 5 ] &&
        ! grep -Eq "<script|src=\"http|href=\"http" $T/report.html && grep -q "all_gather.out_of_place" $T/report.html &&
        [ "$(grep -c "class=\"series\"" $T/report.html)" -ge 15 ]'
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "SKIP report render: chromium is not installed (make deps installs the Debian chromium package)"
else
  # Render twice: the report, and the same page with every series removed; the plot colours must
  # appear in the first and not in the second.
  sed 's/<polyline class="series"[^>]*>.*<\/polyline>//; s/<circle [^>]*>.*<\/circle>//' $T/report.html >$T/empty.html
  for page in report empty; do
    timeout -k 5 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$(mktemp -d -p $T)" \
      --hide-scrollbars --window-size=1300,3000 --screenshot=$T/$page.png "file://$T/$page.html" >$T/chrome-$page.log 2>&1
  done
  # Counts pixels of each series colour in a PNG (8-bit RGB/RGBA, non-interlaced: what Chromium writes).
  cat >$T/pixels.py <<'EOF'
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
pos, idat, w = 8, b'', 0
while pos < len(data):
    n, typ = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if typ == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif typ == b'IDAT': idat += body
bpp = {2: 3, 6: 4}[ctype]; raw = zlib.decompress(idat); stride = w * bpp
prev = bytearray(stride); counts = {}
want = {(0x1f, 0x77, 0xb4): 'blue', (0xd6, 0x27, 0x28): 'red', (0x2c, 0xa0, 0x2c): 'green'}
for y in range(h):
    f = raw[y * (stride + 1)]; line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        k = want.get(tuple(line[x:x + 3]))
        if k: counts[k] = counts.get(k, 0) + 1
    prev = line
print(' '.join('%s=%d' % (k, counts.get(k, 0)) for k in ('blue', 'red', 'green')))
EOF
  full=$(python3 $T/pixels.py $T/report.png 2>&1) empty=$(python3 $T/pixels.py $T/empty.png 2>&1)
  echo "   report.png: $full; without series: $empty"
  LOG=$T/chrome-report.log RC=0
  expect "report: headless Chromium renders the plots (series colours in the PNG, absent without series)" \
    "each of 3 run colours >= 300 px in report.png, far fewer in empty.png" \
    eval 'set -- $full; b=${1#blue=} r=${2#red=} g=${3#green=}; set -- $empty; eb=${1#blue=} er=${2#red=}
          [ "$b" -ge 300 ] && [ "$r" -ge 300 ] && [ "$g" -ge 300 ] && [ "$eb" -lt $((b / 4)) ] && [ "$er" -lt $((r / 4)) ]'
fi
