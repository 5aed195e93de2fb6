#include "ddp/bucket_plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace dtbench {

namespace {

// DistOpt pads each param start to 64 elements (128 bytes of a 16-bit type), so every param a
// rank's shard cuts into still starts aligned.
constexpr int64_t kParamStartAlign = 64;
// DistOpt pads each bucket end to lcm(D, 128): the bucket splits into D equal shards (what the
// in-place reduce-scatter / all-gather need) and buckets stay 256-byte aligned.
constexpr int64_t kBucketEndAlign = 128;
// pad_buckets_for_high_nccl_busbw: NCCL reaches its peak bus bandwidth on large aligned sizes.
constexpr int64_t kHighBusbwAlign = 65536;
constexpr double kMiB = 1048576.0;  // torch: bucket_cap_mb * 1024 * 1024 bytes

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// The planner's errors are about values; the suites check their flags first and name them.
void require_group_size(int size, const char* what) {
  if (size < 1) throw InputError(std::string(what) + " must be >= 1 (got " + std::to_string(size) + ")");
}

void require_positive_bucket_size(const std::optional<int64_t>& bucket_size) {
  if (bucket_size && *bucket_size <= 0)
    throw InputError("bucket size must be a positive number of elements (got " +
                     std::to_string(*bucket_size) + ")");
}

void require_positive_bucket_mb(const std::optional<double>& bucket_mb) {
  if (bucket_mb && !(std::isfinite(*bucket_mb) && *bucket_mb * kMiB >= 1.0)) {
    std::ostringstream msg;
    msg << "bucket cap in MiB must be at least one byte (got " << *bucket_mb << ")";
    throw InputError(msg.str());
  }
}

}  // namespace

bool operator==(const GradBufferKey& a, const GradBufferKey& b) {
  return a.param_dtype == b.param_dtype && a.grad_dtype == b.grad_dtype && a.expert == b.expert;
}

int64_t default_bucket_size(int dp_size) {
  require_group_size(dp_size, "data-parallel size");
  return std::max<int64_t>(kMegatronMinBucketSize, int64_t(1'000'000) * dp_size);
}

std::optional<int64_t> megatron_bucket_size(std::optional<int64_t> requested, int dp_size,
                                            bool overlap_grad_reduce) {
  require_group_size(dp_size, "data-parallel size");
  require_positive_bucket_size(requested);
  if (!overlap_grad_reduce) return std::nullopt;
  return requested ? *requested : default_bucket_size(dp_size);
}

BucketPlan::BucketPlan(const ModelSpec& model, const BucketPlanOptions& options)
    : options_(options) {
  require_group_size(options_.dp_size, "data-parallel size");
  if (options_.expert_dp_size == 0) options_.expert_dp_size = options_.dp_size;
  require_group_size(options_.expert_dp_size, "expert data-parallel size");
  if (options_.bucket_size && options_.bucket_mb)
    throw InputError("a bucket cap in elements and one in MiB exclude each other");
  require_positive_bucket_size(options_.bucket_size);
  require_positive_bucket_mb(options_.bucket_mb);

  // Megatron keeps dense and expert buffers in separate lists (dense first); within each, a buffer
  // per (param dtype, grad dtype) in order of first registration.
  std::vector<std::vector<int>> members;
  for (bool expert : {false, true}) {
    for (int t = 0; t < static_cast<int>(model.tensors.size()); ++t) {
      const TensorSpec& tensor = model.tensors[t];
      if (tensor.expert != expert) continue;
      const GradBufferKey key{tensor.dtype,
                              grad_dtype_for(tensor.dtype, options_.grad_reduce_in_fp32), expert};
      auto it = std::find_if(buffers_.begin(), buffers_.end(),
                             [&](const GradBuffer& b) { return b.key == key; });
      if (it == buffers_.end()) {
        GradBuffer buffer;
        buffer.key = key;
        buffer.dp_size = expert ? options_.expert_dp_size : options_.dp_size;
        buffers_.push_back(buffer);
        members.emplace_back();
        it = buffers_.end() - 1;
      }
      members[it - buffers_.begin()].push_back(t);
    }
  }
  params_.resize(model.tensors.size());
  for (size_t b = 0; b < buffers_.size(); ++b) lay_out_buffer(model, static_cast<int>(b), members[b]);
}

