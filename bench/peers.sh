#!/usr/bin/env bash
# make bench-peers: dtbench next to the tools users know, in one run, as a ratio table.
#   coll  dtbench-coll --backend host  vs  bench/raw_mpi_loop (plain MPI collectives, same timing)
#   ddp   dtbench-ddp --backend host   vs  PyTorch DDP on CPU, gloo (bench/torch_ddp_peer.py):
#         same parameter shapes (one model CSV for both), same bucket cap, same rank count
#   ckpt  dtbench-ckpt save            vs  fio: same directory, same writers per rank, same bytes, fsync,
#         buffered and O_DIRECT; fio's io_uring next to its psync; blocking / sync save per staging mode
#   p2p   dtbench-p2p on 2 ranks       vs  bench/raw_mpi_loop --p2p (MPI_Isend/Irecv of the same size,
#         same timing): link 0->1 GB/s, one way and both ways; and the whole pair matrix on P2P_NP (8)
#         ranks (n-1 bidirectional rounds, P2P_MATRIX_BYTES 4M) vs (n-1) x one pair's bidirectional time
# Each pair runs interleaved ROUNDS times; every number is the median over the rounds of the run's own
# median. ratio = dtbench / peer for bandwidths, peer / dtbench for times: > 1 means dtbench is faster.
# A peer that is not installed is skipped with a SKIP line (as root it is apt-installed first unless
# PEERS_INSTALL=0), never faked.
# Usage: bench/peers.sh [coll] [ddp] [ckpt] [p2p]     (default: all four)
# Knobs: NP (4) ROUNDS (3) PYTHON (/usr/bin/python3) BENCH_MIN/BENCH_MAX/BENCH_ITERS (coll sizes, 1M/16M/20)
#        MODEL_H/MODEL_L/MODEL_V (ddp model: hidden, layers, vocab; 256/4/8192) BUCKET_MB (25)
#        CKPT_HIDDEN/CKPT_LAYERS (512/4: 218 MB per checkpoint) CKPT_WRITERS (1) CKPT_NP (NP) CKPT_ROUNDS (ROUNDS)
#        CKPT_COMPUTE_MS (2: simulated compute per training step)
#        CKPT_DIR (a temp dir)
#        PEERS_TABLE (also write the table to this file) PEERS_CSV (X-perf.csv: and as a perf CSV dtbench-report draws) PEER_TIMEOUT (300 s: a peer run that takes longer is killed)
set -uo pipefail
cd "$(dirname "$0")/.."
OBJ=${OBJ:-build/cuda} BIN=${BIN:-bin}
NP=${NP:-4} ROUNDS=${ROUNDS:-3}
# Debian's python3-torch lives in the system interpreter (a pyenv/venv python3 on PATH would not see it).
PYTHON=${PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)}
export OMPI_MCA_mpi_yield_when_idle=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none -np "$NP")
if [ -n "${PEERS_CSV:-}" ]; then
  case $PEERS_CSV in *-perf.csv) ;; *) echo "bench/peers.sh: PEERS_CSV must end in -perf.csv (the tools read it as a perf report), got $PEERS_CSV" >&2; exit 2 ;; esac
  [ -e "$PEERS_CSV" ] && { echo "bench/peers.sh: PEERS_CSV $PEERS_CSV exists; not overwritten" >&2; exit 2; }
