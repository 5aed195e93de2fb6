#include "ep/ep_sync.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/error.h"

namespace dtbench {
namespace {

void require_positive(int64_t value, const char* field) {
  if (value < 1) throw ValueError(field, "must be >= 1 (got " + std::to_string(value) + ")");
}

void require_divisible(int64_t value, int by, const char* field, const char* by_field) {
  if (value % by != 0)
    throw ValueError(field, std::to_string(value) + " is not divisible by " + by_field + " = " + std::to_string(by));
}

bool is_power_of_two(double x) {
  if (!(x > 0) || !std::isfinite(x)) return false;
  int e = 0;
  return std::frexp(x, &e) == 0.5;
}

uint64_t mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

TensorSpec tensor(const std::string& name, std::vector<int64_t> shape, DType dt, int layer, bool expert = false,
                  bool shared_embedding = false) {
  TensorSpec t;
  t.name = name, t.shape = std::move(shape), t.dtype = dt, t.layer = layer;
  t.expert = expert, t.shared_embedding = shared_embedding;
  return t;
}

}  // namespace

void check_moe_shape(const MoeModelShape& s, const ParallelLayout& layout) {
  require_positive(s.hidden, "hidden");
  require_positive(s.ffn, "ffn");
  require_positive(s.vocab, "vocab");
  require_positive(s.experts, "experts");
  require_positive(s.moe_layers, "moe_layers");
  require_divisible(s.hidden, layout.tp(), "hidden", "TP");
  require_divisible(s.vocab, layout.tp(), "vocab", "TP");
  require_divisible(s.ffn, layout.etp(), "ffn", "ETP");
}

int first_moe_layer(int layers, int pp, int stage) {
  if (pp < 1 || stage < 0 || stage > pp) throw std::out_of_range("first_moe_layer: stage " + std::to_string(stage));
  const int base = layers / pp, extra = layers % pp;
  return stage * base + std::min(stage, extra);
}

ModelSpec build_moe_stage_model(const MoeModelShape& s, const ParallelLayout& layout, const MoeRouting& routing,
                                int rank, DType dt) {
  const DenseCoords dc = layout.dense_coords(rank);
  const int ep_rank = layout.expert_coords(rank).ep;
  const int64_t h = s.hidden, tp = layout.tp(), etp = layout.etp();
  const bool first = dc.pp == 0, last = dc.pp == layout.pp() - 1;
  ModelSpec m;
  m.name = "moe-stage" + std::to_string(dc.pp);
  if (first) m.tensors.push_back(tensor("embedding.word_embeddings.weight", {s.vocab / tp, h}, dt, -1, false, true));
  for (int l = first_moe_layer(s.moe_layers, layout.pp(), dc.pp); l < first_moe_layer(s.moe_layers, layout.pp(), dc.pp + 1);
       ++l) {
    const std::string p = "decoder.layers." + std::to_string(l) + ".";
    m.tensors.push_back(tensor(p + "input_layernorm.weight", {h}, dt, l));
    m.tensors.push_back(tensor(p + "self_attention.linear_qkv.weight", {3 * h / tp, h}, dt, l));
    m.tensors.push_back(tensor(p + "self_attention.linear_proj.weight", {h, h / tp}, dt, l));
    m.tensors.push_back(tensor(p + "pre_mlp_layernorm.weight", {h}, dt, l));
    m.tensors.push_back(tensor(p + "mlp.router.weight", {int64_t(s.experts), h}, dt, l));
    for (int j = 0; j < routing.num_local_experts(ep_rank); ++j) {
      const std::string e = p + "mlp.experts.local_experts." + std::to_string(j) + ".";
      m.tensors.push_back(tensor(e + "linear_fc1.weight", {2 * s.ffn / etp, h}, dt, l, true));
      m.tensors.push_back(tensor(e + "linear_fc2.weight", {h, s.ffn / etp}, dt, l, true));
    }
  }
  if (last) {
    m.tensors.push_back(tensor("decoder.final_layernorm.weight", {h}, dt, -1));
    if (!first) m.tensors.push_back(tensor("output_layer.weight", {s.vocab / tp, h}, dt, -1, false, true));
  }
  return m;
}

// --- closed forms ---------------------------------------------------------------------------------
int64_t grad_term_a(uint64_t seed, uint64_t i) { return int64_t(mix(seed * 0x1000193u + i) % 4u); }
int64_t grad_term_b(uint64_t seed, uint64_t i) { return 1 + int64_t(mix(~seed + i * 0x9e37u) % 3u); }

double raw_grad(uint64_t seed, int rank, uint64_t i, int dp_cp) {
  return double(dp_cp) * double(grad_term_a(seed, i) + int64_t(rank) * grad_term_b(seed, i));
}

GroupSum group_sum_of(const std::vector<int>& members) {
  GroupSum g;
  g.size = int(members.size());
  for (int r : members) g.rank_sum += r;
  return g;
}

double expected_synced_grad(const GradScaling& scaling, uint64_t seed, uint64_t i, const GroupSum& group, int dp_cp,
                            int rank, bool owned) {
  if (!owned) return double(float(raw_grad(seed, rank, i, dp_cp)) * float(scaling.pre_scale));
  const double raw_sum =
      double(dp_cp) * double(group.size * grad_term_a(seed, i) + group.rank_sum * grad_term_b(seed, i));
  return reduced_grad(scaling, raw_sum, group.size);
}

double sync_tolerance_ulps(const GradScaling& scaling, int group_size, DType dt) {
  const bool exact = dt == DType::f32 && is_power_of_two(scaling.pre_scale) &&
                     (scaling.op == GradReduceOp::sum || is_power_of_two(group_size));
  return exact ? 0.0 : double(group_size) + 2.0;
}

int missing_scale_culprit(const GradScaling& scaling, uint64_t seed, uint64_t i, int dp_cp, int group_size,
                          double observed, double expected, int world) {
  if (scaling.pre_scale == 1.0 || dp_cp < 1) return -1;
  double diff = observed - expected;
  if (scaling.op == GradReduceOp::avg) diff *= group_size;
  const double v = diff / (1.0 - scaling.pre_scale) / dp_cp;  // A + R*B of the unscaled contribution
  const double r = (v - double(grad_term_a(seed, i))) / double(grad_term_b(seed, i));
  const double nearest = std::round(r);
  if (!(std::fabs(r - nearest) < 1e-3) || nearest < 0 || nearest >= world) return -1;
  return int(nearest);
}

bool decode_power_sum(double value, int world, std::vector<int>* members) {
  members->clear();
  if (!(value >= 1) || value != std::floor(value) || world > 62 || value >= std::ldexp(1.0, world)) return false;
  const uint64_t bits = uint64_t(value);
  for (int r = 0; r < world; ++r)
    if (bits >> r & 1u) members->push_back(r);
  return true;
}

int first_group_difference(const std::vector<int>& expected, const std::vector<int>& observed) {
  std::vector<int> a = expected, b = observed, diff;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(diff));
  return diff.empty() ? -1 : diff.front();
}

