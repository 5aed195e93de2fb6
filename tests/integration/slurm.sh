#!/usr/bin/env bash
# The slurm/ sbatch scripts on a real Slurm started on localhost (no systemd, daemons started by hand):
# munged + slurmctld + one slurmd with 4 fake GPUs, then two slurmd nodes on the same host. Jobs run
# with --backend host; checked: exit codes, rank/local rank/GPU per task, CSVs in the job's results
# folder, dtbench-accept pass/fail. Daemons are stopped by PID. SKIP (with the reason) only when Slurm
# cannot be installed or started.
source "$(dirname "$0")/../lib.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "$BIN" && pwd)
S=$TMP_ROOT/slurm           # configs, state, logs, fake devices (TMP_ROOT is removed on exit)
RES=$TMP_ROOT/results
PIDS=()

skip() { echo "SKIP slurm: $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root to start slurmctld/slurmd (not root)"
for b in slurmctld slurmd sbatch scontrol sinfo munged; do
  command -v $b >/dev/null || [ -x /usr/sbin/$b ] || skip "$b not installed (make deps installs slurmctld slurmd slurm-client munge)"
done
export PATH=$PATH:/usr/sbin
[ -e /usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so ] || [ -n "$(ls /usr/lib/*/pmix2/lib/libpmix.so 2>/dev/null)" ] ||
  skip "libpmix.so (libpmix-dev) missing: srun --mpi=pmix cannot work"

HOST=$(hostname -s)
BASE=$((20000 + RANDOM % 20000))   # ports of this test instance: ctld BASE, slurmd BASE+1.. (no clash)
export SLURM_CONF=$S/etc/slurm.conf

stop_daemons() {
  local p t
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for t in $(seq 1 40); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.25
  done
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null; done
  PIDS=()
}
trap 'stop_daemons; rm -rf "$TMP_ROOT"' EXIT

# write_conf MODE: "one" = node $HOST with 4 GPUs; "two" = n1, n2 (2 GPUs each) on this host.
write_conf() {
  rm -rf "$S"
  mkdir -p "$S"/{etc,state/ctld,state/d,run,log,fakedev,tmp/n1,tmp/n2,tmp/$HOST,state/d/n1,state/d/n2}
  for i in 0 1 2 3; do ln -sf /dev/null "$S/fakedev/nvidia$i"; done
  local nodes gres
  if [ "$1" = one ]; then
    nodes="NodeName=$HOST NodeAddr=127.0.0.1 Port=$((BASE + 1)) CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=2000 Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP"
    gres="NodeName=$HOST Name=gpu File=$S/fakedev/nvidia[0-3]"
  else
    nodes="NodeName=n1 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((BASE + 2)) CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1000 Gres=gpu:2 State=UNKNOWN
NodeName=n2 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((BASE + 3)) CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP"
    gres="NodeName=n1 Name=gpu File=$S/fakedev/nvidia[0-1]
NodeName=n2 Name=gpu File=$S/fakedev/nvidia[2-3]"
  fi
  cat >"$SLURM_CONF" <<EOF
ClusterName=dtbenchci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
MailProg=/bin/true
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/run/munge.sock
SlurmctldPort=$BASE
StateSaveLocation=$S/state/ctld
SlurmdSpoolDir=$S/state/d/%n
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd-%n.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd-%n.log
TmpFS=$S/tmp/%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/filetxt
JobCompLoc=$S/log/jobcomp.txt
EnforcePartLimits=ALL
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
GresTypes=gpu
$nodes
EOF
  printf 'AutoDetect=off\n%s\n' "$gres" >"$S/etc/gres.conf"
}

# start_slurm NODE...: munged (own key and socket), slurmctld, one slurmd per node; waits until idle.
start_slurm() {
  dd if=/dev/urandom of="$S/etc/munge.key" bs=1024 count=1 status=none && chmod 600 "$S/etc/munge.key"
  munged --force --socket="$S/run/munge.sock" --key-file="$S/etc/munge.key" --pid-file="$S/run/munged.pid" \
    --log-file="$S/log/munged.log" --seed-file="$S/run/munge.seed" 2>"$S/log/munged.err" || return 1
  PIDS+=("$(cat "$S/run/munged.pid")")
  slurmctld 2>"$S/log/slurmctld.err" || return 1
  for t in $(seq 1 40); do [ -s "$S/run/slurmctld.pid" ] && break; sleep 0.1; done
  PIDS+=("$(cat "$S/run/slurmctld.pid")")
  local n
  for n in "$@"; do
    slurmd -N "$n" 2>"$S/log/slurmd-$n.err" || return 1
    for t in $(seq 1 40); do [ -s "$S/run/slurmd-$n.pid" ] && break; sleep 0.1; done
    PIDS+=("$(cat "$S/run/slurmd-$n.pid")")
  done
  for t in $(seq 1 360); do  # up to ~90 s: registration is slow on a loaded machine
    local p
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done
    local states
    states=$(timeout 5 sinfo -h -o %T 2>/dev/null | sort -u | tr '\n' ' ')
    [ "$states" = "idle " ] && return 0
    sleep 0.25
  done
  return 1
}

# submit JOBVAR ARGS...: sbatch --parsable from the repo root; sets the variable to the job id.
submit() {
  local var=$1
  shift
  local id
  id=$(cd "$REPO" && sbatch --parsable "$@" 2>>"$S/log/sbatch.err")
  printf -v "$var" '%s' "${id%%;*}"
}

# wait_job ID: polls `scontrol show -o job` (faster than sbatch --wait); sets RC to the job's exit code
# (-1 when it did not finish in 150 s), STATE, and LOG to the job's output file.
wait_job() {
  local id=$1 line t
  RC=-1 STATE=UNKNOWN LOG=$RES/job-$id.out
  [ -n "$id" ] || { STATE=NOT_SUBMITTED; LOG=$S/log/sbatch.err; return; }
  for t in $(seq 1 600); do
    line=$(scontrol show -o job "$id" 2>/dev/null)
    STATE=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$line")
    case $STATE in
      COMPLETED | FAILED | TIMEOUT | CANCELLED | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE)
        RC=$(sed -n 's/.* ExitCode=\([0-9]*\):.*/\1/p' <<<"$line")
        return ;;
    esac
    sleep 0.25
  done
  scontrol cancel "$id" 2>/dev/null
}

