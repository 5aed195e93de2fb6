#pragma once
// One Megatron-FSDP training step over a model split into FSDP units (megatron/core/distributed/fsdp):
// forward in unit order (unshard = all-gather into a temporary full buffer, simulated compute,
// free), backward in reverse (unshard, compute, reduce-scatter the unit's grads into the owned
// shard, free), for the four data_parallel_sharding_strategy values, HSDP (--replicate), the three
// ways of applying the 1/DP factor and the three grad communication types (the last one Megatron's
// reduce_scatter_with_fp32_accumulation.py).
//
// Data is closed form so that every result can be checked per element in O(1):
//  * params: fsdp_param_value(seed, unit, item, elem), integers in [-125, 125] (exact in bf16);
//  * grads of world rank r in microbatch mb: DP * h(r, mb, ...) with h a small positive integer
//    (fsdp_grad_h), so that g / DP = h exactly and the reduced grad is sum_mb sum_r h, an integer
//    with a closed form in the world size (fsdp_grad_expected).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../../kernels/pattern.h"
#include "core/backend.h"
#include "core/comm.h"
#include "core/element_ops.h"
#include "core/fp32_accum.h"
#include "layout/shard_layout.h"
#include "model/model.h"

namespace dtbench {

// Megatron-FSDP's data_parallel_sharding_strategy.
enum class FsdpStrategy { no_shard, optim, optim_grads, optim_grads_params };
// How the 1/DP factor (gradient_scaling_factor) is applied: AVG in the collective, grad *= f then
// SUM, or the factor fused into the reduction input (NCCL PreMulSum; here: applied as the grads are
// produced).
enum class GradReduce { avg, prescale, premul };
// Wire type of the grad reduction: the grad dtype, fp32 (cast, reduce, round once), or Megatron's
// fp32-accumulating reduce-scatter (all-to-all in the grad dtype, local fp32 sum, one RNE).
enum class GradComm { native, fp32, fp32_accum };

const char* strategy_name(FsdpStrategy s);
const char* grad_reduce_name(GradReduce r);
const char* grad_comm_name(GradComm c);
bool parse_strategy(const std::string& s, FsdpStrategy* out);
bool parse_grad_reduce(const std::string& s, GradReduce* out);
bool parse_grad_comm(const std::string& s, GradComm* out);  // "native" or "bf16" (the grad dtype), "fp32", "fp32-accum"

inline bool params_sharded(FsdpStrategy s) { return s == FsdpStrategy::optim_grads_params; }
inline bool grads_sharded(FsdpStrategy s) { return s == FsdpStrategy::optim_grads || s == FsdpStrategy::optim_grads_params; }

// --- units -----------------------------------------------------------------------------------
// One FSDP unit = one bucket (Megatron-FSDP's _get_parameter_groups): every transformer layer, plus
// one "root" unit holding the params outside the layers (embeddings, final norm). Units are in
// forward order: root first.
// The root is not a unit module in Megatron: its buffer, once gathered, is kept for the step.
struct FsdpUnit {
  std::string name;             // "root", "layer0", ...
  bool root = false;
  std::vector<size_t> tensors;  // indices into ModelSpec::tensors, registration order
  ShardLayout layout;
};

// Splits `model` into units with a ShardLayout over a shard group of `shard_group_size` ranks.
// `sharded` = false builds unpadded, unsharded flat layouts (no_shard, any `kind`). InputError for
// an empty model.
std::vector<FsdpUnit> plan_fsdp_units(const ModelSpec& model, int shard_group_size, ShardLayoutKind kind,
                                      bool sharded);

// Which tensor element sits at a position of a unit's gathered buffer (nothing: padding).
struct ElementRef {
  size_t item = 0;
  int64_t elem = 0;
};
// A maximal run of positions [begin, end) that at() maps alike: all padding (has == false), or
// consecutive elements elem, elem+1, ... of one item.
struct IndexRun {
  int64_t begin = 0, end = 0;
  bool has = false;
  size_t item = 0;
  int64_t elem = 0;  // the element at `begin`
};
class UnitIndex {
 public:
  explicit UnitIndex(const ShardLayout& layout);
  std::optional<ElementRef> at(int64_t pos) const;
  // The run holding `pos` (one binary search); at(p) for p in it follows without a search.
  IndexRun run_at(int64_t pos) const;

  // at() for positions visited mostly in order (a fill or a verify of a range): O(1) per position
  // while it stays in the current run, one run_at() when it leaves it. Same answers as at().
  class Cursor {
   public:
    explicit Cursor(const UnitIndex& index) : index_(&index) {}
    std::optional<ElementRef> at(int64_t pos) {
      if (pos < run_.begin || pos >= run_.end) run_ = index_->run_at(pos);
      if (!run_.has) return std::nullopt;
      return ElementRef{run_.item, run_.elem + (pos - run_.begin)};
    }

   private:
    const UnitIndex* index_;
    IndexRun run_;
  };
  Cursor cursor() const { return Cursor(*this); }

