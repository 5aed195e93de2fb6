#include "core/comm.h"

#include <csignal>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "core/error.h"
#include "core/test_hooks.h"
#include "core/watchdog.h"

namespace dtbench {

const char* redop_name(RedOp op) { return op == RedOp::sum ? "sum" : "avg"; }

const char* coll_name(CollKind kind) {
  switch (kind) {
    case CollKind::all_reduce: return "all_reduce";
    case CollKind::reduce_scatter: return "reduce_scatter";
    case CollKind::all_gather: return "all_gather";
    case CollKind::all_to_all: return "all_to_all";
    case CollKind::all_to_allv: return "all_to_allv";
    case CollKind::broadcast: return "broadcast";
    case CollKind::barrier: return "barrier";
    case CollKind::send_recv: return "send_recv";
  }
  return "?";
}

void check_coll_args(const CollArgs& a, int n) {
  if (a.kind == CollKind::broadcast && (a.root < 0 || a.root >= n))
    throw InputError(std::string("broadcast root ") + std::to_string(a.root) + " is outside the communicator");
  if (a.kind == CollKind::all_to_allv) {
    size_t un = size_t(n);
    if (a.send_counts.size() != un || a.send_displs.size() != un || a.recv_counts.size() != un ||
        a.recv_displs.size() != un)
      throw InputError("all_to_allv: counts/displacements must have one entry per rank");
  }
  if (a.kind == CollKind::send_recv) {
    // Two sends (or receives) to one peer in one group would be matched in issue order by MPI but
    // not necessarily by NCCL: refuse them rather than depend on it.
    std::vector<int> seen(2 * size_t(n), 0);
    for (const PeerTransfer& t : a.transfers) {
      if (t.peer < 0 || t.peer >= n)
        throw InputError("send_recv: peer " + std::to_string(t.peer) + " is outside the communicator");
      if (seen[2 * size_t(t.peer) + (t.direction == PeerTransfer::send ? 0 : 1)]++)
        throw InputError("send_recv: two transfers in one direction to peer " + std::to_string(t.peer));
    }
  }
}

size_t coll_quoted_bytes(CollKind kind, size_t count, DType dt, int nranks) {
  size_t es = dtype_size(dt);
  switch (kind) {
    case CollKind::reduce_scatter:
    case CollKind::all_gather:
    case CollKind::all_to_all: return count * es * size_t(nranks);
    default: return count * es;
  }
}

double coll_busbw_factor(CollKind kind, int n) {
  switch (kind) {
    case CollKind::all_reduce: return n > 0 ? 2.0 * (n - 1) / n : 0;
    case CollKind::reduce_scatter:
    case CollKind::all_gather:
    case CollKind::all_to_all:
    case CollKind::all_to_allv: return n > 0 ? double(n - 1) / n : 0;
    default: return 1.0;
  }
}

void Comm::init_identity(int rank, int size, std::vector<int> members, std::string label, int id) {
  rank_ = rank;
  size_ = size;
  members_ = std::move(members);
  label_ = std::move(label);
  id_ = id;
}

bool Comm::should_skip(CollKind kind) {
  const TestHooks& hooks = test_hooks();
  if (hooks.skip_world_rank < 0 || id_ != 0 || members_[rank_] != hooks.skip_world_rank) return false;
  if (seq_ != hooks.skip_call) return false;
  std::fprintf(stderr, "dtbench: test hook: world rank %d skips %s (call #%llu)\n", hooks.skip_world_rank,
               coll_name(kind), static_cast<unsigned long long>(seq_));
  std::fflush(stderr);
  // Entering its next collective at once would race the others' watchdogs with its own (whose report
  // would name the others as missing); a rank that stays away is the hang the watchdog must name.
  if (hooks.skip_hold_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(hooks.skip_hold_s));
  return true;
}

namespace {

// Test hooks (--test-kill-collective, --test-slow-rank). Collectives counted over every communicator.
uint64_t g_collectives_entered = 0;

void maybe_kill(const Comm& c, CollKind kind) {
  const TestHooks& hooks = test_hooks();
  uint64_t n = g_collectives_entered++;
  if (hooks.kill_world_rank < 0 || c.members()[size_t(c.rank())] != hooks.kill_world_rank || n != hooks.kill_call)
    return;
  std::fprintf(stderr, "dtbench: test hook: world rank %d killed (SIGKILL) in %s on communicator '%s' (collective #%llu)\n",
               hooks.kill_world_rank, coll_name(kind), c.label().c_str(), static_cast<unsigned long long>(n));
  std::fflush(stderr);
  std::raise(SIGKILL);
}

bool slow_here(const Comm& c, CollKind kind) {  // barriers (timing fences) keep their pace
  const TestHooks& hooks = test_hooks();
  return hooks.slow_world_rank >= 0 && hooks.slow_factor > 1 && kind != CollKind::barrier &&
         c.members()[size_t(c.rank())] == hooks.slow_world_rank;
}

void slow_down(std::chrono::steady_clock::duration took) {
  std::this_thread::sleep_for(std::chrono::duration<double>(took) * (test_hooks().slow_factor - 1));
}

}  // namespace

void Comm::run(const CollArgs& args) {
  check_coll_args(args, size_);
  uint64_t call = seq_;
  if (should_skip(args.kind)) {
    ++seq_;
    return;
  }
  ++seq_;
  watchdog::Scope watched(coll_name(args.kind), id_, call, &members_, &label_);
  maybe_kill(*this, args.kind);
  if (!slow_here(*this, args.kind)) return do_run(args);
  auto t0 = std::chrono::steady_clock::now();
  do_run(args);
  slow_down(std::chrono::steady_clock::now() - t0);
}

RequestPtr Comm::start(const CollArgs& args) {
  check_coll_args(args, size_);
  if (args.kind == CollKind::send_recv) throw InputError("send_recv has only the blocking form (Comm::run)");
  uint64_t call = seq_;
  bool skip = should_skip(args.kind);
  ++seq_;
  if (skip) {
    struct Skipped : Request {
      bool test() override { return true; }
      void do_wait() override {}
    };
    auto r = std::make_unique<Skipped>();
    r->comm_ = this;
    r->kind_ = args.kind;
    r->seq_ = call;
    return r;
  }
  {
    watchdog::Scope watched(coll_name(args.kind), id_, call, &members_, &label_);
    maybe_kill(*this, args.kind);
  }
  RequestPtr r = do_start(args);
  r->comm_ = this;
  r->kind_ = args.kind;
  r->seq_ = call;
  return r;
}

void Request::wait() {
  watchdog::Scope watched(coll_name(kind_), comm_->id_, seq_, &comm_->members_, &comm_->label_);
  if (!slow_here(*comm_, kind_)) return do_wait();
  auto t0 = std::chrono::steady_clock::now();
  do_wait();
  slow_down(std::chrono::steady_clock::now() - t0);
}

void Comm::all_reduce(const void* send, void* recv, size_t count, DType dt, RedOp op) {
  CollArgs a;
  a.kind = CollKind::all_reduce;
  a.send = send, a.recv = recv, a.count = count, a.dtype = dt, a.op = op;
  run(a);
}

void Comm::reduce_scatter(const void* send, void* recv, size_t recvcount, DType dt, RedOp op) {
  CollArgs a;
  a.kind = CollKind::reduce_scatter;
  a.send = send, a.recv = recv, a.count = recvcount, a.dtype = dt, a.op = op;
  run(a);
}

void Comm::all_gather(const void* send, void* recv, size_t sendcount, DType dt) {
  CollArgs a;
  a.kind = CollKind::all_gather;
  a.send = send, a.recv = recv, a.count = sendcount, a.dtype = dt;
  run(a);
}

void Comm::all_to_all(const void* send, void* recv, size_t count, DType dt) {
  CollArgs a;
  a.kind = CollKind::all_to_all;
  a.send = send, a.recv = recv, a.count = count, a.dtype = dt;
  run(a);
}

void Comm::broadcast(void* buf, size_t count, DType dt, int root) {
  CollArgs a;
  a.kind = CollKind::broadcast;
  a.send = buf, a.recv = buf, a.count = count, a.dtype = dt, a.root = root;
  run(a);
}

void Comm::barrier() {
  CollArgs a;
  a.kind = CollKind::barrier;
  run(a);
}

std::unique_ptr<Comm> Comm::split(int color, int key, const std::string& name) {
  int id = id_ * 64 + (++splits_);  // same on every member: splits are collective and ordered
  std::unique_ptr<Comm> child;
  {
    watchdog::Scope watched("comm_split", id_, seq_++, &members_, &label_);
    child = do_split(color, key);
  }
  child->label_ = label_ + "/" + name;
  child->id_ = id;
  return child;
}

}  // namespace dtbench
