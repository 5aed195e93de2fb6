# dtbench: one entry point. make | make test | make run | make bench | make deps | make clean
# Knobs: CUDA=auto|0|1  DEBUG=1  SANITIZE=address,undefined  BIN=bin  BUILD=build
SHELL := /bin/bash
.DEFAULT_GOAL := all
# Parallel by default; objects are kept (no chained-rule deletion).
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
.SECONDARY:

BUILD ?= build
BIN ?= bin
CUDA ?= auto
CUDA_HOME ?= /usr/local/cuda
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]

# --- CUDA detection: nvcc on PATH or under CUDA_HOME, and nccl.h ---------------------------------
NVCC := $(or $(shell command -v nvcc 2>/dev/null),$(wildcard $(CUDA_HOME)/bin/nvcc))
NCCL_H := $(firstword $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
ifeq ($(CUDA),auto)
  USE_CUDA := $(if $(and $(NVCC),$(NCCL_H)),1,0)
else
  USE_CUDA := $(CUDA)
endif

VARIANT := $(if $(filter 1,$(USE_CUDA)),cuda,host)$(if $(DEBUG),-debug)$(if $(SANITIZE),-san)
OBJ := $(BUILD)/$(VARIANT)

CXX := mpicxx
GIT_REV := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
CXXFLAGS := -std=c++17 -Isrc -DOMPI_SKIP_MPICXX=1 -Wall -Wextra -MMD -MP -pthread -fopenmp-simd -DDTBENCH_GIT_REV='"$(GIT_REV)"'
CXXFLAGS += $(if $(DEBUG),-O0 -g,-O2 -g)
LDLIBS := -lxxhash -ldl -pthread
ifneq ($(SANITIZE),)
  CXXFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=$(SANITIZE)
endif
ifeq ($(USE_CUDA),1)
  CXXFLAGS += -DDTBENCH_CUDA=1 -I$(CUDA_HOME)/include
  LDFLAGS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64
  LDLIBS += -lnccl -lcudart
endif
NVCCFLAGS := -std=c++17 -O2 $(CUDA_ARCH) -Xcompiler -Wall

# --- sources --------------------------------------------------------------------------------------
# src/core: the harness every suite shares; src/<pattern>: one folder per training pattern (ddp, fsdp,
# ep, ckpt) and the shared model and layouts. All of them go into one archive.
# The CUDA side of the backend and of Buffer each have a stub for builds without CUDA.
CUDA_SPLIT := src/core/backend_nccl src/core/device_memory_cuda
CUDA_STUBS := src/core/backend_nccl_stub src/core/device_memory_stub
HARNESS_SRC := $(filter-out $(CUDA_SPLIT:%=%.cpp) $(CUDA_STUBS:%=%.cpp) $(EXCLUDE),$(wildcard src/*/*.cpp))
HARNESS_SRC += $(if $(filter 1,$(USE_CUDA)),$(CUDA_SPLIT:%=%.cpp),$(CUDA_STUBS:%=%.cpp))
KERNEL_SRC := $(if $(filter 1,$(USE_CUDA)),$(wildcard kernels/*.cu))
HARNESS_OBJ := $(HARNESS_SRC:%.cpp=$(OBJ)/%.o) $(KERNEL_SRC:%.cu=$(OBJ)/%.o)
LIB := $(OBJ)/libdtbench.a

SUITE_SRC := $(wildcard suites/*.cpp)
SUITES := $(SUITE_SRC:suites/%.cpp=$(BIN)/dtbench-%)
TOOL_SRC := $(wildcard tools/*.cpp)
TOOLS := $(TOOL_SRC:tools/%.cpp=$(BIN)/dtbench-%)
# dtbench-report's plot and section units, linked into it alone.
REPORT_SRC := $(wildcard tools/report/*.cpp)
UNIT_SRC := $(wildcard tests/unit/*.cpp)
UNIT_BIN := $(OBJ)/unit_tests
BENCH_SRC := $(wildcard bench/*.cpp)
BENCH_BIN := $(OBJ)/micro_bench $(OBJ)/raw_mpi_loop

.PHONY: all deps test run bench bench-peers bench-scaling clean unit host-only fuzz
all: $(SUITES) $(TOOLS)

$(OBJ)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(OBJ)/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

# The archive is rebuilt when its member list changes too (sources added, EXCLUDE used).
$(OBJ)/objects.list: FORCE
	@mkdir -p $(@D)
	@echo "$(HARNESS_OBJ)" | cmp -s - $@ || echo "$(HARNESS_OBJ)" >$@

$(LIB): $(HARNESS_OBJ) $(OBJ)/objects.list
	@rm -f $@
	ar rcs $@ $(HARNESS_OBJ)

.PHONY: FORCE
FORCE:

$(BIN)/dtbench-%: $(OBJ)/suites/%.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BIN)/dtbench-%: $(OBJ)/tools/%.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BIN)/dtbench-report: $(OBJ)/tools/report.o $(REPORT_SRC:%.cpp=$(OBJ)/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $(filter %.o,$^) $(LIB) $(LDLIBS) -o $@

# The unit tests also cover dtbench-report's plot and section units.
$(UNIT_BIN): $(UNIT_SRC:%.cpp=$(OBJ)/%.o) $(REPORT_SRC:%.cpp=$(OBJ)/%.o) $(LIB)
	$(CXX) $(LDFLAGS) $(filter %.o,$^) $(LIB) -lgmock -lgtest_main -lgtest $(LDLIBS) -o $@

$(OBJ)/micro_bench: $(OBJ)/bench/micro_bench.o $(LIB)
	$(CXX) $(LDFLAGS) $< $(LIB) -lbenchmark $(LDLIBS) -o $@

$(OBJ)/raw_mpi_loop: $(OBJ)/bench/raw_mpi_loop.o
	$(CXX) $(LDFLAGS) $< $(LDLIBS) -o $@

unit: $(UNIT_BIN)

# The fabric-fault interposer (LD_PRELOAD under the suites in tests/integration/fabric.sh).
include tests/faults/pmpi_fault.mk

# Installs the Debian packages dtbench needs when any is missing (apt-get; prints the command if not root).
deps:
	@bash scripts/deps.sh

# Unit tests, MPI integration tests on the host backend, and the host-only (CUDA=0) build.
# HOST_ONLY=0 skips the host-only build and its tests (the sanitizer pass in CI).
HOST_ONLY ?= 1
test: deps
	@$(MAKE) --no-print-directory all unit $(PMPI_FAULT_SO) $(BENCH_BIN)
	@$(if $(filter 1,$(HOST_ONLY)),$(MAKE) --no-print-directory host-only,true)
	@OBJ=$(OBJ) BIN=$(BIN) HOST_ONLY_BIN=$(if $(filter 1,$(HOST_ONLY)),$(BUILD)/host-only/bin) USE_CUDA=$(USE_CUDA) PMPI_FAULT_SO=$(PMPI_FAULT_SO) \
	  bash tests/run_all.sh

# A host-only build next to the default one, so make test exercises both.
host-only:
	@$(MAKE) --no-print-directory CUDA=0 BIN=$(BUILD)/host-only/bin all

# A quick run of every suite on the host backend with default sizes; CSVs under results/.
run: deps
	@$(MAKE) --no-print-directory all
	@BIN=$(BIN) bash scripts/run_all_suites.sh

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@OBJ=$(OBJ) BIN=$(BIN) bash bench/run_bench.sh

# dtbench next to its peers (raw MPI loop, PyTorch DDP on CPU, fio), and scaling with ranks/model size.
bench-peers: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@mkdir -p results && OBJ=$(OBJ) BIN=$(BIN) PEERS_CSV=$${PEERS_CSV:-results/peers-$$(date -u +%Y%m%dT%H%M%S)-perf.csv} bash bench/peers.sh

bench-scaling: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@OBJ=$(OBJ) BIN=$(BIN) bash bench/scaling.sh

# libFuzzer targets for every parser (clang), FUZZ_SECONDS each (default 20); seed corpus in fuzz/corpus/.
fuzz: deps
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),20) bash fuzz/run.sh

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
