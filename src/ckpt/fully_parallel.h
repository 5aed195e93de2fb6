#pragma once
// The fully parallel save (Megatron's strategies/fully_parallel.py, exchange_utils.py
// distribute_shards_to_ranks): which holder of each replicated shard writes it.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ckpt/sharded_piece.h"

namespace dtbench {

struct ShardId {
  std::string key;
  TensorShape global_offset;
  bool operator<(const ShardId& o) const;
  bool operator==(const ShardId& o) const;
};
ShardId shard_id(const ShardedPiece& piece);

// Greedy assignment, deterministic on every rank: shards sorted by (cross-group flag, number of
// holders, -bytes, shard id), each given to its least-loaded holder (ties -> lower rank).
std::map<ShardId, int> distribute_shards_to_ranks(
    const std::map<ShardId, std::vector<int>>& shard_to_ranks,
    const std::map<ShardId, int64_t>& shard_to_bytes, int num_ranks,
    const std::set<ShardId>& cross_group_loads = {});

struct ShardDistribution {
  std::map<ShardId, int> main_rank_for_shard;
  std::set<ShardId> shards_in_group;                     // shards this group takes care of
  std::map<ShardId, std::vector<int>> ranks_for_shard;  // holders, ascending
};
// pieces_by_rank indexed by rank within the parallelization group. Save: shards with a main replica
// in the group. for_load: every shard held in the group; those without a main replica here are
// cross-group loads and go last (Megatron's ignore_groups=True).
ShardDistribution determine_main_replica_distribution(
    const std::vector<std::vector<ShardedPiece>>& pieces_by_rank, bool for_load = false);
// Marks this rank's pieces: replica_id {0} where it was chosen to write, {1} otherwise.
void apply_distribution(std::vector<ShardedPiece>& pieces, int rank_in_group,
                        const ShardDistribution& distribution);

}  // namespace dtbench
