#include "core/comm_mpi.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace dtbench {
namespace {

template <uint16_t (*ToBits)(float), float (*FromBits)(uint16_t)>
void sum16(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = ToBits(FromBits(a[i]) + FromBits(b[i]));
}

MPI_Op sum_op(DType dt) {
  static MPI_Op bf16_op = MPI_OP_NULL, f16_op = MPI_OP_NULL;
  if (dt == DType::f32) return MPI_SUM;
  MPI_Op& op = dt == DType::bf16 ? bf16_op : f16_op;
  if (op == MPI_OP_NULL) {
    MPI_User_function* fn = dt == DType::bf16 ? &sum16<f32_to_bf16, bf16_to_f32> : &sum16<f32_to_f16, f16_to_f32>;
    MPI_Op_create(fn, /*commute=*/1, &op);
  }
  return op;
}

// The tag of send_recv's messages (collectives do not use tags, so any fixed value will do).
constexpr int kSendRecvTag = 7100;

MPI_Datatype mpi_type(DType dt) { return dt == DType::f32 ? MPI_FLOAT : MPI_UINT16_T; }

int as_int(size_t n, const char* what) {
  if (n > size_t(INT_MAX)) throw InputError(std::string(what) + ": count " + std::to_string(n) + " exceeds MPI's int range");
  return int(n);
}

void divide_in_place(DType dt, void* p, size_t n, int by) {
  if (dt == DType::f32) {
    float* f = static_cast<float*>(p);
    // Division, not multiplication by 1/n: exact whenever the quotient is representable.
    for (size_t i = 0; i < n; ++i) f[i] = f[i] / float(by);
    return;
  }
  for (size_t i = 0; i < n; ++i) store_elem(dt, p, i, load_elem(dt, p, i) / float(by));
}

// One collective prepared for MPI: the call itself (blocking or not) and the local work that must
// follow completion (AVG division, moving an in-place reduce-scatter result, narrowing from fp32).
struct MpiCollective {
  std::function<void(MPI_Request*)> issue;  // nullptr request = blocking call
  std::function<void()> finish;
  std::vector<float> wide_send, wide_recv;  // fp32 staging for accumulate_fp32
  std::vector<unsigned char> in_place_output;  // in-place reduce-scatter: the own shard's result
  std::vector<MPI_Request> transfer_requests;  // send_recv: one per transfer
};

// Recycles MpiCollective objects of one communicator, so the staging vectors (in-place
// reduce-scatter shard, fp32 widening) keep their capacity between calls: no allocation, page faults
// or zero-fill per iteration. Holds at most kKeep idle objects (the staging of the largest recent call).
struct CollectivePool {
  static constexpr size_t kKeep = 2;
  std::mutex mu;
  std::vector<std::unique_ptr<MpiCollective>> idle;
  std::unique_ptr<MpiCollective> take() {
    std::lock_guard<std::mutex> g(mu);
    if (idle.empty()) return std::make_unique<MpiCollective>();
    auto c = std::move(idle.back());
    idle.pop_back();
    return c;
  }
  void give(std::unique_ptr<MpiCollective> c) {
    if (!c) return;
    c->issue = nullptr;
    c->finish = nullptr;
    std::lock_guard<std::mutex> g(mu);
    if (idle.size() < kKeep) idle.push_back(std::move(c));
  }
};

class MpiComm;

class MpiRequest : public Request {
 public:
  MpiRequest(std::unique_ptr<MpiCollective> c, std::shared_ptr<CollectivePool> pool)
      : coll_(std::move(c)), pool_(std::move(pool)) {
    coll_->issue(&req_);
  }
  ~MpiRequest() override {
    if (done_) pool_->give(std::move(coll_));  // an abandoned request keeps its buffers (MPI may still use them)
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    MPI_Test(&req_, &flag, MPI_STATUS_IGNORE);
    if (flag) complete();
    return done_;
  }

 protected:
  void do_wait() override {
    if (done_) return;
    MPI_Wait(&req_, MPI_STATUS_IGNORE);
    complete();
  }

 private:
  void complete() {
    done_ = true;
    if (coll_->finish) coll_->finish();
  }
  std::unique_ptr<MpiCollective> coll_;
  std::shared_ptr<CollectivePool> pool_;
  MPI_Request req_ = MPI_REQUEST_NULL;
  bool done_ = false;
};

class MpiComm : public Comm {
 public:
  MpiComm(MPI_Comm comm, bool owned, const std::string& label) : comm_(comm), owned_(owned) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    init_identity(rank, size, world_ranks_of(comm), label, 0);
  }
  ~MpiComm() override {
    if (owned_) MPI_Comm_free(&comm_);
  }