fi
WHAT=("$@")
[ ${#WHAT[@]} -eq 0 ] && WHAT=(coll ddp ckpt p2p)
want() { [[ " ${WHAT[*]} " == *" $1 "* ]]; }

work=$(mktemp -d /tmp/dtbench-peers.XXXXXX)
trap 'rm -rf "$work"' EXIT
rows="$work/rows"   # suite|case|dtbench|peer|unit|ratio|note
: >"$rows"
skips="$work/skips"
: >"$skips"
skip() { echo "SKIP $*" | tee -a "$skips" >&2; }

# median of the numbers on stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print ""; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# perf CSV field by column name, for rows where column `where_col` == `where_val`
perf_field() {  # FILE WHERE_COL WHERE_VAL FIELD
  grep -v '^#' "$1" | awk -F, -v wc="$2" -v wv="$3" -v fc="$4" '
    NR==1 {for (i=1;i<=NF;i++) col[$i]=i; next}
    $col[wc]==wv {print $col[fc]}'
}
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {  # PKG: installs when root and allowed; returns 0 when it is installed afterwards
  dpkg -s "$1" >/dev/null 2>&1 && return 0
  if is_root && [ "${PEERS_INSTALL:-1}" != 0 ]; then
    echo "installing $1 (apt-get; PEERS_INSTALL=0 to skip)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1" >"$work/apt-$1.log" 2>&1 ||
      { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1" >>"$work/apt-$1.log" 2>&1; }
  fi
  dpkg -s "$1" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------------
peer_coll() {
  if [ ! -x "$OBJ/raw_mpi_loop" ] || [ ! -x "$BIN/dtbench-coll" ]; then
    skip "coll: $OBJ/raw_mpi_loop or $BIN/dtbench-coll not built (make all $OBJ/raw_mpi_loop)"
    return
  fi
  local sizes=(-b "${BENCH_MIN:-1M}" -e "${BENCH_MAX:-16M}" -f 4 -n "${BENCH_ITERS:-20}" -w 3)
  echo "== coll: dtbench-coll (host) vs raw MPI loop, $NP ranks, $ROUNDS rounds" >&2
  for r in $(seq "$ROUNDS"); do
    "${MPIRUN[@]}" "$OBJ/raw_mpi_loop" "${sizes[@]}" >"$work/raw$r.csv" 2>"$work/raw$r.err" || skip "coll: raw_mpi_loop failed (round $r)"
    "${MPIRUN[@]}" "$BIN/dtbench-coll" "${sizes[@]}" -c 0 -q --placement out \
      --ops all_reduce,reduce_scatter,all_gather,all_to_all --backend host --out "$work/coll$r" >/dev/null 2>"$work/coll$r.err" ||
      skip "coll: dtbench-coll failed (round $r)"
  done
  # op,bytes,busbw per round -> medians
  for r in $(seq "$ROUNDS"); do
    grep -v '^op' "$work/raw$r.csv" 2>/dev/null | awk -F, '{print $1","$2","$4}'
  done >"$work/raw.all"
  for f in "$work"/coll*/coll-*-perf.csv; do
    [ -f "$f" ] && grep -v '^#' "$f" | awk -F, 'NR==1 {for (i=1;i<=NF;i++) c[$i]=i; next} {print $c["op"]","$c["bytes"]","$c["busbw_GBps"]}'
  done >"$work/coll.all"
  local key
  for key in $(cut -d, -f1,2 "$work/coll.all" | sort -u); do
    local c r
    c=$(grep "^$key," "$work/coll.all" | cut -d, -f3 | median)
    r=$(grep "^$key," "$work/raw.all" | cut -d, -f3 | median)
    [ -z "$c" ] || [ -z "$r" ] && continue
    echo "coll|${key%%,*} ${key#*,} B|$c|$r|busbw GB/s|$(awk -v a="$c" -v b="$r" 'BEGIN{printf "%.3f", (b>0)?a/b:0}')|raw MPI_* loop"
  done | sort -t'|' -k2,2V >>"$rows"
}

# ---------------------------------------------------------------------------------------------------
# A GPT-style model CSV (name,shape,dtype,expert): what both dtbench-ddp and the torch peer build.
write_model_csv() {  # FILE H L V
  local f=$1 h=$2 l=$3 v=$4 i
  {
    echo "name,shape,dtype,expert"
    echo "embedding.word,${v}x${h},fp32,0"
    echo "embedding.position,1024x${h},fp32,0"
    for i in $(seq 0 $((l - 1))); do
      echo "layers.$i.ln1.weight,$h,fp32,0"
      echo "layers.$i.ln1.bias,$h,fp32,0"
      echo "layers.$i.qkv.weight,$((3 * h))x${h},fp32,0"
      echo "layers.$i.qkv.bias,$((3 * h)),fp32,0"
      echo "layers.$i.proj.weight,${h}x${h},fp32,0"
      echo "layers.$i.proj.bias,$h,fp32,0"
      echo "layers.$i.ln2.weight,$h,fp32,0"
      echo "layers.$i.ln2.bias,$h,fp32,0"
      echo "layers.$i.fc1.weight,$((4 * h))x${h},fp32,0"
      echo "layers.$i.fc1.bias,$((4 * h)),fp32,0"
      echo "layers.$i.fc2.weight,${h}x$((4 * h)),fp32,0"
      echo "layers.$i.fc2.bias,$h,fp32,0"
    done
    echo "final_ln.weight,$h,fp32,0"
    echo "final_ln.bias,$h,fp32,0"
  } >"$f"
}

peer_ddp() {
  if [ ! -x "$BIN/dtbench-ddp" ]; then skip "ddp: $BIN/dtbench-ddp not built"; return; fi
  if ! "$PYTHON" -c 'import torch, torch.distributed; assert torch.distributed.is_gloo_available()' >/dev/null 2>&1; then
    apt_install python3-torch
    if ! "$PYTHON" -c 'import torch, torch.distributed; assert torch.distributed.is_gloo_available()' >/dev/null 2>&1; then
      skip "ddp: PyTorch DDP peer: python3-torch not installed ($(is_root && echo "install failed, see apt log" ||
        echo "not root: apt-get install python3-torch"))"
      return
    fi
  fi
  local h=${MODEL_H:-256} l=${MODEL_L:-4} v=${MODEL_V:-8192} mb=${BUCKET_MB:-25} iters=${DDP_ITERS:-20}
  local model="$work/model.csv"
  write_model_csv "$model" "$h" "$l" "$v"
  echo "== ddp: dtbench-ddp (host) vs PyTorch DDP (gloo, CPU), $NP ranks, model H=$h L=$l V=$v, bucket ${mb} MiB" >&2
  local r port
  for r in $(seq "$ROUNDS"); do
    "${MPIRUN[@]}" "$BIN/dtbench-ddp" --backend host --model "$model" --bucket-mb "$mb" --backward-ms 0 \
      -n "$iters" -w 3 -c 0 -q --out "$work/ddp$r" >/dev/null 2>"$work/ddp$r.err" || skip "ddp: dtbench-ddp failed (round $r): $(tail -1 "$work/ddp$r.err")"
    port=$((29500 + RANDOM % 2000))
    # Bounded: torch's gloo teardown can hang after the results are printed (ranks left in futex
    # waits); a peer that does not exit in time is killed and reported, its printed rows kept.
    timeout -k 10 "${PEER_TIMEOUT:-300}" "${MPIRUN[@]}" "$PYTHON" bench/torch_ddp_peer.py --model-csv "$model" \
      --bucket-mb "$mb" --iters "$iters" --warmup 3 --port "$port" >"$work/torch$r.csv" 2>"$work/torch$r.err"
    case $? in
      0) ;;
      124 | 137) skip "ddp: torch peer did not exit within ${PEER_TIMEOUT:-300} s (round $r), killed$(grep -q '^grad_sync,' "$work/torch$r.csv" && echo "; its results were printed and are used")" ;;
      *) skip "ddp: torch peer failed (round $r): $(tail -1 "$work/torch$r.err")" ;;
    esac
  done
  local d t dflat tflat note
  d=$(for f in "$work"/ddp*/ddp-*-perf.csv; do [ -f "$f" ] && perf_field "$f" op grad_sync time_med_us; done | median)
  dflat=$(for f in "$work"/ddp*/ddp-*-perf.csv; do [ -f "$f" ] && perf_field "$f" op flat_grad_sync time_med_us; done | median)
  t=$(cat "$work"/torch*.csv 2>/dev/null | grep '^grad_sync,' | cut -d, -f2 | median)
  tflat=$(cat "$work"/torch*.csv 2>/dev/null | grep '^flat_all_reduce,' | cut -d, -f2 | median)
  note=$(grep -h '^# torch' "$work"/torch*.csv 2>/dev/null | head -1 | sed 's/^# //')
  [ -n "$d" ] && [ -n "$t" ] &&
    echo "ddp|grad_sync bucket_mb=$mb|$d|$t|time us|$(awk -v a="$d" -v b="$t" 'BEGIN{printf "%.3f", (a>0)?b/a:0}')|$note; torch = backward(sync) - backward(no_sync)" >>"$rows"
  [ -n "$dflat" ] && [ -n "$tflat" ] &&
    echo "ddp|flat all-reduce of all grads|$dflat|$tflat|time us|$(awk -v a="$dflat" -v b="$tflat" 'BEGIN{printf "%.3f", (a>0)?b/a:0}')|MPI (dtbench host) vs gloo" >>"$rows"
}

