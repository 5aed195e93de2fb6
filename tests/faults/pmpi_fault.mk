# The PMPI fault interposer (tests/faults/pmpi_fault.c): a library to LD_PRELOAD under mpirun with
# DTBENCH_PMPI_FAULT=MODE[,op=OP][,rank=R][,call=K][,bytes=B], so that MPI itself delivers wrong
# data beneath dtbench. Plain C against the MPI C ABI, so it is built with mpicc, not $(CXX), and
# does not depend on the dtbench build variant. Self test: tests/faults/pmpi_selftest.sh.
PMPI_FAULT_SO ?= $(BUILD)/libdtbench_pmpi_fault.so
PMPI_FAULT_CC ?= mpicc

$(PMPI_FAULT_SO): tests/faults/pmpi_fault.c tests/faults/pmpi_fault.mk
	@mkdir -p $(@D)
	$(PMPI_FAULT_CC) -std=c11 -shared -fPIC -O1 -g -Wall -Wextra -o $@ $< -pthread
