#pragma once
// DDP gradient synchronisation as Megatron-Core's DistributedDataParallel does it
// (distributed_data_parallel.py gradient scaling, param_and_grad_buffer.py
// _ParamAndGradBucketGroup.start_grad_sync / start_param_sync / register_grad_ready,
// DistributedOptimizer._build_model_gbuf_range): per-bucket pre-scale and collective, dispatched by
// a grad-ready state machine while the (simulated) backward runs; the distributed optimizer's
// in-place reduce-scatter / param all-gather, partial DistOpt (intra RS + inter AR); plus the
// closed-form values every element must hold afterwards. dtbench-ddp (suites/ddp.cpp) is a thin
// driver over this.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/comm.h"
#include "core/element_ops.h"  // scale_elements, add_elements
#include "ddp/bucket_plan.h"
#include "layout/parallel_layout.h"
#include "core/verify.h"

namespace dtbench {

// ---------------------------------------------------------------------------------------------
// Closed forms (pure, O(1) in the group size).
//
// Group position q of a D-rank data-parallel group contributes, per microbatch, to element e of a
// grad buffer the value D * v_q(e), v_q(e) = (b(e) + q) mod m: a small integer, with b(e) in [0, m)
// from a hash of (seed, e) (kernels/pattern.h), so nothing repeats with a period in e, and m chosen
// not to divide D, so the group sum still depends on b at every group size. One element in 64
// (zero_grad(e), from the hash's low bits) gets no gradient on any rank, like a frozen or unused
// row: it must reduce to exactly +0, so a fabric that turns +0 into -0 is seen. After k
// microbatches of local accumulation the grad holds k*D*v; the 1/D pre-scale (fp32 scalar, result
// rounded to the grad dtype as torch's `grad_data *= f` does) then gives k*v, so the fp32 or bf16
// sum over the group is exact for most D. The expectation applies that rounding explicitly and, for
// the D where the pre-scaled values are not integers, falls back to a tolerance of D+2 ULPs.
struct GradPattern {
  uint64_t seed = 0;
  int group_size = 1;    // D: ranks whose contributions are summed
  int microbatches = 1;  // k
  DType grad_dtype = DType::f32;
  int64_t modulus = 2;   // m
  float pre_scale = 1;   // the fp32 scalar each rank multiplies its grad with before the collective
  bool avg = false;      // the collective averages (divides the sum by D)

  static GradPattern make(uint64_t seed, int group_size, int microbatches, DType grad_dtype,
                          const GradScaling& scaling);

  int64_t value(int q, uint64_t e) const;   // v_q(e) in [0, m); 0 on every rank where zero_grad(e)
  bool zero_grad(uint64_t e) const;         // element e gets no gradient (1 in 64 elements)
  float local(int q, uint64_t e) const;     // after k microbatches: k*D*v (in the grad dtype)
  float prescaled_of(int64_t v) const;      // round(local-of-v * pre_scale)
  float prescaled(int q, uint64_t e) const {
    const int64_t v = value(q, e);
    return size_t(modulus) == prescaled_table_.size() ? prescaled_table_[size_t(v)] : prescaled_of(v);
  }
  double reduced(uint64_t e) const;         // what every member holds after the collective
  bool exact() const;                       // true: the reduction is bit-exact in any order
  double tol_ulps() const { return exact() ? 0.0 : group_size + 2.0; }
  // Given an observed reduced value, the group position whose contribution was not pre-scaled
  // (missing pre-scale), or -1 when no single position explains the difference.
  int position_without_prescale(uint64_t e, double observed) const;

  // reduced(e) and prescaled(q, e) depend on e only through b(e): tables of the m values, built by
  // make() (a pattern whose fields are changed afterwards must call build_tables() again; without
  // tables the closed forms are evaluated directly).
  void build_tables();
  int64_t base(uint64_t e) const;            // b(e)
  double reduced_of_base(int64_t b) const;  // reduced(e) for b(e) == b

