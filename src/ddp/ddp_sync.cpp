#include "ddp/ddp_sync.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>

#include "../../kernels/pattern.h"

namespace dtbench {

namespace {

RedOp to_redop(GradReduceOp op) { return op == GradReduceOp::avg ? RedOp::avg : RedOp::sum; }

}  // namespace

// ----------------------------------------------------------------------------- closed forms

GradPattern GradPattern::make(uint64_t seed, int group_size, int microbatches, DType grad_dtype,
                              const GradScaling& scaling) {
  if (group_size < 1 || microbatches < 1) throw std::invalid_argument("GradPattern: D and k must be >= 1");
  GradPattern p;
  p.seed = seed;
  p.group_size = group_size;
  p.microbatches = microbatches;
  p.grad_dtype = grad_dtype;
  // The unscaled group sum k*D*D*(m-1) (AVG in the collective) must stay an exact integer.
  p.modulus = reduce_modulus(dtype_code(grad_dtype), int64_t(microbatches) * group_size * group_size);
  // When m divides D every b gives the same group sum, and a misplaced block would pass: a smaller
  // m keeps the sum dependent on b (m = 2 with D even is the one case left: too few exact values).
  while (p.modulus > 2 && group_size % p.modulus == 0) --p.modulus;
  p.pre_scale = float(scaling.pre_scale);
  p.avg = scaling.op == GradReduceOp::avg;
  p.build_tables();
  return p;
}

void GradPattern::build_tables() {
  reduced_table_.clear();
  prescaled_table_.clear();
  for (int64_t c = 0; c < modulus; ++c) prescaled_table_.push_back(prescaled_of(c));
  for (int64_t b = 0; b < modulus; ++b) reduced_table_.push_back(reduced_slow(b));
}

int64_t GradPattern::base(uint64_t e) const {
  return int64_t((uint64_t(pattern_hash(pattern_key(seed, 0, e), e)) * uint64_t(modulus)) >> 32);
}

bool GradPattern::zero_grad(uint64_t e) const { return (pattern_hash(pattern_key(seed, 0, e), e) & 63u) == 0; }

int64_t GradPattern::value(int q, uint64_t e) const { return zero_grad(e) ? 0 : (base(e) + q) % modulus; }

float GradPattern::local(int q, uint64_t e) const {
  const float g = round_to(grad_dtype, float(group_size) * float(value(q, e)));
  float x = 0;
  for (int j = 0; j < microbatches; ++j) x = round_to(grad_dtype, x + g);  // main_grad += grad
  return x;
}

float GradPattern::prescaled_of(int64_t v) const {
  const float g = round_to(grad_dtype, float(group_size) * float(v));
  float x = 0;
  for (int j = 0; j < microbatches; ++j) x = round_to(grad_dtype, x + g);
  // torch: grad_data *= f computes in fp32 and rounds once to the grad dtype; skipped when f == 1.
  return pre_scale == 1.0f ? x : round_to(grad_dtype, x * pre_scale);
}

int64_t residue_count(int64_t b, int64_t group_size, int64_t m, int64_t c) {
  const int64_t offset = ((c - b) % m + m) % m;  // the first q with (b + q) mod m == c
  return group_size / m + (offset < group_size % m ? 1 : 0);
}

double GradPattern::reduced(uint64_t e) const { return zero_grad(e) ? 0.0 : reduced_of_base(base(e)); }

double GradPattern::reduced_of_base(int64_t b) const {
  return size_t(modulus) == reduced_table_.size() ? reduced_table_[size_t(b)] : reduced_slow(b);
}

double GradPattern::reduced_slow(int64_t b) const {
  double sum = 0;
  for (int64_t c = 0; c < modulus; ++c) {
    const int64_t n = residue_count(b, group_size, modulus, c);
    if (n) sum += double(n) * double(prescaled_of(c));
  }
  float r = round_to(grad_dtype, float(sum));
  if (avg) r = round_to(grad_dtype, r / float(group_size));
  return double(r);
}

bool GradPattern::exact() const {
  const double limit = double(exact_integer_limit(dtype_code(grad_dtype)));
  double largest = 0;
  for (int64_t c = 0; c < modulus; ++c) {
    const double p = prescaled_of(c);
    if (p != std::floor(p)) return false;
    largest = std::max(largest, p);
  }
  if (largest * group_size > limit) return false;
  // AVG divides an integer sum of multiples of D by D: exact.
  return true;
}

int GradPattern::position_without_prescale(uint64_t e, double observed) const {
  const double diff = observed - reduced(e);
  if (diff == 0 || pre_scale == 1.0f) return -1;
  for (int q = 0; q < group_size; ++q) {
    const double extra = double(local(q, e)) - double(prescaled(q, e));
    const double want = avg ? extra / group_size : extra;
    if (std::fabs(want - diff) <= 1e-6 * std::max(1.0, std::fabs(diff))) return q;
  }
  return -1;
}

int identity_culprit(double observed, double expected) {
  if (!(observed >= 0) || observed >= 9.2e18 || observed != std::floor(observed)) return -1;
  const uint64_t x = uint64_t(observed) ^ uint64_t(expected);
  if (!x) return -1;
  int r = 0;
  while (!((x >> r) & 1u)) ++r;
  return r;
}

bool power_sum_exact(DType dt, const std::vector<int>& members) {
  if (members.empty()) return true;
  const auto [lo, hi] = std::minmax_element(members.begin(), members.end());
  const int bits = dt == DType::f32 ? 24 : dt == DType::bf16 ? 8 : 11;
  const int max_exp = dt == DType::f16 ? 15 : 127;
  return *lo >= 0 && *hi <= max_exp && *hi - *lo <= bits - 1;
}

namespace {
// An integer in [-125, 125] (exact in every grad dtype) from the counter hash of (seed, stream, e):
// no period in e, so a block moved by any offset holds other values.
float param_value(uint64_t seed, uint32_t stream, uint64_t e) {
  return float(int64_t(pattern_hash(pattern_key(seed, stream, e), e) % 251u) - 125);
}
}  // namespace

float updated_param(uint64_t seed, uint64_t e) { return param_value(seed ^ 0x5bd1e995u, 0, e); }
float stale_param(uint64_t seed, int world_rank, uint64_t e) { return param_value(seed ^ 99991u, 1u + uint32_t(world_rank), e); }

// ----------------------------------------------------------------------------- order and cover

bool check_dispatch_order(const BucketPlan& plan, const std::vector<SyncEvent>& events, OrderViolation* out) {
  std::map<int, uint64_t> ready_seq;  // tensor -> seq of its (last) ready event
  std::map<std::pair<int, int>, int> dispatches;
  uint64_t last_ready_of_previous = 0;
  bool first_dispatch = true;
  auto fail = [&](int buffer, int bucket, const std::string& what) {
    if (out) *out = OrderViolation{buffer, bucket, what};
    return false;
  };
  for (const SyncEvent& ev : events) {
    if (ev.kind == SyncEvent::ready) {
      ready_seq[ev.tensor] = ev.seq;
      continue;
    }
    const GradBucket& bucket = plan.bucket(ev.buffer, ev.bucket);
    if (++dispatches[{ev.buffer, ev.bucket}] > 1)
      return fail(ev.buffer, ev.bucket, "dispatched twice");
    uint64_t last_ready = 0;
    for (int t : bucket.params) {
      auto it = ready_seq.find(t);
      if (it == ready_seq.end() || it->second > ev.seq) {
        std::ostringstream s;
        s << "collective issued at event " << ev.seq << " before param '" << t << "' of the bucket was ready";
        return fail(ev.buffer, ev.bucket, s.str());
      }
      last_ready = std::max(last_ready, it->second);
    }
    if (!first_dispatch && last_ready < last_ready_of_previous)
      return fail(ev.buffer, ev.bucket, "dispatched out of readiness order");
    last_ready_of_previous = last_ready;
    first_dispatch = false;
  }
  for (size_t b = 0; b < plan.buffers().size(); ++b)
    for (const GradBucket& bucket : plan.buffer(int(b)).buckets)
      if (!dispatches.count({int(b), bucket.index})) return fail(int(b), bucket.index, "never dispatched");
  return true;
}

CoverSummary summarize_ownership(const BucketPlan& plan, const std::vector<OwnedParamPiece>& pieces, int rank) {
  CoverSummary s;
  std::vector<OwnedParamPiece> sorted = pieces;
  std::sort(sorted.begin(), sorted.end(), [](const OwnedParamPiece& a, const OwnedParamPiece& b) {
    return a.buffer != b.buffer ? a.buffer < b.buffer : a.start < b.start;
  });
  for (size_t i = 0; i < sorted.size(); ++i) {
    const OwnedParamPiece& p = sorted[i];
    const BucketedParam& param = plan.param(p.tensor);
    const int64_t lo = plan.owned_start(p.buffer, p.bucket, rank), hi = plan.owned_end(p.buffer, p.bucket, rank);
    std::ostringstream why;
    if (p.start < param.start || p.end > param.end || p.start >= p.end)
      why << "piece of tensor " << p.tensor << " outside the param";
    else if (p.start < lo || p.end > hi)
      why << "piece of tensor " << p.tensor << " outside rank " << rank << "'s shard";
    else if (p.param_offset != p.start - param.start)
      why << "piece of tensor " << p.tensor << " has a wrong param offset";
    else if (i > 0 && sorted[i - 1].buffer == p.buffer && sorted[i - 1].end > p.start)
      why << "pieces of tensors " << sorted[i - 1].tensor << " and " << p.tensor << " overlap";
    if (!why.str().empty() && s.consistent) {
      s.consistent = false;
      s.problem = why.str();
    }
    s.owned_elements += p.numel();
  }
  return s;
}

int64_t owned_param_elements(const BucketPlan& plan, int rank) {
  int64_t total = 0;
  for (size_t b = 0; b < plan.buffers().size(); ++b) {
    for (const GradBucket& bucket : plan.buffer(int(b)).buckets) {
      const int64_t lo = plan.owned_start(int(b), bucket.index, rank);
      const int64_t hi = plan.owned_end(int(b), bucket.index, rank);
      for (int t : bucket.params) {
        const BucketedParam& p = plan.param(t);
        total += std::max<int64_t>(0, std::min(hi, p.end) - std::max(lo, p.start));
      }
    }
  }
  return total;
}

// ----------------------------------------------------------------------------- element helpers

// ----------------------------------------------------------------------------- the engine

GradSync::GradSync(const BucketPlan& plan, const SyncConfig& config, const SyncComms& comms,
                   std::vector<Buffer>& grads, std::vector<Buffer>& params, std::vector<GradScaling> scaling)
    : plan_(plan), config_(config), comms_(comms), grads_(grads), params_(params), scaling_(std::move(scaling)) {
  if (grads_.size() != plan_.buffers().size() || scaling_.size() != plan_.buffers().size())
    throw std::logic_error("GradSync: one grad buffer and one scaling per plan buffer");
  if (config_.distributed_optimizer && !params_.empty() && params_.size() != grads_.size())
    throw std::logic_error("GradSync: the distributed optimizer needs a param buffer per grad buffer");
  if (config_.instances > 1 && !comms_.inter) throw std::logic_error("GradSync: partial DistOpt needs an inter group");
  if (config_.instances > 1 && comms_.expert_reduce && !comms_.expert_inter)
    throw std::logic_error("GradSync: partial DistOpt needs an expert inter group");
  begin_step();
}

Comm& GradSync::reduce_of(int buffer) const {
  return plan_.buffer(buffer).key.expert && comms_.expert_reduce ? *comms_.expert_reduce : *comms_.reduce;
}

Comm* GradSync::inter_of(int buffer) const {
  return plan_.buffer(buffer).key.expert && comms_.expert_reduce ? comms_.expert_inter : comms_.inter;
}

void GradSync::begin_step() {
  if (!pending_.empty()) throw std::logic_error("GradSync::begin_step: collectives still in flight");
  ready_count_.assign(plan_.buffers().size(), {});
  dispatched_.assign(plan_.buffers().size(), {});
  for (size_t b = 0; b < plan_.buffers().size(); ++b) {
    ready_count_[b].assign(plan_.buffer(int(b)).buckets.size(), 0);
    dispatched_[b].assign(plan_.buffer(int(b)).buckets.size(), false);
  }
  events_.clear();
  seq_ = 0;
  issued_ = 0;
}

void GradSync::param_ready(int tensor) {
  const BucketedParam& p = plan_.param(tensor);
  events_.push_back(SyncEvent{SyncEvent::ready, p.buffer, p.bucket, tensor, seq_++});
  const int count = ++ready_count_[p.buffer][p.bucket];
  const int needed = int(plan_.bucket(p.buffer, p.bucket).params.size());
  if (dispatched_[p.buffer][p.bucket] || !synced(p.buffer)) return;
  const bool early = p.buffer == 0 && p.bucket == config_.early_bucket && count == 1;  // fault
  if (early || (config_.overlap && count == needed)) dispatch(p.buffer, p.bucket);
}

void GradSync::dispatch(int buffer, int bucket_index) {
  const GradBucket& bucket = plan_.bucket(buffer, bucket_index);
  Buffer& grad = grads_[buffer];
  const GradScaling& scaling = scaling_[buffer];
  // Megatron start_grad_sync: scale the bucket's grads in place, then one collective.
  if (scaling.pre_scale != 1.0 && !config_.skip_prescale)
    scale_elements(grad, size_t(bucket.offset), size_t(bucket.numel), float(scaling.pre_scale));
  Comm* comm = (buffer == 0 && bucket_index == config_.wrong_group_bucket && comms_.wrong) ? comms_.wrong : &reduce_of(buffer);
  CollArgs a;
  a.dtype = grad.dtype();
  a.op = to_redop(scaling.op);
  if (!config_.distributed_optimizer || config_.force_all_reduce) {
    a.kind = CollKind::all_reduce;
    a.send = a.recv = grad.at(size_t(bucket.offset));
    a.count = size_t(bucket.numel);
  } else {
    // In place: the bucket splits into equal shards; this rank's shard is the output view.
    a.kind = CollKind::reduce_scatter;
    a.count = size_t(bucket.numel) / size_t(comm->size());
    a.send = grad.at(size_t(bucket.offset));
    a.recv = grad.at(size_t(bucket.offset) + size_t(comm->rank()) * a.count);
  }
  events_.push_back(SyncEvent{SyncEvent::dispatch, buffer, bucket_index, -1, seq_++});
  dispatched_[buffer][bucket_index] = true;
  ++issued_;
  pending_.push_back(Pending{buffer, bucket_index, comm->start(a)});
}

void GradSync::poll() {
  for (Pending& p : pending_) p.req->test();
}

void GradSync::finish_grad_sync() {
  // Without overlap (or for buckets whose params never all registered) the collectives go now, in
  // bucket order: the same order on every rank.
  for (size_t b = 0; b < dispatched_.size(); ++b)
    for (size_t k = 0; k < dispatched_[b].size(); ++k)
      if (!dispatched_[b][k] && synced(int(b))) dispatch(int(b), int(k));
  for (Pending& p : pending_) p.req->wait();
  if (config_.instances > 1 && !config_.skip_inter_all_reduce) {
    // Partial DistOpt: the intra-group result is summed over the N instances (same op).
    for (Pending& p : pending_) {
      const GradBucket& bucket = plan_.bucket(p.buffer, p.bucket);
      Buffer& grad = grads_[p.buffer];
      const Comm& reduce = reduce_of(p.buffer);
      const bool all_reduce = !config_.distributed_optimizer || config_.force_all_reduce;
      const size_t shard = all_reduce ? size_t(bucket.numel) : size_t(bucket.numel) / size_t(reduce.size());
      const size_t at = size_t(bucket.offset) + (all_reduce ? 0 : size_t(reduce.rank()) * shard);
      inter_of(p.buffer)->all_reduce(grad.at(at), grad.at(at), shard, grad.dtype(), to_redop(scaling_[p.buffer].op));
    }
  }
  pending_.clear();
}

void GradSync::param_gather() {
  if (!config_.distributed_optimizer) return;
  if (params_.size() != grads_.size()) throw std::logic_error("GradSync::param_gather: no param buffers");
  std::vector<RequestPtr> reqs;
  for (size_t b = 0; b < plan_.buffers().size(); ++b) {
    if (!synced(int(b))) continue;
    Comm& comm = reduce_of(int(b));
    Buffer& param = params_[b];
    for (const GradBucket& bucket : plan_.buffer(int(b)).buckets) {
      CollArgs a;
      a.kind = CollKind::all_gather;
      a.dtype = param.dtype();
      a.count = size_t(bucket.numel) / size_t(comm.size());
      a.recv = param.at(size_t(bucket.offset));
      a.send = param.at(size_t(bucket.offset) + size_t(comm.rank()) * a.count);
      reqs.push_back(comm.start(a));
    }
  }
  for (RequestPtr& r : reqs) r->wait();
}

}  // namespace dtbench
