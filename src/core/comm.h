#pragma once
// The communicator every suite is written against. Two backends implement it: comm_mpi (host
// memory, MPI collectives) and comm_nccl (device memory, NCCL on one stream). Conventions follow
// NCCL so that the same suite code is correct on both:
//  * counts are in elements; pointers are memory of the backend's space (Buffer::at);
//  * in place: all_reduce send == recv; reduce_scatter recv == send + rank*recvcount;
//    all_gather send == recv + rank*sendcount; all_to_all has no in-place form (as in NCCL);
//  * send_recv is a group of point-to-point transfers issued together and completed together
//    (ncclGroupStart, ncclSend/ncclRecv, ncclGroupEnd; MPI_Isend/MPI_Irecv, MPI_Waitall). Every
//    rank of the communicator calls it, with no transfers when it sits a round out, so that the
//    watchdog's call numbers stay in step; it has only the blocking form.
// Blocking calls and the wait() of non-blocking ones are watched by the watchdog (runtime.h).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/dtype.h"

namespace dtbench {

enum class RedOp { sum, avg };
const char* redop_name(RedOp op);

enum class CollKind { all_reduce, reduce_scatter, all_gather, all_to_all, all_to_allv, broadcast, barrier, send_recv };
const char* coll_name(CollKind kind);

// One point-to-point transfer of a send_recv: `count` elements to or from rank `peer` of the
// communicator. A send reads `buf`, a receive writes it.
struct PeerTransfer {
  enum Direction { send, recv } direction = send;
  int peer = 0;
  void* buf = nullptr;
  size_t count = 0;
};

struct CollArgs {
  CollKind kind = CollKind::all_reduce;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;  // all_reduce/broadcast: elements; reduce_scatter: per-rank recv count;
                     // all_gather: per-rank send count; all_to_all: elements per peer
  DType dtype = DType::f32;
  RedOp op = RedOp::sum;
  int root = 0;
  // 16-bit sums: widen to fp32, reduce in fp32, round once (instead of rounding after every add).
  bool accumulate_fp32 = false;
  // all_to_allv only, elements per peer (size = comm size).
  std::vector<size_t> send_counts, send_displs, recv_counts, recv_displs;
  // send_recv only: the transfers of this rank (at most one send and one receive per peer).
  std::vector<PeerTransfer> transfers;
};

// A started collective. wait() blocks (watched) until it completes; test() polls.
class Request {
 public:
  virtual ~Request() = default;
  void wait();
  virtual bool test() = 0;

 protected:
  friend class Comm;
  virtual void do_wait() = 0;
  class Comm* comm_ = nullptr;
  CollKind kind_ = CollKind::barrier;
  uint64_t seq_ = 0;
};
using RequestPtr = std::unique_ptr<Request>;

class Comm {
 public:
  virtual ~Comm() = default;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Global (world) ranks of this communicator's members, in rank order.
  const std::vector<int>& members() const { return members_; }
  const std::string& label() const { return label_; }

  void run(const CollArgs& args);        // blocking
  RequestPtr start(const CollArgs& args);  // non-blocking; complete with wait()

  // Convenience forms.
  void all_reduce(const void* send, void* recv, size_t count, DType dt, RedOp op = RedOp::sum);
  void reduce_scatter(const void* send, void* recv, size_t recvcount, DType dt, RedOp op = RedOp::sum);
  void all_gather(const void* send, void* recv, size_t sendcount, DType dt);
  void all_to_all(const void* send, void* recv, size_t count, DType dt);
  void broadcast(void* buf, size_t count, DType dt, int root);
  void barrier();

  // Collective over this communicator: ranks with the same color form a new communicator,
  // ordered by key (MPI_Comm_split / ncclCommSplit). `name` labels it in watchdog messages.
  std::unique_ptr<Comm> split(int color, int key, const std::string& name);

  // Number of collectives this rank has entered on this communicator.
  uint64_t calls() const { return seq_; }

 protected:
  virtual void do_run(const CollArgs& args) = 0;
  virtual RequestPtr do_start(const CollArgs& args) = 0;
  virtual std::unique_ptr<Comm> do_split(int color, int key) = 0;
  void init_identity(int rank, int size, std::vector<int> members, std::string label, int id);

 private:
  friend class Request;
  bool should_skip(CollKind kind);  // test-only: --test-skip-collective
  int rank_ = 0, size_ = 1, id_ = 0;
  std::vector<int> members_;
  std::string label_;
  uint64_t seq_ = 0;
  int splits_ = 0;
};

// Validates a collective's arguments against the communicator (throws InputError).
void check_coll_args(const CollArgs& args, int comm_size);

// nccl-tests bandwidth conventions: S = bytes the op is quoted with, busbw factor.
size_t coll_quoted_bytes(CollKind kind, size_t count, DType dt, int nranks);
double coll_busbw_factor(CollKind kind, int nranks);

}  // namespace dtbench
