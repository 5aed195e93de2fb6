# Shared helpers for the MPI integration tests (sourced). Each test prints "PASS name" or
# "FAIL name: why"; tests/run_all.sh counts them.
export OMPI_MCA_mpi_yield_when_idle=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
BIN=${BIN:-bin}
MPIRUN=(mpirun --oversubscribe --bind-to none)
TMP_ROOT=$(mktemp -d /tmp/dtbench-test.XXXXXX)
trap 'rm -rf "$TMP_ROOT"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# run_mpi NP OUTFILE -- CMD...: runs under mpirun with a hard time limit; sets RC and LOG.
run_mpi() {
  local np=$1 log=$2
  shift 2
  timeout -k 5 240 "${MPIRUN[@]}" -np "$np" "$@" >"$log" 2>&1
  RC=$?
  LOG=$log
}

# expect NAME COND_DESCRIPTION COMMAND...: PASS when the command succeeds.
expect() {
  local name=$1 why=$2
  shift 2
  # In a subshell: an `exit 1` inside an eval'd condition fails this check, not the whole script
  # (which would end silently, dropping every check after it from the count).
  if ("$@"); then pass "$name"; else fail "$name" "$why (rc=$RC, log: $(tail -c 600 "$LOG" 2>/dev/null | tr '\n' '|'))"; fi
}

# The only checks CSV / perf CSV in a directory.
checks_csv() { ls "$1"/*-checks.csv 2>/dev/null | head -1; }
perf_csv() { ls "$1"/*-perf.csv 2>/dev/null | head -1; }
# dtbench CSVs are read by column name (fields may be quoted and hold commas): tests/csvq.py.
CSVQ=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/csvq.py
csvq() { python3 "$CSVQ" "$@"; }
# no_rows FILE COND...: no row matches (not `! csvq`, which a csvq error, exit 2, would pass).
no_rows() { local f=$1; shift; [ "$(csvq "$f" --count --where "$@")" = 0 ]; }
# Number of FAIL rows, and whether some FAIL row names a rank in failing_ranks.
fail_rows() { csvq "$1" --count --where status=FAIL; }
fail_names_rank() { csvq "$1" --where status=FAIL failing_ranks@="$2"; }
all_pass() { local f; f=$(checks_csv "$1"); [ -n "$f" ] && [ "$(fail_rows "$f")" = 0 ] && csvq "$f"; }

# expect_bad_input LABEL NP EXE "ARGS|TEXT"...: each ARGS is bad input to EXE on NP ranks: exit 2,
# a line containing TEXT (the flag it names), nothing written under --out.
expect_bad_input() {
  local label=$1 np=$2 exe=$3 case args text out
  shift 3
  for case in "$@"; do
    args=${case%%|*} text=${case#*|} out=$TMP_ROOT/bad-input
    # shellcheck disable=SC2086
    run_mpi "$np" $TMP_ROOT/bad-input.log "$exe" $args --out "$out"
    expect "$label bad input '$args'" "exit 2, a line naming $text, nothing written" \
      eval '[ $RC = 2 ] && grep -q -- "$text" $LOG && [ ! -e $out ]'
  done
}

# expect_within_tries N NAME WHY RUN COND: runs the command RUN (a string, eval'd) and checks COND
# (eval'd) up to N times, until COND holds. For verdicts that rest on timings (a slow rank, a
# shaped link): this shared machine stalls at random, and one stall can hide a slowed rank for a
# run; a wrong verdict that repeats is still a FAIL. Says how many tries it took.
expect_within_tries() {
  local n=$1 name=$2 why=$3 run=$4 cond=$5 try
  for ((try = 1; try <= n; try++)); do
    eval "$run"
    if (eval "$cond"); then
      [ $try -gt 1 ] && echo "   ($name: passed on try $try of $n)"
      break
    fi
  done
  expect "$name" "$why" eval "$cond"
}
