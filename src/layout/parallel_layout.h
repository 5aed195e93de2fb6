#pragma once
// Megatron-Core's process groups (megatron/core/parallel_state.py, initialize_model_parallel) as
// pure arithmetic: which ranks form each TP/CP/DP/PP/EP group, in Megatron's member order, so that
// suites can build the same communicators with MPI_Comm_split / ncclCommSplit and compute what each
// collective should produce. Also the DDP gradient-scaling table (DistributedDataParallel's
// gradient_scaling_factor) that goes with the DP groups.
#include <array>
#include <string>
#include <vector>

namespace dtbench {

// Sizes as the user gives them. `world` comes from MPI; the others are flags.
struct ParallelSizes {
  int world = 1;
  int tp = 1, cp = 1, pp = 1;
  int ep = 1;
  int etp = 0;                     // expert tensor parallel; 0 = same as tp (Megatron's default)
  int dist_opt_instances = 1;      // num_distributed_optimizer_instances (partial DistOpt)
};

// Dense grid, order tp-cp-ep-dp-pp with ep = 1: rank = tp + TP*(cp + CP*(dp + DP*pp)).
struct DenseCoords {
  int tp = 0, cp = 0, dp = 0, pp = 0;
};
// Expert grid, order tp-ep-dp-pp: rank = etp + ETP*(ep + EP*(edp + EDP*pp)).
struct ExpertCoords {
  int etp = 0, ep = 0, edp = 0, pp = 0;
};

enum class GroupKind {
  tp,                   // dense grid: ranks differing only in tp
  cp,
  dp,                   // dp without cp
  dp_cp,                // dense grads reduce here
  pp,
  expert_tp,            // expert grid: ranks differing only in etp
  ep,                   // token all-to-all
  expert_dp,            // expt_dp: expert grads reduce here
  intra_dp_cp,          // partial DistOpt: consecutive chunks of dp_cp, size DPCP/N
  inter_dp_cp,          // same position in every chunk, size N
  intra_expert_dp,      // same split of expert_dp, size EDP/N
  inter_expert_dp,
  embedding,            // [first, last] PP stage of each pp group ([first] when PP = 1)
  position_embedding,   // [first] PP stage of each pp group
};
const char* group_kind_name(GroupKind kind);
constexpr int kNoGroup = -1;  // group_color/index of a rank outside every group of that kind

class ParallelLayout {
 public:
  // Throws ValueError naming the field (tp, cp, pp, ep, etp, dist_opt_instances, world) when a size
  // is < 1 or does not divide.
  explicit ParallelLayout(const ParallelSizes& sizes);

  int world() const { return world_; }
  int tp() const { return dense_[0]; }
  int cp() const { return dense_[1]; }
  int dp() const { return dense_[2]; }
  int pp() const { return dense_[3]; }
  int dp_cp() const { return dp() * cp(); }
  int etp() const { return expert_[0]; }
  int ep() const { return expert_[1]; }
  int edp() const { return expert_[2]; }
  int dist_opt_instances() const { return instances_; }

  DenseCoords dense_coords(int rank) const;
  ExpertCoords expert_coords(int rank) const;
  int dense_rank(const DenseCoords& c) const;
  int expert_rank(const ExpertCoords& c) const;

  // Members (global ranks) of `rank`'s group of this kind, in Megatron's order (ascending for every
  // kind). Empty when `rank` belongs to no such group (embedding kinds, middle PP stages).
  std::vector<int> group(GroupKind kind, int rank) const;
  // All groups of one kind in Megatron's creation order; group g is groups(kind)[g]. Together they
  // partition the world, except the embedding kinds, which cover only first/last PP stages.
  std::vector<std::vector<int>> groups(GroupKind kind) const;
  int num_groups(GroupKind kind) const;
  // MPI_Comm_split color (the group's number in groups()) and key (position inside the group), or
  // kNoGroup (map to MPI_UNDEFINED) for a rank outside every group of this kind.
  int group_color(GroupKind kind, int rank) const;
  int group_index(GroupKind kind, int rank) const;

 private:
  using Dims = std::array<int, 4>;
  struct Placement {
    int color = kNoGroup, index = kNoGroup;
  };
  Placement place(GroupKind kind, int rank) const;
  void check_rank(int rank) const;

  int world_ = 1, instances_ = 1;
  Dims dense_{}, expert_{};  // sizes along tp,cp,dp,pp and etp,ep,edp,pp
};

// How Megatron's DistributedDataParallel scales gradients before the DP collective
// (DPCP = |dp_cp|, EDP = |expert_dp|).
enum class GradScaleMode {
  default_sum,            // pre-scale 1/DPCP (dense and expert), SUM
  average_in_collective,  // pre-scale 1 (dense) or EDP/DPCP (expert), AVG
  per_token_loss,         // pre-scale 1, SUM; the 1/num_tokens comes later (finalize_model_grads)
};
// Maps onto comm.h's RedOp one to one; kept separate so this unit stays free of the comm layer.
enum class GradReduceOp { sum, avg };
struct GradScaling {
  double pre_scale = 1;
  GradReduceOp op = GradReduceOp::sum;
};
GradScaling grad_scaling(GradScaleMode mode, bool is_expert, int dp_cp_size, int expert_dp_size);
// "default" | "average_in_collective" | "per_token_loss"; throws InputError naming `flag`.
GradScaleMode parse_grad_scale_mode(const std::string& text, const std::string& flag);

// What every member holds after the collective when the raw (unscaled) contributions of the
// `group_size` members sum to `group_sum`. Outside its own DistOpt shard a rank holds only
// pre_scale * its local value (the grad_data[0] rule of start_grad_sync).
double reduced_grad(const GradScaling& scaling, double group_sum, int group_size);

// Group-identity test (Megatron's test_grad_sync_with_expert_parallel.py): rank r contributes 2^r,
// so the sum over a group is the bitmask of its members and a reduction over the wrong communicator
// gives a different number. Exact in fp32 only when every partial sum fits 24 significant bits:
// max(member) - min(member) <= 23, which holds for any group when world <= 24; 2^r itself overflows
// fp32 for r > 127. Check with power_sum_exact_in_fp32() before relying on bit-exact comparison.
double expected_group_power_sum(const std::vector<int>& members);
bool power_sum_exact_in_fp32(const std::vector<int>& members);

}  // namespace dtbench