# ---------------------------------------------------------------------------------------------------
peer_ckpt() {
  if [ ! -x "$BIN/dtbench-ckpt" ]; then skip "ckpt: $BIN/dtbench-ckpt not built yet"; return; fi
  if ! command -v fio >/dev/null 2>&1; then
    apt_install fio
    if ! command -v fio >/dev/null 2>&1; then
      skip "ckpt: fio not installed ($(is_root && echo "install failed" || echo "not root: apt-get install fio"))"
      return
    fi
  fi
  local np=${CKPT_NP:-$NP} w=${CKPT_WRITERS:-1} root=${CKPT_DIR:-$work/ckpt-root}
  local hdim=${CKPT_HIDDEN:-512} layers=${CKPT_LAYERS:-4} rounds=${CKPT_ROUNDS:-$ROUNDS} cms=${CKPT_COMPUTE_MS:-2}
  local jobs=$((np * w))
  mkdir -p "$root"
  echo "== ckpt: dtbench-ckpt vs fio, $np ranks x $w writers, hidden $hdim x $layers layers, compute $cms ms/step, dir $root, $rounds rounds" >&2
  # dtbench runs: write path x staging. fio: one job per dtbench writer, each writes its share
  # sequentially in 8 MiB requests (dtbench's write size) with an fsync at the end (inside fio's
  # runtime); psync with the same O_DIRECT setting, and io_uring at queue depth 8, the write path
  # dtbench does not use.
  local runs=("buffered async" "direct async" "direct sync")
  local fios=("psync 0 1" "psync 1 1" "io_uring 1 8" "io_uring 0 8")
  local r run io st bytes="" per spec eng direct qd f
  for r in $(seq "$rounds"); do
    for run in "${runs[@]}"; do
      read -r io st <<<"$run"
      rm -rf "$root/dtbench"
      mpirun --oversubscribe --bind-to none -np "$np" "$BIN/dtbench-ckpt" --backend host --hidden "$hdim" --layers "$layers" \
        --writers "$w" --io "$io" --staging "$st" --compute-ms "$cms" --repeat 3 --save-only --ckpt-dir "$root/dtbench" -q \
        --out "$work/ckpt-$io-$st-$r" >/dev/null 2>"$work/ckpt-$io-$st-$r.err" ||
        skip "ckpt: dtbench-ckpt --io $io --staging $st failed (round $r): $(tail -1 "$work/ckpt-$io-$st-$r.err")"
      rm -rf "$root/dtbench"
      f=$(ls "$work/ckpt-$io-$st-$r"/ckpt-*-perf.csv 2>/dev/null | head -1)
      [ -n "$f" ] && [ -z "$bytes" ] && bytes=$(perf_field "$f" metric write_bw_aggregate bytes | head -1)
    done
    [ -z "$bytes" ] && continue
    per=$(((bytes + jobs - 1) / jobs))
    for spec in "${fios[@]}"; do
      read -r eng direct qd <<<"$spec"
      rm -rf "$root/fio" && mkdir -p "$root/fio"
      fio --name=ckpt --directory="$root/fio" --rw=write --bs=8M --ioengine="$eng" --iodepth="$qd" --numjobs="$jobs" \
        --size="$per" --end_fsync=1 --direct="$direct" --group_reporting --output-format=json \
        >"$work/fio-$eng-$direct-$r.json" 2>"$work/fio-$eng-$direct-$r.err" ||
        skip "ckpt: fio $eng direct=$direct failed (round $r): $(tail -1 "$work/fio-$eng-$direct-$r.err")"
      rm -rf "$root/fio"
    done
  done
  fio_bw() {  # ENGINE DIRECT: median GB/s over the rounds
    local j
    for j in "$work"/fio-"$1"-"$2"-*.json; do
      [ -s "$j" ] && python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(sum(x["write"]["bw_bytes"] for x in j["jobs"])/1e9)' "$j"
    done | median
  }
  ck_metric() {  # IO STAGING METRIC: median over the rounds of the run's value
    local c
    for c in "$work"/ckpt-"$1"-"$2"-*/ckpt-*-perf.csv; do
      [ -f "$c" ] && perf_field "$c" metric "$3" value | head -1
    done | median
  }
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b>0)?a/b:0}'; }
  local fb fd fu fub d peer dflag note="fio $(fio --version) bs=8M numjobs=$jobs end_fsync=1"
  fb=$(fio_bw psync 0) fd=$(fio_bw psync 1) fu=$(fio_bw io_uring 1) fub=$(fio_bw io_uring 0)
  for io in buffered direct; do
    peer=$fb dflag=0
    [ "$io" = direct ] && peer=$fd dflag=1
    d=$(ck_metric "$io" async sync_write_bw_aggregate)
    [ -n "$d" ] && [ -n "$peer" ] &&
      echo "ckpt|save alone, --io $io, ${bytes} B|$d|$peer|GB/s|$(ratio "$d" "$peer")|$note psync direct=$dflag; the synchronous save's write phase, nothing else running" >>"$rows"
    d=$(ck_metric "$io" async write_bw_aggregate)
    [ -n "$d" ] && [ -n "$peer" ] &&
      echo "ckpt|async save, --io $io, ${bytes} B|$d|$peer|GB/s|$(ratio "$d" "$peer")|$note psync direct=$dflag; training runs beside the writers" >>"$rows"
  done
  [ -n "$fu" ] && [ -n "$fd" ] &&
    echo "ckpt|fio psync vs io_uring qd8, O_DIRECT|$fd|$fu|GB/s|$(ratio "$fd" "$fu")|io_uring is the path not taken: a ratio < 1 would favour it" >>"$rows"
  [ -n "$fub" ] && [ -n "$fb" ] &&
    echo "ckpt|fio psync vs io_uring qd8, buffered|$fb|$fub|GB/s|$(ratio "$fb" "$fub")|as above, page cache + fsync" >>"$rows"
  for st in async sync; do
    # The stall a step sees (wait for the previous save + blocking) is the headline; blocking alone
    # leaves out the wait when saves come faster than they complete.
    d=$(ck_metric direct "$st" stall_over_sync_save)
    [ -n "$d" ] && echo "ckpt|stall / sync save, --staging $st|$d|0.1|ratio|$(ratio 0.1 "$d")|the target (<= 0.1) as peer: ratio >= 1 meets it; --io direct; stall = wait for the previous save + blocking" >>"$rows"
    d=$(ck_metric direct "$st" blocking_over_sync_save)
    [ -n "$d" ] && echo "ckpt|blocking / sync save, --staging $st|$d|0.1|ratio|$(ratio 0.1 "$d")|the part without the wait for the previous save" >>"$rows"
  done
  [ -z "${CKPT_DIR:-}" ] && rm -rf "$root"
}

