// NCCL backend: device memory, NCCL collectives on a communication stream that waits for the compute
// stream (so simulated compute and collectives overlap as in training), kernels for fills and
// simulated compute. Built only when CUDA and NCCL are found (see Makefile); backend_nccl_stub.cpp
// stands in otherwise.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <string>

#include "../../kernels/kernels.h"
#include "core/backend.h"
#include "core/comm_mpi.h"
#include "core/error.h"
#include "core/runtime.h"

namespace dtbench {
namespace {

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw RuntimeError(std::string(what) + ": " + cudaGetErrorString(e));
}

void nccl_check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw RuntimeError(std::string(what) + ": " + ncclGetErrorString(r));
}

ncclDataType_t nccl_type(DType dt) {
  switch (dt) {
    case DType::f32: return ncclFloat32;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
  }
  return ncclFloat32;
}

class NcclComm;

class NcclRequest : public Request {
 public:
  NcclRequest(ncclComm_t comm, cudaStream_t stream, void* scratch) : comm_(comm), scratch_(scratch) {
    cuda_check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventRecord(done_, stream), "cudaEventRecord");
  }
  ~NcclRequest() override {
    cudaEventDestroy(done_);
    if (scratch_) cudaFree(scratch_);
  }
  bool test() override { return poll(); }

 protected:
  void do_wait() override {
    while (!poll()) {
    }
  }

 private:
  bool poll() {
    cudaError_t e = cudaEventQuery(done_);
    if (e == cudaSuccess) return true;
    if (e != cudaErrorNotReady) cuda_check(e, "collective");
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    nccl_check(async, "NCCL async error");
    return false;
  }
  ncclComm_t comm_;
  cudaEvent_t done_;
  void* scratch_;
};

