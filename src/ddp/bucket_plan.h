#pragma once
// BucketPlan: where each parameter's gradient lives in the contiguous DDP grad buffers, how the
// buffers split into buckets (one collective each) and which slice of every bucket each
// data-parallel rank owns with the distributed optimizer. Reproduces Megatron-Core's layout
// (param_and_grad_buffer.py / DistributedOptimizer._compute_per_buffer_param_layout) and
// PyTorch DDP's byte-capped buckets (Reducer, bucket_cap_mb). Megatron: one buffer per BufferKey
// (param dtype, grad dtype, is_expert) in reverse param order, default bucket size
// max(40_000_000, 1_000_000 * DP) elements, _compute_default_per_buffer_param_layout without DistOpt,
// and rank r owning [r*S, (r+1)*S) of each bucket (DistributedOptimizer._build_model_gbuf_range).
#include <cstdint>
#include <optional>
#include <vector>

#include "core/dtype.h"
#include "model/model.h"

namespace dtbench {

// Megatron's default bucket size floor (elements) and PyTorch's first-bucket cap (bytes).
constexpr int64_t kMegatronMinBucketSize = 40'000'000;
constexpr int64_t kTorchFirstBucketBytes = int64_t(1) << 20;

// Megatron's default bucket size: max(40M, 1M * |dp group without CP|) elements.
int64_t default_bucket_size(int dp_size);

// Megatron's effective bucket size (A3): without overlap_grad_reduce there is nothing to overlap,
// so each buffer is one bucket (nullopt); with it, the requested size or the default.
std::optional<int64_t> megatron_bucket_size(std::optional<int64_t> requested, int dp_size,
                                            bool overlap_grad_reduce);

// Gradients are reduced in fp32 when asked, else in the param dtype.
inline DType grad_dtype_for(DType param_dtype, bool grad_reduce_in_fp32) {
  return grad_reduce_in_fp32 ? DType::f32 : param_dtype;
}

struct BucketPlanOptions {
  int dp_size = 1;         // D of dense buffers (--dp-size)
  int expert_dp_size = 0;  // D of expert buffers; 0 = dp_size
  // At most one cap. Neither = one bucket per buffer.
  std::optional<int64_t> bucket_size;  // Megatron: close a bucket once it spans >= this many elements
  std::optional<double> bucket_mb;     // PyTorch: close once >= bucket_mb MiB; first bucket 1 MiB
  bool reverse_registration_order = true;  // backprop order: the last registered grad is ready first
  bool distributed_optimizer = false;      // Megatron DistOpt padding, shared embedding alone
  bool pad_for_high_busbw = false;         // DistOpt: also pad bucket ends to 65536 elements
  bool grad_reduce_in_fp32 = false;
};

// Buffers are separate allocations reduced over separate groups, each with indices from 0.
struct GradBufferKey {
  DType param_dtype = DType::f32;
  DType grad_dtype = DType::f32;
  bool expert = false;
};
bool operator==(const GradBufferKey& a, const GradBufferKey& b);

// Element ranges below are [start, end) in the buffer's index space unless named local_*.
struct GradBucket {
  int index = 0;               // within its buffer, in reduction order
  int64_t offset = 0;          // first element in the buffer
  int64_t numel_unpadded = 0;  // up to the last param's end, interior 64-alignment gaps included
  int64_t numel = 0;           // padded: what the collective moves
  std::vector<int> params;     // tensor indices (ModelSpec order) in bucket order
};

struct GradBuffer {
  GradBufferKey key;
  int dp_size = 1;             // D of the group this buffer is reduced over
  int64_t numel = 0;           // padded total (end of the last bucket)
  int64_t numel_unpadded = 0;  // sum of the buckets' numel_unpadded
  std::vector<GradBucket> buckets;
};

struct BucketedParam {
  int tensor = -1;  // index in ModelSpec::tensors
  int buffer = -1;
  int bucket = -1;
  int64_t start = 0, end = 0;              // in the buffer
  int64_t local_start = 0, local_end = 0;  // in the bucket (start - bucket offset)
  int64_t numel() const { return end - start; }
};

// The part of one param inside a rank's owned shard of a bucket (A11).
struct OwnedParamPiece {
  int tensor = -1;
  int buffer = -1;
  int bucket = -1;
  int64_t start = 0, end = 0;  // in the buffer
  int64_t param_offset = 0;    // where the piece begins inside the param
  int64_t numel() const { return end - start; }
};

class BucketPlan {
 public:
  // InputError saying which value is invalid (a group size < 1, a bucket cap <= 0, both caps);
  // the suites check their flags before and name them.
  BucketPlan(const ModelSpec& model, const BucketPlanOptions& options);

  const BucketPlanOptions& options() const { return options_; }
  // Dense buffers first, then expert buffers, each in order of first registration.
  const std::vector<GradBuffer>& buffers() const { return buffers_; }
  const GradBuffer& buffer(int i) const { return buffers_.at(i); }
  const GradBucket& bucket(int buffer, int bucket) const;
  int num_buckets() const;  // over all buffers
  // One entry per model tensor, indexed like ModelSpec::tensors.
  const std::vector<BucketedParam>& params() const { return params_; }
  const BucketedParam& param(int tensor) const { return params_.at(tensor); }

  // Rank r of a buffer's group owns [offset + r*S, offset + (r+1)*S) of each bucket,
  // S = numel / D. std::logic_error when numel % D != 0 (plans without DistOpt padding).
  int64_t owned_start(int buffer, int bucket, int rank) const;
  int64_t owned_end(int buffer, int bucket, int rank) const;
  // The pieces of params a rank owns in every bucket of one buffer; a rank may own only padding.
  std::vector<OwnedParamPiece> owned_pieces_in_buffer(int buffer, int rank) const;
  // Over all buffers: rank in the dense groups, expert_rank (< 0: rank) in the expert groups.
  std::vector<OwnedParamPiece> owned_pieces(int rank, int expert_rank = -1) const;

 private:
  void lay_out_buffer(const ModelSpec& model, int buffer, const std::vector<int>& tensors);

  BucketPlanOptions options_;
  std::vector<GradBuffer> buffers_;
  std::vector<BucketedParam> params_;
};

}  // namespace dtbench
