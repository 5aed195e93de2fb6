#!/usr/bin/env bash
# The benchmark programs work as documented (their numbers are not asserted: timings are never
# tested): micro_bench in every output format, raw_mpi_loop's collective and p2p modes, and a
# one-round bench/peers.sh p2p whose PEERS_CSV dtbench-report draws.
source "$(dirname "$0")/../lib.sh"
OBJ=${OBJ:-build/cuda}
MB=$OBJ/micro_bench RAW=$OBJ/raw_mpi_loop
if [ ! -x "$MB" ] || [ ! -x "$RAW" ]; then fail "bench programs" "$MB or $RAW not built (make $MB $RAW)"; exit 0; fi

for fmt in console json csv; do
  LOG=$TMP_ROOT/mb-$fmt.out
  timeout 300 "$MB" --benchmark_format=$fmt --benchmark_filter='Memcpy|VerifyIdentity|BM_Verify<' --benchmark_min_time=0.001 \
    >$LOG 2>$TMP_ROOT/mb-$fmt.err
  RC=$?
  case $fmt in
    json) ok='python3 -c "import json,sys; b=json.load(open(sys.argv[1]))[\"benchmarks\"]; assert len(b) >= 4" $LOG' ;;
    csv) ok='python3 -c "import csv,sys; r=list(csv.DictReader(l for l in open(sys.argv[1]) if l.startswith((\"name\", \"\\\"\")))); assert len(r) >= 4 and all(x[\"bytes_per_second\"] for x in r)" $LOG' ;;
    *) ok='grep -q "BM_Memcpy" $LOG' ;;
  esac
  expect "micro_bench --benchmark_format=$fmt" "exit 0 and a parseable $fmt listing of every benchmark run" eval "[ \$RC = 0 ] && $ok"
done

run_mpi 2 $TMP_ROOT/raw.csv "$RAW" -b 64K -e 256K -f 4 -n 3 -w 1
expect "raw_mpi_loop collectives" "exit 0, 4 ops x 2 sizes" eval '[ $RC = 0 ] && [ "$(grep -c "^all_\|^reduce_" $LOG)" = 8 ]'
run_mpi 2 $TMP_ROOT/rawp2p.csv "$RAW" --p2p -b 64K -e 256K -f 4 -n 3 -w 1
expect "raw_mpi_loop --p2p" "exit 0, p2p_uni and p2p_bi at 2 sizes" \
  eval '[ $RC = 0 ] && [ "$(grep -c "^p2p_uni,\|^p2p_bi," $LOG)" = 4 ]'

if [ -x "$BIN/dtbench-p2p" ] && [ -x "$BIN/dtbench-report" ]; then
  LOG=$TMP_ROOT/peers.log
  OBJ=$OBJ BIN=$BIN ROUNDS=1 P2P_NP=4 BENCH_MIN=64K BENCH_MAX=256K BENCH_ITERS=3 P2P_MATRIX_BYTES=256K PEERS_CSV=$TMP_ROOT/peers-perf.csv \
    timeout 300 bash bench/peers.sh p2p >$LOG 2>&1
  RC=$?
  timeout 60 "$BIN/dtbench-report" $TMP_ROOT/peers-perf.csv -o $TMP_ROOT/peers.html >>$LOG 2>&1
  expect "bench-peers p2p: ratio table, PEERS_CSV drawn by dtbench-report" \
    "exit 0, link rows and the matrix row, one convention line, a peers plot" \
    eval '[ $RC = 0 ] && grep -q "^p2p   link 0->1 uni 65536 B" $LOG && grep -q "^p2p   pair matrix bi 4 ranks" $LOG &&
          grep -q "^ratio = peer time / dtbench time" $LOG && grep -q "data-kind=\"peers\"" $TMP_ROOT/peers.html &&
          csvq $TMP_ROOT/peers-perf.csv --where metric=speed_ratio op=p2p "value>0"'
  OBJ=$OBJ BIN=$BIN PEERS_CSV=$TMP_ROOT/peers.csv bash bench/peers.sh p2p >$TMP_ROOT/peers-bad.log 2>&1
  RC=$? LOG=$TMP_ROOT/peers-bad.log
  expect "bench-peers refuses a PEERS_CSV the tools could not read" "exit 2 naming PEERS_CSV, nothing run" \
    eval '[ $RC = 2 ] && grep -q "PEERS_CSV must end in -perf.csv" $LOG && [ ! -e $TMP_ROOT/peers.csv ]'
fi