# binding_ok LOG N_TASKS EXPECTED_LOCAL_FN: the dtbench-binding lines of a job.
bindings() { grep '^dtbench-binding' "$1"; }
perf_of() { ls "$1"/coll-*-perf.csv 2>/dev/null | head -1; }

mkdir -p "$RES"
export OMPI_MCA_mpi_yield_when_idle=1 DTBENCH_DIR=$REPO BIN BACKEND=host RESULTS_ROOT=$RES
export COLL_ARGS="-b 1K -e 256K -f 4 -n 3 -w 1 -q" SHOW_BINDING=1
OUTPAT=$RES/job-%j.out
SB=(--output="$OUTPAT" --ntasks-per-node=4 --gpus-per-node=4 --time=3)

# ---------------- one node, four fake GPUs ----------------
write_conf one
if ! start_slurm "$HOST"; then
  tail -5 "$S"/log/*.log "$S"/log/*.err 2>/dev/null | sed 's/^/  /'
  skip "Slurm daemons did not start or the node did not become idle (logs above)"
fi
echo "   slurm up: $(sinfo -h -o '%N %T %G')"

submit J_NODE "${SB[@]}" --export=ALL,THRESHOLDS=tools/thresholds-host.csv slurm/dtbench-node.sbatch
submit J_BIND "${SB[@]}" --export=ALL,SRUN_ARGS=--gpu-bind=single:1 slurm/dtbench-node.sbatch
submit J_ALL "${SB[@]}" slurm/dtbench-all.sbatch
# sbatch --export splits its list at every comma: a value with commas goes through the environment.
export DTBENCH_ARGS="--inject-fault flip,rank=2,op=all_reduce,index=3"
submit J_FAULT "${SB[@]}" --export=ALL,SUITES=coll,THRESHOLDS=tools/thresholds-host.csv slurm/dtbench-all.sbatch
unset DTBENCH_ARGS
submit J_MPIRUN "${SB[@]}" --export=ALL,LAUNCHER=mpirun slurm/dtbench-node.sbatch
# BACKEND=auto on these GPU-less nodes runs the host backend: the A/B plumbing runs, and must say it
# compared no NCCL at all; BACKEND=host is refused before anything runs.
submit J_AB "${SB[@]}" --export=ALL,BACKEND=auto,NCCL_A=default,NCCL_B=default,REPEATS=1,COMPARE_THRESHOLD=0.05 slurm/dtbench-nccl-ab.sbatch
submit J_ABHOST "${SB[@]}" --export=ALL,BACKEND=host,NCCL_A=default,NCCL_B=default,REPEATS=1 slurm/dtbench-nccl-ab.sbatch
submit J_CPU --output="$OUTPAT" --ntasks-per-node=4 --gpus-per-node=0 --time=3 slurm/dtbench-node.sbatch
submit J_BAD "${SB[@]}" --export=ALL,LAUNCHER=bogus slurm/dtbench-node.sbatch

wait_job "$J_NODE"
expect "slurm node job: exit 0, PASS verdict" "COMPLETED, exit 0, 'dtbench node: PASS'" \
  eval '[ "$RC" = 0 ] && [ "$STATE" = COMPLETED ] && grep -q "^dtbench node: PASS" $LOG'
expect "slurm node job: 4 ranks, local rank = rank, all 4 GPUs visible" "binding lines rank=i local=i/? cuda_visible=0,1,2,3" \
  eval '[ "$(bindings $LOG | wc -l)" = 4 ] && for i in 0 1 2 3; do bindings $LOG | grep -q "rank=$i local=$i/.* node=$HOST cuda_visible=0,1,2,3$" || exit 1; done'
expect "slurm node job: CSVs in results/\$SLURM_JOB_ID with job id and rank_map" "perf+checks CSV, slurm_job_id=$J_NODE, rank_map=$HOST:0-3" \
  eval 'p=$(perf_of $RES/$J_NODE) && [ -n "$p" ] && all_pass $RES/$J_NODE && grep -q "^# slurm_job_id=$J_NODE$" $p &&
        grep -q "^# rank_map=.*:0-3$" $p && grep -q "^# world_size=4$" $p'
expect "slurm node job: dtbench-accept PASS in the job" "accept.txt ends in PASS" \
  eval 'tail -1 $RES/$J_NODE/accept.txt | grep -q "^dtbench-accept: PASS" && grep -q "^dtbench-accept: PASS" $LOG'
expect "slurm node job: the job's end is known to the suites (DTBENCH_DEADLINE from squeue)" \
  "a 'time limit ends at' line in the job log" \
  eval 'grep -q "^dtbench: the job.s time limit ends at 20[0-9-]*T[0-9:]*Z$" $LOG'
LOG_NODE=$LOG

wait_job "$J_BIND"
expect "slurm --gpu-bind=single:1: each rank sees one GPU = its local rank" "cuda_visible=i for local rank i, exit 0" \
  eval '[ "$RC" = 0 ] && [ "$(bindings $LOG | wc -l)" = 4 ] &&
        for i in 0 1 2 3; do bindings $LOG | grep -q "rank=$i local=$i/.* cuda_visible=$i$" || exit 1; done && all_pass $RES/$J_BIND'

wait_job "$J_ALL"
# A clean run of every suite under Slurm passes: each suite's summary line says PASS (SKIP exactly
# when its binary is missing), the job exits 0 with the PASS verdict and writes report.html.
expect "slurm run-all: every suite PASS (SKIP when missing), exit 0, PASS verdict" \
  "coll..p2p PASS or SKIP, exit 0, 'dtbench all: PASS', report.html" \
  eval 'grep -q "^dtbench-coll: PASS" $LOG && [ -s $RES/$J_ALL/report.html ] &&
        for s in ddp fsdp ep ckpt p2p; do
          if [ -x $BIN/dtbench-$s ]; then grep -q "^dtbench-$s: PASS" $LOG; else grep -q "^dtbench-$s: SKIP" $LOG; fi || exit 1
        done &&
        ! grep -q "^dtbench-[a-z0-9]*: FAIL" $LOG && [ "$RC" = 0 ] && grep -q "^dtbench all: PASS" $LOG'
grep -E "^dtbench-[a-z0-9]*: (PASS|FAIL|SKIP)" $LOG | sed 's/^/   run-all: /'

wait_job "$J_FAULT"
expect "slurm run-all with a flipped element: exit 1, coll FAIL, acceptance FAIL" "exit 1, 'dtbench-coll: FAIL (exit 1', accept FAIL naming node" \
  eval '[ "$RC" = 1 ] && [ "$STATE" = FAILED ] && grep -q "^dtbench-coll: FAIL (exit 1" $LOG &&
        grep -q "^dtbench all: FAIL" $LOG && grep -q "^node $HOST: FAIL" $RES/$J_FAULT/accept.txt &&
        fail_names_rank $(checks_csv $RES/$J_FAULT) 2'

wait_job "$J_MPIRUN"
expect "slurm node job with LAUNCHER=mpirun: exit 0, 4 ranks, each binding line with its own rank" "exit 0, CSVs, binding rank=i local=?/i" \
  eval '[ "$RC" = 0 ] && all_pass $RES/$J_MPIRUN && for i in 0 1 2 3; do bindings $LOG | grep -q "rank=$i local=.*/$i " || exit 1; done'

