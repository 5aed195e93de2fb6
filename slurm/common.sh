# shellcheck shell=bash
# Shared by the dtbench sbatch scripts (sourced). Every knob is an environment variable; sbatch passes
# the submitting shell's environment to the job (default --export=ALL), so `BACKEND=host sbatch ...` works.
#
#   DTBENCH_DIR   dtbench checkout (default: $SLURM_SUBMIT_DIR, i.e. submit from the repo root)
#   BIN           executables (default: $DTBENCH_DIR/bin)
#   BACKEND       auto | host | nccl (default auto: NCCL when the node has a GPU; host on CPU-only nodes)
#   LAUNCHER      srun | mpirun (default srun)
#   SRUN_MPI      srun --mpi plugin (default pmix; Debian/HPC-X OpenMPI needs pmix)
#   SRUN_ARGS     extra srun flags, e.g. "--gpu-bind=single:1" or "--cpu-bind=cores" (default none)
#   MPIRUN_ARGS   extra mpirun flags (default "--bind-to none"; mpirun reads the Slurm allocation)
#   RESULTS_ROOT  where job folders go (default: $DTBENCH_DIR/results)
#   RESULTS       results folder of this job (default: $RESULTS_ROOT/$SLURM_JOB_ID)
#   SUITES        suites to run (default set by each script); a suite whose binary is missing is skipped
#   DTBENCH_ARGS  flags for every suite (e.g. "-n 50 -w 10 --timeout 600")
#   COLL_ARGS, DDP_ARGS, FSDP_ARGS, EP_ARGS, CKPT_ARGS, P2P_ARGS   per-suite flags (defaults below)
#   THRESHOLDS    thresholds CSV for dtbench-accept after the suites (default none: no acceptance)
#   ACCEPT_ARGS   extra dtbench-accept flags (e.g. --allow-missing)
#   REPORT        1: write $RESULTS/report.html with dtbench-report (default 1)
#   SHOW_BINDING  1: a first job step prints rank, local rank, node and CUDA_VISIBLE_DEVICES per task (default 1)
# NCCL_* variables (NCCL_DEBUG, NCCL_IB_HCA, NCCL_SOCKET_IFNAME...) pass through untouched: set them for
# your site when you submit; nothing site-specific is set here.
set -uo pipefail

DTBENCH_DIR=${DTBENCH_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}
BIN=${BIN:-$DTBENCH_DIR/bin}
BACKEND=${BACKEND:-auto}
LAUNCHER=${LAUNCHER:-srun}
SRUN_MPI=${SRUN_MPI:-pmix}
SRUN_ARGS=${SRUN_ARGS:-}
MPIRUN_ARGS=${MPIRUN_ARGS:---bind-to none}
RESULTS_ROOT=${RESULTS_ROOT:-$DTBENCH_DIR/results}
# A requeued job keeps its id: its second attempt writes beside the first, not into it.
RESULTS=${RESULTS:-$RESULTS_ROOT/${SLURM_JOB_ID:-manual-$$}${SLURM_RESTART_COUNT:+-r$SLURM_RESTART_COUNT}}
DTBENCH_ARGS=${DTBENCH_ARGS:-}
THRESHOLDS=${THRESHOLDS:-}
ACCEPT_ARGS=${ACCEPT_ARGS:-}
REPORT=${REPORT:-1}
SHOW_BINDING=${SHOW_BINDING:-1}
# Defaults per suite: a full nccl-tests-like sweep for coll; the other suites use their own defaults.
# On the host backend (MPI on host memory) the sweep to 256M takes ~20 of the scripts' 30 minutes on
# a small node, so it stops at 32M there unless COLL_ARGS says otherwise.
# BACKEND=auto on a node where no GPU is visible runs on the host backend too.
dt_gpu_visible() { ls /dev/nvidia[0-9]* >/dev/null 2>&1 || nvidia-smi -L >/dev/null 2>&1; }
if [ -z "${COLL_ARGS:-}" ]; then
  if [ "$BACKEND" = host ]; then
    dt_host_why="host backend"
  elif [ "$BACKEND" = auto ] && ! dt_gpu_visible; then
    dt_host_why="BACKEND=auto without a visible GPU (host backend)"
  fi
  if [ -n "${dt_host_why:-}" ]; then
    COLL_ARGS="-b 8 -e 32M -f 2"
    DT_NOTE="$dt_host_why: the default coll sweep stops at 32M (set COLL_ARGS for more)"
  fi