class NcclComm : public Comm {
 public:
  // Collectives run on `stream` (the communication stream) after the work queued so far on
  // `compute` (fills, simulated compute) so they see its results while later compute can overlap.
  NcclComm(ncclComm_t comm, MPI_Comm mpi, cudaStream_t compute, cudaStream_t stream, const std::string& label)
      : comm_(comm), mpi_(mpi), compute_(compute), stream_(stream) {
    int rank, size;
    MPI_Comm_rank(mpi, &rank);
    MPI_Comm_size(mpi, &size);
    init_identity(rank, size, world_ranks_of(mpi), label, 0);
    cuda_check(cudaMalloc(&barrier_word_, sizeof(float)), "cudaMalloc");
    cuda_check(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming), "cudaEventCreate");
  }
  ~NcclComm() override {
    cudaEventDestroy(compute_done_);
    cudaFree(barrier_word_);
    ncclCommDestroy(comm_);
    MPI_Comm_free(&mpi_);
  }

 protected:
  void do_run(const CollArgs& a) override {
    void* scratch = enqueue(a);
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    if (scratch) cudaFree(scratch);
  }
  RequestPtr do_start(const CollArgs& a) override {
    void* scratch = enqueue(a);
    return std::make_unique<NcclRequest>(comm_, stream_, scratch);
  }
  std::unique_ptr<Comm> do_split(int color, int key) override {
    MPI_Comm child_mpi;
    MPI_Comm_split(mpi_, color, key, &child_mpi);
    ncclComm_t child;
    nccl_check(ncclCommSplit(comm_, color, key, &child, nullptr), "ncclCommSplit");
    return std::make_unique<NcclComm>(child, child_mpi, compute_, stream_, "");
  }

 private:
  // Queues the collective on the stream; returns fp32 scratch to free after completion (or null).
  void* enqueue(const CollArgs& a) {
    cuda_check(cudaEventRecord(compute_done_, compute_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(stream_, compute_done_, 0), "cudaStreamWaitEvent");
    ncclDataType_t t = nccl_type(a.dtype);
    ncclRedOp_t op = a.op == RedOp::avg ? ncclAvg : ncclSum;
    size_t es = dtype_size(a.dtype);
    int n = size(), me = rank();
    bool widen = a.accumulate_fp32 && a.dtype != DType::f32 &&
                 (a.kind == CollKind::all_reduce || a.kind == CollKind::reduce_scatter);
    if (widen) return enqueue_widened(a, op);
    switch (a.kind) {
      case CollKind::all_reduce:
        nccl_check(ncclAllReduce(a.send, a.recv, a.count, t, op, comm_, stream_), "ncclAllReduce");
        break;
      case CollKind::reduce_scatter:
        nccl_check(ncclReduceScatter(a.send, a.recv, a.count, t, op, comm_, stream_), "ncclReduceScatter");
        break;
      case CollKind::all_gather:
        nccl_check(ncclAllGather(a.send, a.recv, a.count, t, comm_, stream_), "ncclAllGather");
        break;
      case CollKind::all_to_all:
      case CollKind::all_to_allv: {
        bool v = a.kind == CollKind::all_to_allv;
        nccl_check(ncclGroupStart(), "ncclGroupStart");
        for (int p = 0; p < n; ++p) {
          size_t sc = v ? a.send_counts[size_t(p)] : a.count, so = v ? a.send_displs[size_t(p)] : a.count * size_t(p);
          size_t rc = v ? a.recv_counts[size_t(p)] : a.count, ro = v ? a.recv_displs[size_t(p)] : a.count * size_t(p);
          if (sc) nccl_check(ncclSend(static_cast<const char*>(a.send) + so * es, sc, t, p, comm_, stream_), "ncclSend");
          if (rc) nccl_check(ncclRecv(static_cast<char*>(a.recv) + ro * es, rc, t, p, comm_, stream_), "ncclRecv");
        }
        nccl_check(ncclGroupEnd(), "ncclGroupEnd");
        break;
      }
      case CollKind::broadcast:
        nccl_check(ncclBroadcast(a.send ? a.send : a.recv, a.recv, a.count, t, a.root, comm_, stream_), "ncclBroadcast");
        break;
      case CollKind::send_recv:
        nccl_check(ncclGroupStart(), "ncclGroupStart");
        for (const PeerTransfer& x : a.transfers) {
          if (x.direction == PeerTransfer::send)
            nccl_check(ncclSend(x.buf, x.count, t, x.peer, comm_, stream_), "ncclSend");
          else
            nccl_check(ncclRecv(x.buf, x.count, t, x.peer, comm_, stream_), "ncclRecv");
        }
        nccl_check(ncclGroupEnd(), "ncclGroupEnd");
        break;
      case CollKind::barrier:
        nccl_check(ncclAllReduce(barrier_word_, barrier_word_, 1, ncclFloat32, ncclSum, comm_, stream_), "barrier");
        break;
    }
    (void)me;
    return nullptr;
  }

  // 16-bit data reduced in fp32: widen, reduce in fp32, narrow once.
  void* enqueue_widened(const CollArgs& a, ncclRedOp_t op) {
    bool rs = a.kind == CollKind::reduce_scatter;
    size_t in_count = rs ? a.count * size_t(size()) : a.count;
    float* scratch = nullptr;
    cuda_check(cudaMalloc(&scratch, (in_count + a.count) * sizeof(float)), "cudaMalloc");
    float* out = scratch + in_count;
    kernels::convert(a.send, dtype_code(a.dtype), scratch, 0, in_count, 1.0f, stream_);
    if (rs) nccl_check(ncclReduceScatter(scratch, out, a.count, ncclFloat32, op, comm_, stream_), "ncclReduceScatter");
    else nccl_check(ncclAllReduce(scratch, out, a.count, ncclFloat32, op, comm_, stream_), "ncclAllReduce");
    kernels::convert(out, 0, a.recv, dtype_code(a.dtype), a.count, 1.0f, stream_);
    return scratch;
  }

  ncclComm_t comm_;
  MPI_Comm mpi_;
  cudaStream_t compute_, stream_;
  cudaEvent_t compute_done_ = nullptr;
  void* barrier_word_ = nullptr;
};

