#pragma once
// Process-level setup: MPI (with MPI_THREAD_MULTIPLE for the watchdog), where this rank sits
// (node, local rank via MPI_Comm_split_type SHARED), and the run's metadata for the reports.
#include <string>
#include <utility>
#include <vector>

namespace dtbench {

class Backend;

struct RunInfo {
  int rank = 0, size = 1;
  int local_rank = 0, local_size = 1;  // within this node (shared-memory domain)
  int node_index = 0, num_nodes = 1;   // nodes numbered by their lowest world rank
  std::string hostname;
  std::vector<std::string> hostnames;  // per world rank (identical on every rank)
  bool thread_multiple = false;
};

class Runtime {
 public:
  Runtime(int* argc, char*** argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  const RunInfo& info() const { return info_; }

 private:
  RunInfo info_;
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Versions (NCCL as loaded, MPI, UCX, CUDA), transport, hosts, rank map, Slurm job, git revision,
// command line and start time. Collective over MPI_COMM_WORLD (gathers hostnames/devices).
Metadata collect_metadata(const RunInfo& info, const Backend& backend, int argc, char** argv);

// The NCCL library this process has loaded or would load ("2.28.3 (/usr/lib/.../libnccl.so.2)").
std::string nccl_library_description();

}  // namespace dtbench