# ---------------------------------------------------------------------------------------------------
peer_p2p() {
  if [ ! -x "$OBJ/raw_mpi_loop" ] || [ ! -x "$BIN/dtbench-p2p" ]; then
    skip "p2p: $OBJ/raw_mpi_loop or $BIN/dtbench-p2p not built (make all $OBJ/raw_mpi_loop)"
    return
  fi
  local np=${P2P_NP:-8} mbytes=${P2P_MATRIX_BYTES:-4M} sizes=(-b "${BENCH_MIN:-1M}" -e "${BENCH_MAX:-16M}" -f 4 -n "${BENCH_ITERS:-20}" -w 3) r
  local mpi2=(mpirun --oversubscribe --bind-to none -np 2) mpin=(mpirun --oversubscribe --bind-to none -np "$np")
  echo "== p2p: dtbench-p2p (host) vs raw MPI_Isend/Irecv loop on 2 ranks; the pair matrix on $np ranks; $ROUNDS rounds" >&2
  for r in $(seq "$ROUNDS"); do
    "${mpi2[@]}" "$OBJ/raw_mpi_loop" --p2p "${sizes[@]}" >"$work/p2praw$r.csv" 2>"$work/p2praw$r.err" || skip "p2p: raw loop failed (round $r)"
    "${mpi2[@]}" "$BIN/dtbench-p2p" "${sizes[@]}" -c 0 -q --patterns pairs --backend host --out "$work/p2p$r" \
      >/dev/null 2>"$work/p2p$r.err" || skip "p2p: dtbench-p2p failed (round $r)"
    "${mpi2[@]}" "$OBJ/raw_mpi_loop" --p2p -b "$mbytes" -e "$mbytes" -n "${BENCH_ITERS:-20}" -w 3 >"$work/p2prawm$r.csv" \
      2>"$work/p2prawm$r.err" || skip "p2p: raw loop failed (round $r)"
    "${mpin[@]}" "$BIN/dtbench-p2p" -b "$mbytes" -e "$mbytes" -n "${BENCH_ITERS:-20}" -w 3 -c 0 -q --patterns pairs --direction bi \
      --backend host --out "$work/p2pm$r" >/dev/null 2>"$work/p2pm$r.err" || skip "p2p: dtbench-p2p matrix failed (round $r)"
  done
  # direction,bytes,GBps of link 0->1 per round; the raw loop's op,bytes,GBps; the matrix's schedule time.
  python3 - "$work" "$ROUNDS" "$np" >>"$rows" <<'PY'
import csv, glob, statistics as st, sys
work, rounds, np_ = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
human = lambda b: f'{b >> 20} MiB' if b % (1 << 20) == 0 else f'{b >> 10} KiB' 
def rows(path):
    return list(csv.DictReader(l for l in open(path) if not l.startswith('#')))
dt, raw = {}, {}
for r in range(1, rounds + 1):
    for f in glob.glob(f'{work}/p2p{r}/p2p-*-links.csv'):
        for x in rows(f):
            if x['pattern'] == 'pairs' and x['src_rank'] == '0' and x['dst_rank'] == '1':
                dt.setdefault((x['direction'], int(x['bytes'])), []).append(float(x['GBps']))
    for x in rows(f'{work}/p2praw{r}.csv'):
        raw.setdefault((x['op'][4:], int(x['bytes'])), []).append(float(x['busbw_GBps']))
for key in sorted(dt, key=lambda k: (k[0] != 'uni', k[1])):
    if key in raw:
        d, p = st.median(dt[key]), st.median(raw[key])
        print(f'p2p|link 0->1 {key[0]} {key[1]} B|{d}|{p}|GB/s|{d / p if p else 0:.3f}|raw MPI_Isend/Irecv loop')
# The matrix: n-1 rounds of n/2 concurrent bidirectional pairs vs (n-1) x one lone pair's time.
sched, pair, mbytes = [], [], 0
for r in range(1, rounds + 1):
    for f in glob.glob(f'{work}/p2pm{r}/p2p-*-perf.csv'):
        for x in rows(f):
            if x['op'] == 'p2p_pairs' and x['metric'] == 'schedule_time_us':
                sched.append(float(x['value'])); mbytes = int(x['bytes'])
    pair += [float(x['time_med_us']) for x in rows(f'{work}/p2prawm{r}.csv') if x['op'] == 'p2p_bi']
if sched and pair:
    ideal = (np_ - 1 if np_ % 2 == 0 else np_) * st.median(pair)  # rounds x one bidirectional exchange
    d = st.median(sched)
    print(f'p2p|pair matrix bi {np_} ranks {human(mbytes)}: wall|{d}|{ideal}|time us|{ideal / d:.3f}|(n-1) x one pair (raw loop)')
PY
}