fi
# The job's end (its time limit) as Unix time: dtbench-coll warns, with its estimate, when a sweep
# will not finish before it (the run would be cut and INCOMPLETE).
if [ -n "${SLURM_JOB_ID:-}" ] && [ -z "${DTBENCH_DEADLINE:-}" ]; then
  dt_end=$(squeue -h -j "$SLURM_JOB_ID" -o %e 2>/dev/null | head -1)
  dt_end=$(date -d "$dt_end" +%s 2>/dev/null) && export DTBENCH_DEADLINE=$dt_end
fi
COLL_ARGS=${COLL_ARGS:--b 8 -e 256M -f 2}
DDP_ARGS=${DDP_ARGS:-}
FSDP_ARGS=${FSDP_ARGS:-}
EP_ARGS=${EP_ARGS:-}
CKPT_ARGS=${CKPT_ARGS:-}
P2P_ARGS=${P2P_ARGS:-}

case $LAUNCHER in srun | mpirun) ;; *) echo "dtbench: LAUNCHER must be srun or mpirun, got '$LAUNCHER'" >&2; exit 2 ;; esac
case $BACKEND in auto | host | nccl) ;; *) echo "dtbench: BACKEND must be auto, host or nccl, got '$BACKEND'" >&2; exit 2 ;; esac
# More ranks than cores on this node (host backend on a small node): OpenMPI's busy polling makes
# every collective ~1000x slower unless idle ranks yield.
dt_tasks_here=${SLURM_NTASKS_PER_NODE:-${SLURM_NTASKS:-1}}
dt_tasks_here=${dt_tasks_here%%[^0-9]*}
if [ -n "$dt_tasks_here" ] && [ "$dt_tasks_here" -gt "$(nproc 2>/dev/null || echo 1)" ]; then
  export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
fi
# OpenMPI refuses root without these; harmless otherwise.
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} \
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}

# dt_launch EXE ARGS...: one rank per Slurm task. srun gives each task SLURM_LOCALID and the GPUs of
# the node (or one, with --gpu-bind=single:1 / --gpus-per-task=1); dtbench picks its GPU from its
# local rank (MPI_Comm_split_type), or device 0 when only one is visible.
dt_launch() {
  if [ "$LAUNCHER" = srun ]; then
    # shellcheck disable=SC2086
    srun --mpi="$SRUN_MPI" --kill-on-bad-exit=1 $SRUN_ARGS "$@"
  else
    # shellcheck disable=SC2086
    mpirun -np "${SLURM_NTASKS:?run inside an allocation}" $MPIRUN_ARGS "$@"
  fi
}

dt_show_binding() {
  [ "$SHOW_BINDING" = 1 ] || return 0
  # shellcheck disable=SC2016
  # Under mpirun every task inherits the batch step's SLURM_PROCID (0): OpenMPI's rank comes first.
  local line='echo "dtbench-binding rank=${OMPI_COMM_WORLD_RANK:-${SLURM_PROCID:-?}} local=${SLURM_LOCALID:-?}/${OMPI_COMM_WORLD_LOCAL_RANK:-?} node=${SLURMD_NODENAME:-$(hostname)} cuda_visible=${CUDA_VISIBLE_DEVICES:-unset}"'
  if [ "$LAUNCHER" = srun ]; then
    # shellcheck disable=SC2086
    srun --mpi=none $SRUN_ARGS bash -c "$line" | sort -t= -k2 -n
  else
    # shellcheck disable=SC2086
    mpirun -np "$SLURM_NTASKS" $MPIRUN_ARGS bash -c "$line" | sort -t= -k2 -n
  fi
}

