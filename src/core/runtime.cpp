#include "core/runtime.h"

#include <dlfcn.h>
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <sstream>

#include "core/backend.h"

#ifndef DTBENCH_GIT_REV
#define DTBENCH_GIT_REV "unknown"
#endif

namespace dtbench {

namespace {

// The cores this node's ranks may run on: the union of their CPU affinity masks (each rank may be
// bound to a few cores; a Slurm cgroup or taskset limits them all).
int node_cores(MPI_Comm node) {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof(mine), &mine) != 0) return 0;
  constexpr int kWords = sizeof(cpu_set_t) / sizeof(unsigned long);
  unsigned long words[kWords], all[kWords];
  std::memcpy(words, &mine, sizeof(words));
  MPI_Allreduce(words, all, kWords, MPI_UNSIGNED_LONG, MPI_BOR, node);
  int cores = 0;
  for (unsigned long w : all) cores += __builtin_popcountl(w);
  return cores;
}

// Whether OpenMPI yields the core while it waits (mpi_yield_when_idle). It is read through MPI_T,
// which sees the value from every source (environment, mca-params.conf, mpirun --mca); without
// MPI_T the environment variable decides.
bool mpi_yields_when_idle() {
  int provided = 0, index = -1, count = 0, value = 0;
  bool known = false;
  if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) == MPI_SUCCESS) {
    MPI_T_cvar_handle handle;
    if (MPI_T_cvar_get_index("mpi_yield_when_idle", &index) == MPI_SUCCESS &&
        MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count) == MPI_SUCCESS) {
      known = count == 1 && MPI_T_cvar_read(handle, &value) == MPI_SUCCESS;
      MPI_T_cvar_handle_free(&handle);
    }
    MPI_T_finalize();
  }
  if (known) return value != 0;
  const char* env = std::getenv("OMPI_MCA_mpi_yield_when_idle");
  return env && (std::strcmp(env, "1") == 0 || std::strcmp(env, "true") == 0);
}

}  // namespace

Runtime::Runtime(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  info_.thread_multiple = provided >= MPI_THREAD_MULTIPLE;
  MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &info_.size);

  // Start-up facts travel on a harness communicator (named so the fabric-fault interposer of
  // tests/faults leaves it alone: it corrupts what suites measure, not who runs where).
  MPI_Comm control;
  MPI_Comm_dup(MPI_COMM_WORLD, &control);
  MPI_Comm_set_name(control, "dtbench-control-runtime");
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &node);
  MPI_Comm_set_name(node, "dtbench-control-node");
  MPI_Comm_rank(node, &info_.local_rank);
  MPI_Comm_size(node, &info_.local_size);
  // More ranks than cores with MPI busy-polling: every wait spins against the rank it waits for,
  // and timings come out orders of magnitude slow. Said once per node, on stderr (also under -q).
  const int cores = node_cores(node);
  const bool spinning = cores > 0 && info_.local_size > cores && !mpi_yields_when_idle();
  // Node index: number nodes by their lowest world rank (the local leader's rank).
  int leader = info_.rank;
  MPI_Bcast(&leader, 1, MPI_INT, 0, node);
  MPI_Comm_free(&node);
  std::vector<int> leaders(info_.size);
  MPI_Allgather(&leader, 1, MPI_INT, leaders.data(), 1, MPI_INT, control);
  std::vector<int> distinct = leaders;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  info_.num_nodes = int(distinct.size());
  info_.node_index = int(std::lower_bound(distinct.begin(), distinct.end(), leader) - distinct.begin());

  // The node's name as Slurm knows it (SLURMD_NODENAME) when under Slurm, else the host name: blame
  // must name the node an operator drains, and two slurmd on one host are two nodes to Slurm.
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  if (const char* slurm_node = std::getenv("SLURMD_NODENAME"); slurm_node && *slurm_node)
    std::snprintf(host, sizeof(host), "%s", slurm_node);
  info_.hostname = host;
  std::vector<char> all(size_t(info_.size) * 256);
  MPI_Allgather(host, 256, MPI_CHAR, all.data(), 256, MPI_CHAR, control);
  for (int r = 0; r < info_.size; ++r) info_.hostnames.emplace_back(&all[size_t(r) * 256]);
  std::vector<std::string> names = info_.hostnames;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  info_.num_nodes = std::max(info_.num_nodes, int(names.size()));
  MPI_Comm_free(&control);
  if (spinning && info_.local_rank == 0)
    std::fprintf(stderr,
                 "dtbench: warning: %d ranks share %d core(s) on %s and MPI busy-polls while it waits "
                 "(mpi_yield_when_idle is off): timings will be far too slow; set "
                 "OMPI_MCA_mpi_yield_when_idle=1 or run fewer ranks\n",
                 info_.local_size, cores, info_.hostname.c_str());
}