want coll && peer_coll
want ddp && peer_ddp
want ckpt && peer_ckpt
want p2p && peer_p2p

{
  echo "dtbench vs peers: $NP ranks, median of $ROUNDS interleaved rounds"
  echo "ratio = peer time / dtbench time (= dtbench bandwidth / peer bandwidth) in every row: > 1 means dtbench is faster"
  want ckpt && echo "ckpt rows: ${CKPT_NP:-$NP} ranks, median of ${CKPT_ROUNDS:-$ROUNDS} rounds, ${CKPT_COMPUTE_MS:-2} ms compute per training step"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
  printf "%-5s %-38s %12s %12s %-11s %7s  %s\n" suite case dtbench peer unit ratio "peer / note"
  awk -F'|' '{printf "%-5s %-38s %12.4g %12.4g %-11s %7s  %s\n", $1, $2, $3, $4, $5, $6, $7}' "$rows"
  sed 's/^/# /' "$skips"
} | tee "${PEERS_TABLE:-/dev/null}"

# PEERS_CSV: the same rows as a dtbench perf CSV (suite "peers"; per row the metrics dtbench, peer
# and speed_ratio), so that dtbench-report draws them (its "dtbench vs peers" section) and the
# tools read them like any report.
if [ -n "${PEERS_CSV:-}" ]; then
  python3 - "$rows" "$PEERS_CSV" "$NP" "$ROUNDS" <<'PY'