void BucketPlan::lay_out_buffer(const ModelSpec& model, int buffer_index,
                                const std::vector<int>& tensors) {
  GradBuffer& buffer = buffers_[buffer_index];
  std::vector<int> order = tensors;
  if (options_.reverse_registration_order) std::reverse(order.begin(), order.end());

  const bool distopt = options_.distributed_optimizer;
  const int64_t bucket_end_align =
      !distopt ? 1
               : std::lcm(std::lcm<int64_t>(buffer.dp_size, kBucketEndAlign),
                          options_.pad_for_high_busbw ? kHighBusbwAlign : int64_t(1));
  const int64_t grad_bytes = static_cast<int64_t>(dtype_size(buffer.key.grad_dtype));
  const int64_t cap_bytes =
      options_.bucket_mb ? static_cast<int64_t>(*options_.bucket_mb * kMiB) : 0;

  GradBucket open;    // the bucket being filled; open.offset is where it starts
  int64_t start = 0;  // where the next param goes

  // A bucket is full once it spans the cap: Megatron counts elements (padding gaps included);
  // PyTorch counts bytes, its first bucket capped at 1 MiB so the first collective starts early.
  auto is_full = [&](int64_t end) {
    const int64_t span = end - open.offset;
    if (options_.bucket_size) return span >= *options_.bucket_size;
    if (options_.bucket_mb)
      return span * grad_bytes >= (buffer.buckets.empty() ? kTorchFirstBucketBytes : cap_bytes);
    return false;
  };
  auto close = [&](int64_t end) {
    open.index = static_cast<int>(buffer.buckets.size());
    open.numel_unpadded = end - open.offset;
    open.numel = round_up(end, bucket_end_align) - open.offset;
    for (int t : open.params) {
      BucketedParam& p = params_[t];
      p.bucket = open.index;
      p.local_start = p.start - open.offset;
      p.local_end = p.end - open.offset;
    }
    buffer.numel_unpadded += open.numel_unpadded;
    buffer.numel = open.offset + open.numel;
    buffer.buckets.push_back(std::move(open));
    open = GradBucket();
    open.offset = buffer.numel;
    start = buffer.numel;
  };

  for (int t : order) {
    const TensorSpec& tensor = model.tensors[t];
    if (distopt) start = round_up(start, kParamStartAlign);
    // DistOpt gives the tied embedding a bucket of its own, so the first and last pipeline stage
    // shard it identically and the embedding all-reduce of finalize_model_grads
    // (_allreduce_word_embedding_grads) can follow the reduce-scatter.
    // The open bucket closes at the embedding's aligned start, so its unpadded count includes
    // that alignment gap, as in Megatron.
    const bool alone = distopt && tensor.shared_embedding;
    if (alone && !open.params.empty()) close(start);
    const int64_t end = start + tensor.numel();
    params_[t] = BucketedParam{t, buffer_index, -1, start, end, 0, 0};
    open.params.push_back(t);
    if (is_full(end) || alone) close(end);
    else start = end;
  }
  if (!open.params.empty()) close(start);
}

const GradBucket& BucketPlan::bucket(int buffer, int bucket) const {
  return buffers_.at(buffer).buckets.at(bucket);
}

int BucketPlan::num_buckets() const {
  int n = 0;
  for (const GradBuffer& b : buffers_) n += static_cast<int>(b.buckets.size());
  return n;
}

int64_t BucketPlan::owned_start(int buffer_index, int bucket_index, int rank) const {
  const GradBuffer& buf = buffers_.at(buffer_index);
  const GradBucket& bkt = buf.buckets.at(bucket_index);
  if (rank < 0 || rank >= buf.dp_size)
    throw std::out_of_range("BucketPlan: rank " + std::to_string(rank) + " outside buffer " +
                            std::to_string(buffer_index) + "'s group of " +
                            std::to_string(buf.dp_size));
  if (bkt.numel % buf.dp_size != 0)
    throw std::logic_error("BucketPlan: bucket " + std::to_string(bucket_index) + " of buffer " +
                           std::to_string(buffer_index) + " (" + std::to_string(bkt.numel) +
                           " elements) does not split into " + std::to_string(buf.dp_size) +
                           " shards; owned ranges need distributed-optimizer padding");
  return bkt.offset + rank * (bkt.numel / buf.dp_size);
}

int64_t BucketPlan::owned_end(int buffer_index, int bucket_index, int rank) const {
  return owned_start(buffer_index, bucket_index, rank) +
         bucket(buffer_index, bucket_index).numel / buffers_.at(buffer_index).dp_size;
}

std::vector<OwnedParamPiece> BucketPlan::owned_pieces_in_buffer(int buffer_index, int rank) const {
  std::vector<OwnedParamPiece> pieces;
  const GradBuffer& buf = buffers_.at(buffer_index);
  for (const GradBucket& bkt : buf.buckets) {
    const int64_t own_start = owned_start(buffer_index, bkt.index, rank);
    const int64_t own_end = owned_end(buffer_index, bkt.index, rank);
    for (int t : bkt.params) {
      const BucketedParam& p = params_[t];
      const int64_t start = std::max(p.start, own_start);
      const int64_t end = std::min(p.end, own_end);
      if (start < end)
        pieces.push_back(OwnedParamPiece{t, buffer_index, bkt.index, start, end, start - p.start});
    }
  }
  return pieces;
}

std::vector<OwnedParamPiece> BucketPlan::owned_pieces(int rank, int expert_rank) const {
  std::vector<OwnedParamPiece> pieces;
  for (size_t b = 0; b < buffers_.size(); ++b) {
    const int r = (buffers_[b].key.expert && expert_rank >= 0) ? expert_rank : rank;
    std::vector<OwnedParamPiece> mine = owned_pieces_in_buffer(static_cast<int>(b), r);
    pieces.insert(pieces.end(), mine.begin(), mine.end());
  }
  return pieces;
}

}  // namespace dtbench
