#!/usr/bin/env bash
# Scaling of the suites (host backend): time and memory vs ranks (1..8) and vs model size, and the
# validation cost per element vs the group size (micro-benchmark: the closed forms are O(1) in n).
# Per run: wall_s (whole run incl. validation and reports), the suite's key timing from its perf CSV,
# peak_B (the suite's own peak-bytes metric row, max over what it reports) and rss_MB (max over
# ranks of /usr/bin/time's max RSS). Each point is the median over REPEAT runs.
# Usage: bench/scaling.sh [SUITE...]   (default: every built suite of coll ddp ep fsdp ckpt)
# Knobs: RANKS ("1 2 4 8"), SIZE_NP (2: ranks for the model-size axis), REPEAT (1), OBJ, BIN,
#        SCALING_TABLE (also write the tables to this file)
set -uo pipefail
cd "$(dirname "$0")/.."
OBJ=${OBJ:-build/cuda} BIN=${BIN:-bin}
RANKS=${RANKS:-1 2 4 8} SIZE_NP=${SIZE_NP:-2} REPEAT=${REPEAT:-1}
export OMPI_MCA_mpi_yield_when_idle=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=(coll ddp ep fsdp ckpt)
work=$(mktemp -d /tmp/dtbench-scaling.XXXXXX)
trap 'rm -rf "$work"' EXIT
TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=""

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
perf_rows() { grep -v '^#' "$1"; }  # header + rows

# The fixed workload of each suite; $1 = size knob (for the model-size axis).
suite_args() {
  local s=$1 size=$2
  case $s in
    coll) echo "-b $size -e $size -n 10 -w 2 --ops all_reduce,reduce_scatter,all_gather,all_to_all" ;;
    ddp) echo "--model tiny --hidden $size --layers 2 --bucket-mb 1 --backward-ms 0 -n 10 -w 2" ;;
    ep) echo "--hidden $size --ffn $((2 * size)) --tokens-per-rank 64 -n 10 -w 2" ;;
    fsdp) echo "--model tiny --hidden $size --strategy optim_grads_params --grad-reduce avg --prefetch on -n 5 -w 1" ;;
    ckpt) echo "--hidden $size --layers 2 --repeat 2 --io buffered" ;;
  esac
}
default_size() { case $1 in coll) echo 4M ;; ddp | fsdp) echo 128 ;; ep) echo 64 ;; ckpt) echo 64 ;; esac; }
sizes_of() { case $1 in coll) echo "256K 1M 4M 16M" ;; ddp | fsdp) echo "64 128 256 512" ;; ep) echo "32 64 128 256" ;; ckpt) echo "32 64 128 256" ;; esac; }
size_label() { case $1 in coll) echo "bytes" ;; *) echo "hidden" ;; esac; }

# The key timing of a run (us unless stated in the key's name).
key_time() {  # SUITE PERF_CSV
  local s=$1 f=$2
  case $s in
    coll) perf_rows "$f" | awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["op"]=="all_reduce"{print $c["time_med_us"]}' | head -1 ;;
    ddp) perf_rows "$f" | awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["op"]=="grad_sync" && $c["time_med_us"]!=""{print $c["time_med_us"]}' | head -1 ;;
    ep) perf_rows "$f" | awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["op"]=="all_to_allv" && $c["time_med_us"]!=""{print $c["time_med_us"]}' | head -1 ;;
    fsdp) perf_rows "$f" | awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["op"]=="fsdp_step" && $c["time_med_us"]!=""{print $c["time_med_us"]}' | head -1 ;;
    ckpt) perf_rows "$f" | awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["metric"]=="time_to_durable_commit"{print $c["value"]*1000}' | head -1 ;;
  esac
}
key_name() { case $1 in coll) echo "all_reduce_us" ;; ddp) echo "grad_sync_us" ;; ep) echo "a2av_us" ;; fsdp) echo "step_us" ;; ckpt) echo "commit_us" ;; esac; }
peak_bytes() {  # max over the suite's peak-bytes metric rows
  perf_rows "$1" | awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["metric"] ~ /peak/ {if ($c["value"]+0>m) m=$c["value"]+0} END{if (m) printf "%d", m; else print "-"}'
}

