#include "layout/parallel_layout.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/error.h"

namespace dtbench {
namespace {

// A group kind of one grid: the ranks that differ only in the masked coordinates
// (Megatron's generate_masked_orthogonal_rank_groups).
struct GridMask {
  bool expert = false;
  std::array<bool, 4> mask{};
};

GridMask grid_mask(GroupKind kind) {
  switch (kind) {
    case GroupKind::tp: return {false, {true, false, false, false}};
    case GroupKind::cp: return {false, {false, true, false, false}};
    case GroupKind::dp: return {false, {false, false, true, false}};
    case GroupKind::dp_cp: return {false, {false, true, true, false}};
    case GroupKind::pp: return {false, {false, false, false, true}};
    case GroupKind::expert_tp: return {true, {true, false, false, false}};
    case GroupKind::ep: return {true, {false, true, false, false}};
    case GroupKind::expert_dp: return {true, {false, false, true, false}};
    default: throw std::logic_error(std::string("not a grid group kind: ") + group_kind_name(kind));
  }
}

void require_positive(int value, const char* field) {
  if (value < 1) throw ValueError(field, "must be >= 1 (got " + std::to_string(value) + ")");
}

}  // namespace

const char* group_kind_name(GroupKind kind) {
  switch (kind) {
    case GroupKind::tp: return "tp";
    case GroupKind::cp: return "cp";
    case GroupKind::dp: return "dp";
    case GroupKind::dp_cp: return "dp_cp";
    case GroupKind::pp: return "pp";
    case GroupKind::expert_tp: return "expert_tp";
    case GroupKind::ep: return "ep";
    case GroupKind::expert_dp: return "expert_dp";
    case GroupKind::intra_dp_cp: return "intra_dp_cp";
    case GroupKind::inter_dp_cp: return "inter_dp_cp";
    case GroupKind::intra_expert_dp: return "intra_expert_dp";
    case GroupKind::inter_expert_dp: return "inter_expert_dp";
    case GroupKind::embedding: return "embedding";
    case GroupKind::position_embedding: return "position_embedding";
  }
  return "?";
}

ParallelLayout::ParallelLayout(const ParallelSizes& s) : world_(s.world), instances_(s.dist_opt_instances) {
  if (s.world < 1) throw ValueError("world", "must be >= 1 (got " + std::to_string(s.world) + ")");
  require_positive(s.tp, "tp");
  require_positive(s.cp, "cp");
  require_positive(s.pp, "pp");
  require_positive(s.ep, "ep");
  if (s.etp < 0) throw ValueError("etp", "must be >= 1, or 0 for the TP size (got " + std::to_string(s.etp) + ")");
  require_positive(s.dist_opt_instances, "dist_opt_instances");
  const int etp = s.etp == 0 ? s.tp : s.etp;
  const std::string world = "world size " + std::to_string(s.world);

  const int tp_cp_pp = s.tp * s.cp * s.pp;
  if (s.world % tp_cp_pp != 0)
    throw ValueError("tp/cp/pp", world + " is not divisible by TP*CP*PP = " + std::to_string(tp_cp_pp));
  const int etp_ep_pp = etp * s.ep * s.pp;
  if (s.world % etp_ep_pp != 0)
    throw ValueError("ep/etp", world + " is not divisible by ETP*EP*PP = " + std::to_string(etp_ep_pp));
  dense_ = {s.tp, s.cp, s.world / tp_cp_pp, s.pp};
  expert_ = {etp, s.ep, s.world / etp_ep_pp, s.pp};

  const std::string n = std::to_string(instances_);
  if (dp_cp() % instances_ != 0)
    throw ValueError("dist_opt_instances", "DP*CP = " + std::to_string(dp_cp()) + " is not divisible by " + n);
  if (edp() % instances_ != 0)
    throw ValueError("dist_opt_instances", "expert DP = " + std::to_string(edp()) + " is not divisible by " + n);
}

void ParallelLayout::check_rank(int rank) const {
  if (rank < 0 || rank >= world_)
    throw std::out_of_range("rank " + std::to_string(rank) + " outside world of " + std::to_string(world_));
}

DenseCoords ParallelLayout::dense_coords(int rank) const {
  check_rank(rank);
  const int dp_stride = tp() * cp(), pp_stride = dp_stride * dp();
  return {rank % tp(), rank / tp() % cp(), rank / dp_stride % dp(), rank / pp_stride};
}

ExpertCoords ParallelLayout::expert_coords(int rank) const {
  check_rank(rank);
  const int edp_stride = etp() * ep(), pp_stride = edp_stride * edp();
  return {rank % etp(), rank / etp() % ep(), rank / edp_stride % edp(), rank / pp_stride};
}

int ParallelLayout::dense_rank(const DenseCoords& c) const { return c.tp + tp() * (c.cp + cp() * (c.dp + dp() * c.pp)); }

int ParallelLayout::expert_rank(const ExpertCoords& c) const {
  return c.etp + etp() * (c.ep + ep() * (c.edp + edp() * c.pp));
}

// color = mixed-radix number of the unmasked coordinates (first = fastest), index = that of the
// masked ones: this is the order in which Megatron creates groups and lists their members.
ParallelLayout::Placement ParallelLayout::place(GroupKind kind, int rank) const {
  check_rank(rank);
  switch (kind) {
    case GroupKind::intra_dp_cp:
    case GroupKind::inter_dp_cp:
    case GroupKind::intra_expert_dp:
    case GroupKind::inter_expert_dp: {
      const bool dense = kind == GroupKind::intra_dp_cp || kind == GroupKind::inter_dp_cp;
      const Placement whole = place(dense ? GroupKind::dp_cp : GroupKind::expert_dp, rank);
      const int chunk = (dense ? dp_cp() : edp()) / instances_;
      if (kind == GroupKind::intra_dp_cp || kind == GroupKind::intra_expert_dp)
        return {whole.color * instances_ + whole.index / chunk, whole.index % chunk};
      return {whole.color * chunk + whole.index % chunk, whole.index / chunk};
    }
    case GroupKind::embedding:
    case GroupKind::position_embedding: {
      const Placement stage = place(GroupKind::pp, rank);
      if (stage.index == 0) return {stage.color, 0};
      if (kind == GroupKind::embedding && stage.index == pp() - 1) return {stage.color, 1};
      return {};
    }
    default: break;
  }
  const GridMask gm = grid_mask(kind);
  const Dims& sizes = gm.expert ? expert_ : dense_;
  Placement p{0, 0};
  int masked_radix = 1, unmasked_radix = 1;
  for (int axis = 0, rest = rank; axis < 4; rest /= sizes[axis], ++axis) {
    const int coord = rest % sizes[axis];
    if (gm.mask[axis]) {
      p.index += coord * masked_radix;
      masked_radix *= sizes[axis];
    } else {
      p.color += coord * unmasked_radix;
      unmasked_radix *= sizes[axis];
    }
  }
  return p;
}

int ParallelLayout::num_groups(GroupKind kind) const {
  switch (kind) {
    case GroupKind::intra_dp_cp: return num_groups(GroupKind::dp_cp) * instances_;
    case GroupKind::inter_dp_cp: return num_groups(GroupKind::dp_cp) * (dp_cp() / instances_);
    case GroupKind::intra_expert_dp: return num_groups(GroupKind::expert_dp) * instances_;
    case GroupKind::inter_expert_dp: return num_groups(GroupKind::expert_dp) * (edp() / instances_);
    case GroupKind::embedding:
    case GroupKind::position_embedding: return num_groups(GroupKind::pp);
    default: break;
  }
  const GridMask gm = grid_mask(kind);
  const Dims& sizes = gm.expert ? expert_ : dense_;
  int group_size = 1;
  for (int axis = 0; axis < 4; ++axis)
    if (gm.mask[axis]) group_size *= sizes[axis];
  return world_ / group_size;
}

int ParallelLayout::group_color(GroupKind kind, int rank) const { return place(kind, rank).color; }
int ParallelLayout::group_index(GroupKind kind, int rank) const { return place(kind, rank).index; }

// Built from place() by a scan over the world, so members, color and index cannot disagree.
std::vector<std::vector<int>> ParallelLayout::groups(GroupKind kind) const {
  std::vector<std::vector<std::pair<int, int>>> by_color(num_groups(kind));  // (index, rank)
  for (int r = 0; r < world_; ++r) {
    const Placement p = place(kind, r);
    if (p.color != kNoGroup) by_color[p.color].emplace_back(p.index, r);
  }
  std::vector<std::vector<int>> out;
  out.reserve(by_color.size());
  for (auto& members : by_color) {
    std::sort(members.begin(), members.end());
    out.emplace_back();
    for (const auto& m : members) out.back().push_back(m.second);
  }
  return out;
}

std::vector<int> ParallelLayout::group(GroupKind kind, int rank) const {
  const int color = group_color(kind, rank);
  if (color == kNoGroup) return {};
  std::vector<std::pair<int, int>> members;  // (index, rank)
  for (int r = 0; r < world_; ++r) {
    const Placement p = place(kind, r);
    if (p.color == color) members.emplace_back(p.index, r);
  }
  std::sort(members.begin(), members.end());
  std::vector<int> out;
  for (const auto& m : members) out.push_back(m.second);
  return out;
}

GradScaling grad_scaling(GradScaleMode mode, bool is_expert, int dp_cp_size, int expert_dp_size) {
  if (dp_cp_size < 1 || expert_dp_size < 1) throw std::invalid_argument("grad_scaling: group sizes must be >= 1");
  switch (mode) {
    case GradScaleMode::default_sum: return {1.0 / dp_cp_size, GradReduceOp::sum};
    case GradScaleMode::average_in_collective:
      // AVG divides by the group size (EDP for experts); the pre-scale turns that into 1/DPCP.
      return {is_expert ? double(expert_dp_size) / dp_cp_size : 1.0, GradReduceOp::avg};
    case GradScaleMode::per_token_loss: return {1.0, GradReduceOp::sum};
  }
  throw std::logic_error("grad_scaling: unknown mode");
}

GradScaleMode parse_grad_scale_mode(const std::string& text, const std::string& flag) {
  if (text == "default") return GradScaleMode::default_sum;
  if (text == "average_in_collective") return GradScaleMode::average_in_collective;
  if (text == "per_token_loss") return GradScaleMode::per_token_loss;
  throw InputError(flag + ": '" + text + "' is not one of default, average_in_collective, per_token_loss");
}

double reduced_grad(const GradScaling& scaling, double group_sum, int group_size) {
  const double sum = scaling.pre_scale * group_sum;
  return scaling.op == GradReduceOp::avg ? sum / group_size : sum;
}

double expected_group_power_sum(const std::vector<int>& members) {
  double sum = 0;
  for (int r : members) sum += std::ldexp(1.0, r);
  return sum;
}

bool power_sum_exact_in_fp32(const std::vector<int>& members) {
  if (members.empty()) return true;
  const auto [lo, hi] = std::minmax_element(members.begin(), members.end());
  return *lo >= 0 && *hi <= 127 && *hi - *lo <= 23;
}

}  // namespace dtbench