class NcclBackend : public Backend {
 public:
  explicit NcclBackend(const RunInfo& info) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
      throw NoDeviceError(std::string("no CUDA device (cudaGetDeviceCount: ") +
                          (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")");
    // One rank per GPU. With one visible device (e.g. srun --gpu-bind), it is this rank's GPU.
    if (count > 1 && info.local_size > count)
      throw NoDeviceError("node " + info.hostname + " runs " + std::to_string(info.local_size) + " ranks but has " +
                          std::to_string(count) + " GPUs; start one rank per GPU");
    device_ = count == 1 ? 0 : info.local_rank;
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_check(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_check(cudaStreamCreateWithFlags(&staging_stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_check(cudaEventCreateWithFlags(&sync_event_, cudaEventDisableTiming), "cudaEventCreate");
    for (cudaEvent_t& e : staging_point_) cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    ncclUniqueId id;
    if (info.rank == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclComm_t comm;
    nccl_check(ncclCommInitRank(&comm, info.size, id, info.rank), "ncclCommInitRank");
    MPI_Comm mpi;
    MPI_Comm_dup(MPI_COMM_WORLD, &mpi);
    world_ = std::make_unique<NcclComm>(comm, mpi, stream_, comm_stream_, "world");
  }
  ~NcclBackend() override {
    world_.reset();
    cudaEventDestroy(sync_event_);
    for (cudaEvent_t e : staging_point_) cudaEventDestroy(e);
    cudaStreamDestroy(staging_stream_);
    cudaStreamDestroy(comm_stream_);
    cudaStreamDestroy(stream_);
  }
  const char* name() const override { return "nccl"; }
  MemSpace mem_space() const override { return MemSpace::device; }
  Comm& world() override { return *world_; }

  void fill_pattern(Buffer& buf, size_t first, size_t n, const PatternSpec& s) override {
    kernels::fill_pattern(buf.at(first), dtype_code(buf.dtype()), n, s.kind == PatternSpec::reduce ? 0 : 1, s.seed,
                          s.rank, s.index_base, s.group_size, stream_);
    cuda_check(cudaStreamSynchronize(stream_), "fill");
  }
  void busy_compute(double seconds) override { kernels::busy_wait(seconds, stream_); }
  void synchronize() override {
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    cuda_check(cudaStreamSynchronize(comm_stream_), "cudaStreamSynchronize");
  }

  void* alloc_host_staging(size_t bytes) override {
    void* p = nullptr;
    cuda_check(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault), "cudaHostAlloc (pinned staging)");
    return p;
  }
  void free_host_staging(void* p) override { cudaFreeHost(p); }
  void begin_staging() override {
    // The snapshot point: copies queued later (from any thread) wait for the work queued so far on
    // both streams, then run beside later work.
    cuda_check(cudaEventRecord(staging_point_[0], stream_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(staging_stream_, staging_point_[0], 0), "cudaStreamWaitEvent");
    cuda_check(cudaEventRecord(staging_point_[1], comm_stream_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(staging_stream_, staging_point_[1], 0), "cudaStreamWaitEvent");
  }
  void stage_to_host(const Buffer& buf, size_t first, size_t n, void* dst) override {
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");  // the current device is per thread
    cuda_check(cudaMemcpyAsync(dst, buf.at(first), n * dtype_size(buf.dtype()), cudaMemcpyDeviceToHost, staging_stream_),
               "cudaMemcpyAsync (staging)");
  }
  void wait_staging() override {
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
    cuda_check(cudaStreamSynchronize(staging_stream_), "staging copy");
  }

  double measure(const std::function<void()>& work) override {
    cudaEvent_t start, stop;
    cuda_check(cudaEventCreate(&start), "cudaEventCreate");
    cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
    cuda_check(cudaEventRecord(start, stream_), "cudaEventRecord");
    work();
    // The measured work may end on the communication stream: join it before the stop event.
    cuda_check(cudaEventRecord(sync_event_, comm_stream_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(stream_, sync_event_, 0), "cudaStreamWaitEvent");
    cuda_check(cudaEventRecord(stop, stream_), "cudaEventRecord");
    cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return double(ms) * 1e-3;
  }

  std::vector<std::pair<std::string, std::string>> metadata() const override {
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, device_);
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    char bus[32] = {0};
    cudaDeviceGetPCIBusId(bus, sizeof(bus), device_);
    return {{"gpu", prop.name},
            {"gpu_bus_rank0", bus},
            {"cuda_runtime", std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10)},
            {"cuda_driver", std::to_string(drv / 1000) + "." + std::to_string((drv % 1000) / 10)}};
  }

 private:
  int device_ = 0;
  cudaStream_t stream_ = nullptr;          // compute: fills, simulated compute, conversions
  cudaStream_t comm_stream_ = nullptr;     // NCCL collectives
  cudaStream_t staging_stream_ = nullptr;  // device-to-host staging copies
  cudaEvent_t sync_event_ = nullptr;
  cudaEvent_t staging_point_[2] = {nullptr, nullptr};  // the snapshot point on the compute and comm streams
  std::unique_ptr<Comm> world_;
};

}  // namespace

std::unique_ptr<Backend> make_nccl_backend(const RunInfo& info) { return std::make_unique<NcclBackend>(info); }

bool cuda_device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

}  // namespace dtbench
