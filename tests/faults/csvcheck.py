#!/usr/bin/env python3
"""Small CSV inspections for the fault matrix (dtbench reports: '# key=value' lines, header, rows).

  csvcheck.py complete FILE            every row has the header's field count and the file ends in '\\n'
  csvcheck.py rows FILE                number of data rows
  csvcheck.py prefix PART FULL         PART's rows (run_id column ignored) are the first rows of FULL
  csvcheck.py checks FILE              unique check names with the n_checked of their first row
  csvcheck.py failrow FILE CHECK RANK  a FAIL row of CHECK names RANK in failing_ranks or culprit
  csvcheck.py failprefix FILE PREFIX RANK  a FAIL row of a check named PREFIX* names RANK in failing_ranks
  csvcheck.py timesum FILE             sum of time_med_us over perf rows that have one
  csvcheck.py meta FILE KEY            the value of metadata line '# KEY=...'
  csvcheck.py ended FILE               the file ends with its end-of-run line ('# end_of_run=complete ...')
Exit status 0 when the condition holds (or the value was printed), 1 otherwise.
"""
import csv
import io
import sys


def load(path):
    with open(path, newline="") as f:
        text = f.read()
    body = "".join(l for l in text.splitlines(keepends=True) if not l.startswith("#"))
    rows = list(csv.reader(io.StringIO(body)))
    if not rows:
        return text, [], []
    return text, rows[0], rows[1:]


def main(argv):
    cmd = argv[1]
    if cmd == "complete":
        text, header, rows = load(argv[2])
        bad = [i for i, r in enumerate(rows) if len(r) != len(header)]
        if not header or bad or not text.endswith("\n"):
            print(f"{argv[2]}: header={len(header)} fields, bad rows {bad[:5]}, ends with newline: {text.endswith(chr(10))}")
            return 1
        return 0
    if cmd == "ended":
        lines = load(argv[2])[0].splitlines()
        return 0 if lines and lines[-1].startswith("# end_of_run=complete ") else 1
    if cmd == "rows":
        print(len(load(argv[2])[2]))
        return 0
    if cmd == "prefix":
        _, _, part = load(argv[2])
        _, _, full = load(argv[3])
        strip = lambda rows: [r[1:] for r in rows]
        if strip(part) != strip(full)[: len(part)]:
            for i, (a, b) in enumerate(zip(strip(part), strip(full))):
                if a != b:
                    print(f"row {i} differs:\n  {a}\n  {b}")
                    break
            else:
                print(f"{len(part)} rows, full has {len(full)}")
            return 1
        return 0
    if cmd == "checks":
        _, header, rows = load(argv[2])
        ci, ni = header.index("check"), header.index("n_checked")
        seen = {}
        for r in rows:
            seen.setdefault(r[ci], r[ni])
        for k, v in seen.items():
            print(f"{k} {v}")
        return 0
    if cmd == "failrow":
        _, header, rows = load(argv[2])
        ci, si = header.index("check"), header.index("status")
        fi, cu = header.index("failing_ranks"), header.index("culprit")
        for r in rows:
            if r[ci] == argv[3] and r[si] == "FAIL" and (argv[4] in r[fi].split(";") or argv[4] in r[cu].split(";")):
                return 0
        return 1
    if cmd == "failprefix":
        _, header, rows = load(argv[2])
        ci, si, fi = header.index("check"), header.index("status"), header.index("failing_ranks")
        return 0 if any(r[ci].startswith(argv[3]) and r[si] == "FAIL" and argv[4] in r[fi].split(";")
                        for r in rows) else 1
    if cmd == "timesum":
        _, header, rows = load(argv[2])
        ti = header.index("time_med_us")
        print(sum(float(r[ti]) for r in rows if r[ti]))
        return 0
    if cmd == "meta":
        with open(argv[2]) as f:
            for line in f:
                if line.startswith(f"# {argv[3]}="):
                    print(line.rstrip("\n").split("=", 1)[1])
                    return 0
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
