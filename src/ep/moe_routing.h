#pragma once
// Seeded top-k MoE routing for the expert-parallel token all-to-all (dispatch and combine).
// Every choice is a pure function of (seed, source rank, token), so any rank recomputes any other
// rank's routing for one token in O(top_k) (uniform) or O(top_k * experts) (zipf), independent of
// the world size: receivers check what arrived without gathering anything.
#include <cstdint>
#include <string>
#include <vector>

namespace dtbench {

struct RoutingDistribution {
  enum class Kind { uniform, zipf };
  Kind kind = Kind::uniform;
  double zipf_s = 0;  // expert e is picked with weight (e+1)^-s: low expert ids (EP rank 0) run hot
};
// "uniform" | "zipf:S" (S >= 0); throws InputError naming `flag`.
RoutingDistribution parse_routing_distribution(const std::string& text, const std::string& flag);

struct RoutingConfig {
  uint64_t seed = 1;
  int tokens_per_rank = 0;  // T
  int num_experts = 1;      // E, split over the EP ranks
  int top_k = 1;            // k distinct experts per token
  RoutingDistribution distribution;
  int ep_size = 1;
};

// One routed copy of a token: `slot`-th expert choice of token `token` on rank `src_rank`.
struct TokenSlot {
  int src_rank = 0, token = 0, slot = 0, expert = 0;
};

struct RoutingLoad {
  std::vector<uint64_t> per_expert, per_ep_rank;  // (token, slot) assignments received
  uint64_t max_per_ep_rank = 0;
  double mean_per_ep_rank = 0;
  double imbalance = 0;  // max / mean over EP ranks (1 = perfectly balanced; 0 when nothing is routed)
};

class MoeRouting {
 public:
  // Throws ValueError naming the field (tokens_per_rank, num_experts, top_k, ep_size) for a
  // non-positive size or top_k > num_experts.
  explicit MoeRouting(const RoutingConfig& config);
  const RoutingConfig& config() const { return config_; }

  // Experts are placed in contiguous ranges over EP ranks (Megatron's local_expert_indices);
  // when E % EP != 0 the first E % EP ranks own one more (and with E < EP the rest own none).
  int expert_owner(int expert) const;
  int first_expert(int ep_rank) const;
  int num_local_experts(int ep_rank) const;

  // The top_k distinct experts of one token, in slot order.
  std::vector<int> experts_of(int rank, int token) const;
  // (token, slot) assignments `rank` sends to each EP rank; they sum to T * top_k.
  std::vector<int> send_counts(int rank) const;
  // `rank`'s dispatch buffer: sorted by expert, then token (Megatron's permute), so the chunk for
  // each EP rank is contiguous and chunks come in EP-rank order. The combine all-to-all brings the
  // rows back in this same order.
  std::vector<TokenSlot> dispatch_order(int rank) const;
  // The rows EP rank `dest_ep_rank` receives from `src_rank`, in arrival order.
  std::vector<TokenSlot> received_from(int src_rank, int dest_ep_rank) const;
  // Assignments per expert and per EP rank summed over the given source ranks (an EP group).
  RoutingLoad load(const std::vector<int>& source_ranks) const;

  // Global id of one routed copy: (src_rank * T + token) * top_k + slot.
  uint64_t token_id(int src_rank, int token, int slot) const;
  // Inverse of token_id; the expert is recomputed from the routing.
  TokenSlot decode_token_id(uint64_t id) const;

 private:
  uint64_t token_key(int rank, int token) const;
  void check_source(int rank, int token) const;

  RoutingConfig config_;
  std::vector<uint64_t> weights_;  // zipf: integer weight per expert, so sampling is exact integer math
  uint64_t total_weight_ = 0;
};

// Payload element `element` of the row carrying `id`: byte (element % 8) of the id XOR
// (element & 255). Always an integer in [0, 255], hence exact in fp32, bf16 and fp16; rows of at
// least 8 elements carry the whole id, and the XOR makes elements of one row differ.
int payload_value(uint64_t id, int element);
// Reads the id back from the first min(elements, 8) values of a row (for naming the culprit of a
// misrouted row); -1 when they are not a payload (not integers in [0, 255]).
int64_t payload_row_id(const float* row, int elements);

}  // namespace dtbench
