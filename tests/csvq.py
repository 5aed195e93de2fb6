#!/usr/bin/env python3
"""Query or rewrite one dtbench CSV report by column name (the integration tests' only CSV reader).

A report is '# key=value' metadata lines, a header, then rows. Fields may be quoted and hold commas
(a checkpoint path in `case`), so a test never splits a line on ',' itself.

  csvq.py FILE [--where COND...]... [--print COL[,COL...] | --count | --set ASSIGN...]

Without an action nothing is printed: the exit status says whether a row matched (instead of
`| grep -q .`). --print prints the column(s) of each matching row, one row a line, several columns
tab-separated; --count prints the number of matching rows; --set rewrites the matching rows in
place (metadata lines, header and every other line kept byte for byte; a rewritten field is quoted
only when it needs it, by the same rule as dtbench's writer).

COND (all must hold):
  COL=VAL  COL!=VAL   the field is / is not VAL (COL!= : the field is not empty)
  COL~RE   COL!~RE    the field matches / does not match the regular expression RE (re.search)
  COL@=VAL            VAL is one of the field's ';'-separated items (failing_ranks "1;3" has 3)
  COL>=NUM COL<=NUM COL>NUM COL<NUM   numeric; an empty or non-numeric field never matches
ASSIGN: COL=VAL, or COL*=NUM / COL/=NUM on a numeric field, or COL=@SRC*NUM: the row's numeric
SRC field times NUM (assignments apply in order, each to the row as the previous ones left it).
The pseudo-column @line is a row's line number in the file (as dtbench-accept and -compare name rows).

Exit status: 0 when at least one row matched (with --count, always), 1 when none, 2 on bad usage,
an unreadable file or a column the header does not have (named, so a typo never passes a test).
"""
import argparse
import csv
import operator
import os
import re
import sys
import tempfile

LINE = "@line"
NUMERIC = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
COND = re.compile(r"([A-Za-z_@][\w.]*)(!=|!~|@=|>=|<=|=|~|>|<)(.*)", re.S)
ASSIGN = re.compile(r"([A-Za-z_][\w.]*)(\*=|/=|=)(.*)", re.S)
FROM_COLUMN = re.compile(r"@([A-Za-z_][\w.]*)\*(.+)", re.S)


class Usage(Exception):
    pass


def number(text, what):
    try:
        return float(text)
    except ValueError:
        raise Usage(f"{what}: '{text}' is not a number")


def as_float(text):
    try:
        return float(text)
    except ValueError:
        return None


def csv_field(s):
    # src/core/report.cpp csv_field: a leading '#' would read back as a metadata line.
    if any(c in s for c in ',"\r\n') or (s and (s[0] == " " or s[-1] == " " or s[0] == "#")):
        return '"' + s.replace('"', '""') + '"'
    return s


def load(path):
    """Returns (chunks, header, rows): chunks are the file's lines and records in order, each row
    is [line number, chunk index, fields]."""
    try:
        with open(path, newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise Usage(f"{path}: cannot read: {e}")
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
    chunks, pos = [], 0

    def body():  # the lines that are not metadata; those join chunks as they pass
        nonlocal pos
        while pos < len(lines):
            pos += 1
            if lines[pos - 1].startswith("#"):
                chunks.append(lines[pos - 1])
            else:
                yield lines[pos - 1]

    header, rows = None, []
    reader = csv.reader(body(), strict=True)  # a malformed report is an error, not a guess
    while True:
        start = pos
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise Usage(f"{path}:{pos}: {e}")
        own = [i for i in range(start, pos) if not lines[i].startswith("#")]
        chunks.append("".join(lines[i] for i in own))
        if header is None:
            header = fields
        elif fields:  # a blank line is no row
            rows.append([own[0] + 1, len(chunks) - 1, fields])
    return chunks, header or [], rows


def column(header, name, path):
    if name == LINE:
        return LINE
    if name not in header:
        raise Usage(f"{path}: no column '{name}' (columns: {','.join(header)})")
    return header.index(name)


def value(row, col):
    if col == LINE:
        return str(row[0])
    fields = row[2]
    return fields[col] if col < len(fields) else ""


def condition(text, header, path):
    m = COND.fullmatch(text)
    if not m:
        raise Usage(f"--where '{text}': expected COL=VAL, COL!=VAL, COL~RE, COL!~RE, COL@=VAL or COL>=NUM")
    name, op, arg = m.groups()
    col = column(header, name, path)
    if op in NUMERIC:
        num, cmp = number(arg, f"--where '{text}'"), NUMERIC[op]
        return lambda r: (v := as_float(value(r, col))) is not None and cmp(v, num)
    if op in ("~", "!~"):
        try:
            rx = re.compile(arg)
        except re.error as e:
            raise Usage(f"--where '{text}': {e}")
        return lambda r: bool(rx.search(value(r, col))) == (op == "~")
    if op == "@=":
        return lambda r: arg in value(r, col).split(";")
    return lambda r: (value(r, col) == arg) == (op == "=")


def assignment(text, header, path):
    m = ASSIGN.fullmatch(text)
    if not m:
        raise Usage(f"--set '{text}': expected COL=VAL, COL*=NUM or COL/=NUM")
    name, op, arg = m.groups()
    src = FROM_COLUMN.fullmatch(arg) if op == "=" else None
    if src:
        return column(header, name, path), "=@", (column(header, src.group(1), path),
                                                  number(src.group(2), f"--set '{text}'"))
    return column(header, name, path), op, arg if op == "=" else number(arg, f"--set '{text}'")


def rewrite(path, chunks, header, rows, changes):
    for row in rows:
        fields = row[2]
        for col, op, arg in changes:
            fields += [""] * (col + 1 - len(fields))  # a short row grows only as far as it is written
            if op == "=":
                fields[col] = arg
                continue
            src, factor = arg if op == "=@" else (col, arg)
            v = as_float(fields[src]) if src < len(fields) else None
            if v is None:
                raise Usage(f"{path}:{row[0]}: column '{header[src]}': '{fields[src] if src < len(fields) else ''}' "
                            "is not a number")
            fields[col] = f"{(v / factor if op == '/=' else v * factor):.12g}"
        old = chunks[row[1]]
        chunks[row[1]] = ",".join(map(csv_field, fields)) + ("\n" if old.endswith("\n") else "")
    # Written beside the file and renamed over it: an interrupted rewrite never leaves half a report.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".csvq.")
    with os.fdopen(fd, "w", newline="") as f:
        f.write("".join(chunks))
    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(prog="csvq.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--where", action="extend", nargs="+", default=[], metavar="COND")
    act = ap.add_mutually_exclusive_group()
    act.add_argument("--print", metavar="COL[,COL...]")
    act.add_argument("--count", action="store_true")
    act.add_argument("--set", action="extend", nargs="+", metavar="ASSIGN")
    a = ap.parse_args(argv)
    try:
        chunks, header, rows = load(a.file)
        conds = [condition(c, header, a.file) for c in a.where]
        cols = [column(header, c, a.file) for c in a.print.split(",")] if a.print else []
        changes = [assignment(c, header, a.file) for c in a.set or []]
        rows = [r for r in rows if all(c(r) for c in conds)]
        if changes and rows:
            rewrite(a.file, chunks, header, rows, changes)
    except Usage as e:
        print(f"csvq.py: {e}", file=sys.stderr)
        return 2
    if a.count:
        print(len(rows))
        return 0
    if cols:
        for r in rows:
            print("\t".join(value(r, c) for c in cols))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