Runtime::~Runtime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

namespace {

std::string mpi_library_version() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, size_t(len));
  auto nl = s.find_first_of("\r\n");
  if (nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ',' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string ucx_version() {
  void* h = dlopen("libucp.so.0", RTLD_LAZY | RTLD_LOCAL);
  if (!h) return "not found";
  using Fn = const char* (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(h, "ucp_get_version_string"));
  std::string v = fn ? fn() : "unknown";
  Dl_info dl;
  if (fn && dladdr(reinterpret_cast<void*>(fn), &dl) && dl.dli_fname) v += std::string(" (") + dl.dli_fname + ")";
  return v;
}

// OpenMPI reads MCA selections from OMPI_MCA_* variables (mpirun --mca sets them too).
std::string mpi_transport() {
  std::ostringstream os;
  const char* keys[] = {"pml", "btl", "osc", "coll"};
  bool any = false;
  for (const char* k : keys) {
    std::string var = std::string("OMPI_MCA_") + k;
    if (const char* v = std::getenv(var.c_str())) {
      os << (any ? ";" : "") << k << "=" << v;
      any = true;
    }
  }
  return any ? os.str() : "default";
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::string nccl_library_description() {
  // Look in the process first (linked build), then ask the dynamic loader (host build).
  void* h = dlopen(nullptr, RTLD_LAZY);
  void* sym = h ? dlsym(h, "ncclGetVersion") : nullptr;
  if (!sym) {
    h = dlopen("libnccl.so.2", RTLD_LAZY | RTLD_LOCAL);
    sym = h ? dlsym(h, "ncclGetVersion") : nullptr;
  }
  if (!sym) return "not found";
  int v = 0;
  reinterpret_cast<int (*)(int*)>(sym)(&v);
  int major = v / 10000, minor = (v / 100) % 100, patch = v % 100;
  std::ostringstream os;
  os << major << "." << minor << "." << patch;
  Dl_info dl;
  if (dladdr(sym, &dl) && dl.dli_fname) os << " (" << dl.dli_fname << ")";
  return os.str();
}

Metadata collect_metadata(const RunInfo& info, const Backend& backend, int argc, char** argv) {
  Metadata md;
  // 2: reports end with the end-of-run line; 3: perf rows carry time_p10/p90/p99_us and time_cv.
  md.emplace_back("schema_version", "3");
  md.emplace_back("start_time", utc_now());
  md.emplace_back("backend", backend.name());
  md.emplace_back("world_size", std::to_string(info.size));
  md.emplace_back("nodes", std::to_string(info.num_nodes));
  md.emplace_back("nccl", nccl_library_description());
  md.emplace_back("mpi", mpi_library_version());
  md.emplace_back("ucx", ucx_version());
  md.emplace_back("mpi_transport", mpi_transport());
  for (auto& kv : backend.metadata()) md.push_back(kv);
  // Unique hostnames in rank order, then the rank -> host map (compact: host:first-last).
  std::vector<std::string> hosts;
  for (auto& h : info.hostnames)
    if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
  std::ostringstream hs, map;
  for (size_t i = 0; i < hosts.size(); ++i) hs << (i ? ";" : "") << hosts[i];
  for (int r = 0; r < info.size;) {
    int e = r;
    while (e + 1 < info.size && info.hostnames[size_t(e) + 1] == info.hostnames[size_t(r)]) ++e;
    map << (r ? ";" : "") << info.hostnames[size_t(r)] << ":" << r << "-" << e;
    r = e + 1;
  }
  md.emplace_back("hosts", hs.str());
  md.emplace_back("rank_map", map.str());
  md.emplace_back("slurm_job_id", env_or("SLURM_JOB_ID", "none"));
  md.emplace_back("git_rev", DTBENCH_GIT_REV);
  std::ostringstream cmd;
  for (int i = 0; i < argc; ++i) cmd << (i ? " " : "") << argv[i];
  md.emplace_back("command", cmd.str());
  return md;
}

}  // namespace dtbench
