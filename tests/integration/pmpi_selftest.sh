#!/usr/bin/env bash
# The fabric-fault interposer's own acceptance test (tests/faults/pmpi_selftest.sh): every mode on
# every MPI call it reaches, filters and malformed specs, on a small MPI program of known data.
exec bash "$(dirname "$0")/../faults/pmpi_selftest.sh"