import csv, datetime, os, subprocess, sys
rows_path, out, np_, rounds = sys.argv[1:5]
if os.path.exists(out):
    sys.exit(f"bench/peers.sh: PEERS_CSV {out}: exists; not overwritten")
cols = ["run_id", "suite", "backend", "ranks", "case", "op", "dtype", "redop", "in_place", "group_size", "layout",
        "count", "bytes", "iters", "warmup", "time_med_us", "time_min_us", "time_max_us", "time_p10_us", "time_p90_us",
        "time_p99_us", "time_cv", "algbw_GBps", "busbw_GBps", "n_wrong", "metric", "value", "unit"]
now = datetime.datetime.now(datetime.timezone.utc)
run_id = now.strftime("%Y%m%dT%H%M%S") + f"-p{os.getpid()}"
rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip() or "unknown"
lines = [l.rstrip("\n").split("|") for l in open(rows_path) if l.strip()]
n = 0
with open(out, "w", newline="") as f:
    for k, v in [("run_id", run_id), ("suite", "peers"), ("schema_version", "3"), ("start_time", now.strftime("%Y-%m-%dT%H:%M:%SZ")),
                 ("backend", "host"), ("world_size", np_), ("rounds", rounds), ("git_rev", rev),
                 ("convention", "speed_ratio = peer time / dtbench time: > 1 means dtbench is faster")]:
        f.write(f"# {k}={v}\n")
    w = csv.writer(f, lineterminator="\n")
    w.writerow(cols)
    for suite, case, d, p, unit, ratio, note in lines:
        for metric, value, u in (("dtbench", d, unit), ("peer", p, unit), ("speed_ratio", ratio, "x")):
            row = dict.fromkeys(cols, "")
            row.update(run_id=run_id, suite="peers", backend="host", ranks=np_, case=case, op=suite, layout=note[:80],
                       count="0", bytes="0", iters="0", warmup="0", metric=metric, value=value, unit=u)
            w.writerow([row[c] for c in cols])
            n += 1
    f.write(f"# end_of_run=complete rows={n} verdict=PASS\n")
print(f"bench/peers.sh: {n} rows in {out}", file=sys.stderr)
PY
fi