 private:
  const ShardLayout* layout_;
  std::vector<size_t> by_offset_;  // flat: items sorted by offset; per_param: by offset in a shard
};

// --- collective counts per step (per strategy; test_mfsdp_fully_shard.py) ----------------------
struct CollectiveCounts {
  int all_gather = 0, reduce_scatter = 0, all_reduce = 0;
  std::string str() const;
  bool operator==(const CollectiveCounts& o) const {
    return all_gather == o.all_gather && reduce_scatter == o.reduce_scatter && all_reduce == o.all_reduce;
  }
};
// What one step of k microbatches must issue. reduce_scatter counts grad reductions into shards
// (an all-to-all when the fp32-accumulating form is used); all_reduce counts no_shard's reductions
// plus HSDP's outer all-reduce of the shard across replicas.
CollectiveCounts expected_counts(FsdpStrategy s, int layer_units, bool has_root, int microbatches, bool hsdp);

// --- closed-form data --------------------------------------------------------------------------
// Values depend on the element index through a bijective hash (kernels/pattern.h pattern_hash), so
// they repeat with no period: a shard or block that arrives moved by any offset (another rank's
// shard, swapped all-gather blocks) holds other values. (A modular index term repeated every m or
// 251 elements, and a shard whose size was a multiple of that passed as another rank's.)
inline uint64_t fsdp_key(uint64_t seed, size_t unit, size_t item, int mb) {
  return seed * 1000003u + uint64_t(unit) * 7919u + uint64_t(item) * 104729u + uint64_t(mb) * 15485863u;
}
// fsdp_key folded into the 32-bit key of the element hashes.
inline uint32_t fsdp_hash_key(uint64_t key) { return mix32(uint32_t(key) ^ mix32(uint32_t(key >> 32) ^ 0x9e3779b9u)); }
// `version` counts optimizer steps: the identity update still gives every step new values, so a
// buffer that missed its refresh (a stale all-gather) is visible.
// The per-(item, version) part of fsdp_param_value (hoisted out of a loop over elements).
// The item's hash key in the low 32 bits, the version's shift (37 per step, mod 251) above them.
inline uint64_t fsdp_param_key(uint64_t seed, size_t unit, size_t item, int version) {
  return uint64_t(fsdp_hash_key(fsdp_key(seed, unit, item, 0))) | (uint64_t(version) * 37u % 251u) << 32;
}
// An integer in [-125, 125] (exact in bf16 and fp16); consecutive versions differ at every element.
inline float fsdp_param_value_keyed(uint64_t key, int64_t elem) {
  return float(int64_t((pattern_hash(uint32_t(key), uint64_t(elem)) % 251u + (key >> 32)) % 251u) - 125);
}
inline float fsdp_param_value(uint64_t seed, size_t unit, size_t item, int64_t elem, int version = 0) {
  return fsdp_param_value_keyed(fsdp_param_key(seed, unit, item, version), elem);
}
// fsdp_param_value(seed, unit, ., ., version) with the per-item key cached (elements visited item by item).
class ParamValues {
 public:
  ParamValues(uint64_t seed, size_t unit, int version) : seed_(seed), unit_(unit), version_(version) {}
  float operator()(size_t item, int64_t elem) {
    if (item != item_) item_ = item, key_ = fsdp_param_key(seed_, unit_, item, version_);
    return fsdp_param_value_keyed(key_, elem);
  }

