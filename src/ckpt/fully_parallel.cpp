#include "ckpt/fully_parallel.h"

#include <algorithm>
#include <tuple>

namespace dtbench {

// --- fully-parallel save -------------------------------------------------------------------------
bool ShardId::operator<(const ShardId& o) const {
  return std::tie(key, global_offset) < std::tie(o.key, o.global_offset);
}
bool ShardId::operator==(const ShardId& o) const {
  return key == o.key && global_offset == o.global_offset;
}

ShardId shard_id(const ShardedPiece& piece) { return {piece.key, piece.global_offset}; }

std::map<ShardId, int> distribute_shards_to_ranks(
    const std::map<ShardId, std::vector<int>>& shard_to_ranks,
    const std::map<ShardId, int64_t>& shard_to_bytes, int num_ranks,
    const std::set<ShardId>& cross_group_loads) {
  struct Candidate {
    const ShardId* id;
    const std::vector<int>* ranks;
    int64_t bytes;
    bool cross;
  };
  std::vector<Candidate> order;
  for (const auto& [id, ranks] : shard_to_ranks) {
    auto size = shard_to_bytes.find(id);
    if (size == shard_to_bytes.end() || ranks.empty())
      throw RuntimeError("distribute_shards_to_ranks: shard of key '" + id.key + "' at " +
                         shape_str(id.global_offset) + " has no size or no holder");
    for (int r : ranks)
      if (r < 0 || r >= num_ranks)
        throw RuntimeError("distribute_shards_to_ranks: holder rank " + std::to_string(r) +
                           " of key '" + id.key + "' outside [0, " + std::to_string(num_ranks) + ")");
    order.push_back({&id, &ranks, size->second, cross_group_loads.count(id) > 0});
  }
  // Shards that depend on another group go last so load and save distributions stay alike; then the
  // least replicated first (fewest choices), then the biggest; the id makes it deterministic.
  std::sort(order.begin(), order.end(), [](const Candidate& x, const Candidate& y) {
    if (x.cross != y.cross) return y.cross;
    if (x.ranks->size() != y.ranks->size()) return x.ranks->size() < y.ranks->size();
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    return *x.id < *y.id;
  });
  std::vector<int64_t> load(static_cast<size_t>(num_ranks), 0);
  std::map<ShardId, int> assignment;
  for (const Candidate& c : order) {
    int best = -1;
    for (int r : *c.ranks)
      if (best < 0 || load[r] < load[best] || (load[r] == load[best] && r < best)) best = r;
    assignment[*c.id] = best;
    load[best] += c.bytes;
  }
  return assignment;
}

ShardDistribution determine_main_replica_distribution(
    const std::vector<std::vector<ShardedPiece>>& pieces_by_rank, bool for_load) {
  std::map<ShardId, std::vector<int>> holders;
  std::map<ShardId, int64_t> bytes;
  std::set<ShardId> has_main;
  for (size_t r = 0; r < pieces_by_rank.size(); ++r) {
    for (const ShardedPiece& piece : pieces_by_rank[r]) {
      // An empty piece (a rank given 0 rows by an uneven split) has the same (key, offset) id as
      // the next rank's real piece but holds nothing: as a holder it could be chosen to write that
      // shard and leave a hole, so it takes no part in the distribution (and is never written).
      if (piece.numel() == 0) continue;
      const ShardId id = shard_id(piece);
      holders[id].push_back(int(r));
      bytes.emplace(id, piece.bytes());
      if (piece.is_main_replica()) has_main.insert(id);
    }
  }
  ShardDistribution d;
  std::set<ShardId> cross_group;
  for (auto& [id, ranks] : holders) {
    const bool main_here = has_main.count(id) > 0;
    if (!main_here && !for_load) continue;
    if (!main_here) cross_group.insert(id);
    d.shards_in_group.insert(id);
    d.ranks_for_shard.emplace(id, ranks);
  }
  d.main_rank_for_shard = distribute_shards_to_ranks(d.ranks_for_shard, bytes,
                                                     int(pieces_by_rank.size()), cross_group);
  return d;
}

void apply_distribution(std::vector<ShardedPiece>& pieces, int rank_in_group,
                        const ShardDistribution& distribution) {
  for (ShardedPiece& piece : pieces) {
    auto it = distribution.main_rank_for_shard.find(shard_id(piece));
    const bool writes = it != distribution.main_rank_for_shard.end() && it->second == rank_in_group;
    piece.replica_id = {writes ? 0 : 1};
  }
}

}  // namespace dtbench
