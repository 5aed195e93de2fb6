# Generators of malformed input files for the fault matrix (sourced). Each writes one file per case
# into DIR; the file name is the case name.

# Model CSVs (load_model_csv: name,shape,dtype,expert[,shared_embedding][,layer]).
make_bad_model_csvs() {
  local d=$1 h="name,shape,dtype,expert,shared_embedding,layer"
  mkdir -p "$d"
  : >"$d/empty.csv"
  printf '%s\n' "$h" >"$d/header-only.csv"
  printf '%s\nw,64x64,fp32,0,0,0\nw2,64x,fp32,0,0,0\n' "$h" >"$d/bad-shape.csv"
  printf '%s\nw,64x64,fp8,0,0,0\n' "$h" >"$d/bad-dtype.csv"
  printf '%s\nw,64x64,fp32,0,0,0,extra\n' "$h" >"$d/extra-field.csv"
  printf '%s\nw,64x64,fp32\n' "$h" >"$d/truncated-row.csv"
  printf '%s\nw,99999999999x99999999999,fp32,0,0,0\n' "$h" >"$d/overflow.csv"
  printf '%s\n"w,64x64,fp32,0,0,0\n' "$h" >"$d/unclosed-quote.csv"
  head -c 3000 /dev/urandom | tr -d '\000' >"$d/binary.csv"
  printf 'name,shape\nw,4\n' >"$d/missing-column.csv"
}

# Thresholds CSVs for dtbench-accept (header documented in tools/thresholds-host.csv).
make_bad_thresholds() {
  local d=$1 h="suite,op,dtype,min_bytes,max_bytes,ranks,node,min_busbw_GBps,max_time_us,metric,min_value,max_value,checks"
  mkdir -p "$d"
  : >"$d/empty.csv"
  printf '%s\ncoll,all_reduce,fp32,8,64K,,,abc,,,,,\n' "$h" >"$d/not-a-number.csv"
  printf '%s\ncoll,all_reduce,fp32,8,64Q,,,,,,,,\n' "$h" >"$d/bad-size.csv"
  printf '%s\ncoll,all_reduce,fp32,8,64K,,,,,,,,,,,\n' "$h" >"$d/extra-fields.csv"
  printf '%s\ncoll,all_reduce\n' "$h" >"$d/truncated-row.csv"
  printf 'suite,op,colour\ncoll,all_reduce,red\n' >"$d/unknown-column.csv"
  printf '%s\ncoll,all_reduce,fp32,8,64K,,,1e999999,,,,,\n' "$h" >"$d/huge-number.csv"
  printf '%s\n"coll,all_reduce,fp32,8,64K,,,,,,,,\n' "$h" >"$d/unclosed-quote.csv"
  head -c 3000 /dev/urandom | tr -d '\000' >"$d/binary.csv"
}

# Perf CSVs (dtbench's own format) derived from a good one: cut mid-row as by a crash, fields
# removed, numbers garbled, header damaged.
make_bad_perf_csvs() {
  local d=$1 good=$2
  mkdir -p "$d"
  : >"$d/empty-perf.csv"
  head -c 3000 /dev/urandom | tr -d '\000' >"$d/binary-perf.csv"
  [ -n "$good" ] && [ -e "$good" ] || return 0
  # Cut in the middle of the last data row (the end-of-run line after it goes too: a file cut
  # inside that line alone is INCOMPLETE, not malformed).
  local size rows=$d/.rows-perf.csv
  grep -v '^# end_of_run=' "$good" >"$rows"
  size=$(wc -c <"$rows")
  head -c $((size - 40)) "$rows" >"$d/cut-mid-row-perf.csv"
  rm -f "$rows"
  awk -F, -v OFS=, '/^#/ || !seen++ {print; next} NR % 3 == 0 {NF = NF - 3} {print}' "$good" >"$d/short-rows-perf.csv"
  awk -F, -v OFS=, '/^#/ || !seen++ {print; next} {$16 = "fast"} {print}' "$good" >"$d/not-a-number-perf.csv"
  awk -F, -v OFS=, '/^#/ {print; next} !seen++ {$6 = "opp"} {print}' "$good" >"$d/bad-header-perf.csv"
  grep '^#' "$good" | grep -v '^# end_of_run=' >"$d/metadata-only-perf.csv"
}