dt_header() {
  echo "dtbench job ${SLURM_JOB_ID:-?} ($1): ${SLURM_JOB_NUM_NODES:-?} nodes (${SLURM_JOB_NODELIST:-?}), ${SLURM_NTASKS:-?} tasks," \
       "backend $BACKEND, launcher $LAUNCHER${SRUN_ARGS:+ $SRUN_ARGS}, results $RESULTS"
  [ -z "${DT_NOTE:-}" ] || echo "dtbench: $DT_NOTE"
  [ -z "${DTBENCH_DEADLINE:-}" ] || echo "dtbench: the job's time limit ends at $(date -u -d "@$DTBENCH_DEADLINE" +%FT%TZ)"
}

# dt_claim_results: this job's results folder must be new or empty. A verdict is about one job, and
# a folder that already holds reports (Slurm job ids restart after a controller reset) would mix an
# older job's rows into this one's verdict.
dt_claim_results() {
  if [ -d "$RESULTS" ] && [ -n "$(ls -A "$RESULTS" 2>/dev/null)" ]; then
    echo "dtbench: RESULTS $RESULTS already holds files (an earlier job with the same id?); refusing to mix them" \
         "into job ${SLURM_JOB_ID:-?}: move them away or set RESULTS" >&2
    exit 2
  fi
  mkdir -p "$RESULTS" || { echo "dtbench: cannot create $RESULTS" >&2; exit 2; }
}

# On SIGTERM (the time limit, or scancel) the running suite stops, no further suite starts, and the
# job still writes its summary, acceptance and report from what exists: the reports of the cut run
# have no end-of-run line, so dtbench-accept calls them INCOMPLETE (a FAIL), never a PASS.
DT_INTERRUPTED=0
dt_on_term() {
  DT_INTERRUPTED=1
  echo "dtbench: SIGTERM (time limit or scancel): stopping; summary, acceptance and report follow" >&2
}

# dt_suite_args SUITE -> that suite's flags
dt_suite_args() {
  case $1 in
    coll) echo "$COLL_ARGS" ;; ddp) echo "$DDP_ARGS" ;; fsdp) echo "$FSDP_ARGS" ;;
    ep) echo "$EP_ARGS" ;; ckpt) echo "$CKPT_ARGS" ;; p2p) echo "$P2P_ARGS" ;; *) echo "" ;;
  esac
}

# dt_run_suites OUTDIR SUITE...: runs each suite into OUTDIR, prints one summary line per suite and
# sets DT_FAILED (number of suites that failed) and DT_RAN (suites that ran).
dt_run_suites() {
  local out=$1 suite exe rc
  shift
  mkdir -p "$out" || { echo "dtbench: cannot create $out" >&2; exit 2; }
  DT_FAILED=0 DT_RAN=0 DT_SUMMARY=()
  for suite in "$@"; do
    exe=$BIN/dtbench-$suite
    if [ "$DT_INTERRUPTED" = 1 ]; then
      DT_FAILED=$((DT_FAILED + 1))
      DT_SUMMARY+=("dtbench-$suite: NOT RUN (interrupted)")
      continue
    fi
    if [ ! -x "$exe" ]; then
      DT_SUMMARY+=("dtbench-$suite: SKIP ($exe not built)")
      echo "== dtbench-$suite: SKIP ($exe not built)"
      continue
    fi
    echo "== dtbench-$suite -> $out"
    # shellcheck disable=SC2046,SC2086
    dt_launch "$exe" --backend "$BACKEND" --out "$out" $DTBENCH_ARGS $(dt_suite_args "$suite")
    rc=$?
    DT_RAN=$((DT_RAN + 1))
    if [ "$DT_INTERRUPTED" = 1 ]; then
      DT_FAILED=$((DT_FAILED + 1))
      DT_SUMMARY+=("dtbench-$suite: INTERRUPTED (exit $rc; its reports are INCOMPLETE)")
    elif [ $rc = 0 ]; then
      DT_SUMMARY+=("dtbench-$suite: PASS")
    else
      DT_FAILED=$((DT_FAILED + 1))
      DT_SUMMARY+=("dtbench-$suite: FAIL (exit $rc: $(dt_exit_meaning $rc))")
    fi
  done
}