 private:
  uint64_t seed_;
  size_t unit_;
  int version_;
  size_t item_ = SIZE_MAX;
  uint64_t key_ = 0;
};
// The per-(item, microbatch) key of fsdp_grad_h (hoisted out of a loop over elements).
inline uint64_t fsdp_grad_key(uint64_t seed, size_t unit, size_t item, int mb) {
  return fsdp_hash_key(fsdp_key(seed, unit, item, mb + 1));
}
// b(elem) in [0, m), hashed: every rank's h at an element is (b + rank) mod m + 1.
inline int64_t fsdp_grad_base(uint64_t key, int64_t elem, int64_t m) {
  return int64_t((uint64_t(pattern_hash(uint32_t(key), uint64_t(elem))) * uint64_t(m)) >> 32);
}
// t(elem) in [0, q], hashed (another hash than b's): world rank 0's extra term, so that the sum
// carries position information even where the rotation's sum is the same at every element.
inline int64_t fsdp_grad_extra_term(uint64_t key, int64_t elem, int64_t q) {
  return q ? int64_t((uint64_t(pattern_hash(uint32_t(key) ^ 0x5bd1e995u, uint64_t(elem))) * uint64_t(q + 1)) >> 32) : 0;
}
// h in [1, m + q]: rank-distinguishable (distinct over any m consecutive ranks), rank 0 + t(elem).
inline int64_t fsdp_grad_h_keyed(uint64_t key, int world_rank, int64_t elem, int64_t m, int64_t q) {
  return (fsdp_grad_base(key, elem, m) + world_rank) % m + 1 + (world_rank == 0 ? fsdp_grad_extra_term(key, elem, q) : 0);
}
inline int64_t fsdp_grad_h(uint64_t seed, int world_rank, int mb, size_t unit, size_t item, int64_t elem, int64_t m,
                           int64_t q) {
  return fsdp_grad_h_keyed(fsdp_grad_key(seed, unit, item, mb), world_rank, elem, m, q);
}
// sum over microbatches 0..k-1 and world ranks 0..W-1 of h: the reduced (averaged) grad, O(k).
inline int64_t fsdp_grad_expected(uint64_t seed, int W, int k, size_t unit, size_t item, int64_t elem, int64_t m,
                                  int64_t q) {
  int64_t s = 0;
  for (int mb = 0; mb < k; ++mb) {
    const uint64_t key = fsdp_grad_key(seed, unit, item, mb);
    s += reduce_sum_of_base(fsdp_grad_base(key, elem, m), W, m) + W + fsdp_grad_extra_term(key, elem, q);
  }
  return s;
}
// The rotation's range m: the largest m <= 64 with k * W^2 * m <= the exact integer limit that
// does not divide W (the rotation's sum would be the same at every element); 1 when only m = 2
// fits and W is even (then rank 0's extra term alone carries position). 0 when even m = 2 does
// not fit.
int64_t fsdp_grad_modulus(DType dt, int W, int k);
// Rank 0's extra range q for that m: what is left of the exact range, k * W * (W * m + q) <= limit
// (AVG sums DP * h over the ranks and microbatches), at most 2^16.
int64_t fsdp_grad_extra(DType dt, int W, int k, int64_t m);

// The reduce-scatter with fp32 accumulation, PendingReduce and the bf16 accumulation-order
// pattern live in fp32_accum.h (shared with dtbench-ep).

// --- the step ----------------------------------------------------------------------------------
struct FsdpFaults {  // resolved for this rank (see the suite's --inject-fault kinds)
  bool wrong_offset = false, missing_scale = false, eager_reduce = false, stale_slot = false,
       late_prefetch = false, no_free = false, bf16_accum = false;
};

struct FsdpConfig {
  FsdpStrategy strategy = FsdpStrategy::optim_grads_params;
  GradReduce reduce = GradReduce::prescale;
  GradComm comm = GradComm::native;
  int microbatches = 2;
  bool prefetch = true;
  double compute_s = 0;  // simulated compute per unit and pass
  DType dtype = DType::f32;
  uint64_t seed = 1;
  int64_t grad_modulus = 2;  // fsdp_grad_modulus
  int64_t grad_extra = 0;    // fsdp_grad_extra
  FsdpFaults faults;
};

struct StepStats {
  CollectiveCounts counts;
  int max_param_temps = 0, max_grad_temps = 0;  // live temporary unit buffers (root excluded)
  size_t peak_bytes = 0;                        // Buffer bytes held during the step (this rank)
  bool prefetch_order_ok = true;
  std::string order_violation;
  std::vector<double> digests;  // one per compute: what it saw of its params
};

// Called at every compute with the buffer the compute reads (the gathered / full params).
// `version` = the param version the buffer must hold.
using ParamsObserver =
    std::function<void(size_t unit, const char* phase, const Buffer& params, int version)>;

class FsdpModel {
 public:
  // shard: the group a unit is sharded over; replica: HSDP's group across shard groups (nullptr
  // without --replicate). dp_rank / dp_size: this rank in the whole data-parallel world.
  FsdpModel(Backend& backend, Comm& shard, Comm* replica, int dp_rank, int dp_size, std::vector<FsdpUnit> units,
            FsdpConfig cfg);
  ~FsdpModel();

  const std::vector<FsdpUnit>& units() const { return units_; }
  const FsdpConfig& config() const { return cfg_; }
  // One step: zero grads, k microbatches of forward + backward, grad reduction, and (optim,
  // optim_grads) the all-gather of the updated params. The optimizer update itself is the
  // identity, so params keep their closed-form values.
  StepStats step(const ParamsObserver& observe = nullptr);

  // After a step: where this rank's reduced grads of unit u are, and the gathered-buffer position
  // of their first element. no_shard: the whole unit.
  const Buffer& grad_buffer(size_t u) const;
  size_t grad_first(size_t u) const;
  size_t grad_count(size_t u) const;
  int64_t grad_position(size_t u) const;
  // Persistent full params (no_shard / optim / optim_grads), refreshed by the post-step all-gather.
  const Buffer* full_params(size_t u) const;
  int version() const { return version_; }  // param version after the last step

  // Own shards + persistent full buffers + the kept root + `slots` temporary units (params and grads)
  // + fp32-accum / fp32 scratch: the least a step of this strategy can hold.
  size_t theoretical_min_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<FsdpUnit> units_;
  FsdpConfig cfg_;
  int version_ = 0;
};

double params_digest(const std::vector<float>& values);

}  // namespace dtbench