wait_job "$J_AB"
expect "slurm NCCL A/B on a node without NCCL (BACKEND=auto): suites, compare and report, then an honest FAIL" \
  "A/rep1 and B/rep1 CSVs, compare.txt, report.html, 'not an NCCL comparison', exit 1, no doubled prefix" \
  eval '[ -n "$(perf_of $RES/$J_AB/A/rep1)" ] && [ -n "$(perf_of $RES/$J_AB/B/rep1)" ] && [ -s $RES/$J_AB/report.html ] &&
        [ -s $RES/$J_AB/compare.txt ] && [ "$RC" = 1 ] && grep -q "^not an NCCL comparison: A: .* ran on backend .host." $LOG &&
        grep -q "^dtbench nccl-ab: FAIL (NCCL was not used as asked" $LOG && ! grep -q "dtbench-compare: dtbench-compare" $LOG &&
        ! grep -q "^dtbench nccl-ab: PASS" $LOG'
wait_job "$J_ABHOST"
expect "slurm NCCL A/B with BACKEND=host is refused before anything runs" "exit 2, names the backend, no results folder" \
  eval '[ "$RC" = 2 ] && grep -q "NCCL A/B job needs the NCCL backend" $LOG && [ ! -e $RES/$J_ABHOST ]'

wait_job "$J_CPU"
expect "slurm CPU-only request (--gpus-per-node=0) overrides the script's GPUs, host backend passes" \
  "exit 0, 4 ranks, no GPU visible" \
  eval '[ "$RC" = 0 ] && all_pass $RES/$J_CPU && [ "$(bindings $LOG | grep -c "cuda_visible=unset$")" = 4 ]'

