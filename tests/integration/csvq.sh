#!/usr/bin/env bash
# tests/csvq.py (the tests' CSV reader) and lib.sh's no_rows on a planted report: columns by name
# past a quoted field that holds commas and quotes, ';'-lists, numeric conditions, --count, @line, an
# unknown column (exit 2), a malformed file, and --set rewriting only the matching rows with
# dtbench's quoting.
source "$(dirname "$0")/../lib.sh"
f=$TMP_ROOT/planted-checks.csv LOG=$TMP_ROOT/csvq.log RC=0
cat >$f <<'EOF'
# run_id=r1
# command=dtbench-ckpt --ckpt-dir "/tmp/a,b"
run_id,suite,check,case,status,failing_ranks,culprit,first_index,detail
r1,ckpt,load.values,"/tmp/a,b/step_2",FAIL,1;3,3,1001,"say ""hi"", twice"
r1,ckpt,load.values,/tmp/c/step_4,PASS,,,,
r1,ckpt,save.commit,/tmp/c/step_4,FAIL,13,,x,
EOF
cp $f $TMP_ROOT/orig.csv
q() { csvq "$@" >$LOG 2>&1; RC=$?; }

printf 'FAIL\t1;3\t1001\tsay "hi", twice\n' >$TMP_ROOT/want-print
expect "csvq: columns after a quoted field with commas are read by name" "FAIL, 1;3, 1001 and the quoted detail" \
  eval 'csvq $f --where "case=/tmp/a,b/step_2" --print status,failing_ranks,first_index,detail | cmp -s - $TMP_ROOT/want-print &&
        csvq $f --where "case~/step_2\$" check=load.values'
expect "csvq: COL@=VAL is membership in a ;-list" "3 in 1;3, not in 13; 1 only in 1;3" \
  eval '[ "$(csvq $f --where failing_ranks@=3 --print check)" = load.values ] &&
        [ "$(csvq $f --where failing_ranks@=1 --print @line)" = 4 ]'
expect "csvq: != and !~, empty fields" "3 rows with status!=x; 2 non-empty failing_ranks; 1 check outside load.*" \
  eval '[ "$(csvq $f --count --where status!=x)" = 3 ] && [ "$(csvq $f --count --where failing_ranks!=)" = 2 ] &&
        [ "$(csvq $f --where "check!~^load\." --print check)" = save.commit ]'
expect "csvq: numeric conditions skip empty and non-numeric fields" "first_index>=1000 and <2000: one row; >0: one" \
  eval '[ "$(csvq $f --count --where "first_index>=1000" "first_index<2000")" = 1 ] && [ "$(csvq $f --count --where "first_index>0")" = 1 ]'
q $f --where status=SKIP
expect "csvq: no matching row is exit 1, nothing printed" "exit 1, empty output" eval '[ $RC = 1 ] && [ ! -s $LOG ]'
q $f --count --where status=SKIP
expect "csvq: --count of nothing is 0 with exit 0" "exit 0, '0'" eval '[ $RC = 0 ] && [ "$(cat $LOG)" = 0 ]'
for args in "--where statsu=FAIL" "--print statsu" "--count --where statsu>=1" "--where status=SKIP --set statsu=1"; do
  # shellcheck disable=SC2086
  q $f $args
  expect "csvq: unknown column in '$args' is exit 2 naming it" "exit 2, 'no column 'statsu'', file unchanged" \
    eval '[ $RC = 2 ] && grep -q "no column .statsu." $LOG && cmp -s $f $TMP_ROOT/orig.csv'
done
printf 'a,b\n1,"open\n' >$TMP_ROOT/bad.csv
q $TMP_ROOT/bad.csv --count
expect "csvq: an unclosed quote is exit 2 naming the file" "exit 2, bad.csv in the message" eval '[ $RC = 2 ] && grep -q "bad.csv" $LOG'
q $TMP_ROOT/missing.csv
expect "csvq: an unreadable file is exit 2" "exit 2" eval '[ $RC = 2 ]'
expect "no_rows: true for no match, false for a match or an unknown column" "status=SKIP none; status=FAIL some; statsu error" \
  eval 'no_rows $f status=SKIP && ! no_rows $f status=FAIL && ! no_rows $f statsu=SKIP 2>/dev/null'

q $f --where check=load.values "first_index>=1000" --set "first_index*=2" culprit=2 'detail=#1, a "b"'
cat >$TMP_ROOT/want-set <<'EOF'
< r1,ckpt,load.values,"/tmp/a,b/step_2",FAIL,1;3,3,1001,"say ""hi"", twice"
> r1,ckpt,load.values,"/tmp/a,b/step_2",FAIL,1;3,2,2002,"#1, a ""b"""
EOF
expect "csvq --set rewrites the matching row only, quoting what needs it" \
  "line 4 rewritten, metadata, header and other rows byte for byte" \
  eval '[ $RC = 0 ] && diff $TMP_ROOT/orig.csv $f | grep "^[<>]" | cmp -s - $TMP_ROOT/want-set &&
        [ "$(csvq $f --where culprit=2 --print detail)" = "#1, a \"b\"" ]'
cp $f $TMP_ROOT/before.csv
q $f --where status=SKIP --set status=PASS
expect "csvq --set on no row is exit 1, file unchanged" "exit 1, same bytes" eval '[ $RC = 1 ] && cmp -s $f $TMP_ROOT/before.csv'
q $f --where @line=6 --set "first_index*=2"
expect "csvq --set *= on a non-number is exit 2 naming line and column" "exit 2, ':6: column 'first_index'', unchanged" \
  eval '[ $RC = 2 ] && grep -q ":6: column .first_index.: .x. is not a number" $LOG && cmp -s $f $TMP_ROOT/before.csv'

# expect runs its condition in a subshell: an `exit 1` inside it fails that check and the script
# goes on (it used to end the whole script without a FAIL line).
out=$(expect "inner" "exits" eval 'exit 1'; echo "still here")
if [[ $out == "FAIL inner: exits"* && $out == *"still here" ]]; then pass "lib expect: exit 1 in a condition is a FAIL, the script goes on"
else fail "lib expect: exit 1 in a condition is a FAIL, the script goes on" "got: $(echo "$out" | tr '\n' '|')"; fi