double cond_embedder_grad(int pp_rank, int chunk) { return 10.0 * pp_rank + chunk; }

double cond_embedder_reduced(int pp, int vpp) {
  // sum over p < pp, c < vpp of 10p + c
  return 10.0 * vpp * (double(pp) * (pp - 1) / 2) + double(pp) * (double(vpp) * (vpp - 1) / 2);
}

double tp_grad(uint64_t seed, int tp_rank, uint64_t i) {
  return double(grad_term_a(seed, i) + int64_t(tp_rank) * grad_term_b(seed, i));
}

double tp_reduced(uint64_t seed, int tp, uint64_t i, bool average) {
  const double sum = double(tp) * double(grad_term_a(seed, i)) +
                     double(grad_term_b(seed, i)) * (double(tp) * (tp - 1) / 2);
  return average ? sum / tp : sum;
}

double embedding_grad(uint64_t seed, int rank, uint64_t i) {
  return double(grad_term_a(seed, i) + int64_t(rank) * grad_term_b(seed, i));
}

double embedding_reduced(uint64_t seed, const GroupSum& group, uint64_t i) {
  return double(group.size * grad_term_a(seed, i) + group.rank_sum * grad_term_b(seed, i));
}

float num_tokens_factor(double num_tokens) { return 1.0f / float(std::max(num_tokens, 1.0)); }

}  // namespace dtbench
