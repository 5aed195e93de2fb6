#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/backend.h"
#include "core/comm_mpi.h"
#include "core/error.h"
#include "core/pattern_fill.h"

namespace dtbench {
namespace {

class HostBackend : public Backend {
 public:
  HostBackend() : world_(make_mpi_comm(MPI_COMM_WORLD, "world")) {}
  const char* name() const override { return "host"; }
  MemSpace mem_space() const override { return MemSpace::host; }
  Comm& world() override { return *world_; }

  void fill_pattern(Buffer& buf, size_t first, size_t n, const PatternSpec& s) override {
    fill_pattern_host(buf.dtype(), buf.at(first), n, s);
  }

  void busy_compute(double seconds) override {
    // A spin, not a sleep: simulated compute must occupy the core the way a kernel occupies the GPU.
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
    }
  }

  void synchronize() override {}

  double measure(const std::function<void()>& work) override {
    double t0 = MPI_Wtime();
    work();
    return MPI_Wtime() - t0;
  }

  void* alloc_host_staging(size_t bytes) override {
    size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(4096, rounded ? rounded : 4096);
    if (!p) throw RuntimeError("out of host memory for a staging buffer of " + std::to_string(bytes) + " bytes");
    std::memset(p, 0, rounded);  // fault the pages in now, not inside the blocking copy
    return p;
  }
  void free_host_staging(void* p) override { std::free(p); }
  void begin_staging() override {}
  void stage_to_host(const Buffer& buf, size_t first, size_t n, void* dst) override { buf.copy_to_host(dst, first, n); }
  void wait_staging() override {}

  std::vector<std::pair<std::string, std::string>> metadata() const override {
    return {{"gpu", "none"}, {"cuda_runtime", "none"}, {"cuda_driver", "none"}};
  }

 private:
  std::unique_ptr<Comm> world_;
};

}  // namespace

void fill_pattern_host(DType dt, void* p, size_t n, const PatternSpec& s) {
  if (s.kind == PatternSpec::reduce) fill_sum_shares(dt, p, n, s.seed, s.rank, s.group_size, s.index_base);
  else fill_moved_values(dt, p, n, s.seed, s.rank, s.index_base);
}

std::unique_ptr<Backend> make_host_backend() { return std::make_unique<HostBackend>(); }

}  // namespace dtbench
