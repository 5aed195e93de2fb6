#!/usr/bin/env bash
# make bench: Google Benchmark micro-benchmarks (host hot paths next to memcpy), then dtbench-coll's
# host backend next to the raw MPI loop (bench/peers.sh coll: same sizes, same launch, same timing;
# median over interleaved rounds, busbw ratio per op and size). `make bench-peers` adds the PyTorch
# DDP and fio peers; bench/scaling.sh covers ranks and model size.
# Knobs: NP, ROUNDS, BENCH_MIN, BENCH_MAX, BENCH_ITERS, BENCH_MIN_TIME (micro-benchmarks, s).
set -euo pipefail
cd "$(dirname "$0")/.."
OBJ=${OBJ:?} BIN=${BIN:-bin}
export OBJ BIN

echo "== micro-benchmarks (host hot paths; compare GB/s with BM_Memcpy of the same bytes)"
"$OBJ/micro_bench" --benchmark_min_time="${BENCH_MIN_TIME:-0.2}"

echo
bash bench/peers.sh coll
