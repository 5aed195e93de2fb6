#pragma once
// Expert-parallel gradient sync (dtbench-ep), the parts both backends share:
// the per-rank MoE model, the closed-form gradient values and what every element must hold after
// each step of Megatron's sync and finalize_model_grads (the DistributedDataParallel gradient scaling,
// _ParamAndGradBucketGroup.start_grad_sync, megatron/core/distributed/finalize_model_grads.py).
// Pure functions of (seed, rank, index) and the layout, so every rank checks what it holds in O(1)
// per element, independent of the world size. The token all-to-all is in ep/token_dispatch.h.
#include <cstdint>
#include <string>
#include <vector>

#include "layout/parallel_layout.h"
#include "model/model.h"
#include "ep/moe_routing.h"

namespace dtbench {

// --- the MoE model ---------------------------------------------------------------------------
struct MoeModelShape {
  int64_t hidden = 64;   // --hidden
  int64_t ffn = 128;     // --ffn: each expert's MLP inner size (fc1 holds gate and up: 2*ffn rows)
  int64_t vocab = 256;   // --vocab: word embedding rows (tied with the output layer)
  int experts = 5;       // --experts: per MoE layer, split over the EP ranks (uneven allowed)
  int moe_layers = 2;    // --moe-layers: split over the PP stages (uneven allowed)
};

// ValueError naming the field (hidden, ffn, vocab, experts, moe_layers) when a size is < 1 or a
// TP/ETP split does not divide.
void check_moe_shape(const MoeModelShape& shape, const ParallelLayout& layout);

// First layer of PP stage `stage` when `layers` are split contiguously over `pp` stages (the
// first layers % pp stages hold one more); stage pp gives `layers`.
int first_moe_layer(int layers, int pp, int stage);

// The tensors `rank` registers, in registration order, with local (TP/ETP-split) shapes: on the
// first stage the word embedding; per MoE layer of its stage the dense attention, norms and router,
// then fc1/fc2 of each of its EP rank's experts (expert = true, placement of `routing`); on the last
// stage the final norm and (PP > 1) the tied output layer. Embeddings are shared_embedding (their
// own DistOpt bucket). `layer` is the global layer index.
ModelSpec build_moe_stage_model(const MoeModelShape& shape, const ParallelLayout& layout, const MoeRouting& routing,
                                int rank, DType dtype);

// --- closed-form gradients of the DP sync (g_dense = sum_DPCP / DPCP, g_expert = sum_EDP / DPCP) ---
// Raw gradient of buffer element i on world rank r: g_r(i) = P * (A(i) + r*B(i)) with P = |dp_cp|,
// A in [0, 4), B in [1, 3]. Small integers, so every sum is exact in fp32; the P makes the default
// 1/DPCP pre-scale give back A + r*B (exactly when P is a power of two). B never vanishes, so a
// sum over the wrong members or a missing pre-scale changes every element.
int64_t grad_term_a(uint64_t seed, uint64_t i);
int64_t grad_term_b(uint64_t seed, uint64_t i);
double raw_grad(uint64_t seed, int rank, uint64_t i, int dp_cp);

// The members of a group, reduced to what the closed forms need.
struct GroupSum {
  int size = 0;
  int64_t rank_sum = 0;
};
GroupSum group_sum_of(const std::vector<int>& members);

// What buffer element i holds on `rank` after pre-scale and the collective over `group`:
// owned (all-reduce, or the own DistOpt shard): reduced_grad(scaling, sum of raw grads, |group|);
// not owned (other DistOpt shards): the pre-scaled local value (start_grad_sync's grad_data[0] rule).
double expected_synced_grad(const GradScaling& scaling, uint64_t seed, uint64_t i, const GroupSum& group, int dp_cp,
                            int rank, bool owned);

// ULPs allowed for a synced element: 0 (bit-exact) when the pre-scale and the AVG division are
// exact (powers of two) and the dtype is fp32; else enough for one rounding per addend.
double sync_tolerance_ulps(const GradScaling& scaling, int group_size, DType dt);

// Names the rank that skipped its pre-scale: the wrong sum carries (1 - pre) * g_R(i) too much
// (divided by |group| under AVG); solve for R. -1 when the difference is not of that form.
int missing_scale_culprit(const GradScaling& scaling, uint64_t seed, uint64_t i, int dp_cp, int group_size,
                          double observed, double expected, int world);

// --- group identity (test_grad_sync_with_expert_parallel.py: rank r contributes 2^r) -----------
// A sum of 2^r over a group is the bitmask of its members; decode it (fp32-exact sums only).
// Returns false when `value` is not a sum of distinct powers 2^0..2^(world-1).
bool decode_power_sum(double value, int world, std::vector<int>* members);
// The lowest rank in exactly one of the two member sets (-1 when equal): the rank whose
// contribution is wrongly present or missing.
int first_group_difference(const std::vector<int>& expected, const std::vector<int>& observed);

// --- finalize_model_grads (and test_grad_reduce_for_replicated_embedder.py) ---------------------
// Conditional embedder: VPP chunk c on PP stage p starts at 10p + c; after the sum over chunks and
// the PP all-reduce every chunk holds sum_c sum_p (10p + c) (PP = 4, VPP = 2: 124).
double cond_embedder_grad(int pp_rank, int chunk);
double cond_embedder_reduced(int pp, int vpp);
// Replicated params reduced over TP: rank r holds A(i) + tp_rank*B(i) (seeded per op).
double tp_grad(uint64_t seed, int tp_rank, uint64_t i);
double tp_reduced(uint64_t seed, int tp, uint64_t i, bool average);
// Word embedding on the first and last PP stage: world rank r holds A(i) + r*B(i).
double embedding_grad(uint64_t seed, int rank, uint64_t i);
double embedding_reduced(uint64_t seed, const GroupSum& group, uint64_t i);
// num_tokens scaling: grads *= 1/max(n, 1), as fp32 math (what the scale kernel does).
float num_tokens_factor(double num_tokens);

}  // namespace dtbench