 protected:
  void do_run(const CollArgs& a) override {
    auto c = prepare(a);
    c->issue(nullptr);
    if (c->finish) c->finish();
    pool_->give(std::move(c));
  }
  RequestPtr do_start(const CollArgs& a) override { return std::make_unique<MpiRequest>(prepare(a), pool_); }
  std::unique_ptr<Comm> do_split(int color, int key) override {
    MPI_Comm child;
    MPI_Comm_split(comm_, color, key, &child);
    return std::make_unique<MpiComm>(child, true, "");
  }

 private:
  std::unique_ptr<MpiCollective> prepare(const CollArgs& a) {
    auto c = pool_->take();
    MPI_Comm comm = comm_;
    int n = size(), me = rank();
    MPI_Datatype type = mpi_type(a.dtype);
    size_t es = dtype_size(a.dtype);
    bool widen = a.accumulate_fp32 && a.dtype != DType::f32 &&
                 (a.kind == CollKind::all_reduce || a.kind == CollKind::reduce_scatter);
    switch (a.kind) {
      case CollKind::all_reduce: {
        int count = as_int(a.count, "all_reduce");
        const void* send = a.send == a.recv ? MPI_IN_PLACE : a.send;
        void* recv = a.recv;
        MPI_Datatype t = type;
        MPI_Op op = sum_op(a.dtype);
        if (widen) {
          c->wide_recv.resize(a.count);
          for (size_t i = 0; i < a.count; ++i) c->wide_recv[i] = load_elem(a.dtype, a.send, i);
          send = MPI_IN_PLACE, recv = c->wide_recv.data(), t = MPI_FLOAT, op = MPI_SUM;
        }
        c->issue = [=](MPI_Request* r) {
          if (r) MPI_Iallreduce(send, recv, count, t, op, comm, r);
          else MPI_Allreduce(send, recv, count, t, op, comm);
        };
        c->finish = finisher(a, c.get(), a.recv, a.count, widen, n);
        break;
      }
      case CollKind::reduce_scatter: {
        int count = as_int(a.count, "reduce_scatter");
        bool in_place = static_cast<const char*>(a.send) + size_t(me) * a.count * es == a.recv;
        const void* send = a.send;
        void* recv = a.recv;
        if (in_place && !widen) {
          // NCCL's in-place reduce-scatter writes only the own shard; MPI_IN_PLACE would leave the
          // result at the start of the buffer and may scribble over other shards, which DistOpt
          // callers (Megatron's grad_data rule) must find untouched. MPI forbids the output to alias
          // the input, so reduce into a shard-sized temporary and copy it into place afterwards.
          c->in_place_output.resize(a.count * es);
          recv = c->in_place_output.data();
        }
        MPI_Datatype t = type;
        MPI_Op op = sum_op(a.dtype);
        if (widen) {
          size_t total = a.count * size_t(n);
          c->wide_send.resize(total);
          c->wide_recv.resize(a.count);
          for (size_t i = 0; i < total; ++i) c->wide_send[i] = load_elem(a.dtype, a.send, i);
          send = c->wide_send.data(), recv = c->wide_recv.data(), t = MPI_FLOAT, op = MPI_SUM;
        }
        c->issue = [=](MPI_Request* r) {
          if (r) MPI_Ireduce_scatter_block(send, recv, count, t, op, comm, r);
          else MPI_Reduce_scatter_block(send, recv, count, t, op, comm);
        };
        auto tail = finisher(a, c.get(), a.recv, a.count, widen, n);
        if (in_place && !widen) {
          MpiCollective* self = c.get();
          void* dst = a.recv;
          c->finish = [self, dst, tail] {
            std::memcpy(dst, self->in_place_output.data(), self->in_place_output.size());
            if (tail) tail();
          };
        } else {
          c->finish = tail;
        }
        break;
      }
      case CollKind::all_gather: {
        int count = as_int(a.count, "all_gather");
        bool in_place = static_cast<const char*>(a.recv) + size_t(me) * a.count * es == a.send;
        const void* send = in_place ? MPI_IN_PLACE : a.send;
        void* recv = a.recv;
        c->issue = [=](MPI_Request* r) {
          if (r) MPI_Iallgather(send, count, type, recv, count, type, comm, r);
          else MPI_Allgather(send, count, type, recv, count, type, comm);
        };
        break;
      }
      case CollKind::all_to_all: {
        int count = as_int(a.count, "all_to_all");
        const void* send = a.send == a.recv ? MPI_IN_PLACE : a.send;
        void* recv = a.recv;
        c->issue = [=](MPI_Request* r) {
          if (r) MPI_Ialltoall(send, count, type, recv, count, type, comm, r);
          else MPI_Alltoall(send, count, type, recv, count, type, comm);
        };
        break;
      }
      case CollKind::all_to_allv: {
        auto to_int = [](const std::vector<size_t>& v) {
          std::vector<int> out(v.size());
          for (size_t i = 0; i < v.size(); ++i) out[i] = as_int(v[i], "all_to_allv");
          return out;
        };
        auto sc = std::make_shared<std::vector<int>>(to_int(a.send_counts));
        auto sd = std::make_shared<std::vector<int>>(to_int(a.send_displs));
        auto rc = std::make_shared<std::vector<int>>(to_int(a.recv_counts));
        auto rd = std::make_shared<std::vector<int>>(to_int(a.recv_displs));
        const void* send = a.send;
        void* recv = a.recv;
        c->issue = [=](MPI_Request* r) {
          if (r) MPI_Ialltoallv(send, sc->data(), sd->data(), type, recv, rc->data(), rd->data(), type, comm, r);
          else MPI_Alltoallv(send, sc->data(), sd->data(), type, recv, rc->data(), rd->data(), type, comm);
        };
        break;
      }
      case CollKind::broadcast: {
        int count = as_int(a.count, "broadcast");
        void* buf = a.recv;
        int root = a.root;
        // Out of place (NCCL semantics): the root's input is copied into its output first.
        if (me == root && a.send && a.send != a.recv) std::memcpy(buf, a.send, a.count * es);
        c->issue = [=](MPI_Request* r) {
          if (r) MPI_Ibcast(buf, count, type, root, comm, r);
          else MPI_Bcast(buf, count, type, root, comm);
        };
        break;
      }
      case CollKind::barrier:
        c->issue = [=](MPI_Request* r) {
          if (r) MPI_Ibarrier(comm, r);
          else MPI_Barrier(comm);
        };
        break;
      case CollKind::send_recv: {
        // Receives are posted before sends so that a rendezvous send never waits for its match
        // to be posted; all complete together, as an NCCL group does.
        std::vector<PeerTransfer> transfers = a.transfers;
        std::stable_partition(transfers.begin(), transfers.end(),
                              [](const PeerTransfer& t) { return t.direction == PeerTransfer::recv; });
        for (const PeerTransfer& t : transfers) as_int(t.count, "send_recv");
        MpiCollective* self = c.get();
        c->issue = [=](MPI_Request*) {
          std::vector<MPI_Request>& reqs = self->transfer_requests;
          reqs.assign(transfers.size(), MPI_REQUEST_NULL);
          for (size_t i = 0; i < transfers.size(); ++i) {
            const PeerTransfer& t = transfers[i];
            if (t.direction == PeerTransfer::recv)
              MPI_Irecv(t.buf, int(t.count), type, t.peer, kSendRecvTag, comm, &reqs[i]);
            else
              MPI_Isend(t.buf, int(t.count), type, t.peer, kSendRecvTag, comm, &reqs[i]);
          }
          MPI_Waitall(int(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
        };
        break;
      }
    }
    return c;
  }

  // Local work after a reduction completes: narrow from fp32 staging and apply AVG.
  static std::function<void()> finisher(const CollArgs& a, MpiCollective* c, void* out, size_t n, bool widen,
                                        int size) {
    bool avg = a.op == RedOp::avg;
    if (!widen && !avg) return nullptr;
    DType dt = a.dtype;
    return [=] {
      if (widen) {
        for (size_t i = 0; i < n; ++i) {
          float v = c->wide_recv[i];
          store_elem(dt, out, i, avg ? v / float(size) : v);
        }
      } else {
        divide_in_place(dt, out, n, size);
      }
    };
  }

  MPI_Comm comm_;
  bool owned_;
  std::shared_ptr<CollectivePool> pool_ = std::make_shared<CollectivePool>();
};

}  // namespace

std::vector<int> world_ranks_of(MPI_Comm comm) {
  int size;
  MPI_Comm_size(comm, &size);
  MPI_Group group, world;
  MPI_Comm_group(comm, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> local(static_cast<size_t>(size)), global(static_cast<size_t>(size));
  for (int i = 0; i < size; ++i) local[size_t(i)] = i;
  MPI_Group_translate_ranks(group, size, local.data(), world, global.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return global;
}

std::unique_ptr<Comm> make_mpi_comm(MPI_Comm comm, const std::string& label) {
  return std::make_unique<MpiComm>(comm, comm != MPI_COMM_WORLD, label);
}

}  // namespace dtbench