dt_exit_meaning() {
  case $1 in
    1) echo "a check failed" ;; 2) echo "bad input" ;; 3) echo "watchdog: hung collective" ;;
    4) echo "no usable GPU for --backend nccl" ;; 5) echo "runtime error" ;; *) echo "killed or launcher error" ;;
  esac
}

# dt_accept DIR...: dtbench-accept against $THRESHOLDS when set; returns its exit code (0 when unset).
dt_accept() {
  [ -n "$THRESHOLDS" ] || return 0
  echo "== dtbench-accept -t $THRESHOLDS $*"
  # shellcheck disable=SC2086
  # stderr too: an error (a bad thresholds file) is then accept.txt's last line, not a missing verdict.
  "$BIN/dtbench-accept" -t "$THRESHOLDS" $ACCEPT_ARGS "$@" 2>&1 | tee "$RESULTS/accept.txt"
  return "${PIPESTATUS[0]}"
}

# dt_report RUN...: report.html of the job, its verdict banner including the acceptance and the
# comparison when the job wrote them.
dt_report() {
  [ "$REPORT" = 1 ] && [ -x "$BIN/dtbench-report" ] || return 0
  local extra=()
  [ -e "$RESULTS/accept.txt" ] && extra+=(--accept-result "$RESULTS/accept.txt")
  [ -e "$RESULTS/compare.txt" ] && extra+=(--compare-result "$RESULTS/compare.txt")
  # ${a[@]+...}: an empty array is "unbound" under set -u in bash before 4.4.
  "$BIN/dtbench-report" -o "$RESULTS/report.html" --title "dtbench job ${SLURM_JOB_ID:-}" ${extra[@]+"${extra[@]}"} "$@" ||
    true
}

# dt_main NAME DEFAULT_SUITES: the body of node/multinode/run-all jobs: binding, suites into one results
# folder, summary per suite, acceptance, report, overall verdict. Exit 0 only when every suite passed
# (and dtbench-accept passed when THRESHOLDS is set).
dt_main() {
  local name=$1
  read -r -a suites <<<"${SUITES:-$2}"
  dt_claim_results
  trap dt_on_term TERM
  dt_header "$name"
  dt_show_binding
  dt_run_suites "$RESULTS" "${suites[@]}"
  local accept_rc=0
  if [ "$DT_RAN" -gt 0 ]; then dt_accept "$RESULTS"; accept_rc=$?; fi
  dt_report "$RESULTS"
  echo
  echo "== summary (job ${SLURM_JOB_ID:-?}, results $RESULTS)"
  printf '%s\n' "${DT_SUMMARY[@]}"
  [ -n "$THRESHOLDS" ] && [ "$DT_RAN" -gt 0 ] && echo "dtbench-accept: $([ $accept_rc = 0 ] && echo PASS || echo "FAIL (exit $accept_rc)")"
  if [ "$DT_INTERRUPTED" = 1 ]; then
    echo "dtbench $name: FAIL (interrupted by SIGTERM: the run is INCOMPLETE)"
    exit 1
  elif [ "$DT_RAN" = 0 ]; then
    echo "dtbench $name: FAIL (no suite binary found under $BIN; run make first)"
    exit 2
  elif [ "$DT_FAILED" -gt 0 ] || [ $accept_rc != 0 ]; then
    echo "dtbench $name: FAIL ($DT_FAILED of $DT_RAN suites failed$([ $accept_rc != 0 ] && echo ", acceptance failed"))"
    exit 1
  fi
  echo "dtbench $name: PASS ($DT_RAN suites)"
  exit 0
}