# run SUITE NP SIZE -> "wall key peak rss status" (medians over REPEAT)
run_point() {
  local s=$1 np=$2 size=$3 r walls=() keys=() peaks=() rsss=() status=ok
  for r in $(seq "$REPEAT"); do
    local out="$work/$s-$np-$size-$r"
    mkdir -p "$out"
    local t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    # each rank under /usr/bin/time (max RSS into rss.RANK)
    timeout -k 5 300 mpirun --oversubscribe --bind-to none -np "$np" \
      sh -c 'if [ -n "$1" ]; then t=$1; d=$2; shift 2; exec "$t" -f %M -o "$d/rss.$OMPI_COMM_WORLD_RANK" "$@"; else shift 2; exec "$@"; fi' \
      rss "$TIME" "$out" "$BIN/dtbench-$s" --backend host -q --out "$out" -c 1 \
      $(suite_args "$s" "$size") >"$out/log" 2>&1 || status="rc=$?"
    t1=$(date +%s.%N)
    walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')")
    local f
    f=$(ls "$out"/*-perf.csv 2>/dev/null | head -1)
    if [ -n "$f" ]; then
      keys+=("$(key_time "$s" "$f")")
      peaks+=("$(peak_bytes "$f")")
    fi
    rsss+=("$(cat "$out"/rss.* 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}')")
  done
  echo "$(printf '%s\n' "${walls[@]}" | median) $(printf '%s\n' "${keys[@]:-}" | grep -v '^$' | median) $(printf '%s\n' "${peaks[@]:-}" | grep -v '^-$' | grep -v '^$' | median) $(printf '%s\n' "${rsss[@]:-}" | grep -v '^$' | median) $status"
}

{
  echo "scaling (host backend, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); median of $REPEAT run(s))"
  for s in "${SUITES[@]}"; do
    if [ ! -x "$BIN/dtbench-$s" ]; then echo "SKIP $s: $BIN/dtbench-$s not built"; continue; fi
    echo
    echo "## dtbench-$s vs ranks ($(size_label "$s") $(default_size "$s")): $(suite_args "$s" "$(default_size "$s")")"
    printf "%6s %9s %14s %14s %9s  %s\n" ranks wall_s "$(key_name "$s")" peak_B rss_MB status
    for np in $RANKS; do
      read -r w k p m st < <(run_point "$s" "$np" "$(default_size "$s")")
      printf "%6s %9s %14s %14s %9s  %s\n" "$np" "$w" "$k" "$p" "$m" "$st"
    done
    echo "## dtbench-$s vs model size ($SIZE_NP ranks)"
    printf "%8s %9s %14s %14s %9s  %s\n" "$(size_label "$s")" wall_s "$(key_name "$s")" peak_B rss_MB status
    for size in $(sizes_of "$s"); do
      read -r w k p m st < <(run_point "$s" "$SIZE_NP" "$size")
      printf "%8s %9s %14s %14s %9s  %s\n" "$size" "$w" "$k" "$p" "$m" "$st"
    done
  done
  if [ -x "$OBJ/micro_bench" ]; then
    echo
    echo "## validation cost per element vs group size n (Context::check path, reduce_sum closed form, 4M elements)"
    printf "%-6s %6s %18s %18s\n" dtype n "per-element ns" "table ns"
    "$OBJ/micro_bench" --benchmark_filter='BM_VerifyVsRanks' --benchmark_min_time=0.1 2>/dev/null |
      awk '/^BM_VerifyVsRanks/ {
        split($1, p, "/"); dt = p[1]; sub(/.*</, "", dt); sub(/>.*/, "", dt);
        ns = ""; for (i = 1; i <= NF; i++) if ($i ~ /^ns_per_elem=/) { ns = $i; sub(/ns_per_elem=/, "", ns) }
        if (ns ~ /ps$/) { sub(/ps$/, "", ns); ns = ns / 1000 } else sub(/ns$/, "", ns);
        key = dt " " p[2]; if (!(key in seen)) { seen[key] = 1; keys[++n] = key }
        if (p[3] == "0") pe[key] = ns; else tb[key] = ns }
        END { for (i = 1; i <= n; i++) { split(keys[i], k, " "); printf "%-6s %6s %18.3f %18.3f\n", k[1], k[2], pe[keys[i]], tb[keys[i]] } }'
  else
    echo "SKIP validation cost: $OBJ/micro_bench not built (make $OBJ/micro_bench)"
  fi
} | tee "${SCALING_TABLE:-/dev/null}"