wait_job "$J_BAD"
expect "slurm job with a bad knob (LAUNCHER=bogus): exit 2 with a message" "exit 2, names LAUNCHER" \
  eval '[ "$RC" = 2 ] && grep -q "LAUNCHER must be srun or mpirun" $LOG'

# Accept on the node job's CSVs from outside the job: passes; a planted slow row and a planted FAIL row fail.
P=$RES/planted; mkdir -p $P/slow $P/fail
cp "$RES/$J_NODE"/*.csv $P/slow/ && cp "$RES/$J_NODE"/*.csv $P/fail/
f=$(perf_of $P/slow)
csvq "$f" --where op=all_gather "bytes>=262144" --set busbw_GBps=0.0000001
LOG=$TMP_ROOT/accept-slow.log
"$BIN/dtbench-accept" -t "$REPO/tools/thresholds-host.csv" $P/slow >$LOG 2>&1; RC=$?
expect "slurm results: dtbench-accept fails on a planted slow row" "exit 1, FAIL naming all_gather" \
  eval '[ $RC = 1 ] && grep -q "^FAIL .*all_gather" $LOG && grep -q "^node $HOST: FAIL" $LOG'
# A job whose results folder already holds files (Slurm job ids restart) is refused: one verdict
# is about one job, and the old files stay as they were.
before=$(ls -l "$RES/$J_NODE" | md5sum)
submit J_REUSE "${SB[@]}" --export=ALL,RESULTS=$RES/$J_NODE slurm/dtbench-node.sbatch
wait_job "$J_REUSE"
expect "slurm job into a results folder that already holds files: refused" "exit 2, names the folder, files untouched" \
  eval '[ "$RC" = 2 ] && grep -q "RESULTS $RES/$J_NODE already holds files" $LOG && [ "$(ls -l $RES/$J_NODE | md5sum)" = "$before" ]'

# SIGTERM (what the time limit sends) mid-sweep: the cut suite is INTERRUPTED, the next one never
# starts, and the job still writes its summary, an acceptance that calls the cut reports INCOMPLETE
# (FAIL), and the report.
submit J_TERM "${SB[@]}" --export=ALL,SUITES="coll ddp",THRESHOLDS=tools/thresholds-host.csv,COLL_ARGS="-b 1K -e 64M -f 2 -n 20 -w 1 -q" \
  slurm/dtbench-all.sbatch
for t in $(seq 1 480); do  # up to 120 s for the sweep to write rows
  p=$(perf_of "$RES/$J_TERM")
  [ -n "$p" ] && [ "$(grep -vc '^#' "$p")" -ge 3 ] && break
  sleep 0.25
done
scancel --full --signal=TERM "$J_TERM" 2>/dev/null
wait_job "$J_TERM"
expect "slurm SIGTERM mid-sweep: summary, INCOMPLETE acceptance and report still written" \
  "exit 1, coll INTERRUPTED, ddp NOT RUN, accept INCOMPLETE + FAIL, report.html" \
  eval '[ "$RC" = 1 ] && grep -q "^dtbench-coll: INTERRUPTED" $LOG && grep -q "^dtbench-ddp: NOT RUN" $LOG &&
        grep -q "^INCOMPLETE " $RES/$J_TERM/accept.txt && grep -q "^dtbench-accept: FAIL" $RES/$J_TERM/accept.txt &&
        [ -s $RES/$J_TERM/report.html ] && grep -q "^dtbench all: FAIL (interrupted" $LOG'

wait_job "$J_NODE"  # restores LOG for the next check
echo "   (single-node jobs done)"
stop_daemons

# ---------------- two slurmd nodes on this host ----------------
write_conf two
RES=$TMP_ROOT/results-two RESULTS_ROOT=$TMP_ROOT/results-two OUTPAT=$TMP_ROOT/results-two/job-%j.out  # job ids restart at 1
mkdir -p "$RES"
if ! start_slurm n1 n2; then
  fail "slurm two nodes start" "daemons did not become idle: $(tail -3 "$S"/log/*.log | tr '\n' '|')"
else
  export OMPI_MCA_btl=self,tcp   # same hostname on both "nodes": shared-memory segment names would collide
  submit J_MULTI --output="$OUTPAT" -N 2 --ntasks-per-node=2 --gpus-per-node=2 --time=3 \
    --export=ALL,THRESHOLDS=tools/thresholds-host.csv slurm/dtbench-multinode.sbatch
  wait_job "$J_MULTI"
  expect "slurm two nodes: 4 ranks on n1/n2, local ranks 0-1 each, exit 0" "binding lines per node, accept PASS" \
    eval '[ "$RC" = 0 ] && [ "$(bindings $LOG | wc -l)" = 4 ] &&
          bindings $LOG | grep -q "rank=0 local=0/.* node=n1 cuda_visible=0,1$" &&
          bindings $LOG | grep -q "rank=1 local=1/.* node=n1 cuda_visible=0,1$" &&
          bindings $LOG | grep -q "rank=2 local=0/.* node=n2 cuda_visible=0,1$" &&
          bindings $LOG | grep -q "rank=3 local=1/.* node=n2 cuda_visible=0,1$" &&
          all_pass $RES/$J_MULTI && grep -q "^dtbench-accept: PASS" $LOG && grep -q "^# nodes=2$" $(perf_of $RES/$J_MULTI) &&
          grep -q "^# rank_map=n1:0-1;n2:2-3$" $(perf_of $RES/$J_MULTI)'
  # Per-node blame names the slurmd node (SLURMD_NODENAME), not the host both share.
  export DTBENCH_ARGS="--inject-fault flip,rank=2,op=all_reduce,index=3"
  submit J_MULTI_FAULT --output="$OUTPAT" -N 2 --ntasks-per-node=2 --gpus-per-node=2 --time=3 \
    --export=ALL,SUITES=coll,THRESHOLDS=tools/thresholds-host.csv slurm/dtbench-multinode.sbatch
  unset DTBENCH_ARGS
  wait_job "$J_MULTI_FAULT"
  expect "slurm two nodes: a fault on rank 2 blames slurmd node n2, not n1" "exit 1, node n2: FAIL, node n1: PASS" \
    eval '[ "$RC" = 1 ] && grep -q "^node n2: FAIL" $RES/$J_MULTI_FAULT/accept.txt &&
          grep -q "^node n1: PASS" $RES/$J_MULTI_FAULT/accept.txt'
  # Isolation in one job: both nodes' own collectives at once (one step each), the node-pair
  # matrix, the whole-job all-reduce, then one verdict per node and the drain list.
  export INTRA_ARGS="--ops all_reduce,all_gather -b 64K -e 256K -f 4 -n 3 -w 1" PAIRS_ARGS="-b 64K -e 64K -n 3 -w 1 -q"
  export WORLD_ARGS="-b 64K -e 64K -n 2 -w 1"
  submit J_ISO --output="$OUTPAT" -N 2 --ntasks-per-node=2 --gpus-per-node=2 --time=3 slurm/dtbench-isolate.sbatch
  export WORLD_ARGS="-b 64K -e 64K -n 2 -w 1 --inject-fault flip,rank=2,op=all_reduce,index=3"
  submit J_ISO_FAULT --output="$OUTPAT" -N 2 --ntasks-per-node=2 --gpus-per-node=2 --time=3 slurm/dtbench-isolate.sbatch
  unset INTRA_ARGS PAIRS_ARGS WORLD_ARGS
  wait_job "$J_ISO"
  expect "slurm isolate on two nodes: every step ran, both nodes PASS, empty drain list" \
    "exit 0, intra/n1 intra/n2 pairs world reports, 'node n1: PASS', 'node n2: PASS', drain.txt empty" \
    eval '[ "$RC" = 0 ] && all_pass $RES/$J_ISO/intra/n1 && all_pass $RES/$J_ISO/intra/n2 && all_pass $RES/$J_ISO/pairs &&
          all_pass $RES/$J_ISO/world && grep -q "^node n1: PASS$" $LOG && grep -q "^node n2: PASS$" $LOG &&
          [ -e $RES/$J_ISO/drain.txt ] && [ ! -s $RES/$J_ISO/drain.txt ] && grep -q "^# rank_map=n2:0-1$" $(perf_of $RES/$J_ISO/intra/n2)'
  wait_job "$J_ISO_FAULT"
  expect "slurm isolate: wrong data on rank 2 in the whole-job all-reduce -> n2 CORRUPT, n1 PASS" \
    "exit 1, 'node n2: CORRUPT (... ranks 2', 'node n1: PASS', drain.txt = n2" \
    eval '[ "$RC" = 1 ] && grep -q "^node n2: CORRUPT (CORRUPT: whole-job all-reduce all_reduce.* wrong on ranks 2" $LOG &&
          grep -q "^node n1: PASS$" $LOG && [ "$(cat $RES/$J_ISO_FAULT/drain.txt)" = n2 ]'
  stop_daemons
fi