 private:
  double reduced_slow(int64_t b) const;
  std::vector<double> reduced_table_;   // by b
  std::vector<float> prescaled_table_;  // by value v in [0, m)
};

// Number of q in [0, D) with (b + q) mod m == c.
int64_t residue_count(int64_t b, int64_t group_size, int64_t m, int64_t c);

// Group-identity probe: rank r contributes 2^r; the sum over a group is its member bitmask.
// Lowest world rank by which an observed mask differs from the expected one (-1: not a mask).
int identity_culprit(double observed, double expected);
// True when sums of 2^r over `members` are exact in `dt` (fp32: span <= 23; bf16: 7; fp16: 10).
bool power_sum_exact(DType dt, const std::vector<int>& members);

// Updated params the optimizer writes into its own shard before the all-gather (rank-independent),
// and stale values every rank starts from (rank-dependent, so a shard that does not arrive shows).
float updated_param(uint64_t seed, uint64_t e);
float stale_param(uint64_t seed, int world_rank, uint64_t e);

// ---------------------------------------------------------------------------------------------
// The grad-ready / dispatch log and its check.
struct SyncEvent {
  enum Kind { ready, dispatch } kind = ready;
  int buffer = -1, bucket = -1, tensor = -1;  // tensor: for ready events
  uint64_t seq = 0;
};

struct OrderViolation {
  int buffer = -1, bucket = -1;
  std::string what;
};
// Every bucket is dispatched exactly once, after every one of its params was marked ready, and
// buckets are dispatched in the order their last params became ready. Returns the first violation.
bool check_dispatch_order(const BucketPlan& plan, const std::vector<SyncEvent>& events, OrderViolation* out);

// Elements of param pieces owned per rank: Σ over `pieces` of numel, and whether they are disjoint
// and inside their owner's range of `rank`.
struct CoverSummary {
  int64_t owned_elements = 0;
  bool consistent = true;
  std::string problem;
};
CoverSummary summarize_ownership(const BucketPlan& plan, const std::vector<OwnedParamPiece>& pieces, int rank);
// Independent count: elements of params inside [r*S, (r+1)*S) of every bucket (interval sweep).
int64_t owned_param_elements(const BucketPlan& plan, int rank);

// ---------------------------------------------------------------------------------------------
// The sync engine.
struct SyncConfig {
  bool distributed_optimizer = false;
  bool force_all_reduce = false;  // DistOpt buffers, but an all-reduce (Megatron force_all_reduce)
  int instances = 1;              // partial DistOpt: RS over intra, AR over inter
  bool overlap = true;            // dispatch a bucket when its last param is ready (else in finish)
  // Faults (tests): this rank does not pre-scale; bucket early_bucket of buffer 0 is dispatched when
  // its first param is ready; bucket wrong_group_bucket of buffer 0 goes over `wrong`.
  bool skip_prescale = false;
  int early_bucket = -1;
  int wrong_group_bucket = -1;
  bool skip_inter_all_reduce = false;  // partial DistOpt leaves out the inter-group all-reduce
  bool expert_buffers = true;          // false: the caller reduces the expert buffers itself (a fault)
};

struct SyncComms {
  Comm* reduce = nullptr;  // RS / AR group: the DP group, or the intra group with partial DistOpt
  Comm* inter = nullptr;   // partial DistOpt only
  Comm* wrong = nullptr;   // fault injection only
  // The expert buffers' groups (Megatron reduces them over expt_dp, the dense ones over dp_cp);
  // null: the dense groups above.
  Comm* expert_reduce = nullptr;
  Comm* expert_inter = nullptr;
};

class GradSync {
 public:
  // grads[b] / params[b]: buffer b of the plan (params only for param_gather: the distributed
  // optimizer's all-gather; empty when the caller never gathers).
  // scaling[b]: pre-scale and op of buffer b.
  GradSync(const BucketPlan& plan, const SyncConfig& config, const SyncComms& comms,
           std::vector<Buffer>& grads, std::vector<Buffer>& params, std::vector<GradScaling> scaling);

  // Starts a step: clears ready counts and the event log (collectives must all be finished).
  void begin_step();
  // The backward hook: the grad of `tensor` is complete. With overlap, dispatches its bucket when
  // this was the bucket's last param.
  void param_ready(int tensor);
  // Lets outstanding collectives progress (MPI needs calls into the library to move data).
  void poll();
  // Dispatches what is left (no overlap), waits for every grad collective and runs the inter-group
  // all-reduce of partial DistOpt.
  void finish_grad_sync();
  // DistOpt: in-place all-gather of every bucket of the param buffers over the reduce group.
  void param_gather();
  // Overrides the scaling (identity probe: pre-scale 1, SUM); empty = the constructor's.
  void set_scaling(std::vector<GradScaling> scaling) { scaling_ = std::move(scaling); }

  const std::vector<SyncEvent>& events() const { return events_; }
  int collectives_issued() const { return issued_; }

 private:
  void dispatch(int buffer, int bucket);
  bool synced(int buffer) const { return config_.expert_buffers || !plan_.buffer(buffer).key.expert; }
  Comm& reduce_of(int buffer) const;
  Comm* inter_of(int buffer) const;
  const BucketPlan& plan_;
  SyncConfig config_;
  SyncComms comms_;
  std::vector<Buffer>& grads_;
  std::vector<Buffer>& params_;
  std::vector<GradScaling> scaling_;
  std::vector<std::vector<int>> ready_count_;  // per buffer, per bucket
  std::vector<std::vector<bool>> dispatched_;
  struct Pending {
    int buffer, bucket;
    RequestPtr req;
  };
  std::vector<Pending> pending_;
  std::vector<SyncEvent> events_;
  uint64_t seq_ = 0;
  int issued_ = 0;
};

}  // namespace dtbench
