// BucketPlan against Megatron-Core's bucketing (param_and_grad_buffer.py, DistributedOptimizer's
// _compute_per_buffer_param_layout and _build_model_gbuf_range, Megatron's DDP unit tests) and
// PyTorch DDP's byte-capped buckets (Reducer, bucket_cap_mb). Expected numbers come from those rules
// and from Megatron's own gold computation in test_bucket_sizes, re-implemented here independently.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "ddp/bucket_plan.h"
#include "model/model.h"

namespace dtbench {
namespace {

constexpr int64_t kLinear95 = 95 * 95;  // 9025 elements: Linear(95, 95) weight

TensorSpec tensor(const std::string& name, std::vector<int64_t> shape, DType dtype = DType::bf16,
                  bool expert = false) {
  TensorSpec t;
  t.name = name;
  t.shape = std::move(shape);
  t.dtype = dtype;
  t.expert = expert;
  return t;
}

// Megatron's TestModel: `layers` × Linear(in, out, bias), each registering weight then bias;
// with shared_embedding the last layer's weight is marked (first in backprop order).
ModelSpec linear_stack(int layers, int64_t in, int64_t out, bool bias,
                       bool shared_embedding = false) {
  ModelSpec m;
  m.name = "linear_stack";
  for (int l = 0; l < layers; ++l) {
    m.tensors.push_back(tensor("layers." + std::to_string(l) + ".weight", {out, in}));
    if (bias) m.tensors.push_back(tensor("layers." + std::to_string(l) + ".bias", {out}));
  }
  if (shared_embedding) {
    for (auto it = m.tensors.rbegin(); it != m.tensors.rend(); ++it)
      if (it->shape.size() == 2) {
        it->shared_embedding = true;
        break;
      }
  }
  return m;
}

BucketPlanOptions megatron(std::optional<int64_t> bucket_size, bool distopt, int dp_size = 8) {
  BucketPlanOptions o;
  o.dp_size = dp_size;
  o.bucket_size = bucket_size;
  o.distributed_optimizer = distopt;
  return o;
}

std::vector<int64_t> unpadded_sizes(const GradBuffer& b) {
  std::vector<int64_t> v;
  for (const GradBucket& k : b.buckets) v.push_back(k.numel_unpadded);
  return v;
}

std::vector<int64_t> padded_sizes(const GradBuffer& b) {
  std::vector<int64_t> v;
  for (const GradBucket& k : b.buckets) v.push_back(k.numel);
  return v;
}

std::vector<int64_t> offsets(const GradBuffer& b) {
  std::vector<int64_t> v;
  for (const GradBucket& k : b.buckets) v.push_back(k.offset);
  return v;
}

// Buckets are contiguous: each starts where the previous padded one ends.
std::vector<int64_t> running_offsets(const std::vector<int64_t>& padded) {
  std::vector<int64_t> v{0};
  for (size_t i = 0; i + 1 < padded.size(); ++i) v.push_back(v.back() + padded[i]);
  return v;
}

std::vector<int64_t> repeat(int n, int64_t value) { return std::vector<int64_t>(n, value); }

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// ---------------------------------------------------------------------------------------------
// DistOpt layout (_compute_per_buffer_param_layout) worked examples: 10 × Linear(95, 95) without
// bias, 9025 elements per param, D | 128.

struct WorkedExample {
  std::optional<int64_t> bucket_size;
  std::vector<int64_t> unpadded;
  std::vector<int64_t> padded;
};

void expect_worked_example(const WorkedExample& ex, bool distopt) {
  SCOPED_TRACE("bucket_size=" + (ex.bucket_size ? std::to_string(*ex.bucket_size) : "None") +
               (distopt ? " DistOpt" : " plain"));
  const BucketPlan plan(linear_stack(10, 95, 95, false), megatron(ex.bucket_size, distopt));
  ASSERT_EQ(plan.buffers().size(), 1u);
  const GradBuffer& buf = plan.buffer(0);
  EXPECT_EQ(unpadded_sizes(buf), ex.unpadded);
  EXPECT_EQ(padded_sizes(buf), ex.padded);
  EXPECT_EQ(offsets(buf), running_offsets(ex.padded));
  EXPECT_EQ(buf.numel, std::accumulate(ex.padded.begin(), ex.padded.end(), int64_t(0)));
}

TEST(BucketPlanMegatron, WorkedExamplesWithoutDistributedOptimizer) {
  const WorkedExample examples[] = {
      {9000, repeat(10, 9025), repeat(10, 9025)},
      {18000, repeat(5, 18050), repeat(5, 18050)},
      {20000, {27075, 27075, 27075, 9025}, {27075, 27075, 27075, 9025}},
      {std::nullopt, {10 * kLinear95}, {10 * kLinear95}},
  };
  for (const WorkedExample& ex : examples) expect_worked_example(ex, false);
}

TEST(BucketPlanMegatron, WorkedExamplesWithDistributedOptimizer) {
  const WorkedExample examples[] = {
      {9000, repeat(10, 9025), repeat(10, 9088)},
      {18000, repeat(5, 9088 + 9025), repeat(5, 18176)},
      {20000, {27201, 27201, 27201, 9025}, {27264, 27264, 27264, 9088}},
  };
  for (const WorkedExample& ex : examples) expect_worked_example(ex, true);
  // None -> one bucket: nine params at 64-aligned starts (9088 apart), then the last one.
  const BucketPlan plan(linear_stack(10, 95, 95, false), megatron(std::nullopt, true));
  ASSERT_EQ(plan.buffer(0).buckets.size(), 1u);
  EXPECT_EQ(plan.bucket(0, 0).numel_unpadded, 9 * 9088 + 9025);
  EXPECT_EQ(plan.bucket(0, 0).numel, round_up(9 * 9088 + 9025, 128));
}

TEST(BucketPlanMegatron, ParamsWalkedInBackpropOrder) {
  // 18000 with DistOpt: bucket k holds layers 9-2k then 8-2k, the second one 9088 further.
  const BucketPlan plan(linear_stack(10, 95, 95, false), megatron(18000, true));
  for (int k = 0; k < 5; ++k) {
    const GradBucket& b = plan.bucket(0, k);
    EXPECT_EQ(b.params, (std::vector<int>{9 - 2 * k, 8 - 2 * k}));
    EXPECT_EQ(plan.param(9 - 2 * k).start, b.offset);
    EXPECT_EQ(plan.param(8 - 2 * k).start, b.offset + 9088);
    EXPECT_EQ(plan.param(8 - 2 * k).end, b.offset + 9088 + kLinear95);
    EXPECT_EQ(plan.param(8 - 2 * k).bucket, k);
  }
  // Registration order instead: bucket 0 begins with layer 0.
  BucketPlanOptions forward = megatron(18000, true);
  forward.reverse_registration_order = false;
  EXPECT_EQ(BucketPlan(linear_stack(10, 95, 95, false), forward).bucket(0, 0).params,
            (std::vector<int>{0, 1}));
}

// Megatron's gold computation (tud/test_param_and_grad_buffer.py::test_bucket_sizes).
struct GoldSizes {
  std::vector<int64_t> unpadded, padded;
};

GoldSizes megatron_gold(std::vector<int64_t> param_sizes, std::optional<int64_t> bucket_size,
                        bool distopt, bool shared_embedding, int dp_size) {
  auto pad = [&](int64_t n, int64_t divisor) { return distopt ? round_up(n, divisor) : n; };
  const int64_t bucket_divisor = std::lcm<int64_t>(dp_size, 128);
  GoldSizes gold;
  if (shared_embedding && distopt) {  // separate bucket for the first param in backprop order
    gold.unpadded.push_back(param_sizes.back());
    gold.padded.push_back(pad(param_sizes.back(), bucket_divisor));
    param_sizes.pop_back();
  }
  int64_t in_last_bucket = 0;
  for (auto it = param_sizes.rbegin(); it != param_sizes.rend(); ++it) {
    in_last_bucket = pad(in_last_bucket, 64) + *it;
    if (bucket_size && in_last_bucket >= *bucket_size) {
      gold.unpadded.push_back(in_last_bucket);
      gold.padded.push_back(pad(in_last_bucket, bucket_divisor));
      in_last_bucket = 0;
    }
  }
  if (in_last_bucket > 0) {
    gold.unpadded.push_back(in_last_bucket);
    gold.padded.push_back(pad(in_last_bucket, bucket_divisor));
  }
  return gold;
}

TEST(BucketPlanMegatron, MatchesMegatronGoldForEveryTestBucketSizesCase) {
  const std::optional<int64_t> bucket_sizes[] = {std::nullopt, 9000, 9025, 9050, 18000, 18050, 20000};
  for (int dp : {1, 2, 3, 4, 5, 6, 7, 8, 12, 96, 129})
    for (auto bucket_size : bucket_sizes)
      for (bool distopt : {false, true})
        for (bool bias : {false, true})
          for (bool shared : {false, true}) {
            if (shared && bias) continue;  // Megatron skips it too
            SCOPED_TRACE("dp=" + std::to_string(dp) + " bucket_size=" +
                         (bucket_size ? std::to_string(*bucket_size) : "None") +
                         " distopt=" + std::to_string(distopt) + " bias=" + std::to_string(bias) +
                         " shared=" + std::to_string(shared));
            const ModelSpec model = linear_stack(10, 95, 95, bias, shared);
            std::vector<int64_t> sizes;
            for (const TensorSpec& t : model.tensors) sizes.push_back(t.numel());
            const GoldSizes gold = megatron_gold(sizes, bucket_size, distopt, shared, dp);
            const BucketPlan plan(model, megatron(bucket_size, distopt, dp));
            ASSERT_EQ(plan.buffers().size(), 1u);
            EXPECT_EQ(unpadded_sizes(plan.buffer(0)), gold.unpadded);
            EXPECT_EQ(padded_sizes(plan.buffer(0)), gold.padded);
            if (!bucket_size) {
              EXPECT_EQ(plan.buffer(0).buckets.size(), shared && distopt ? 2u : 1u);
            }
          }
}

TEST(BucketPlanMegatron, SharedEmbeddingGetsItsOwnBucketOnlyWithDistributedOptimizer) {
  const ModelSpec model = linear_stack(10, 95, 95, false, true);
  const BucketPlan distopt(model, megatron(std::nullopt, true));
  ASSERT_EQ(distopt.buffer(0).buckets.size(), 2u);
  EXPECT_EQ(distopt.bucket(0, 0).params, std::vector<int>{9});
  EXPECT_EQ(distopt.bucket(0, 0).numel_unpadded, kLinear95);
  EXPECT_EQ(distopt.bucket(0, 0).numel, 9088);
  EXPECT_EQ(distopt.bucket(0, 1).offset, 9088);
  EXPECT_EQ(BucketPlan(model, megatron(std::nullopt, false)).buffer(0).buckets.size(), 1u);

  // A shared embedding in the middle closes the open bucket at its own (64-aligned) start.
  ModelSpec middle = linear_stack(3, 95, 95, false);
  middle.tensors[1].shared_embedding = true;
  const BucketPlan plan(middle, megatron(std::nullopt, true));
  EXPECT_EQ(unpadded_sizes(plan.buffer(0)), (std::vector<int64_t>{9088, 9025, 9025}));
  EXPECT_EQ(padded_sizes(plan.buffer(0)), (std::vector<int64_t>{9088, 9088, 9088}));
  EXPECT_EQ(plan.bucket(0, 1).params, std::vector<int>{1});
}

TEST(BucketPlanMegatron, ParamIndexAlignmentWithPadding) {
  // test_param_to_index_alignment_with_padding: Linear(4, 4, bias), DistOpt, one bucket.
  const ModelSpec model = linear_stack(1, 4, 4, true);  // tensor 0 = weight, 1 = bias
  const BucketPlan plan(model, megatron(std::nullopt, true));
  const GradBucket& b = plan.bucket(0, 0);
  EXPECT_EQ(b.params, (std::vector<int>{1, 0}));  // bias first: it is registered last
  EXPECT_EQ(plan.param(1).start, 0);
  EXPECT_EQ(plan.param(1).end, 4);
  EXPECT_EQ(plan.param(0).start, 64);
  EXPECT_EQ(plan.param(0).end, 80);
  EXPECT_EQ(b.numel, 128);
  EXPECT_NE(plan.param(0).local_start, plan.param(1).local_end);  // padding is observable

  // Bucket-local index = global - bucket offset, in every bucket of a multi-bucket plan.
  for (const auto& options : {megatron(1, true), megatron(9000, true), megatron(20000, false)}) {
    const ModelSpec m = options.bucket_size == 1 ? model : linear_stack(10, 95, 95, true);
    const BucketPlan p(m, options);
    for (const BucketedParam& param : p.params()) {
      const GradBucket& bucket = p.bucket(param.buffer, param.bucket);
      EXPECT_EQ(param.local_start, param.start - bucket.offset);
      EXPECT_EQ(param.local_end, param.end - bucket.offset);
    }
  }
  const BucketPlan one_per_bucket(model, megatron(1, true));
  EXPECT_EQ(one_per_bucket.bucket(0, 1).offset, 128);
  EXPECT_EQ(one_per_bucket.param(0).local_start, 0);
  EXPECT_EQ(one_per_bucket.param(0).local_end, 16);
}

// ---------------------------------------------------------------------------------------------
// Invariants (DistOpt padding, _build_model_gbuf_range shards) for many group sizes, powers of two
// or not.

ModelSpec invariant_model() {
  ModelSpec m = make_preset("tiny", DType::bf16);
  m.tensors.push_back(tensor("odd.a", {7, 13}));
  m.tensors.push_back(tensor("odd.b", {1}));
  m.tensors.push_back(tensor("odd.c", {3, 1000}));
  return m;
}

void expect_layout_invariants(const ModelSpec& model, const BucketPlan& plan) {
  const BucketPlanOptions& o = plan.options();
  for (size_t bi = 0; bi < plan.buffers().size(); ++bi) {
    const GradBuffer& buf = plan.buffer(static_cast<int>(bi));
    int64_t align = std::lcm<int64_t>(buf.dp_size, 128);
    if (o.pad_for_high_busbw) align = std::lcm<int64_t>(align, 65536);
    EXPECT_EQ(buf.numel % buf.dp_size, 0);
    int64_t next_offset = 0, unpadded = 0;
    for (const GradBucket& b : buf.buckets) {
      EXPECT_EQ(b.offset, next_offset);
      EXPECT_EQ(b.offset % align, 0);
      EXPECT_EQ(b.numel % align, 0);
      EXPECT_LE(b.numel_unpadded, b.numel);
      int64_t param_end = b.offset;
      for (int t : b.params) {
        const BucketedParam& p = plan.param(t);
        EXPECT_EQ(p.start % 64, 0) << model.tensors[t].name;
        EXPECT_GE(p.start, param_end) << model.tensors[t].name;
        EXPECT_EQ(p.numel(), model.tensors[t].numel());
        param_end = p.end;
      }
      // Unpadded ends at the last param, or at the next 64-aligned start when a shared
      // embedding closed the bucket.
      EXPECT_GE(b.offset + b.numel_unpadded, param_end);
      EXPECT_LT(b.offset + b.numel_unpadded, param_end + 64);
      next_offset = b.offset + b.numel;
      unpadded += b.numel_unpadded;
    }
    EXPECT_EQ(buf.numel, next_offset);
    EXPECT_EQ(buf.numel_unpadded, unpadded);
  }
}

// Every element of every param is owned by exactly one rank of its buffer's group.
void expect_owned_pieces_cover_every_param_once(const ModelSpec& model, const BucketPlan& plan) {
  std::map<int, std::vector<OwnedParamPiece>> pieces_of_tensor;
  int64_t owned = 0;
  for (size_t bi = 0; bi < plan.buffers().size(); ++bi) {
    const GradBuffer& buf = plan.buffer(static_cast<int>(bi));
    for (int rank = 0; rank < buf.dp_size; ++rank)
      for (const OwnedParamPiece& piece : plan.owned_pieces_in_buffer(static_cast<int>(bi), rank)) {
        EXPECT_GE(piece.start, plan.owned_start(piece.buffer, piece.bucket, rank));
        EXPECT_LE(piece.end, plan.owned_end(piece.buffer, piece.bucket, rank));
        pieces_of_tensor[piece.tensor].push_back(piece);
        owned += piece.numel();
      }
  }
  EXPECT_EQ(owned, model.numel());
  for (int t = 0; t < static_cast<int>(model.tensors.size()); ++t) {
    std::vector<OwnedParamPiece>& pieces = pieces_of_tensor[t];
    std::sort(pieces.begin(), pieces.end(),
              [](const OwnedParamPiece& a, const OwnedParamPiece& b) { return a.start < b.start; });
    const BucketedParam& p = plan.param(t);
    int64_t covered_to = p.start;
    for (const OwnedParamPiece& piece : pieces) {
      EXPECT_EQ(piece.start, covered_to) << model.tensors[t].name;
      EXPECT_EQ(piece.param_offset, piece.start - p.start);
      covered_to = piece.end;
    }
    EXPECT_EQ(covered_to, p.end) << model.tensors[t].name;
  }
}

TEST(BucketPlanInvariants, ManyGroupSizesAndCaps) {
  const ModelSpec model = invariant_model();
  const std::optional<int64_t> caps[] = {std::nullopt, 1, 1000, 5000, 30000};
  for (int dp : {1, 2, 3, 4, 5, 6, 7, 8, 12, 24, 100, 129, 384})
    for (auto cap : caps)
      for (bool busbw : {false, true}) {
        SCOPED_TRACE("dp=" + std::to_string(dp) + " cap=" + (cap ? std::to_string(*cap) : "None") +
                     " busbw=" + std::to_string(busbw));
        BucketPlanOptions o = megatron(cap, true, dp);
        o.pad_for_high_busbw = busbw;
        const BucketPlan plan(model, o);
        expect_layout_invariants(model, plan);
        expect_owned_pieces_cover_every_param_once(model, plan);
      }
}

TEST(BucketPlanInvariants, PresetModelsCoverEveryElement) {
  for (const char* preset : {"gpt-125m", "llama-7b"})
    for (int dp : {3, 8}) {
      SCOPED_TRACE(std::string(preset) + " dp=" + std::to_string(dp));
      const ModelSpec model = make_preset(preset, DType::bf16);
      const BucketPlan plan(model, megatron(default_bucket_size(dp), true, dp));
      expect_layout_invariants(model, plan);
      expect_owned_pieces_cover_every_param_once(model, plan);
    }
}

TEST(BucketPlanOwnership, RanksMayOwnOnlyPadding) {
  ModelSpec model;
  model.tensors.push_back(tensor("small", {4}));
  const BucketPlan plan(model, megatron(std::nullopt, true, 8));
  ASSERT_EQ(plan.bucket(0, 0).numel, 128);  // shards of 16
  const auto rank0 = plan.owned_pieces(0);
  ASSERT_EQ(rank0.size(), 1u);
  EXPECT_EQ(rank0[0].start, 0);
  EXPECT_EQ(rank0[0].end, 4);
  for (int rank = 1; rank < 8; ++rank) {
    EXPECT_TRUE(plan.owned_pieces(rank).empty()) << "rank " << rank;
    EXPECT_EQ(plan.owned_start(0, 0, rank), 16 * rank);
  }
}

TEST(BucketPlanOwnership, ShardsFollowTheBucketNotTheParams) {
  // One bucket of 10 × 9025 with DistOpt at D=8: shards of 90880/8 = 11360 cut params apart.
  const BucketPlan plan(linear_stack(10, 95, 95, false), megatron(std::nullopt, true, 8));
  const int64_t shard = round_up(9 * 9088 + 9025, 128) / 8;
  for (int rank = 0; rank < 8; ++rank) {
    EXPECT_EQ(plan.owned_start(0, 0, rank), rank * shard);
    EXPECT_EQ(plan.owned_end(0, 0, rank), (rank + 1) * shard);
  }
  // Rank 1 begins inside layer 8 (the second param in backprop order, at [9088, 18113)).
  const auto pieces = plan.owned_pieces(1);
  ASSERT_FALSE(pieces.empty());
  EXPECT_EQ(pieces[0].tensor, 8);
  EXPECT_EQ(pieces[0].start, shard);
  EXPECT_EQ(pieces[0].param_offset, shard - 9088);
}

TEST(BucketPlanOwnership, NeedsDistributedOptimizerPaddingAndAValidRank) {
  const BucketPlan plain(linear_stack(10, 95, 95, false), megatron(std::nullopt, false, 8));
  EXPECT_THROW(plain.owned_pieces(0), std::logic_error);  // 90250 % 8 != 0
  const BucketPlan padded(linear_stack(10, 95, 95, false), megatron(std::nullopt, true, 8));
  EXPECT_THROW(padded.owned_pieces(8), std::out_of_range);
  EXPECT_THROW(padded.owned_pieces(-1), std::out_of_range);
}

// ---------------------------------------------------------------------------------------------
// Separate buffers per BufferKey (Megatron's test_expert_parallel_params_get_separate_buffers).

TEST(BucketPlanBuffers, ExpertAndDenseParamsGetSeparateBuffers) {
  ModelSpec model;
  model.tensors.push_back(tensor("dense.a", {100}));
  model.tensors.push_back(tensor("expert.a", {200}, DType::bf16, true));
  model.tensors.push_back(tensor("dense.b", {300}));
  model.tensors.push_back(tensor("expert.b", {50}, DType::bf16, true));
  BucketPlanOptions o = megatron(std::nullopt, true, 4);
  o.expert_dp_size = 3;
  const BucketPlan plan(model, o);

  ASSERT_EQ(plan.buffers().size(), 2u);
  const GradBuffer& dense = plan.buffer(0);
  const GradBuffer& expert = plan.buffer(1);
  EXPECT_FALSE(dense.key.expert);
  EXPECT_TRUE(expert.key.expert);
  EXPECT_EQ(dense.dp_size, 4);
  EXPECT_EQ(expert.dp_size, 3);
  // Each buffer has its own index space from 0, starting with its last registered param.
  EXPECT_EQ(plan.param(2).buffer, 0);
  EXPECT_EQ(plan.param(2).start, 0);
  EXPECT_EQ(plan.param(0).start, 320);
  EXPECT_EQ(plan.param(3).buffer, 1);
  EXPECT_EQ(plan.param(3).start, 0);
  EXPECT_EQ(plan.param(1).start, 64);
  EXPECT_EQ(dense.numel % 4, 0);
  EXPECT_EQ(expert.numel, std::lcm(3, 128));  // expert buffers pad with the expert DP size
  expect_layout_invariants(model, plan);

  expect_owned_pieces_cover_every_param_once(model, plan);
  // Dense rank 3 exists, expert rank 3 does not: the two groups are indexed separately.
  EXPECT_NO_THROW(plan.owned_pieces(3, 2));
  EXPECT_THROW(plan.owned_pieces(3), std::out_of_range);
}

TEST(BucketPlanBuffers, OneBufferPerParamAndGradDtype) {
  ModelSpec model;
  model.tensors.push_back(tensor("bf16.a", {10}, DType::bf16));
  model.tensors.push_back(tensor("fp32.a", {10}, DType::f32));
  model.tensors.push_back(tensor("bf16.b", {10}, DType::bf16));
  for (bool fp32_grads : {false, true}) {
    BucketPlanOptions o;
    o.grad_reduce_in_fp32 = fp32_grads;
    const BucketPlan plan(model, o);
    ASSERT_EQ(plan.buffers().size(), 2u);
    EXPECT_EQ(plan.buffer(0).key, (GradBufferKey{DType::bf16, fp32_grads ? DType::f32 : DType::bf16, false}));
    EXPECT_EQ(plan.buffer(1).key, (GradBufferKey{DType::f32, DType::f32, false}));
    EXPECT_EQ(plan.param(2).start, 0);
    EXPECT_EQ(plan.param(0).start, 10);
    EXPECT_EQ(plan.param(1).start, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// PyTorch DDP (Reducer, bucket_cap_mb): byte caps, first bucket 1 MiB, reverse registration order.

std::vector<size_t> bucket_lengths(const GradBuffer& b) {
  std::vector<size_t> v;
  for (const GradBucket& k : b.buckets) v.push_back(k.params.size());
  return v;
}

ModelSpec equal_params(int n, int64_t numel, DType dtype) {
  ModelSpec m;
  for (int i = 0; i < n; ++i) m.tensors.push_back(tensor("p" + std::to_string(i), {numel}, dtype));
  return m;
}

BucketPlanOptions torch_ddp(double bucket_mb) {
  BucketPlanOptions o;
  o.bucket_mb = bucket_mb;
  return o;
}

TEST(BucketPlanTorch, FirstBucketIsOneMebibyte) {
  // 10 fp32 params of 256 KiB: 4 fill the 1 MiB first bucket, the 6 left stay under 2 MiB.
  const BucketPlan fp32(equal_params(10, 65536, DType::f32), torch_ddp(2));
  EXPECT_EQ(bucket_lengths(fp32.buffer(0)), (std::vector<size_t>{4, 6}));
  EXPECT_EQ(fp32.bucket(0, 0).params, (std::vector<int>{9, 8, 7, 6}));
  EXPECT_EQ(fp32.bucket(0, 0).numel, 4 * 65536);  // no padding in PyTorch's layout

  // Same shapes in bf16 are 128 KiB each: 8 to reach 1 MiB.
  const BucketPlan bf16(equal_params(10, 65536, DType::bf16), torch_ddp(2));
  EXPECT_EQ(bucket_lengths(bf16.buffer(0)), (std::vector<size_t>{8, 2}));

  // Caps below the first bucket's still start with 1 MiB, then 512 KiB each.
  const BucketPlan small(equal_params(10, 65536, DType::f32), torch_ddp(0.5));
  EXPECT_EQ(bucket_lengths(small.buffer(0)), (std::vector<size_t>{4, 2, 2, 2}));

  // bucket_cap_mb = 25 -> 25 * 2^20 bytes: 30 params of 1 MiB -> 1, 25, 4.
  const BucketPlan default_cap(equal_params(30, 262144, DType::f32), torch_ddp(25));
  EXPECT_EQ(bucket_lengths(default_cap.buffer(0)), (std::vector<size_t>{1, 25, 4}));

  // Registration order, for comparison: the first bucket holds the first registered params.
  BucketPlanOptions forward = torch_ddp(2);
  forward.reverse_registration_order = false;
  EXPECT_EQ(BucketPlan(equal_params(10, 65536, DType::f32), forward).bucket(0, 0).params,
            (std::vector<int>{0, 1, 2, 3}));
}

// ---------------------------------------------------------------------------------------------
// Default bucket size max(40_000_000, 1_000_000 * DP) elements and the one-bucket rule.

TEST(BucketPlanDefaults, DefaultBucketSizeFormula) {
  EXPECT_EQ(default_bucket_size(1), 40'000'000);
  EXPECT_EQ(default_bucket_size(8), 40'000'000);
  EXPECT_EQ(default_bucket_size(40), 40'000'000);
  EXPECT_EQ(default_bucket_size(41), 41'000'000);
  EXPECT_EQ(default_bucket_size(64), 64'000'000);
}

TEST(BucketPlanDefaults, OneBucketPerBufferWithoutOverlap) {
  EXPECT_EQ(megatron_bucket_size(std::nullopt, 8, false), std::nullopt);
  EXPECT_EQ(megatron_bucket_size(9000, 8, false), std::nullopt);
  EXPECT_EQ(megatron_bucket_size(9000, 8, true), 9000);
  EXPECT_EQ(megatron_bucket_size(std::nullopt, 64, true), 64'000'000);

  const ModelSpec model = linear_stack(10, 95, 95, true);
  const BucketPlan no_overlap(model, megatron(megatron_bucket_size(9000, 8, false), true));
  EXPECT_EQ(no_overlap.buffer(0).buckets.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Bad values are refused with what is wrong (the suites name their flags before planning).

void expect_input_error_saying(const std::function<void()>& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no InputError for " << what;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << "a planner names no flag: " << e.what();
  }
}

TEST(BucketPlanOptions, InvalidValuesAreRefusedWithTheValue) {
  const ModelSpec model = linear_stack(2, 4, 4, true);
  auto plan_with = [&](BucketPlanOptions o) { return [=] { BucketPlan p(model, o); }; };
  for (int dp : {0, -3})
    expect_input_error_saying(plan_with(megatron(std::nullopt, true, dp)), "data-parallel size must be >= 1 (got " + std::to_string(dp));
  for (int64_t cap : {0, -5})
    expect_input_error_saying(plan_with(megatron(cap, true)), "bucket size must be a positive number of elements (got " + std::to_string(cap));
  for (double mb : {0.0, -1.0}) expect_input_error_saying(plan_with(torch_ddp(mb)), "bucket cap in MiB");
  BucketPlanOptions both = torch_ddp(25);
  both.bucket_size = 1000;
  expect_input_error_saying(plan_with(both), "exclude each other");
  BucketPlanOptions expert = megatron(std::nullopt, true);
  expert.expert_dp_size = -1;
  expect_input_error_saying(plan_with(expert), "expert data-parallel size must be >= 1 (got -1)");
  expect_input_error_saying([] { default_bucket_size(0); }, "data-parallel size");
  expect_input_error_saying([] { megatron_bucket_size(0, 8, true); }, "bucket size must be a positive");
}

}  // namespace
}  // namespace dtbench
