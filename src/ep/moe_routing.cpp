#include "ep/moe_routing.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>

#include "core/error.h"

namespace dtbench {
namespace {

// splitmix64 finalizer: a counter-based generator, so draw j of token t needs no state.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void require_positive(int value, const char* field) {
  if (value < 1) throw ValueError(field, "must be >= 1 (got " + std::to_string(value) + ")");
}

}  // namespace

RoutingDistribution parse_routing_distribution(const std::string& text, const std::string& flag) {
  if (text == "uniform") return {};
  const std::string prefix = "zipf:";
  if (text.compare(0, prefix.size(), prefix) == 0) {
    const std::string number = text.substr(prefix.size());
    size_t used = 0;
    double s = -1;
    try {
      s = std::stod(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == number.size() && !number.empty() && std::isfinite(s) && s >= 0)
      return {RoutingDistribution::Kind::zipf, s};
    throw InputError(flag + ": zipf exponent in '" + text + "' must be a number >= 0");
  }
  throw InputError(flag + ": '" + text + "' is not 'uniform' or 'zipf:S'");
}

MoeRouting::MoeRouting(const RoutingConfig& config) : config_(config) {
  if (config.tokens_per_rank < 0)
    throw ValueError("tokens_per_rank", "must be >= 0 (got " + std::to_string(config.tokens_per_rank) + ")");
  require_positive(config.num_experts, "num_experts");
  require_positive(config.top_k, "top_k");
  require_positive(config.ep_size, "ep_size");
  if (config.top_k > config.num_experts)
    throw ValueError("top_k", std::to_string(config.top_k) + " distinct experts per token but only " +
                                  std::to_string(config.num_experts) + " experts");
  if (config.distribution.kind == RoutingDistribution::Kind::zipf) {
    // 2^32 * (e+1)^-s rounded, at least 1: every expert stays reachable, so top_k = E still works.
    for (int e = 0; e < config.num_experts; ++e) {
      const double w = std::ldexp(std::pow(double(e + 1), -config.distribution.zipf_s), 32);
      weights_.push_back(std::max<uint64_t>(1, uint64_t(std::llround(w))));
      total_weight_ += weights_.back();
    }
  }
}

int MoeRouting::expert_owner(int expert) const {
  if (expert < 0 || expert >= config_.num_experts) throw std::out_of_range("expert " + std::to_string(expert));
  const int base = config_.num_experts / config_.ep_size, extra = config_.num_experts % config_.ep_size;
  const int in_big_ranks = extra * (base + 1);  // experts owned by the ranks that have one more
  if (expert < in_big_ranks) return expert / (base + 1);
  return extra + (expert - in_big_ranks) / base;  // base > 0 here: with E < EP every expert is above
}

int MoeRouting::first_expert(int ep_rank) const {
  const int base = config_.num_experts / config_.ep_size, extra = config_.num_experts % config_.ep_size;
  return ep_rank * base + std::min(ep_rank, extra);
}

int MoeRouting::num_local_experts(int ep_rank) const {
  return config_.num_experts / config_.ep_size + (ep_rank < config_.num_experts % config_.ep_size ? 1 : 0);
}

void MoeRouting::check_source(int rank, int token) const {
  if (rank < 0 || token < 0 || token >= config_.tokens_per_rank)
    throw std::out_of_range("rank " + std::to_string(rank) + " token " + std::to_string(token));
}

uint64_t MoeRouting::token_key(int rank, int token) const {
  return mix(mix(mix(config_.seed) ^ uint64_t(rank)) ^ uint64_t(token));
}

std::vector<int> MoeRouting::experts_of(int rank, int token) const {
  check_source(rank, token);
  const uint64_t key = token_key(rank, token);
  const int experts = config_.num_experts, k = config_.top_k;
  std::vector<int> chosen;
  chosen.reserve(k);
  if (config_.distribution.kind == RoutingDistribution::Kind::uniform) {
    // Draw j picks the r-th expert not yet chosen, r uniform in [0, E - j): sampling without
    // replacement in O(k^2), walking the sorted choices instead of all E experts.
    std::vector<int> sorted;
    for (int j = 0; j < k; ++j) {
      int e = int(mix(key + uint64_t(j)) % uint64_t(experts - j));
      for (int taken : sorted) {
        if (taken > e) break;
        ++e;
      }
      sorted.insert(std::upper_bound(sorted.begin(), sorted.end(), e), e);
      chosen.push_back(e);
    }
    return chosen;
  }
  // Weighted sampling without replacement: draw in [0, weight left), walk the unchosen experts.
  std::vector<char> taken(experts, 0);
  uint64_t left = total_weight_;
  for (int j = 0; j < k; ++j) {
    uint64_t r = mix(key + uint64_t(j)) % left;
    int e = 0;
    for (;; ++e) {
      if (taken[e]) continue;
      if (r < weights_[e]) break;
      r -= weights_[e];
    }
    taken[e] = 1;
    left -= weights_[e];
    chosen.push_back(e);
  }
  return chosen;
}

std::vector<TokenSlot> MoeRouting::dispatch_order(int rank) const {
  // Counting sort by expert; tokens are visited in order, so each expert's rows stay token-ordered.
  std::vector<TokenSlot> rows;
  rows.reserve(size_t(config_.tokens_per_rank) * config_.top_k);
  std::vector<size_t> start(config_.num_experts + 1, 0);
  for (int t = 0; t < config_.tokens_per_rank; ++t) {
    const std::vector<int> experts = experts_of(rank, t);
    for (int s = 0; s < config_.top_k; ++s) {
      rows.push_back({rank, t, s, experts[s]});
      ++start[experts[s] + 1];
    }
  }
  for (int e = 0; e < config_.num_experts; ++e) start[e + 1] += start[e];
  std::vector<TokenSlot> sorted(rows.size());
  for (const TokenSlot& row : rows) sorted[start[row.expert]++] = row;
  return sorted;
}

std::vector<int> MoeRouting::send_counts(int rank) const {
  std::vector<int> counts(config_.ep_size, 0);
  for (int t = 0; t < config_.tokens_per_rank; ++t)
    for (int e : experts_of(rank, t)) ++counts[expert_owner(e)];
  return counts;
}

std::vector<TokenSlot> MoeRouting::received_from(int src_rank, int dest_ep_rank) const {
  std::vector<TokenSlot> rows;
  for (const TokenSlot& row : dispatch_order(src_rank))
    if (expert_owner(row.expert) == dest_ep_rank) rows.push_back(row);
  return rows;
}

RoutingLoad MoeRouting::load(const std::vector<int>& source_ranks) const {
  RoutingLoad load;
  load.per_expert.assign(config_.num_experts, 0);
  load.per_ep_rank.assign(config_.ep_size, 0);
  for (int rank : source_ranks)
    for (int t = 0; t < config_.tokens_per_rank; ++t)
      for (int e : experts_of(rank, t)) {
        ++load.per_expert[e];
        ++load.per_ep_rank[expert_owner(e)];
      }
  uint64_t total = 0;
  for (uint64_t n : load.per_ep_rank) {
    total += n;
    load.max_per_ep_rank = std::max(load.max_per_ep_rank, n);
  }
  load.mean_per_ep_rank = double(total) / config_.ep_size;
  load.imbalance = total == 0 ? 0 : double(load.max_per_ep_rank) / load.mean_per_ep_rank;
  return load;
}

uint64_t MoeRouting::token_id(int src_rank, int token, int slot) const {
  check_source(src_rank, token);
  if (slot < 0 || slot >= config_.top_k) throw std::out_of_range("slot " + std::to_string(slot));
  return (uint64_t(src_rank) * uint64_t(config_.tokens_per_rank) + uint64_t(token)) * uint64_t(config_.top_k) +
         uint64_t(slot);
}

TokenSlot MoeRouting::decode_token_id(uint64_t id) const {
  if (config_.tokens_per_rank == 0) throw std::out_of_range("no token ids: tokens_per_rank is 0");
  TokenSlot row;
  row.slot = int(id % uint64_t(config_.top_k));
  id /= uint64_t(config_.top_k);
  row.token = int(id % uint64_t(config_.tokens_per_rank));
  const uint64_t src = id / uint64_t(config_.tokens_per_rank);
  if (src > uint64_t(INT_MAX)) throw std::out_of_range("token id names source rank " + std::to_string(src));
  row.src_rank = int(src);
  row.expert = experts_of(row.src_rank, row.token)[row.slot];
  return row;
}

int payload_value(uint64_t id, int element) {
  return int((id >> (8 * (element % 8))) & 0xff) ^ (element & 0xff);
}

int64_t payload_row_id(const float* row, int elements) {
  uint64_t id = 0;
  for (int h = 0; h < std::min(elements, 8); ++h) {
    const float v = row[h];
    if (!(v >= 0 && v <= 255) || v != std::floor(v)) return -1;
    id |= uint64_t(int(v) ^ h) << (8 * h);
  }
  return id > uint64_t(INT64_MAX) ? -1 : int64_t(id);
}

}  // namespace dtbench
