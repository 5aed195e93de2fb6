#include "p2p/link_schedule.h"

#include <algorithm>

#include "core/error.h"
#include "core/units.h"

namespace dtbench {

const char* link_pattern_name(LinkPattern p) {
  switch (p) {
    case LinkPattern::pairs: return "pairs";
    case LinkPattern::ring: return "ring";
    case LinkPattern::one_to_all: return "one_to_all";
  }
  return "?";
}

const char* link_direction_name(LinkDirection d) { return d == LinkDirection::uni ? "uni" : "bi"; }

std::vector<std::vector<std::pair<int, int>>> circle_rounds(int n) {
  std::vector<std::vector<std::pair<int, int>>> rounds;
  if (n < 2) return rounds;
  // Odd n: a dummy entity m-1 = n; whoever meets it sits the round out.
  const int m = n % 2 ? n + 1 : n;
  const int ring = m - 1;  // entities 0..m-2 rotate around the fixed entity m-1
  for (int r = 0; r < ring; ++r) {
    std::vector<std::pair<int, int>> round;
    auto add = [&](int a, int b) {
      if (a >= n || b >= n) return;
      round.emplace_back(std::min(a, b), std::max(a, b));
    };
    add(m - 1, r);
    for (int k = 1; k < m / 2; ++k) add((r + k) % ring, (r - k + ring) % ring);
    std::sort(round.begin(), round.end());
    rounds.push_back(std::move(round));
  }
  return rounds;
}

LinkSchedule make_link_schedule(LinkPattern pattern, LinkDirection direction, bool node_level,
                                const std::vector<std::vector<int>>& ranks_of_node, int reference) {
  LinkSchedule s;
  s.pattern = pattern, s.direction = direction, s.node_level = node_level;
  std::vector<std::vector<int>> entities;  // each entity's ranks (one rank at rank level)
  if (node_level) {
    if (ranks_of_node.size() < 2)
      throw InputError("--level node: the job has one node; node pairs need at least two (use --level rank)");
    for (const auto& node : ranks_of_node)
      if (node.size() != ranks_of_node[0].size())
        throw InputError("--level node: nodes have different numbers of ranks (" +
                         std::to_string(ranks_of_node[0].size()) + " and " + std::to_string(node.size()) +
                         "); rail-aligned node pairs need the same number on every node");
    entities = ranks_of_node;
  } else {
    std::vector<int> all;
    for (const auto& node : ranks_of_node) all.insert(all.end(), node.begin(), node.end());
    std::sort(all.begin(), all.end());
    for (int r : all) entities.push_back({r});
  }
  const int m = int(entities.size());
  // Entity a sends to entity b: rank to rank, or each local rank of a to the same local rank of b.
  auto expand = [&](int a, int b, LinkRound& round) {
    for (size_t l = 0; l < entities[size_t(a)].size(); ++l)
      round.push_back(Link{entities[size_t(a)][l], entities[size_t(b)][l]});
  };
  auto add_pair_rounds = [&](const std::vector<std::pair<int, int>>& pairs) {
    LinkRound forward, backward;
    for (auto [a, b] : pairs) {
      expand(a, b, forward);
      expand(b, a, direction == LinkDirection::bi ? forward : backward);
    }
    if (!forward.empty()) s.rounds.push_back(std::move(forward));
    if (!backward.empty()) s.rounds.push_back(std::move(backward));
  };
  switch (pattern) {
    case LinkPattern::pairs:
      for (const auto& round : circle_rounds(m)) add_pair_rounds(round);
      break;
    case LinkPattern::ring: {
      if (m < 2) break;
      LinkRound round;
      for (int e = 0; e < m; ++e) expand(e, (e + 1) % m, round);
      // The backward neighbour is the forward one on two entities: already there.
      if (direction == LinkDirection::bi && m > 2)
        for (int e = 0; e < m; ++e) expand(e, (e - 1 + m) % m, round);
      s.rounds.push_back(std::move(round));
      break;
    }
    case LinkPattern::one_to_all: {
      if (reference < 0 || reference >= m)
        throw InputError("--reference " + std::to_string(reference) + ": outside 0.." + std::to_string(m - 1) +
                         (node_level ? " (nodes)" : " (ranks)"));
      for (int e = 0; e < m; ++e)
        if (e != reference) add_pair_rounds({{reference, e}});
      break;
    }
  }
  return s;
}

uint64_t payload_seed(uint64_t seed, int dst) {
  // splitmix64's finaliser over (seed, dst): distinct destinations get unrelated payloads.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t(dst) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

LinkVerdicts judge_links(const std::vector<std::pair<int, int>>& ends, const std::vector<double>& gbps,
                         double slow_factor) {
  LinkVerdicts v;
  if (ends.empty()) return v;
  int n = 0;
  for (auto [a, b] : ends) n = std::max(n, std::max(a, b) + 1);
  std::vector<std::vector<double>> of(static_cast<size_t>(n));
  for (size_t i = 0; i < ends.size(); ++i) {
    of[size_t(ends[i].first)].push_back(gbps[i]);
    if (ends[i].second != ends[i].first) of[size_t(ends[i].second)].push_back(gbps[i]);
  }
  std::vector<double> entity_medians;
  for (const auto& links : of)
    if (!links.empty()) entity_medians.push_back(median(links));
  v.median_gbps = median(entity_medians);
  const double limit = slow_factor * v.median_gbps;
  std::vector<bool> slow_entity(size_t(n), false);
  for (int e = 0; e < n; ++e) {
    const auto& links = of[size_t(e)];
    const int slow = int(std::count_if(links.begin(), links.end(), [&](double g) { return g < limit; }));
    if (links.size() >= 2 && 2 * slow > int(links.size())) {
      slow_entity[size_t(e)] = true;
      v.slow_ends.push_back({e, slow, int(links.size()), median(links)});
    }
  }
  for (size_t i = 0; i < ends.size(); ++i)
    if (gbps[i] < limit && !slow_entity[size_t(ends[i].first)] && !slow_entity[size_t(ends[i].second)])
      v.slow_links.push_back(i);
  return v;
}

}  // namespace dtbench
