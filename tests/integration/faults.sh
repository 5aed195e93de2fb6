#!/usr/bin/env bash
# The fault matrix (tests/faults/run.sh) as part of make test: one rank killed mid-collective, one
# rank 10x slower, corrupted data for every check, unwritable and full result folders, SIGTERM at the
# time limit, malformed model/thresholds/perf CSVs, on every suite that is built.
exec bash "$(dirname "$0")/../faults/run.sh"
