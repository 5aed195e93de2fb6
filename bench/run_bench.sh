#!/usr/bin/env bash
# make bench: Google Benchmark micro-benchmarks, then dtbench-coll's host backend next to the raw
# MPI loop (same sizes, same launch, same timing method) with the busbw ratio per op and size.
set -euo pipefail
cd "$(dirname "$0")/.."
OBJ=${OBJ:?} BIN=${BIN:-bin}
NP=${NP:-4}
export OMPI_MCA_mpi_yield_when_idle=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none -np "$NP")
SIZES=(-b "${BENCH_MIN:-1M}" -e "${BENCH_MAX:-16M}" -f 4 -n "${BENCH_ITERS:-20}" -w 3)

echo "== micro-benchmarks (host hot paths; compare GB/s with BM_Memcpy)"
"$OBJ/micro_bench" --benchmark_min_time=0.2

out=$(mktemp -d)
echo
echo "== dtbench-coll (host backend) vs raw MPI loop, $NP ranks"
# Interleave the two so machine noise hits both alike; the best of the rounds per row is compared.
for round in 1 2 3; do
  "${MPIRUN[@]}" "$OBJ/raw_mpi_loop" "${SIZES[@]}" >"$out/raw$round.csv"
  "${MPIRUN[@]}" "$BIN/dtbench-coll" "${SIZES[@]}" -c 0 -q --placement out \
    --ops all_reduce,reduce_scatter,all_gather,all_to_all --backend host --out "$out/coll$round" 2>/dev/null
done
cat "$out"/coll*/coll-*-perf.csv | grep -v '^#' | awk -F, '$5!="case" {print $6","$13","$20}' >"$out/coll.csv"
cat "$out"/raw*.csv | grep -v '^op' | awk -F, '{print $1","$2","$4}' >"$out/raw.csv"
awk -F, '
  FNR==NR { k=$1","$2; if ($3>raw[k]) raw[k]=$3; next }
  { k=$1","$2; if ($3>coll[k]) coll[k]=$3 }
  END {
    for (k in coll) if (k in raw) { split(k, p, ","); printf "%-16s %12d %14.3f %14.3f %8.3f\n", p[1], p[2], coll[k], raw[k], coll[k]/raw[k] }
  }' "$out/raw.csv" "$out/coll.csv" | sort -k1,1 -k2,2n >"$out/table"
printf "%-16s %12s %14s %14s %8s\n" op bytes "coll busbw" "raw busbw" "ratio (GB/s, best of 3 rounds)"
cat "$out/table"
rm -rf "$out"
