# Per-suite settings of the fault matrix and the multi-node test (sourced).
# Suites the matrix knows; absent executables are reported as SKIP.
ALL_SUITES=(coll ddp fsdp ep ckpt p2p)

# Small, fast arguments that exercise every check of a suite on 4 ranks.
quick_args() {
  case $1 in
    coll) echo "-b 4K -e 16K -f 4 -n 2 -w 1 -q" ;;
    p2p) echo "-b 4K -e 16K -f 4 -n 2 -w 1 -q" ;;
    *) echo "-n 2 -w 1 -q" ;;
  esac
}

# Longer runs (more rows) for the full-disk and SIGTERM cases: reports well over one 4 KiB page.
long_args() {
  case $1 in
    coll) echo "-b 8 -e 256K -f 2 -n 2 -w 1 -q" ;;
    p2p) echo "-b 8 -e 256K -f 2 -n 2 -w 1 -q" ;;
    *) quick_args "$1" ;;
  esac
}

# The flag through which a suite reads a model CSV (empty: it reads none).
model_flag() {
  local exe=$1
  if "$exe" --help 2>/dev/null | grep -q -- '--model-csv'; then echo --model-csv
  elif "$exe" --help 2>/dev/null | grep -- '--model' | grep -qi 'csv'; then echo --model
  fi
}

# Checks whose verdict is not computed from a data buffer (so a flipped element cannot reach them),
# with the test that injects the fault they exist to catch. Prints the reason; fails for other checks.
flip_exempt() {
  case "$1:$2" in
    ckpt:load.checksum) echo "checksums the files; ckpt.sh flips a byte in a shard file" ;;
    ckpt:load.read) echo "reads the files; ckpt.sh truncates a shard file" ;;
    *) return 1 ;;
  esac
}
